// End-to-end tests of the real desktop app `earshot` against a running
// `earshotd demo`, through tauri-driver (WebKitWebDriver) — no npm packages.
//
//   EARSHOT_BIN=target/debug/earshot EARSHOT_SERVER=http://127.0.0.1:8080 \
//     xvfb-run -a dbus-run-session -- keyctl session - node tests/e2e/run.mjs
//
// Environment:
//   EARSHOT_BIN      the app binary (required)
//   EARSHOT_SERVER   URL of a running `earshotd demo` (required)
//   E2E_SCREENSHOTS  directory for the documentation's screenshots (optional):
//                    login, login-error, history-agent, history-supervisor,
//                    history-admin, details, settings, analytics,
//                    admin-settings, admin-users, admin-flow,
//                    details-legal-hold and details-deleted (.png), each
//                    taken once the screen has settled, always in the light theme
//   TAURI_DRIVER     tauri-driver binary (default ~/.cargo/bin/tauri-driver)
//   E2E_ONLY         comma-separated scenario names to run (default: all)
//
// A failing scenario leaves a screenshot of the app in
// $TMPDIR/earshot-e2e-failures (never in E2E_SCREENSHOTS) and prints its path.
// The last line printed is always `e2e: N passed, M failed`.
//
// Each app session gets a fresh HOME: the app keeps its last log-in, cache
// and settings under $HOME/.local/share/app.earshot.desktop, and tauri-driver
// accepts no environment for the app in its capabilities (it only maps
// `application` and `args` to WebKitWebDriver). So the runner starts
// tauri-driver once per app session with HOME/XDG_* pointing at a new
// temporary directory; the app inherits them through WebKitWebDriver.
// tauri-driver answers ~40 ms after its start; the app itself takes 0.3-0.6 s
// to open a session. tauri-driver runs in its own process group, which is
// killed by its id at the end of the session (PID 1 here reaps no orphans).
//
// The app keeps its token in the OS keyring: run inside `keyctl session -`
// (kernel keyring) or with a Secret Service. Scenario `play` needs an audio
// output (the test script's private PulseAudio with a null sink); scenario
// `download` needs `xdotool` for the native save dialog. Scenario
// `visibility` and `admin` change the company's settings and put them back;
// `admin` plays a recording through the API when the audit log is empty, so
// that the audit screen has a row to show.

import { spawn, execFile } from 'node:child_process';
import { access, constants, mkdtemp, rm, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
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
/** `earshotd` and its SIP address, for a demo customer's call (`earshotd demo-call`). */
const SERVICE_BIN = process.env.EARSHOTD_BIN;
const SIP = process.env.EARSHOT_SIP;
const FAILURES = join(tmpdir(), 'earshot-e2e-failures');
const DRIVER = process.env.TAURI_DRIVER || join(homedir(), '.cargo/bin/tauri-driver');
const ONLY = process.env.E2E_ONLY?.split(',').map((name) => name.trim()).filter(Boolean);

const DAY_MS = 86_400_000;
/** The analytics periods the ui offers (days); the screen opens on 30. */
const PERIODS = [30, 7, 60];

/** Longest a change of rights may take to reach an open history before the scenario fails. */
const VISIBILITY_LIMIT_MS = 5000;

/**
 * The app context the ui asks for a user's history in, and so the one the
 * service is asked in (App.svelte): `calling` for agents, `dashboard` for
 * everyone else.
 */
const APP_CONTEXT = (user) => (user.role === 'agent' ? 'calling' : 'dashboard');

/** Demo log-ins (crates/service/src/demo.rs, PEOPLE). Ada follows the company defaults. */
const ADA = { name: 'ada', role: 'agent', email: 'ada@acme.demo', password: 'demo-ada' };
const SAM = { name: 'sam', role: 'supervisor', email: 'sam@acme.demo', password: 'demo-sam' };
const ADMIN = { name: 'admin', role: 'admin', email: 'admin@acme.demo', password: 'demo-admin' };

/** The ui contract (data-testid and form names in ui/src). */
const DETAILS = '[data-testid=call-details]';
const SEL = {
  server: 'input[name=server]',
  email: 'input[name=email]',
  password: 'input[name=password]',
  submit: 'button[type=submit]',
  alert: '[role=alert]',
  historyList: '[data-testid=history-list]',
  callRow: '[data-testid=call-row]',
  signOut: '[data-testid=sign-out]',
  navSettings: '[data-testid=nav-settings]',
  outputDevice: '[data-testid=output-device]',
  theme: (value) => `input[name=theme][value=${value}]`,
  navAnalytics: '[data-testid=nav-analytics]',
  navAdmin: '[data-testid=nav-admin]',
  analyticsPeriod: '[data-testid=analytics-period]',
  analyticsCalls: '[data-testid=analytics-calls]',
  adminTab: (tab) => `[data-testid=admin-tab-${tab}]`,
  companySettings: '[data-testid=company-settings]',
  setting: (name) => `[data-testid=company-settings] [name=${name}]`,
  users: '[data-testid=users]',
  userRow: '[data-testid=users] tbody tr',
  userForm: '[data-testid=user-form]',
  numberRow: '[data-testid=number-row]',
  flowEditor: '[data-testid=flow-editor]',
  /** The top-level steps of the open call flow. */
  flowSteps: '[data-testid=flow-editor] ol[aria-label="Call flow"] > li.step',
  contactForm: '[data-testid=contact-form]',
  audit: '[data-testid=audit]',
  filterDirection: '[data-testid=filter-direction]',
  /** The details of call `id`, once they are the ones open. */
  detailsOf: (id) => `${DETAILS}[data-call-id="${id}"]`,
  play: `${DETAILS} [data-testid=play]`,
  download: `${DETAILS} [data-testid=download]`,
  position: `${DETAILS} [data-testid=player-position]`,
  phoneStatus: '[data-testid=phone-status]',
  dialNumber: '[data-testid=dial-number]',
  dial: '[data-testid=dial]',
  callState: '[data-testid=call-state]',
  recordingState: '[data-testid=recording-state]',
  startRecording: '[data-testid=resume-recording]',
  pauseRecording: '[data-testid=pause-recording]',
  hangUp: '[data-testid=hang-up]',
  incoming: '[data-testid=incoming-call]',
  answer: '[data-testid=answer]',
  call: '[data-testid=call]',
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);
const ms = (start) => Math.round(performance.now() - start);
/** A detail line under the scenario's name (timings, what was seen). */
const note = (text) => console.log(`     ${text}`);
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
  if (!response.ok) {
    const error = new Error(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 300)}`);
    error.status = response.status;
    try {
      error.problem = JSON.parse(text);
    } catch {}
    throw error;
  }
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

/** The newest `limit` calls `user` may see with the service's `filters`, as the service sends them. */
async function serviceCalls(user, limit = FIRST_ROWS, filters = {}) {
  const query = new URLSearchParams({ app: APP_CONTEXT(user), ...filters, limit: String(limit) });
  const page = await api(`/calls?${query}`, { token: await tokenOf(user) });
  return page.calls;
}
const idsOf = (calls) => calls.map((call) => String(call.id));
/** An object as JSON with its keys sorted (WebDriver does not keep the order of keys). */
const sorted = (object) => JSON.stringify(Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b))));

/** How many calls `user` may see in analytics that started in the last `days` days, now. */
async function serviceCallCount(user, days) {
  const to = Date.now();
  const query = new URLSearchParams({ from: String(to - days * DAY_MS), to: String(to) });
  const summary = await api(`/analytics/summary?${query}`, { token: await tokenOf(user) });
  check(Number.isInteger(summary?.calls), `the analytics summary has no \`calls\`: ${JSON.stringify(summary).slice(0, 200)}`);
  return summary.calls;
}

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

