// Long tasks on the page's main thread while scrolling, from a Chromium
// trace: each task's wall time (`dur`) and its thread (CPU) time (`tdur`).
// On a loaded machine a short task can take long on the wall clock while
// the thread waits for a core; `tdur` is what the page itself spent.
// (A measurement, not a test.)
//
//   SNAPSHOT=/tmp/issues-1m.colsnap JUMPS=60 node web/bench/scroll.trace.mjs
//   WWW=/tmp/old-www SNAPSHOT=... node web/bench/scroll.trace.mjs   # another build of the page
//
// Needs web/build.sh, web/test's npm packages and colsnap-serve in
// COLSNAP_BIN_DIR (default target/release).
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'web/test/package.json'));
const { chromium } = require('playwright-core');
const bin = resolve(root, process.env.COLSNAP_BIN_DIR || 'target/release');
const www = resolve(process.env.WWW || join(root, 'web/www'));
const jumps = +(process.env.JUMPS || 60);
const serve = existsSync(join(bin, 'colsnap-serve')) ? join(bin, 'colsnap-serve') : join(bin, 'examples', 'colsnap-serve');
const server = spawn(serve, [process.env.SNAPSHOT, '--addr', '127.0.0.1:0', '--web', www, '--reload', '0', '--row-store', 'off'], { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((ok, fail) => {
  let buf = '';
  server.stdout.on('data', (d) => { buf += d; const m = /open (http:\/\/[^/\s]+)\//.exec(buf); if (m) ok(m[1]); });
  server.on('exit', (c) => fail(new Error(`colsnap-serve exited with ${c}`)));
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  page.setDefaultTimeout(300_000);
  const ready = () => page.waitForFunction(() => document.body.dataset.state === 'ready' && !document.querySelector('#inner .row.ph'));
  await page.goto(`${base}/web/`);
  await ready();
  await browser.startTracing(page, { categories: ['toplevel', 'disabled-by-default-devtools.timeline', 'devtools.timeline'] });
  const t0 = Date.now();
  for (let i = 1; i <= jumps; i++) {
    await page.evaluate((f) => new Promise((done) => {
      const s = document.getElementById('scroller');
      s.scrollTop = f * (s.scrollHeight - s.clientHeight);
      requestAnimationFrame(() => requestAnimationFrame(done));
    }), i / jumps);
    await ready();
  }
  const wall = Date.now() - t0;
  const trace = JSON.parse((await browser.stopTracing()).toString());
  const ev = trace.traceEvents || trace;
  // The renderer's main thread: the thread named CrRendererMain.
  const main = new Set(ev.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const tasks = ev.filter((e) => e.ph === 'X' && (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask') && main.has(`${e.pid}:${e.tid}`));
  const over = (k) => tasks.filter((e) => (e[k] || 0) > 50_000);
  const longest = (k) => Math.max(0, ...tasks.map((e) => e[k] || 0)) / 1000;
  const sum = (k) => tasks.reduce((n, e) => n + (e[k] || 0), 0) / 1000;
  console.log(`${www}: ${jumps} jumps in ${wall} ms; main-thread tasks ${tasks.length}, ` +
    `over 50 ms wall: ${over('dur').length} (longest ${longest('dur').toFixed(0)} ms, sum ${sum("dur").toFixed(0)} ms), ` +
    `over 50 ms thread time: ${over('tdur').length} (longest ${longest('tdur').toFixed(0)} ms, sum ${sum("tdur").toFixed(0)} ms)`);
} finally {
  await browser.close();
  server.kill();
}
