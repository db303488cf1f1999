// End-to-end tests of the real desktop app `earshot` against a running
// `earshotd demo`, through tauri-driver (WebKitWebDriver) — no npm packages.
//
//   EARSHOT_BIN=target/debug/earshot EARSHOT_SERVER=http://127.0.0.1:8080 \
//     xvfb-run -a dbus-run-session -- keyctl session - node tests/e2e/run.mjs
//
// Environment:
//   EARSHOT_BIN      the app binary (required)
//   EARSHOT_SERVER   URL of a running `earshotd demo` (required)
//   E2E_SCREENSHOTS  directory for PNGs (optional; also gets a PNG of each failure)
//   TAURI_DRIVER     tauri-driver binary (default ~/.cargo/bin/tauri-driver)
//   E2E_UI=legacy    the first ui (log-in form and a plain history list): adds
//                    fallback selectors, compares rows by direction, status and
//                    duration (it shows no call ids), and skips the scenarios
//                    that need the current ui. Default: the current ui contract.
//   E2E_ONLY         comma-separated scenario names to run (default: all)
//
// Each app session gets a fresh HOME: the app keeps its last log-in and cache
// under $HOME/.local/share/app.earshot.desktop, and tauri-driver accepts no
// environment for the app in its capabilities (it only maps `application` and
// `args` to WebKitWebDriver). So the runner starts tauri-driver once per app
// session with HOME/XDG_* pointing at a new temporary directory; the app
// inherits them through WebKitWebDriver. tauri-driver answers ~40 ms after
// its start; the app itself takes 0.3-0.6 s to open a session.
// tauri-driver runs in its own process group, which is killed by its id at
// the end of the session (PID 1 here reaps no orphans).
//
// The app keeps its token in the OS keyring: run inside `keyctl session -`
// (kernel keyring) or with a Secret Service. Scenario `play` needs an audio
// output (the test script's private PulseAudio with a null sink); scenario
// `download` needs `xdotool` for the native save dialog.

import { spawn, execFile } from 'node:child_process';
import { access, constants, mkdtemp, rm, mkdir, readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Session, waitFor } from './webdriver.mjs';

// ------------------------------------------------------------ configuration

/** Rows compared between the ui and the service. */
const FIRST_ROWS = 10;
const DRIVER_PORT = 4444;
const NATIVE_PORT = 4445;
const DRIVER_URL = `http://127.0.0.1:${DRIVER_PORT}`;

const BIN = process.env.EARSHOT_BIN;
const SERVER = process.env.EARSHOT_SERVER?.replace(/\/+$/, '');
const SHOTS = process.env.E2E_SCREENSHOTS;
const DRIVER = process.env.TAURI_DRIVER || join(homedir(), '.cargo/bin/tauri-driver');
const LEGACY = process.env.E2E_UI === 'legacy';
const ONLY = process.env.E2E_ONLY?.split(',').map((name) => name.trim()).filter(Boolean);

/**
 * The app context the ui asks for a user's history in, and so the one the
 * service is asked in: the current ui (App.svelte) uses `calling` for agents
 * and `dashboard` for everyone else; the first ui used `calling` for all.
 */
const APP_CONTEXT = (user) => (LEGACY || user.role === 'agent' ? 'calling' : 'dashboard');

/** Demo log-ins (crates/service/src/demo.rs, PEOPLE). Ada follows the company defaults. */
const ADA = { name: 'ada', role: 'agent', email: 'ada@acme.demo', password: 'demo-ada' };
const SAM = { name: 'sam', role: 'supervisor', email: 'sam@acme.demo', password: 'demo-sam' };
const ADMIN = { name: 'admin', role: 'admin', email: 'admin@acme.demo', password: 'demo-admin' };

