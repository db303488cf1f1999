// A tiny W3C WebDriver client over fetch (Node 20, no dependencies), enough
// to drive the desktop app through tauri-driver: open a session on an app
// binary, find elements by CSS, click, type, read text and attributes, run
// synchronous scripts, move the mouse, take screenshots, and poll with `waitFor`.
//
// Every failed command throws an Error naming the command and carrying the
// driver's own `error` and `message` (e.g. "no such element: …").

import { writeFile } from 'node:fs/promises';

/** The key W3C drivers use for element references in JSON. */
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

/** Sends one command; returns its `value` or throws with the driver's message. */
async function command(base, method, path, body) {
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`WebDriver ${method} ${path}: no answer from ${base} (${error.cause?.code ?? error.message})`);
  }
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`WebDriver ${method} ${path}: HTTP ${response.status}, not JSON: ${text.slice(0, 300)}`);
  }
  const value = json.value ?? null;
  if (!response.ok || (value && typeof value === 'object' && 'error' in value)) {
    const error = value?.error ?? `HTTP ${response.status}`;
    const message = value?.message ?? text.slice(0, 300);
    throw new Error(`WebDriver ${method} ${path}: ${error}: ${message}`);
  }
  return value;
}

/** An element of the page, by its WebDriver reference. */
export class Element {
  constructor(session, id, selector) {
    this.session = session;
    this.id = id;
    this.selector = selector;
  }
  #cmd(method, path, body) {
    return this.session.cmd(method, `/element/${this.id}${path}`, body);
  }
  click() {
    return this.#cmd('POST', '/click', {});
  }
  clear() {
    return this.#cmd('POST', '/clear', {});
  }
  /** Types `text` into the element (W3C "element send keys"). */
  sendKeys(text) {
    return this.#cmd('POST', '/value', { text: String(text) });
  }
  getText() {
    return this.#cmd('GET', '/text');
  }
  getAttribute(name) {
    return this.#cmd('GET', `/attribute/${encodeURIComponent(name)}`);
  }
}

/** One WebDriver session: for tauri-driver, one running app. */
export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  /** Opens a session on the app binary `application` through the driver at `base`. */
  static async start(base, application, args = []) {
    const tauri = { 'tauri:options': { application, args } };
    // W3C form in `capabilities.alwaysMatch`; `desiredCapabilities` for legacy drivers.
    const value = await command(base, 'POST', '/session', {
      capabilities: { alwaysMatch: tauri },
      desiredCapabilities: tauri,
    });
    const id = value?.sessionId ?? value?.session_id;
    if (!id) throw new Error(`WebDriver POST /session: no session id in ${JSON.stringify(value)}`);
    return new Session(base, id);
  }

  cmd(method, path, body) {
    return command(this.base, method, `/session/${this.id}${path}`, body);
  }

  /** The first element matching `css`; throws "no such element" otherwise. */
  async find(css) {
    const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return new Element(this, value[ELEMENT], css);
  }

  /** Every element matching `css`, in document order (maybe none). */
  async findAll(css) {
    const values = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return values.map((value) => new Element(this, value[ELEMENT], css));
  }

  /** Runs `script` (a function body; `arguments` holds `args`) and returns its value. */
  execute(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** Moves the mouse pointer to (`x`, `y`) of the viewport (W3C actions), e.g. off a hovered row. */
  async moveMouse(x, y) {
    const move = { type: 'pointerMove', duration: 0, origin: 'viewport', x, y };
    await this.cmd('POST', '/actions', {
      actions: [{ type: 'pointer', id: 'mouse', parameters: { pointerType: 'mouse' }, actions: [move] }],
    });
    await this.cmd('DELETE', '/actions');
  }

  /** Saves a PNG of the window to `file`. */
  async screenshot(file) {
    const base64 = await this.cmd('GET', '/screenshot');
    await writeFile(file, Buffer.from(base64, 'base64'));
  }

  /** Ends the session (tauri-driver closes the app). */
  delete() {
    return command(this.base, 'DELETE', `/session/${this.id}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` every `intervalMs` until it returns a truthy value, and returns
 * that value. Errors thrown by `fn` count as "not yet". After `timeoutMs`
 * throws, naming `what` and the last error or value seen.
 */
export async function waitFor(fn, timeoutMs, what = 'condition', intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = `last value: ${JSON.stringify(value)}`;
    } catch (error) {
      last = `last error: ${error.message}`;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await sleep(intervalMs);
  }
}
