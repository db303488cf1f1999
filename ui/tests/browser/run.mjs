// Browser tests: the built ui (dist/) in Debian's Chromium through
// playwright-core, against the mock backend it falls back to outside Tauri.
// They check what a user sees and does; the real app is tested end to end
// through tauri-driver (tests/e2e). Also prints the history's scroll frame
// times with 100,000 calls (measured, never asserted).
//
//   npm run build && node tests/browser/run.mjs

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const dist = new URL('../../dist/', import.meta.url).pathname;
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const server = createServer(async (req, res) => {
  const path = normalize(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
  try {
    const body = await readFile(join(dist, path));
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
let passed = 0;
let failed = 0;

async function test(name, body) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  try {
    await body(page);
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(error.stack ?? error).split('\n').slice(0, 4).join('\n     ')}`);
  } finally {
    await page.close();
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function logIn(page, email, password) {
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

const ids = (page) => page.$$eval('[data-testid=call-row]', (rows) => rows.map((r) => Number(r.dataset.callId)));

await test('a wrong password is refused in words; the right one opens the history', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'nope');
  const alert = await page.waitForSelector('[role=alert]');
  check((await alert.textContent()).includes('password is wrong'), 'the refusal is shown');
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.waitForSelector('[data-testid=call-row]');
  const shown = await ids(page);
  check(shown[0] === 40 && shown.every((id, i) => i === 0 || id < shown[i - 1]), `newest first: ${shown}`);
});

await test('filters narrow the list; clearing them brings it back', async (page) => {
  await page.goto(base);
  await logIn(page, 'sam@acme.demo', 'demo-sam');
  await page.waitForSelector('[data-testid=call-row]');
  const all = (await ids(page)).length;
  await page.selectOption('[data-testid=filter-direction]', 'outbound');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('[data-testid=call-row] .icon')].every((i) => i.textContent === '↗'),
  );
  check((await ids(page)).length < all, 'fewer calls');
  await page.click('text=Clear filters');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=call-row]').length === n, all);
});

await test('a call opens with its trace; play moves the position; Escape closes it', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.click('[data-testid=call-row][data-call-id="40"]');
  await page.waitForSelector('[data-testid=trace] li');
  await page.click('[data-testid=play]');
  await page.waitForFunction(
    () => !document.querySelector('[data-testid=player-position]').textContent.startsWith('0:00'),
  );
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-testid=call-details]', { state: 'detached' });
});

await test('100,000 calls scroll with only the visible rows in the page', async (page) => {
  await page.goto(`${base}?calls=100000`);
  await logIn(page, 'sam@acme.demo', 'demo-sam');
  await page.waitForSelector('[data-testid=call-row]');
  // Two figures per frame: the interval between animation frames (bounded
  // below by the 60 Hz display, so 16.7 ms is a full frame rate), and the
  // work of the frame itself: the scroll handler, the list's update (its
  // microtasks, flushed by one task hop) and a forced style and layout.
  const frames = await page.evaluate(async () => {
    const list = document.querySelector('[data-testid=history-list]');
    const hop = () => new Promise((ok) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = ok;
      channel.port2.postMessage(null);
    });
    const intervals = [];
    const work = [];
    let last = performance.now();
    for (let i = 0; i < 240; i += 1) {
      const start = performance.now();
      list.scrollTop += 400;
      list.dispatchEvent(new Event('scroll'));
      await hop();
      void list.querySelector('[data-testid=call-row]:last-child')?.getBoundingClientRect();
      work.push(performance.now() - start);
      await new Promise((ok) => requestAnimationFrame(ok));
      const now = performance.now();
      intervals.push(now - last);
      last = now;
    }
    return { intervals, work, rows: document.querySelectorAll('[data-testid=call-row]').length };
  });
  check(frames.rows < 80, `only visible rows are rendered: ${frames.rows}`);
  const figures = (list) => {
    const sorted = [...list].sort((a, b) => a - b);
    const p = (q) => sorted[Math.floor(q * (sorted.length - 1))].toFixed(1);
    return `median ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${p(1)} ms`;
  };
  const full = frames.intervals.filter((t) => t < 17.5).length;
  console.log(`     scroll with 100,000 calls: frame interval ${figures(frames.intervals)} (${full}/240 frames at 60 Hz)`);
  console.log(`     scroll with 100,000 calls: work per frame ${figures(frames.work)}`);
});

await test('the theme setting switches to dark', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.click('[data-testid=nav-settings]');
  await page.check('input[value=dark]');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
});

// The phone panel, in each state a user meets; EARSHOT_SCREENSHOTS=dir
// keeps a picture of each (docs/screenshots/phone-*.png).
const shots = process.env.EARSHOT_SCREENSHOTS;
const shoot = async (page, name) => {
  if (shots) await page.screenshot({ path: join(shots, `phone-${name}.png`) });
};

await test('an agent dials, talks, pauses the recording, and takes a second call', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.waitForSelector('[data-testid=phone-status]');
  check((await page.textContent('[data-testid=phone-status]')).includes('extension 101'), 'the phone is ready');
  await page.fill('[data-testid=dial-number]', '+44 7700 900123');
  await shoot(page, 'ready');
  await page.click('[data-testid=dial]');
  await page.waitForFunction(() => document.querySelector('[data-testid=call-state]')?.textContent === 'Ringing…');
  await shoot(page, 'ringing');
  await page.waitForSelector('[data-testid=pause-recording]');
  await page.waitForTimeout(1200);
  await shoot(page, 'in-call');
  await page.click('[data-testid=pause-recording]');
  await page.waitForSelector('[data-testid=resume-recording]');
  await page.evaluate(() => {
    const mock = window.earshotMock;
    mock.phoneView.calls[0].paused_since = Date.now() - 150_000;
    mock.emit({ type: 'phone', phone: structuredClone(mock.phoneView) });
  });
  await page.waitForSelector('[data-testid=pause-reminder]');
  await shoot(page, 'paused');
  await page.evaluate(() => window.earshotMock.incoming('+442071234567', 'Initrode Ltd'));
  await page.waitForSelector('[data-testid=incoming-call]');
  await shoot(page, 'incoming');
  await page.keyboard.press('Alt+a');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=call]').length === 2);
  await page.waitForFunction(() => document.querySelector('[data-testid=call-state]')?.textContent.startsWith('On hold'));
  await shoot(page, 'call-waiting');
});

await test('a refused pause says why', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.evaluate(() => {
    window.earshotMock.phoneDelay = 50;
    window.earshotMock.refuseRecording =
      'You may not pause or resume recordings: recording control is off for you (D4).';
  });
  await page.fill('[data-testid=dial-number]', '102');
  await page.keyboard.press('Enter');
  await page.click('[data-testid=pause-recording]');
  await page.waitForSelector('[data-testid=recording-refused]');
  await shoot(page, 'refused');
});

await test('Settings try the microphone and the speaker before a call', async (page) => {
  await page.goto(base);
  await logIn(page, 'ada@acme.demo', 'demo-ada');
  await page.click('[data-testid=nav-settings]');
  await page.selectOption('[data-testid=microphone]', 'alsa:hw:CARD=Headset,DEV=0');
  await page.click('[data-testid=test-microphone]');
  await page.waitForFunction(() => document.querySelector('[data-testid=device-test]')?.textContent.startsWith('Heard you'));
  // The level meter moves while someone talks into the headset.
  await page.waitForFunction(() => /dBFS$/.test(document.querySelector('[data-testid=mic-level-text]')?.textContent.trim()));
  if (shots) await page.screenshot({ path: join(shots, 'settings-devices.png') });
});

await browser.close();
server.close();
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