/** The ui contract. In legacy mode, fallbacks for the first ui (no test ids). */
const LEGACY_LIST = 'ul[aria-label="Calls, newest first"]';
const SEL = {
  server: 'input[name=server]',
  email: 'input[name=email]',
  password: 'input[name=password]',
  submit: 'button[type=submit]',
  alert: '[role=alert]',
  historyList: '[data-testid=history-list]' + (LEGACY ? `, ${LEGACY_LIST}` : ''),
  callRow: '[data-testid=call-row]' + (LEGACY ? `, ${LEGACY_LIST} > li` : ''),
  signOut: '[data-testid=sign-out]' + (LEGACY ? ', header button' : ''),
  details: '[data-testid=call-details]',
  play: '[data-testid=call-details] [data-testid=play]',
  download: '[data-testid=call-details] [data-testid=download]',
  position: '[data-testid=call-details] [data-testid=player-position]',
  trace: '[data-testid=call-details] [data-testid=trace]',
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);
function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ------------------------------------------------------------ the service

/** Calls the service's REST API; throws with the problem's detail. */
async function api(path, { token, method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${SERVER}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const tokens = new Map();
async function tokenOf(user) {
  if (!tokens.has(user.email)) {
    const { token } = await api('/session', { method: 'POST', body: { email: user.email, password: user.password } });
    tokens.set(user.email, token);
  }
  return tokens.get(user.email);
}

/** The newest `limit` calls `user` may see, as the service sends them. */
async function serviceCalls(user, limit = FIRST_ROWS) {
  const page = await api(`/calls?app=${APP_CONTEXT(user)}&limit=${limit}`, { token: await tokenOf(user) });
  return page.calls;
}

/** What a legacy row shows of a call: "direction, status" and the duration. */
function legacyKey(call) {
  if (call.answered_at == null || call.ended_at == null) return `${call.direction}, ${call.status} —`;
  const s = Math.round((call.ended_at - call.answered_at) / 1000);
  return `${call.direction}, ${call.status} ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
const expectedKeys = (calls) => calls.map((call) => (LEGACY ? legacyKey(call) : String(call.id)));

// ------------------------------------------------------------ tauri-driver and app sessions

/** True when something accepts connections on `port`. */
function listening(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Starts tauri-driver with `home` as HOME; resolves once it answers. */
async function startDriver(home) {
  for (const port of [DRIVER_PORT, NATIVE_PORT]) {
    await waitFor(async () => !(await listening(port)), 5000, `port ${port} to be free`);
  }
  const env = {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
  };
  const args = ['--port', String(DRIVER_PORT), '--native-port', String(NATIVE_PORT)];
  const child = spawn(DRIVER, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // The last lines of the driver's and the app's output, shown when a scenario fails.
  const log = [];
  const keep = (chunk) => {
    log.push(...chunk.toString().split('\n').filter(Boolean));
    log.splice(0, log.length - 40);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM'); // the group: tauri-driver, WebKitWebDriver, the app
      } catch {}
      const done = await Promise.race([exited.then(() => true), sleep(3000)]);
      if (!done) try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    }
  };
  try {
    // Both ports first: tauri-driver prints a backtrace for each request it can't forward yet.
    await waitFor(
      async () =>
        child.exitCode === null &&
        (await listening(NATIVE_PORT)) &&
        (await listening(DRIVER_PORT)) &&
        (await fetch(`${DRIVER_URL}/status`)).ok,
      10000,
      `tauri-driver on port ${DRIVER_PORT}`,
    );
  } catch (error) {
    await stop();
    throw new Error(`${error.message}\n${log.join('\n')}`);
  }
  return { log, stop };
}

/**
 * Runs `fn(session)` on a new app with a fresh HOME. On failure saves a
 * screenshot and adds the driver's last output to the error.
 */
async function withApp(label, fn) {
  const home = await mkdtemp(join(tmpdir(), 'earshot-e2e-home-'));
  let driver;
  let session;
  try {
    driver = await startDriver(home);
    session = await Session.start(DRIVER_URL, BIN);
    return await fn(session);
  } catch (error) {
    if (session) await screenshot(session, `${label}-failed`).catch(() => {});
    if (driver) error.message += `\n--- last output of tauri-driver and the app:\n${driver.log.join('\n') || '(none)'}`;
    throw error;
  } finally {
    await session?.delete().catch(() => {});
    await driver?.stop();
    await rm(home, { recursive: true, force: true });
  }
}

async function screenshot(session, name) {
  if (!SHOTS) return;
  await sleep(300); // let WebKit paint what the DOM already holds
  await session.screenshot(join(SHOTS, `${name}.png`));
}

// ------------------------------------------------------------ ui steps

/** Fills and submits the log-in form. */
async function logIn(session, user, password = user.password) {
  const server = await waitFor(() => session.find(SEL.server), 15000, 'the log-in form');
  for (const [element, value] of [
    [server, SERVER],
    [await session.find(SEL.email), user.email],
    [await session.find(SEL.password), password],
  ]) {
    await element.clear();
    await element.sendKeys(value);
  }
  await (await session.find(SEL.submit)).click();
}

/**
 * The first `n` rendered rows, top to bottom (the current list is virtual:
 * rows are placed by style, so sort by position): call ids, or in legacy
 * mode what a row shows.
 */
function renderedKeys(session, n = FIRST_ROWS) {
  return session.execute(
    `const [selector, legacy, n] = arguments;
     const rows = [...document.querySelectorAll(selector)];
     rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
     return rows.slice(0, n).map((row) =>
       legacy
         ? row.querySelector('.icon')?.title + ' ' + row.querySelector('.duration')?.textContent.trim()
         : row.getAttribute('data-call-id'));`,
    [SEL.callRow, LEGACY, n],
  );
}

/** Waits for the history list; fails at once with the text of an error the ui shows instead. */
async function historyShown(session, user) {
  const found = await waitFor(
    async () => (await session.findAll(`${SEL.historyList}, ${SEL.alert}`))[0],
    15000,
    `the history list of ${user.name}`,
  );
  if ((await session.findAll(SEL.historyList)).length === 0) {
    throw new Error(`the ui shows an error instead of ${user.name}'s history: "${await found.getText()}"`);
  }
}

/** Waits until the first rendered rows equal `expected`; throws showing both. */
async function rowsMatch(session, expected, timeoutMs = 10000) {
  let got;
  const same = () => JSON.stringify(got) === JSON.stringify(expected);
  try {
    await waitFor(async () => ((got = await renderedKeys(session)), same()), timeoutMs, 'the history rows');
  } catch (error) {
    throw new Error(`history rows differ from the service's\n  expected ${JSON.stringify(expected)}\n  rendered ${JSON.stringify(got)}\n  (${error.message})`);
  }
}

/** Logs `user` in and waits for their history to equal the service's. */
async function logInAndMatch(session, user) {
  await logIn(session, user);
  await historyShown(session, user);
  await rowsMatch(session, expectedKeys(await serviceCalls(user)));
}

/** The first of `calls` matching `wanted` whose row is rendered (the list is virtual), if any. */
async function renderedCall(session, calls, wanted) {
  const rendered = new Set(await renderedKeys(session, 1000));
  return calls.find((call) => wanted(call) && rendered.has(String(call.id)));
}

/**
 * Opens the details of call `id` from the history list. The details of the
 * call shown before are marked first, so that only new ones count as loaded.
 */
async function openCall(session, id) {
  await session.execute(`document.querySelectorAll(arguments[0]).forEach((e) => e.setAttribute('data-e2e-old', ''))`, [SEL.trace]);
  const row = await waitFor(() => session.find(`${SEL.callRow}[data-call-id="${id}"]`), 10000, `row of call ${id}`);
  await row.click();
  await waitFor(() => session.find(`${SEL.trace}:not([data-e2e-old])`), 10000, `the details of call ${id}`);
}

/** Play and download buttons are shown exactly when the service allows them. */
async function checkButtons(session, call) {
  for (const [what, selector, allowed] of [
    ['play', SEL.play, call.can_play],
    ['download', SEL.download, call.can_download],
  ]) {
    const shown = (await session.findAll(selector)).length > 0;
    check(shown === allowed, `call ${call.id}: ${what} button ${shown ? 'shown' : 'missing'}, the service says can_${what}=${allowed}`);
  }
}

/** Seconds of `m:ss / m:ss` as [position, duration], or null. */
function parsePosition(text) {
  const m = /(\d+):(\d\d)\s*\/\s*(\d+):(\d\d)/.exec(text);
  return m && [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])];
}