/** Keeps the page's uncaught errors and rejections in `window.__e2eErrors`, for failure reports. */
const CATCH_PAGE_ERRORS = `
  if (!window.__e2eErrors) {
    window.__e2eErrors = [];
    const keep = (text) => window.__e2eErrors.push(String(text).slice(0, 300));
    addEventListener('error', (event) => keep(event.message + ' (' + event.filename + ':' + event.lineno + ')'));
    addEventListener('unhandledrejection', (event) => keep(event.reason?.message ?? JSON.stringify(event.reason)));
  }`;

/**
 * Runs `fn(session)` on a new app with a fresh HOME. On failure saves a
 * screenshot to FAILURES and adds its path, the page's uncaught errors and
 * the driver's last output to the error.
 */
async function withApp(label, fn, args = []) {
  const home = await mkdtemp(join(tmpdir(), 'earshot-e2e-home-'));
  let driver;
  let session;
  try {
    driver = await startDriver(home);
    session = await Session.start(DRIVER_URL, BIN, args);
    await session.execute(CATCH_PAGE_ERRORS).catch(() => {});
    return await fn(session);
  } catch (error) {
    if (session) {
      const file = join(FAILURES, `${label}-${new Date().toISOString().replace(/[:.]/g, '-')}.png`);
      try {
        await mkdir(FAILURES, { recursive: true });
        await session.screenshot(file);
        error.message += `\n     failure screenshot: ${file}`;
      } catch (shotError) {
        error.message += `\n     (no failure screenshot: ${shotError.message})`;
      }
      const pageErrors = await session.execute(`return window.__e2eErrors ?? null`).catch(() => null);
      if (pageErrors?.length) error.message += `\n     uncaught in the page: ${pageErrors.join('\n       ')}`;
    }
    if (driver) error.message += `\n--- last output of tauri-driver and the app:\n${driver.log.join('\n') || '(none)'}`;
    throw error;
  } finally {
    await session?.delete().catch(() => {});
    await driver?.stop();
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * Saves the documentation screenshot `name`.png to E2E_SCREENSHOTS (if set),
 * once the screen has settled: nothing loading (aria-busy, skeletons, the
 * phone still connecting), fonts
 * loaded, no finite animation or transition running, the mouse in the top
 * left corner and nothing focused (no hover, no blinking caret), and two
 * screenshots in a row alike. Screenshots are kept light:
 * a dark page fails the scenario.
 */
async function screenshot(session, name) {
  if (!SHOTS) return;
  // No hover left where the last click was, no focus ring, no caret.
  await session.moveMouse(0, 0);
  await session.execute(`document.activeElement?.blur?.()`);
  await waitFor(
    () =>
      session.execute(
        `return document.fonts.status === 'loaded'
           && !document.querySelector('[aria-busy=true], .skeleton')
           && !document.querySelector('[data-testid=phone-status]')?.textContent.includes('connecting')
           && document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)`,
      ),
    10000,
    `the screen to settle for ${name}.png`,
  );
  const dark = await session.execute(
    `return document.documentElement.dataset.theme === 'dark'
       || (document.documentElement.dataset.theme !== 'light' && matchMedia('(prefers-color-scheme: dark)').matches)`,
  );
  check(!dark, `${name}.png would be taken in the dark theme`);
  let previous = await session.cmd('GET', '/screenshot');
  let png;
  const deadline = performance.now() + 5000;
  for (;;) {
    await sleep(250);
    png = await session.cmd('GET', '/screenshot');
    if (png === previous) break;
    if (performance.now() > deadline) {
      note(`(${name}.png: the screen still changed after 5 s; saved the last picture)`);
      break;
    }
    previous = png;
  }
  await writeFile(join(SHOTS, `${name}.png`), Buffer.from(png, 'base64'));
}

// ------------------------------------------------------------ ui steps

/** Waits for the log-in form and fills in the fields given (server, email, password). */
async function fillLogIn(session, fields) {
  await waitFor(() => session.find(SEL.server), 15000, 'the log-in form');
  for (const [name, value] of Object.entries(fields)) {
    const element = await session.find(SEL[name]);
    await element.clear();
    await element.sendKeys(value);
  }
}

/** Fills and submits the log-in form. */
async function logIn(session, user, password = user.password) {
  await fillLogIn(session, { server: SERVER, email: user.email, password });
  await (await session.find(SEL.submit)).click();
}

/**
 * Call ids of the rendered rows, top to bottom (the list is virtual: rows
 * are placed by style, so sorted by position). The first `n`; with
 * `onScreen`, only rows wholly inside the list's viewport.
 */
function renderedIds(session, n = FIRST_ROWS, onScreen = false) {
  return session.execute(
    `const [rowSelector, listSelector, n, onScreen] = arguments;
     const list = document.querySelector(listSelector)?.getBoundingClientRect();
     let rows = [...document.querySelectorAll(rowSelector)].map((row) => [row, row.getBoundingClientRect()]);
     if (onScreen) rows = rows.filter(([, r]) => list && r.top >= list.top && r.bottom <= list.bottom);
     rows.sort((a, b) => a[1].top - b[1].top);
     return rows.slice(0, n).map(([row]) => row.getAttribute('data-call-id'));`,
    [SEL.callRow, SEL.historyList, n, onScreen],
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
    await waitFor(async () => ((got = await renderedIds(session)), same()), timeoutMs, 'the history rows');
  } catch (error) {
    throw new Error(`history rows differ from the service's\n  expected ${JSON.stringify(expected)}\n  rendered ${JSON.stringify(got)}\n  (${error.message})`);
  }
}

/** Waits for the phone panel to say it is ready (users with an extension). */
async function phoneReady(session) {
  return waitFor(async () => {
    const text = await (await session.find(SEL.phoneStatus)).getText();
    return text.includes('Phone ready') ? text : null;
  }, 20000, 'the phone to be ready');
}

/** Logs `user` in and waits for their history to equal the service's; notes how long it took. */
async function logInAndMatch(session, user) {
  await fillLogIn(session, { server: SERVER, email: user.email, password: user.password });
  const start = performance.now();
  await (await session.find(SEL.submit)).click();
  await historyShown(session, user);
  await rowsMatch(session, idsOf(await serviceCalls(user)));
  note(`${user.name}: history shown ${ms(start)} ms after signing in`);
}

/** The first of `calls` matching `wanted` whose row is wholly on screen, if any. */
async function callOnScreen(session, calls, wanted) {
  const shown = new Set(await renderedIds(session, 1000, true));
  return calls.find((call) => wanted(call) && shown.has(String(call.id)));
}

/**
 * The newest call of `user`'s (up to the service's page of 200) matching
 * `wanted`, its row on screen (scrolled into the middle of the list if it
 * was not): the demo's data differ from run to run, and the first screen
 * may hold no such call.
 */
async function scrollToCall(session, user, wanted, what) {
  const call = (await serviceCalls(user, 200)).find(wanted);
  check(call, `none of ${user.name}'s newest 200 calls ${what}`);
  // The list is virtual: scroll down until the row exists, then centre it.
  await waitFor(
    () =>
      session.execute(
        `const [list, row] = [document.querySelector(arguments[0]), document.querySelector(arguments[1])];
         if (!row) { list.scrollTop += list.clientHeight / 2; return false; }
         const onScreen = () => {
           const [l, r] = [list.getBoundingClientRect(), row.getBoundingClientRect()];
           return r.top >= l.top && r.bottom <= l.bottom;
         };
         if (!onScreen()) row.scrollIntoView({ block: 'center' });
         return onScreen();`,
        [SEL.historyList, `${SEL.callRow}[data-call-id="${call.id}"]`],
      ),
    15000,
    `the row of call ${call.id} on screen`,
  );
  return call;
}

/** Opens the details of call `id` from the history list and waits until they are loaded. */
async function openCall(session, id) {
  const row = await waitFor(() => session.find(`${SEL.callRow}[data-call-id="${id}"]`), 10000, `row of call ${id}`);
  await row.click();
  await waitFor(() => session.find(`${SEL.detailsOf(id)} [data-testid=trace]`), 10000, `the details of call ${id}`);
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

/** The first element matching `css` whose text is `text` (e.g. a button without a test id). */
async function findByText(session, css, text) {
  const index = await session.execute(
    `return [...document.querySelectorAll(arguments[0])].findIndex((e) => e.textContent.trim() === arguments[1])`,
    [css, text],
  );
  check(index >= 0, `no ${css} reads "${text}"`);
  return (await session.findAll(css))[index];
}

/** Signs `user` in, waits for their history, and checks the nav offers Admin exactly to admins. */
async function logInToNav(session, user) {
  await logIn(session, user);
  await historyShown(session, user);
  check((await session.findAll(SEL.navAnalytics)).length === 1, `${user.name} has no Analytics in the nav`);
  const admin = (await session.findAll(SEL.navAdmin)).length > 0;
  check(admin === (user.role === 'admin'), `${user.name} (${user.role}) ${admin ? 'has' : 'has no'} Admin in the nav`);
}

/**
 * What the analytics screen shows once loaded: `{ count }` (0 when it says
 * there are no calls) or `{ error }`; null while it loads or while the period
 * select is not yet at `days`.
 */
function analyticsShown(session, days) {
  return session.execute(
    `const [periodSelector, callsSelector, days] = arguments;
     const period = document.querySelector(periodSelector);
     const screen = period?.closest('section');
     if (!screen || period.value !== String(days) || screen.querySelector('[aria-busy=true]')) return null;
     const alert = screen.querySelector('[role=alert]');
     if (alert) return { error: alert.textContent.trim() };
     const calls = screen.querySelector(callsSelector);
     if (calls) return { count: calls.textContent.trim() };
     return [...screen.querySelectorAll('p')].some((p) => p.textContent.includes('No calls')) ? { count: '0' } : null;`,
    [SEL.analyticsPeriod, SEL.analyticsCalls, days],
  );
}

/**
 * Does `open()` (which makes the analytics screen load `days` days) and
 * checks the calls it shows against the service's count for the same
 * period. The ui takes its period's end from its own clock when it loads,
 * so the service is asked right before and right after: calls age out of
 * the window meanwhile, and the ui's count must lie between the two.
 */
async function analyticsMatch(session, user, days, open) {
  const before = await serviceCallCount(user, days);
  const start = performance.now();
  await open();
  const shown = await waitFor(() => analyticsShown(session, days), 15000, `${user.name}'s analytics of ${days} days`);
  const loaded = ms(start);
  const after = await serviceCallCount(user, days);
  check(!shown.error, `the analytics screen shows an error for ${days} days: "${shown.error}"`);
  check(/^\d+$/.test(shown.count), `the analytics screen shows ${JSON.stringify(shown.count)} calls for ${days} days, not a number`);
  const count = Number(shown.count);
  const [low, high] = [Math.min(before, after), Math.max(before, after)];
  check(
    count >= low && count <= high,
    `${user.name}'s analytics show ${count} calls in the last ${days} days; the service counts ${before === after ? before : `${before} before and ${after} after`}`,
  );
  note(`${user.name}, ${days} days: ${count} calls, as the service counts (${loaded} ms to load)`);
  return count;
}

/** Opens the admin screen's tab `tab` and waits for `selector` in it. */
async function adminTab(session, tab, selector) {
  await (await session.find(SEL.adminTab(tab))).click();
  return waitFor(() => session.find(selector), 10000, `${selector} in the admin tab "${tab}"`);
}

/** Scrolls the admin tab back to its top (WebDriver's clicks scroll what they click into view). */
function scrollTabToTop(session) {
  return session.execute(`document.querySelector('[role=tabpanel]')?.scrollTo(0, 0)`);
}

/** The rows of the users table: name, e-mail, role and the badge of "Sees". */
function userRows(session) {
  return session.execute(
    `return [...document.querySelectorAll(arguments[0])].map((row) => {
       const cells = row.querySelectorAll('td');
       return {
         name: cells[0]?.querySelector('strong')?.textContent.trim() ?? null,
         email: cells[0]?.querySelector('.muted')?.textContent.split('·')[0].trim() ?? null,
         role: cells[1]?.textContent.trim() ?? null,
         sees: cells[2]?.querySelector('.badge')?.textContent.trim() ?? null,
       };
     })`,
    [SEL.userRow],
  );
}

/** The value the company settings form shows for each of `settings`' keys. */
function settingsShown(session, settings) {
  return session.execute(
    `const [form, keys] = [document.querySelector(arguments[0]), arguments[1]];
     return Object.fromEntries(keys.map((key) => {
       const input = form?.querySelector('[name="' + key + '"]');
       return [key, !input ? null : input.type === 'checkbox' ? input.checked : input.value];
     }));`,
    [SEL.companySettings, Object.keys(settings)],
  );
}

// ------------------------------------------------------------ scenarios

const scenarios = [
  {
    name: 'login',
    async run() {
      await withApp('login-ada', async (session) => {
        await fillLogIn(session, { server: SERVER });
        await screenshot(session, 'login');
        await logIn(session, ADA, 'not-the-password');
        const alert = await waitFor(() => session.find(SEL.alert), 10000, 'an error after a wrong password');
        const text = await alert.getText();
        check(text.trim(), 'the error after a wrong password is empty');
        check((await session.findAll(SEL.historyList)).length === 0, 'a wrong password showed the history');
        note(`wrong password: "${text}"`);
        await screenshot(session, 'login-error');
        await logInAndMatch(session, ADA);
        await screenshot(session, 'history-agent');
      });
      for (const [user, shot] of [[SAM, 'history-supervisor'], [ADMIN, 'history-admin']]) {
        await withApp(`login-${user.name}`, async (session) => {
          await logInAndMatch(session, user);
          await screenshot(session, shot);
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
        const old = await renderedIds(session);
        try {
          const start = performance.now();
          await api('/settings', { method: 'PUT', token: admin, body: changed });
          const expected = idsOf(await serviceCalls(ADA));
          check(JSON.stringify(expected) !== JSON.stringify(old), `agent_call_visibility=${changed.agent_call_visibility} does not change Ada's first ${FIRST_ROWS} calls`);
          for (;;) {
            const got = await renderedIds(session);
            if (JSON.stringify(got) === JSON.stringify(expected)) {
              note(`visibility change reached the open history in ${ms(start)} ms`);
              break;
            }
            if (ms(start) > VISIBILITY_LIMIT_MS) {
              throw new Error(`the history did not follow agent_call_visibility=${changed.agent_call_visibility} within ${VISIBILITY_LIMIT_MS / 1000} s\n  expected ${JSON.stringify(expected)}\n  rendered ${JSON.stringify(got)}`);
            }
            await sleep(50);
          }
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
        const other = await callOnScreen(session, await serviceCalls(SAM, 50), (call) => !call.can_play);
        if (other) {
          await openCall(session, other.id);
          await checkButtons(session, other);
          note(`call ${other.id} (${other.has_recording ? 'recorded, not playable' : 'not recorded'}): no play button`);
        }
        const playable = await scrollToCall(session, SAM, (call) => call.can_play, 'may be played by Sam');
        await openCall(session, playable.id);
        await checkButtons(session, playable);
        const start = performance.now();
        await (await session.find(SEL.play)).click();
        const seen = [];
        try {
          await waitFor(async () => {
            const text = await (await session.find(SEL.position)).getText();
            if (seen.at(-1)?.split(' @ ')[0] !== text) seen.push(`${text} @ ${ms(start)} ms`);
            const position = parsePosition(text);
            return position && position[0] >= 2;
          }, 20000, 'the player position to reach 0:02');
        } catch (error) {
          const alerts = await Promise.all((await session.findAll(SEL.alert)).map((alert) => alert.getText()));
          throw new Error(`${error.message}; positions shown: ${seen.join(' → ') || 'none'}; errors shown: ${JSON.stringify(alerts)}`);
        }
        note(`call ${playable.id}: player reached 0:02 in ${ms(start)} ms (${seen.join(' → ')})`);
        // Paused, so that the screenshot holds still.
        await (await session.find(SEL.play)).click();
        await waitFor(
          async () => (await (await session.find(SEL.play)).getAttribute('aria-label')) === 'Play',
          5000,
          'the player to pause',
        );
        await screenshot(session, 'details');
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
          const call = await scrollToCall(session, SAM, (c) => c.can_download, 'may be downloaded by Sam');
          const file = join(dir, `call-${call.id}.wav`);
          await openCall(session, call.id);
          // The click may not return before the modal dialog closes: don't wait for it here.
          const click = (await session.find(SEL.download)).click().catch((error) => error);
          const start = performance.now();
          const { stdout } = await waitFor(
            () => run('xdotool', ['search', '--onlyvisible', '--name', '^Save recording$']),
            10000,
            'the "Save recording" dialog',
          );
          const window = stdout.trim().split('\n')[0];
          // Found as soon as it is mapped, it may not take the focus yet
          // (X answers BadMatch until it is viewable): try again shortly.
          await waitFor(
            () => run('xdotool', ['windowfocus', '--sync', window]).then(() => true),
            5000,
            'the "Save recording" dialog to take the focus',
          );
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
          note(`call ${call.id}: saved ${size} bytes of WAV through the save dialog in ${ms(start)} ms`);
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'contact',
    async run() {
      await withApp('contact', async (session) => {
        await logInAndMatch(session, SAM);
        const call = await scrollToCall(session, SAM, (c) => c.contact !== null, 'has a known contact');
        await openCall(session, call.id);
        const link = await session.find(`${SEL.detailsOf(call.id)} button.link`);
        const name = await link.getText();
        const start = performance.now();
        await link.click();
        const expected = idsOf(await serviceCalls(SAM, 50, { contact: String(call.contact) }));
        await rowsMatch(session, expected.slice(0, FIRST_ROWS));
        const chip = await (await session.find('.chip')).getText();
        check(chip.includes(name), `the filter chip says ${JSON.stringify(chip)}, not the contact ${JSON.stringify(name)}`);
        note(`${name}: ${expected.length} calls, the contact's log shown in ${ms(start)} ms`);
        await screenshot(session, 'contact-log');
      });
    },
  },
  {
    name: 'settings',
    async run() {
      await withApp('settings', async (session) => {
        await logIn(session, SAM);
        await historyShown(session, SAM);
        await (await session.find(SEL.navSettings)).click();
        await waitFor(() => session.find(SEL.outputDevice), 10000, 'the output device select');
        const options = await session.execute(
          `return [...document.querySelector(arguments[0]).options].map((option) => option.textContent.trim())`,
          [SEL.outputDevice],
        );
        check(options.includes('System default'), `the output devices offer no "System default": ${JSON.stringify(options)}`);
        note(`output devices: ${options.join(', ')}`);
        const light = await session.execute(`return getComputedStyle(document.documentElement).backgroundColor`);
        await screenshot(session, 'settings');
        await (await session.find(SEL.theme('dark'))).click();
        await waitFor(
          () => session.execute(`return document.documentElement.dataset.theme === 'dark'`),
          5000,
          "document.documentElement.dataset.theme === 'dark' after choosing the dark theme",
        );
        const dark = await session.execute(`return getComputedStyle(document.documentElement).backgroundColor`);
        check(dark !== light, `the dark theme left the page's background at ${light}`);
        note(`theme: background ${light} → ${dark}`);
      });
    },
  },
  {
    name: 'filters',
    async run() {
      await withApp('filters', async (session) => {
        await logInAndMatch(session, SAM);
        const all = await renderedIds(session);
        const inbound = idsOf(await serviceCalls(SAM, 50, { direction: 'inbound' }));
        check(
          JSON.stringify(inbound.slice(0, FIRST_ROWS)) !== JSON.stringify(all),
          `Sam's first ${FIRST_ROWS} calls are all inbound: the filter would change nothing`,
        );
        const start = performance.now();
        await (await session.find(`${SEL.filterDirection} option[value=inbound]`)).click();
        const value = await session.execute(`return document.querySelector(arguments[0]).value`, [SEL.filterDirection]);
        check(value === 'inbound', `clicking the "Inbound" option left the direction filter at ${JSON.stringify(value)}`);
        await rowsMatch(session, inbound.slice(0, FIRST_ROWS));
        note(`inbound filter reached the list in ${ms(start)} ms`);
        // Every rendered row, not only the first ones, in the service's order.
        const rendered = await renderedIds(session, 1000);
        check(
          rendered.length <= inbound.length && JSON.stringify(rendered) === JSON.stringify(inbound.slice(0, rendered.length)),
          `the rendered rows are not the service's inbound calls in order\n  expected ${JSON.stringify(inbound.slice(0, rendered.length))}\n  rendered ${JSON.stringify(rendered)}`,
        );
        note(`${rendered.length} rendered rows, all inbound, in the service's order`);
      });
    },
  },
  {
    name: 'analytics',
    async run() {
      for (const user of [SAM, ADA]) {
        await withApp(`analytics-${user.name}`, async (session) => {
          await logInToNav(session, user);
          const nav = await session.find(SEL.navAnalytics);
          await analyticsMatch(session, user, PERIODS[0], () => nav.click());
          if (user === SAM) await screenshot(session, 'analytics');
          for (const days of PERIODS.slice(1)) {
            await analyticsMatch(session, user, days, async () =>
              (await session.find(`${SEL.analyticsPeriod} option[value="${days}"]`)).click(),
            );
          }
        });
      }
    },
  },
  {
    name: 'admin',
    async run() {
      const token = await tokenOf(ADMIN);
      await withApp('admin', async (session) => {
        await logInToNav(session, ADMIN);
        await (await session.find(SEL.navAdmin)).click();

        // Company settings: the form shows the service's; a change saved there reaches the service.
        await waitFor(() => session.find(SEL.setting('record_internal')), 10000, 'the company settings form');
        const before = await api('/settings', { token });
        const shown = await settingsShown(session, before);
        check(
          sorted(shown) === sorted(before),
          `the company settings form differs from the service's\n  service ${sorted(before)}\n  form    ${sorted(shown)}`,
        );
        await screenshot(session, 'admin-settings');
        const expected = { ...before, record_internal: !before.record_internal };
        try {
          await (await session.find(SEL.setting('record_internal'))).click();
          const toggled = (await settingsShown(session, before)).record_internal;
          check(toggled === expected.record_internal, `clicking record_internal left it at ${toggled}`);
          const submit = await session.find(`${SEL.companySettings} button[type=submit]`);
          const label = (await submit.getText()).trim();
          check(label === 'Save settings', `the settings form's submit button reads "${label}", not "Save settings"`);
          const start = performance.now();
          await submit.click();
          let now;
          await waitFor(
            async () => ((now = await api('/settings', { token })), now.record_internal === expected.record_internal),
            10000,
            `GET /settings to have record_internal=${expected.record_internal}`,
          );
          check(
            sorted(now) === sorted(expected),
            `saving record_internal changed other settings\n  expected ${sorted(expected)}\n  service  ${sorted(now)}`,
          );
          // Read again after saving: the form shows the saved value and has nothing left to save.
          await waitFor(
            async () =>
              sorted(await settingsShown(session, before)) === sorted(expected) &&
              (await session.execute(`return document.querySelector(arguments[0]).disabled`, [`${SEL.companySettings} button[type=submit]`])),
            10000,
            'the form to show the saved settings',
          );
          note(`record_internal ${before.record_internal} → ${expected.record_internal}: saved in ${ms(start)} ms`);
          // The "saved" note goes after 2 s; not in the screenshots to come.
          await waitFor(() => session.execute(`return !document.querySelector('.content [role=status]')`), 10000, 'the "saved" note to go');
        } finally {
          await api('/settings', { method: 'PUT', token, body: before });
        }

        // Users: every user, with where their "Sees" comes from (D1).
        const users = await api('/users', { token });
        await adminTab(session, 'users', SEL.users);
        const rows = await userRows(session);
        const names = (list) => JSON.stringify(list.map((user) => user.name).sort());
        check(names(rows) === names(users), `the users table lists ${names(rows)}; the service has ${names(users)}`);
        const unset = users.filter((user) => user.settings.call_visibility === null && user.role !== 'admin');
        const badges = { agent: 'company default', supervisor: 'not configured', analyst: 'not configured' };
        for (const user of unset) {
          const row = rows.find((r) => r.email === user.email);
          check(row, `no row of the users table shows ${user.email}`);
          check(
            row.sees === badges[user.role],
            `${user.name} (${user.role} without a call_visibility of their own): "Sees" reads "${row.sees}", not "${badges[user.role]}"`,
          );
        }
        const unconfigured = unset.find((user) => user.role !== 'agent');
        check(unconfigured, 'the demo has no supervisor or analyst without a call_visibility: nothing shows "not configured"');
        check(unset.some((user) => user.role === 'agent'), 'the demo has no agent without a call_visibility: nothing shows "company default"');
        note(`${rows.length} users; "not configured": ${unset.filter((u) => u.role !== 'agent').map((u) => u.name).join(', ')}; "company default": ${unset.filter((u) => u.role === 'agent').map((u) => u.name).join(', ')}`);
        const index = rows.findIndex((r) => r.email === unconfigured.email);
        // A row's first cell: WebKitWebDriver finds table rows themselves not interactable.
        await (await session.find(`${SEL.userRow}:nth-child(${index + 1}) > td`)).click();
        const title = await waitFor(() => session.find(`${SEL.userForm} h2`), 10000, `the user form of ${unconfigured.name}`);
        check((await title.getText()).trim() === unconfigured.name, `the user form opened on "${await title.getText()}", not ${unconfigured.name}`);
        await scrollTabToTop(session);
        await screenshot(session, 'admin-users');

        // Audit log: what play and download wrote (earlier scenarios, or a play through the API here).
        let entries = await api('/audit?limit=100', { token });
        if (!entries.length) {
          const call = (await serviceCalls(ADMIN, 200)).find((c) => c.can_play && c.recording);
          check(call, "none of the admin's newest 200 calls may be played");
          const response = await fetch(`${SERVER}/api/v1/recordings/${call.recording.id}/audio?app=dashboard`, {
            headers: { authorization: `Bearer ${token}` },
          });
          await response.arrayBuffer();
          check(response.ok, `GET /recordings/${call.recording.id}/audio: HTTP ${response.status}`);
          entries = await api('/audit?limit=100', { token });
          check(entries.length > 0, `playing recording ${call.recording.id} through the API wrote no audit entry`);
        }
        await adminTab(session, 'audit', SEL.audit);
        let audit;
        await waitFor(
          async () =>
            (audit = await session.execute(
              `return [...document.querySelectorAll(arguments[0] + ' tbody tr')].filter((row) => !row.querySelector('td[colspan]'))
                 .map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent.trim()))`,
              [SEL.audit],
            )).length === entries.length,
          10000,
          `the audit table to have the service's ${entries.length} rows`,
        );
        const [newest] = entries;
        check(
          // The call is named by its direction and other party, with its number.
          audit[0][3].endsWith(`#${newest.call}`) &&
            audit[0][3].startsWith(newest.call_summary.direction) &&
            (newest.call_summary.external_number === null ||
              audit[0][3].includes(newest.call_summary.external_number)) &&
            audit[0][4] === `#${newest.recording}`,
          `the audit table's first row ${JSON.stringify(audit[0])} is not the service's newest entry ${JSON.stringify(newest)}`,
        );
        note(`audit: ${audit.length} rows, newest ${JSON.stringify(audit[0].slice(0, 5))}`);
        await scrollTabToTop(session);
        await screenshot(session, 'admin-audit');

        // Groups: the demo company's, each with its members.
        const groups = await api('/groups', { token });
        await adminTab(session, 'groups', '[role=tabpanel] table tbody tr');
        const groupRows = await session.findAll('[role=tabpanel] table tbody tr');
        check(groupRows.length === groups.length, `the groups table has ${groupRows.length} rows; the service has ${groups.length} groups`);
        await screenshot(session, 'admin-groups');

        // Numbers: the first one's call flow, step by step.
        const numbers = await api('/numbers', { token });
        check(numbers.length > 0, 'the demo company has no numbers');
        await adminTab(session, 'numbers', SEL.numberRow);
        const numberRows = await session.findAll(SEL.numberRow);
        check(numberRows.length === numbers.length, `the numbers table has ${numberRows.length} rows; the service has ${numbers.length} numbers`);
        await (await session.find(`${SEL.numberRow} > td`)).click();
        await waitFor(() => session.find(SEL.flowEditor), 10000, 'the call flow editor');
        const [name, steps] = await session.execute(
          `return [document.querySelector(arguments[0] + ' input')?.value, document.querySelectorAll(arguments[1]).length]`,
          [SEL.flowEditor, SEL.flowSteps],
        );
        const [first] = numbers;
        check(name === first.name, `the flow editor opened on "${name}", not the first number "${first.name}"`);
        check(steps === first.flow.length, `the flow editor shows ${steps} steps for ${first.name}; the service has ${first.flow.length}`);
        note(`${first.name}: ${steps} steps (${first.flow.map((step) => step.type).join(' → ')})`);
        await scrollTabToTop(session);
        await screenshot(session, 'admin-flow');
      });
    },
  },
  {
    // The app is a phone: Ada dials a demo customer (the demo carrier, the
    // demo service's trunk), starts, pauses and resumes the recording from
    // the phone panel, hangs up, and finds the call with its paused span at
    // the top of her history, and plays it. Needs `earshotd demo --sip`.
    name: 'phone',
    async run() {
      await withApp('phone', async (session) => {
        await logIn(session, ADA);
        await historyShown(session, ADA);
        note((await phoneReady(session)).trim());
        const before = (await serviceCalls(ADA, 1))[0]?.id;
        await (await session.find(SEL.dialNumber)).sendKeys('+44 7700 900123');
        const dialled = performance.now();
        await (await session.find(SEL.dial)).click();
        const seen = [];
        const recording = async (want) =>
          waitFor(async () => {
            const states = await session.findAll(SEL.recordingState);
            const text = states.length ? (await states[0].getText()).trim() : (await (await session.find(SEL.callState)).getText()).trim();
            if (seen.at(-1) !== text) seen.push(text);
            return text === want;
          }, 20000, `"${want}" on the call (seen: ${seen.join(' → ')})`);
        await recording('Not recorded');
        note(`answered ${ms(dialled)} ms after dialling: ${seen.join(' → ')}`);
        await screenshot(session, 'phone-call');
        // Outbound calls are not recorded in the demo: the agent starts, pauses and resumes it.
        await (await session.find(SEL.startRecording)).click();
        await recording('Recording');
        await sleep(1500);
        await (await session.find(SEL.pauseRecording)).click();
        await recording('Recording paused');
        await sleep(1500);
        await (await session.find(SEL.startRecording)).click();
        await recording('Recording');
        await sleep(1000);
        await (await session.find(SEL.hangUp)).click();
        const hungUp = performance.now();
        const call = await waitFor(async () => {
          const newest = (await serviceCalls(ADA, 1))[0];
          return newest && newest.id !== before ? newest : null;
        }, 10000, 'the call in the service');
        await rowsMatch(session, [String(call.id), ...idsOf(await serviceCalls(ADA, FIRST_ROWS)).slice(1)], 5000);
        note(`call ${call.id} at the top of the history ${ms(hungUp)} ms after hanging up`);
        const details = await api(`/calls/${call.id}?app=calling`, { token: await tokenOf(ADA) });
        const spans = details.recording?.paused_spans ?? [];
        check(details.direction === 'outbound' && details.external_number === '+447700900123', `the call: ${JSON.stringify(details).slice(0, 300)}`);
        check(spans.length === 1, `one paused span: ${JSON.stringify(details.recording)}`);
        check(details.recording.duration_ms >= 3000, `the recording: ${JSON.stringify(details.recording)}`);
        note(`recorded ${details.recording.duration_ms} ms, paused ${spans[0].start_ms}–${spans[0].end_ms} ms`);
        await openCall(session, call.id);
        await (await session.find(SEL.play)).click();
        await waitFor(async () => {
          const position = parsePosition(await (await session.find(SEL.position)).getText());
          return position && position[0] >= 1;
        }, 20000, 'the recording to play');

        // A demo customer calls Sales direct, whose flow rings Sales: Ada's app.
        const customer = spawn(SERVICE_BIN, ['demo-call', '+442071230001', '--sip', SIP], { stdio: 'ignore' });
        try {
          const called = performance.now();
          const banner = await waitFor(() => session.find(SEL.incoming), 30000, 'the incoming-call banner');
          const caller = (await banner.getText()).replace(/\s+/g, ' ').trim();
          check(caller.includes('+447700900123') || caller.includes('is calling you'), `the banner: ${caller}`);
          note(`the banner ${ms(called)} ms after the customer dialled: ${caller}`);
          await screenshot(session, 'phone-answer-banner');
          await (await session.find(SEL.answer)).click();
          seen.length = 0;
          // Inbound calls are recorded in the demo; Ada pauses and resumes.
          await recording('Recording');
          note(`answered from the banner: ${seen.join(' → ')}`);
          await (await session.find(SEL.pauseRecording)).click();
          await recording('Recording paused');
          await sleep(1000);
          await (await session.find(SEL.startRecording)).click();
          await recording('Recording');
          await screenshot(session, 'phone-answered');
          await (await session.find(SEL.hangUp)).click();
          const inbound = await waitFor(async () => {
            const newest = (await serviceCalls(ADA, 1))[0];
            return newest && newest.id !== call.id && newest.direction === 'inbound' ? newest : null;
          }, 10000, 'the inbound call in the service');
          const answered = await api(`/calls/${inbound.id}?app=calling`, { token: await tokenOf(ADA) });
          check(answered.external_number === '+447700900123', `the customer's number: ${JSON.stringify(answered).slice(0, 300)}`);
          check((answered.recording?.paused_spans ?? []).length === 1, `one paused span: ${JSON.stringify(answered.recording)}`);
          note(`call ${inbound.id}: inbound from ${answered.external_number}, recorded with one paused span`);
        } finally {
          customer.kill();
        }
      });
    },
  },
  {
    // The desktop starts `earshot tel:…` for a link clicked anywhere: the
    // number waits in the dial pad (through the log-in), never dialled unasked.
    name: 'link',
    async run() {
      await withApp('link', async (session) => {
        await logIn(session, ADA);
        await phoneReady(session);
        const typed = await waitFor(async () => {
          const value = await session.execute(`return document.querySelector('[data-testid=dial-number]')?.value ?? ''`);
          return value ? value : null;
        }, 10000, 'the link\'s number in the dial pad');
        check(typed === '+442071234567', `the dial pad holds "${typed}"`);
        check((await session.findAll(SEL.call)).length === 0, 'a link dialled by itself');
        note(`tel:+44 20 7123 4567 → the dial pad: ${typed}`);
      }, ['tel:+44 20 7123 4567']);
    },
  },
  {
    name: 'refusal',
    async run() {
      const token = await tokenOf(ADMIN);
      const contact = { name: 'E2E refused contact', numbers: ['not a number'] };
      await withApp('refusal', async (session) => {
        await logInToNav(session, ADMIN);
        await (await session.find(SEL.navAdmin)).click();
        await waitFor(() => session.find(SEL.adminTab('contacts')), 10000, 'the admin tabs');
        await (await session.find(SEL.adminTab('contacts'))).click();
        const create = await waitFor(() => findByText(session, 'button', 'New contact'), 10000, 'the "New contact" button');
        const before = await api('/contacts', { token });
        if (before.length) {
          await waitFor(() => session.find('[role=tabpanel] table tbody tr'), 10000, 'the contacts table');
          await screenshot(session, 'admin-contacts');
        }
        await create.click();
        await waitFor(() => session.find(SEL.contactForm), 10000, 'the contact form');
        await (await session.find(`${SEL.contactForm} input`)).sendKeys(contact.name);
        await (await session.find(`${SEL.contactForm} textarea`)).sendKeys(contact.numbers[0]);
        await (await session.find(`${SEL.contactForm} button[type=submit]`)).click();
        const alert = await waitFor(() => session.find(`${SEL.contactForm} [role=alert]`), 10000, 'the refusal in the contact form');
        const text = (await alert.getText()).trim();
        const after = await api('/contacts', { token });
        check(JSON.stringify(after) === JSON.stringify(before), `the refused contact changed GET /contacts (${before.length} → ${after.length} contacts)`);
        // The service's own words for the same contact.
        let refusal;
        try {
          const created = await api('/contacts', { method: 'POST', token, body: contact });
          if (created?.id) await api(`/contacts/${created.id}`, { method: 'DELETE', token });
          throw new Error(`the service accepted a contact numbered ${JSON.stringify(contact.numbers[0])}`);
        } catch (error) {
          if (!error.problem) throw error;
          refusal = error.problem;
        }
        check(refusal.detail && text.includes(refusal.detail), `the contact form says "${text}"; the service says "${refusal.detail}"`);
        note(`refused (HTTP ${refusal.status}): "${text}"; ${after.length} contacts, unchanged`);
      });
    },
  },
  {
    // Last: it deletes recordings of the demo for good. An admin places a
    // legal hold from a call's details, a contact's recordings are deleted
    // on request, and the app shows the deleted one as deleted (no player,
    // no error) and the held one kept.
    name: 'retention',
    async run() {
      const token = await tokenOf(ADMIN);
      const calls = (await serviceCalls(ADMIN, 200)).filter((c) => c.contact && c.recording && !c.recording.deleted);
      const byContact = new Map();
      for (const call of calls) byContact.set(call.contact, [...(byContact.get(call.contact) ?? []), call]);
      const pair = [...byContact.values()].find((list) => list.length >= 2);
      check(pair, `no contact of the demo has two calls with a recording among the admin's newest 200`);
      const [held, erased] = pair;
      await withApp('retention', async (session) => {
        await logInAndMatch(session, ADMIN);
        await scrollToCall(session, ADMIN, (c) => c.id === held.id, `is call ${held.id}`);
        await openCall(session, held.id);
        await (await session.find(`${DETAILS} [data-testid=legal-hold-toggle]`)).click();
        const holdText = await waitFor(async () => {
          const text = await (await session.find(`${DETAILS} [data-testid=legal-hold]`)).getText();
          return text.includes('On legal hold since') ? text : null;
        }, 10000, 'the legal hold shown');
        const afterHold = await api(`/calls/${held.id}`, { token });
        check(afterHold.legal_hold?.by, `the service has no hold on call ${held.id}: ${JSON.stringify(afterHold.legal_hold)}`);
        const result = await api(`/contacts/${held.contact}/recordings`, { method: 'DELETE', token });
        check(result.held_calls.includes(held.id), `the held call was not kept: ${JSON.stringify(result)}`);
        check(result.deleted >= 1, `nothing deleted: ${JSON.stringify(result)}`);
        await screenshot(session, 'details-legal-hold');
        await scrollToCall(session, ADMIN, (c) => c.id === erased.id, `is call ${erased.id}`);
        await openCall(session, erased.id);
        const deletedText = await waitFor(async () => {
          const shown = await session.findAll(`${SEL.detailsOf(erased.id)} [data-testid=recording-deleted]`);
          return shown.length ? shown[0].getText() : null;
        }, 10000, `call ${erased.id}'s recording shown deleted`);
        check(/Deleted on \d{4}-\d\d-\d\d by .+, on request\./.test(deletedText), `the app says "${deletedText}"`);
        check((await session.findAll(SEL.play)).length === 0, 'a player for a deleted recording');
        check((await session.findAll(`${DETAILS} ${SEL.alert}`)).length === 0, 'an error for a deleted recording');
        await screenshot(session, 'details-deleted');
        note(`call ${held.id}: "${holdText.split('\n')[0]}"; call ${erased.id}: "${deletedText}"; ${result.deleted} deleted`);
        // The hold lifted again, from the app (the list back at its top first: it scrolls down to a row).
        await session.execute(`document.querySelector(arguments[0]).scrollTop = 0`, [SEL.historyList]);
        await scrollToCall(session, ADMIN, (c) => c.id === held.id, `is call ${held.id}`);
        await openCall(session, held.id);
        await (await session.find(`${DETAILS} [data-testid=legal-hold-toggle]`)).click();
        await waitFor(async () => !(await api(`/calls/${held.id}`, { token })).legal_hold, 10000, 'the hold lifted');
      });
    },
  },
];

// ------------------------------------------------------------ main

/** Checks what the run needs; returns a reason it cannot run, or null. */
async function setupProblem() {
  const missing = [['EARSHOT_BIN', BIN], ['EARSHOT_SERVER', SERVER], ['EARSHOTD_BIN', SERVICE_BIN], ['EARSHOT_SIP', SIP], ['DISPLAY (run inside xvfb-run)', process.env.DISPLAY]]
    .filter(([, value]) => !value)
    .map(([name]) => name);
  if (missing.length) return `missing ${missing.join(', ')}`;
  for (const [what, path] of [['EARSHOT_BIN', BIN], ['EARSHOTD_BIN', SERVICE_BIN], ['TAURI_DRIVER', DRIVER]]) {
    try {
      await access(path, constants.X_OK);
    } catch {
      return `${what}: ${path} is not an executable file`;
    }
  }
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
  try {
    await api('/session', { method: 'POST', body: { email: ADA.email, password: ADA.password } });
  } catch (error) {
    return `the service at ${SERVER} does not log in the demo users: ${error.message}`;
  }
  return null;
}

async function main() {
  const unknown = (ONLY ?? []).filter((name) => !scenarios.some((scenario) => scenario.name === name));
  const chosen = scenarios.filter((scenario) => !ONLY || ONLY.includes(scenario.name));
  let passed = 0;
  let failed = 0;
  try {
    const problem = unknown.length
      ? `E2E_ONLY names no scenario ${unknown.join(', ')} (there are ${scenarios.map((s) => s.name).join(', ')})`
      : await setupProblem();
    if (problem) {
      console.log(`e2e: ${problem}; no scenario ran`);
      failed = Math.max(1, chosen.length);
      return 2;
    }
    for (const scenario of chosen) {
      const start = performance.now();
      console.log(`e2e: ${scenario.name} …`);
      try {
        await scenario.run();
        passed++;
        console.log(`e2e: ${scenario.name} ok (${(ms(start) / 1000).toFixed(1)} s)`);
      } catch (error) {
        failed++;
        console.log(`e2e: ${scenario.name} FAILED (${(ms(start) / 1000).toFixed(1)} s): ${error.message}`);
      }
    }
    if (SHOTS && failed === 0) console.log(`e2e: screenshots in ${SHOTS}`);
    return failed ? 1 : 0;
  } catch (error) {
    console.log(`e2e: the runner broke: ${error.stack ?? error}`);
    failed = Math.max(1, chosen.length - passed);
    return 1;
  } finally {
    console.log(`e2e: ${passed} passed, ${failed} failed`);
  }
}

process.exit(await main());