// ------------------------------------------------------------ scenarios

const scenarios = [
  {
    name: 'login',
    legacy: true,
    async run() {
      await withApp('login-ada', async (session) => {
        await logIn(session, ADA, 'not-the-password');
        const alert = await waitFor(() => session.find(SEL.alert), 10000, 'an error after a wrong password');
        const text = await alert.getText();
        check(text.trim(), 'the error after a wrong password is empty');
        check((await session.findAll(SEL.historyList)).length === 0, 'a wrong password showed the history');
        await screenshot(session, 'login-wrong-password');
        console.log(`    wrong password: "${text}"`);
        await logInAndMatch(session, ADA);
        await screenshot(session, 'login-ada');
      });
      for (const user of [SAM, ADMIN]) {
        await withApp(`login-${user.name}`, async (session) => {
          await logInAndMatch(session, user);
          await screenshot(session, `login-${user.name}`);
          if (user === ADMIN) {
            await (await session.find(SEL.signOut)).click();
            await waitFor(() => session.find(SEL.server), 10000, 'the log-in form after signing out');
          }
        });
      }
    },
  },
  {
    name: 'visibility',
    async run() {
      // Ada's visibility is unset: she follows the company's agent_call_visibility.
      const admin = await tokenOf(ADMIN);
      const before = await api('/settings', { token: admin });
      const changed = { ...before, agent_call_visibility: before.agent_call_visibility === 'all' ? 'own_and_missed' : 'all' };
      await withApp('visibility', async (session) => {
        await logInAndMatch(session, ADA);
        const old = await renderedKeys(session);
        try {
          const start = performance.now();
          await api('/settings', { method: 'PUT', token: admin, body: changed });
          const expected = expectedKeys(await serviceCalls(ADA));
          check(JSON.stringify(expected) !== JSON.stringify(old), `agent_call_visibility=${changed.agent_call_visibility} does not change Ada's first ${FIRST_ROWS} calls`);
          let got;
          for (;;) {
            got = await renderedKeys(session);
            const ms = Math.round(performance.now() - start);
            if (JSON.stringify(got) === JSON.stringify(expected)) {
              console.log(`    history followed agent_call_visibility=${changed.agent_call_visibility} after ${ms} ms`);
              check(ms <= 1000, `the history changed after ${ms} ms, more than 1 s`);
              break;
            }
            if (ms > 5000) throw new Error(`the history did not change within 5 s\n  expected ${JSON.stringify(expected)}\n  rendered ${JSON.stringify(got)}`);
            await sleep(100);
          }
          await screenshot(session, 'visibility-after');
        } finally {
          await api('/settings', { method: 'PUT', token: admin, body: before });
        }
      });
    },
  },
  {
    name: 'play',
    async run() {
      await withApp('play', async (session) => {
        await logInAndMatch(session, SAM);
        const calls = await serviceCalls(SAM, 50);
        const playable = await renderedCall(session, calls, (call) => call.can_play);
        check(playable, 'none of the rendered calls may be played by Sam');
        const other = await renderedCall(session, calls, (call) => !call.can_play);
        if (other) {
          await openCall(session, other.id);
          await checkButtons(session, other);
        }
        await openCall(session, playable.id);
        await checkButtons(session, playable);
        await (await session.find(SEL.play)).click();
        const seen = [];
        try {
          await waitFor(async () => {
            const text = await (await session.find(SEL.position)).getText();
            if (seen.at(-1) !== text) seen.push(text);
            const position = parsePosition(text);
            return position && position[0] >= 2;
          }, 10000, 'the player position to reach 0:02');
        } catch (error) {
          const alerts = await Promise.all((await session.findAll(SEL.alert)).map((alert) => alert.getText()));
          throw new Error(`${error.message}; positions shown: ${seen.join(' → ') || 'none'}; errors shown: ${JSON.stringify(alerts)}`);
        }
        console.log(`    player position: ${seen.join(' → ')}`);
        await screenshot(session, 'play');
      });
    },
  },
  {
    name: 'download',
    async run() {
      const dir = await mkdtemp(join(tmpdir(), 'earshot-e2e-download-'));
      try {
        await withApp('download', async (session) => {
          await logInAndMatch(session, SAM);
          const call = await renderedCall(session, await serviceCalls(SAM, 50), (c) => c.can_download);
          check(call, 'none of the rendered calls may be downloaded by Sam');
          const file = join(dir, `call-${call.id}.wav`);
          await openCall(session, call.id);
          // The click may not return before the modal dialog closes: don't wait for it here.
          const click = (await session.find(SEL.download)).click().catch((error) => error);
          const { stdout } = await waitFor(
            () => run('xdotool', ['search', '--name', '^Save recording$']),
            10000,
            'the "Save recording" dialog',
          );
          const window = stdout.trim().split('\n')[0];
          await run('xdotool', ['windowfocus', '--sync', window]);
          await run('xdotool', ['key', '--clearmodifiers', 'ctrl+a']);
          await run('xdotool', ['type', '--delay', '20', file]);
          await run('xdotool', ['key', 'Return']);
          const clicked = await click;
          check(!(clicked instanceof Error), `clicking download: ${clicked?.message}`);
          // Done when the file exists and its size holds still for 300 ms.
          let size = -1;
          await waitFor(async () => {
            const now = (await stat(file)).size;
            const stable = now > 44 && now === size;
            size = now;
            return stable;
          }, 15000, `${file} to be written`, 300);
          const head = (await readFile(file)).subarray(0, 12);
          check(
            head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WAVE',
            `${file} is not a WAV file (starts with ${JSON.stringify(head.toString('latin1'))})`,
          );
          console.log(`    saved ${size} bytes of call ${call.id} to ${file}`);
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
];

// ------------------------------------------------------------ main

async function main() {
  const missing = [['EARSHOT_BIN', BIN], ['EARSHOT_SERVER', SERVER], ['DISPLAY (run inside xvfb-run)', process.env.DISPLAY]]
    .filter(([, value]) => !value)
    .map(([name]) => name);
  if (missing.length) {
    console.error(`e2e: missing ${missing.join(', ')}`);
    process.exit(2);
  }
  for (const [what, path] of [['EARSHOT_BIN', BIN], ['TAURI_DRIVER', DRIVER]]) {
    await access(path, constants.X_OK).catch(() => {
      console.error(`e2e: ${what}: ${path} is not an executable file`);
      process.exit(2);
    });
  }
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
  await api('/session', { method: 'POST', body: { email: ADA.email, password: ADA.password } }).catch((error) => {
    console.error(`e2e: the service at ${SERVER} does not log in the demo users: ${error.message}`);
    process.exit(2);
  });

  let passed = 0;
  let failed = 0;
  const skipped = [];
  for (const scenario of scenarios) {
    if (ONLY && !ONLY.includes(scenario.name)) continue;
    if (LEGACY && !scenario.legacy) {
      skipped.push(scenario.name);
      continue;
    }
    const start = performance.now();
    console.log(`e2e: ${scenario.name} …`);
    try {
      await scenario.run();
      passed++;
      console.log(`e2e: ${scenario.name} ok (${((performance.now() - start) / 1000).toFixed(1)} s)`);
    } catch (error) {
      failed++;
      console.log(`e2e: ${scenario.name} FAILED (${((performance.now() - start) / 1000).toFixed(1)} s): ${error.message}`);
    }
  }
  if (skipped.length) console.log(`e2e: skipped (they need the current ui): ${skipped.join(', ')}`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
