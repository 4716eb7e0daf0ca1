// Numbers of the browser grid (a measurement, not a test): headless Debian
// Chromium on 127.0.0.1 against colsnap-serve.
//
//   SNAPSHOT=/tmp/issues-1m.colsnap node web/bench/grid.bench.mjs
//   ROWS=200000 node web/bench/grid.bench.mjs      # generates the snapshot first
//   WWW=/tmp/old-www SNAPSHOT=... node web/bench/grid.bench.mjs   # another build of the page
//   JUMPS=0 SNAPSHOT=... node web/bench/grid.bench.mjs            # no scrolling part
//   SERVE_ARGS='--row-store background' SNAPSHOT=... node ...       # colsnap-serve's arguments
//   LINK=100/10 SNAPSHOT=... node ...   # through a link of 100 ms round trip and 10 Mbit/s
//   LINK=100/10 SINGLE_RANGE=1 ...       # the same, as a server answering several ranges with the whole file
//   PUBLISHED=1 SNAPSHOT=... node ...    # the page reads the published snapshot (colsnap-serve --publish-dir)
//   LINK=100/10 HTTP2=1 ...              # the proxy speaks HTTP/2 over TLS (web/test/tls's certificate)
//   LINK=... RANGES_LOG=/tmp/r.log ...   # the proxy writes each Range header asked, by step
//
// LINK puts a proxy (in this process) between the browser and the server:
// every request waits the round trip before its response starts, and the
// responses' bytes share one downlink of that rate, in the order they come.
// Loopback alone has neither, so it prices requests at almost nothing and
// bytes at nothing. SINGLE_RANGE=1 makes the proxy forward a request for
// several ranges without its Range header, so the page gets the whole file
// with status 200, as from many object stores and CDNs: the page cancels
// that answer (the proxy then stops sending it) and asks range by range.
// HTTP2=1 makes the proxy an HTTP/2 server (TLS, as browsers speak HTTP/2
// only over TLS), as CDNs and object stores are: the browser then sends
// every request on one connection at once, where over HTTP/1.1 it keeps 6
// in flight. The handshake costs no round trip here (nor does HTTP/1.1's
// connection setup): the link's delay is per request only.
//
// The server runs with `--row-store off` unless SERVE_ARGS says otherwise:
// the page reads the file by byte ranges and never the row store, whose
// background build (about a minute at 1M rows) would otherwise take one of
// a 2-core machine's cores while the page is timed.
//
// Needs web/build.sh, web/test's npm packages (playwright-core), and the
// binaries in COLSNAP_BIN_DIR (default target/release: cargo build --release
// -p colsnap --bin colsnap --example gen_issues -p colsnap-server --bin colsnap-serve).
import { createRequire } from 'node:module';
import http from 'node:http';
import http2 from 'node:http2';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, mkdtempSync, appendFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createHash, createPublicKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'web/test/package.json'));
const { chromium } = require('playwright-core');
const bin = resolve(root, process.env.COLSNAP_BIN_DIR || 'target/release');
const exe = (n) => (existsSync(join(bin, n)) ? join(bin, n) : join(bin, 'examples', n));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let snap = process.env.SNAPSHOT;
if (!snap) {
  const rows = process.env.ROWS || '200000';
  const work = mkdtempSync(join(tmpdir(), 'colsnap-bench-'));
  snap = join(work, 'issues.colsnap');
  execFileSync(exe('gen_issues'), ['--count', rows, '--out', join(work, 'issues.ndjson')]);
  execFileSync(exe('colsnap'), ['build', join(work, 'issues.ndjson'), '-o', snap], { stdio: 'ignore' });
}
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
const mb = (n) => (n / 1048576).toFixed(1) + ' MB';

// 1. What the page downloads before the first rows, gzip -9.
// WWW: another build of the page (web/www with its pkg/), to compare two versions.
const www = resolve(process.env.WWW || join(root, 'web/www'));
// What the page loads before its first rows (web/build.sh): pkg/app.js
// bundles app.js and colsnap.js, pkg/worker.js the worker (engine.js and
// the wasm-bindgen glue), plus the chunks either imports statically (not
// the one for published snapshots, imported on demand). An older build
// without a worker has no pkg/worker.js.
const code = ['pkg/colsnap_web_bg.wasm', 'pkg/app.js', 'pkg/worker.js', 'index.html', 'style.css'].filter((f) => existsSync(join(www, f)));
for (const f of ['pkg/app.js', 'pkg/worker.js'].filter((f) => existsSync(join(www, f)))) {
  for (const m of readFileSync(join(www, f), 'utf8').matchAll(/from\s*"\.\/(chunk-[\w-]+\.js)"/g)) if (!code.includes('pkg/' + m[1])) code.push('pkg/' + m[1]);
}
// `served`: what `colsnap serve` sends a browser taking gzip, each file's
// .gz beside it (web/build.sh: zopfli) when there is one.
let raw = 0, gz = 0, served = 0;
for (const f of code) {
  const b = readFileSync(join(www, f));
  raw += b.length;
  const g = gzipSync(b, { level: 9 }).length;
  gz += g;
  served += existsSync(join(www, f + '.gz')) ? statSync(join(www, f + '.gz')).size : g;
}
const wasmGz = gzipSync(readFileSync(join(www, 'pkg/colsnap_web_bg.wasm')), { level: 9 }).length;
console.log(`snapshot: ${snap} (${mb(statSync(snap).size)}); colsnap-serve ${process.env.SERVE_ARGS ?? '--row-store off'}`);
console.log(`page code: ${kb(raw)} raw, ${kb(gz)} gzip -9, ${kb(served)} served gzip (wasm alone ${kb(wasmGz)} gzip -9; ${code.join(', ')})`);

// PUBLISHED=1: the page opens the snapshot's pointer under /published/
// (whole content-addressed objects, SPEC.md section 15) instead of the file.
const published = process.env.PUBLISHED === '1';
const pubArgs = published ? ['--publish-dir', mkdtempSync(join(tmpdir(), 'colsnap-bench-pub-'))] : [];
const pageUrl = published ? `/web/?file=/published/${encodeURIComponent(snap.replace(/^.*\//, '').replace(/\.colsnap$/, ''))}.latest.json` : '/web/';
if (published) console.log(`published: the page reads ${pageUrl.slice('/web/?file='.length)}`);
const server = spawn(exe('colsnap-serve'), [snap, '--addr', '127.0.0.1:0', '--web', www, '--reload', '0', ...pubArgs, ...(process.env.SERVE_ARGS ?? '--row-store off').split(' ').filter(Boolean)], {
  stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' },
});
const direct = await new Promise((ok, fail) => {
  let buf = '';
  server.stdout.on('data', (d) => { buf += d; const m = /open (http:\/\/[^/\s]+)\//.exec(buf); if (m) ok(m[1]); });
  server.on('exit', (c) => fail(new Error(`colsnap-serve exited with ${c}`)));
});

// LINK=RTT_MS/MBIT: the proxy described at the top.
async function linkProxy(target, rttMs, mbit) {
  const bytesPerMs = (mbit * 1e6) / 8 / 1000;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let busyUntil = 0;
  // Headers that name one connection (HTTP/1.1's), and HTTP/2's pseudo-headers:
  // not forwarded from one protocol to the other.
  const hop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'host']);
  const forward = (h) => Object.fromEntries(Object.entries(h).filter(([k]) => !k.startsWith(':') && !hop.has(k.toLowerCase())));
  const handler = async (req, res) => {
    await sleep(rttMs / 2);
    const headers = forward(req.headers);
    if (rangesLog && headers.range) appendFileSync(rangesLog, `${Math.round(performance.now())}\t${step}\t${req.url}\t${headers.range}\n`);
    if (singleRange && (headers.range || '').includes(',')) delete headers.range;
    const up = http.request(target + req.url, { method: req.method, headers }, async (ur) => {
      try {
        await sleep(rttMs / 2);
        if (http2Link) res.writeHead(ur.statusCode, forward(ur.headers));
        else res.writeHead(ur.statusCode, ur.statusMessage, ur.headers);
        res.flushHeaders(); // the headers after a round trip, the body at the link's rate
        // A cancelled answer stops using the link (within a chunk).
        res.on('close', () => { if (!res.writableFinished) ur.destroy(); });
        for await (const chunk of ur) {
          if (res.destroyed || res.stream?.destroyed) break;
          const now = Date.now();
          busyUntil = Math.max(busyUntil, now) + chunk.length / bytesPerMs;
          if (busyUntil - now > 1) await sleep(busyUntil - now);
          res.write(chunk);
        }
        res.end();
      } catch {
        res.destroy(); // the page cancelled it, or the bench is ending
      }
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const proxy = http2Link ? http2.createSecureServer(selfSigned(), handler) : http.createServer(handler);
  if (http2Link) {
    const sessions = new Set();
    proxy.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
    proxy.closeAllConnections = () => { for (const s of sessions) s.destroy(); };
  }
  await new Promise((ok) => proxy.listen(0, '127.0.0.1', ok));
  return proxy;
}
// The test key and certificate for 127.0.0.1 (web/test/tls). Chromium
// trusts it by its public key's hash (as Web Page Replay does), so that it
// caches what it gets (it caches nothing from a site whose certificate it
// only ignores).
function selfSigned() {
  const [key, cert] = ['key.pem', 'cert.pem'].map((f) => readFileSync(join(root, 'web/test/tls', f)));
  spki = createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('base64');
  return { key, cert };
}
let spki = null;
const link = process.env.LINK ? process.env.LINK.split('/').map(Number) : null;
// RANGES_LOG: the Range headers through the proxy: when (ms), the step, the URL.
const rangesLog = process.env.RANGES_LOG;
if (rangesLog) writeFileSync(rangesLog, '');
let step = 'cold';
const singleRange = process.env.SINGLE_RANGE === '1';
const http2Link = process.env.HTTP2 === '1';
if ((singleRange || http2Link) && !link) throw new Error('SINGLE_RANGE=1 and HTTP2=1 need LINK=RTT/MBIT (the proxy does them)');
const proxy = link ? await linkProxy(direct, link[0], link[1]) : null;
const base = proxy ? `${http2Link ? 'https' : 'http'}://127.0.0.1:${proxy.address().port}` : direct;
if (link) console.log(`link: ${link[0]} ms round trip, ${link[1]} Mbit/s (a proxy in front of ${direct}, ${http2Link ? 'HTTP/2 over TLS' : 'HTTP/1.1'})${singleRange ? '; several ranges answered with the whole file' : ''}`);
// The used JS heap of the page's dedicated workers, after a GC in each:
// CDP sessions to them through the page's session (Target.* messages).
async function workerHeaps(cdp) {
  const sessions = [];
  const onAttach = (e) => { if (e.targetInfo.type === 'worker') sessions.push(e.sessionId); };
  cdp.on('Target.attachedToTarget', onAttach);
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  await new Promise((r) => setTimeout(r, 200));
  cdp.off('Target.attachedToTarget', onAttach);
  let next = 1;
  const ask = (sessionId, method) => new Promise((ok) => {
    const id = next++;
    const on = (e) => {
      if (e.sessionId !== sessionId) return;
      const m = JSON.parse(e.message);
      if (m.id === id) { cdp.off('Target.receivedMessageFromTarget', on); ok(m.result || {}); }
    };
    cdp.on('Target.receivedMessageFromTarget', on);
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method }) });
  });
  let used = 0;
  for (const s of sessions) {
    await ask(s, 'HeapProfiler.collectGarbage');
    used += (await ask(s, 'Runtime.getHeapUsage')).usedSize || 0;
  }
  return used;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--enable-precise-memory-info',
    ...(spki ? [`--ignore-certificate-errors-spki-list=${spki}`] : [])],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }});
  await ctx.addInitScript(() => {
    window.__long = [];
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({ type: 'longtask', buffered: true });
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(300_000);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  let wire = { code: 0, requests: 0 };
  cdp.on('Network.loadingFinished', () => {});
  const sizes = new Map();
  cdp.on('Network.responseReceived', (e) => sizes.set(e.requestId, e.response.url));
  cdp.on('Network.loadingFinished', (e) => {
    const url = sizes.get(e.requestId) || '';
    wire.requests++;
    // The snapshot's ranges go through the worker (counted below).
    if (!url.includes('/files/')) wire.code += e.encodedDataLength;
  });
  const ready = () => page.waitForFunction(() => document.body.dataset.state === 'ready' && !document.querySelector('#inner .row.ph'));
  const firstRows = async (url = pageUrl) => {
    await page.goto(`${base}${url}`);
    await ready();
    // First rows on screen (a second visit paints its saved first page
    // before the query ends), and ready (the query's rows drawn).
    return page.evaluate(() => [window.grid.firstRowsAt, performance.now(), JSON.stringify(Object.fromEntries(Object.entries(window.grid.timings).map(([k, v]) => [k, Math.round(v)])))]);
  };

  // 2. Cold (fresh profile, empty caches), then warm (reload: HTTP cache, Cache API).
  const [cold, coldReady, coldT] = await firstRows();
  const coldWire = { ...wire };
  // The snapshot's ranges are fetched by the page's worker, which the
  // page's CDP session does not see: its own counters (engine.js) say.
  const coldFile = await page.evaluate(async () => { const s = await window.grid.snap.stats(); return [s.networkBytes, s.requests]; });
  console.log(`first rows, cold: ${cold.toFixed(0)} ms after navigation start, ready ${coldReady.toFixed(0)} ms (page timings ${coldT}); on the wire: code ${kb(coldWire.code)}, ${coldWire.requests} requests; snapshot: ${coldFile[0]} bytes (${(100 * coldFile[0] / statSync(snap).size).toFixed(1)}% of the file) in ${coldFile[1]} range requests`);
  wire = { code: 0, requests: 0 };
  step = 'warm';
  const [warm, warmReady, warmT] = await firstRows();
  console.log(`first rows, warm: ${warm.toFixed(0)} ms, ready ${warmReady.toFixed(0)} ms (page timings ${warmT}); on the wire: code ${kb(wire.code)}, ${wire.requests} requests`);
  const rows = await page.evaluate(() => window.grid.state.total);
  console.log(`rows: ${rows}`);

  let net = await page.evaluate(async () => { const s = await window.grid.snap.stats(); return [s.networkBytes, s.requests]; });
  // 3. Sort by a string column and show the first page (first time: loads the column; second time: reverses).
  for (const what of ['sort by title (column loaded on first use)', 'sort by title descending (loaded)', 'sort by user.login']) {
    const field = what.includes('user.login') ? 'user.login' : 'title';
    // 'ready' again only once this query's rows are drawn.
    await page.evaluate(() => { document.body.dataset.state = 'busy'; });
    step = what;
    await page.click(`.head .h[data-field="${field}"]`);
    await ready();
    const [t, tq, nb, nr] = await page.evaluate(async () => {
      const s = await window.grid.snap.stats();
      return [window.grid.timings.lastQuery, window.grid.timings.query, s.networkBytes, s.requests];
    });
    console.log(`${what} + first page on screen: ${t.toFixed(0)} ms (query ${tq.toFixed(0)} ms); snapshot: ${nb - net[0]} bytes in ${nr - net[1]} range requests`);
    net = [nb, nr];
  }
  // 4. Memory: JS heaps (the page's and its workers': the engine runs in
  // one) + wasm memory against the typed arrays loaded. Measured first as
  // the page left it (what a user's tab holds), then again after the API
  // calls below, which the page never makes (`rows()` builds the row
  // writer, which decodes its columns a second time).
  const memory = async (what) => {
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = await cdp.send('Runtime.getHeapUsage');
    const workerHeap = await workerHeaps(cdp);
    const st = await page.evaluate(() => window.grid.snap.stats());
    const total = heap.usedSize + workerHeap + st.wasmMemory;
    console.log(`memory (${what}): JS heap ${mb(heap.usedSize)} (page) + ${mb(workerHeap)} (workers) + wasm ${mb(st.wasmMemory)} = ${mb(total)}; typed arrays loaded ${mb(st.loadedBytes)}; file bytes fetched ${mb(st.fetchedBytes)}; ratio ${(total / st.loadedBytes).toFixed(2)}x (${((total - st.fetchedBytes) / st.loadedBytes).toFixed(2)}x without the fetched bytes)`);
  };
  step = 'after the sorts';
  await memory('the page, after the sorts');
  const q = await page.evaluate(async () => {
    const s = window.grid.snap;
    const t0 = performance.now();
    const r = await s.query({ sort: 'title' });
    const t1 = performance.now();
    await s.rows(r.rows.subarray(0, 40), ['number', 'title']);
    return [t1 - t0, performance.now() - t1];
  });
  console.log(`API: query({sort: 'title'}) ${q[0].toFixed(0)} ms, rows() of the first 40 ${q[1].toFixed(0)} ms`);

  await memory('after the API calls query() and rows(), which the page never makes');

  // 5. Long tasks while scrolling through the whole grid.
  await page.evaluate(() => { window.__long = []; });
  // JUMPS=0 skips this part (memory and load numbers only, in a minute).
  const steps = +(process.env.JUMPS ?? 300);
  const t0 = Date.now();
  for (let i = 1; i <= steps; i++) {
    await page.evaluate((f) => new Promise((done) => {
      const s = document.getElementById('scroller');
      s.scrollTop = f * (s.scrollHeight - s.clientHeight);
      requestAnimationFrame(() => requestAnimationFrame(done)); // the render ran
    }), i / steps);
    await ready();
  }
  const long = await page.evaluate(() => window.__long);
  console.log(`scrolling: ${steps} jumps through ${rows} rows in ${Date.now() - t0} ms; long tasks (>50 ms): ${long.length}${long.length ? ', longest ' + Math.max(...long).toFixed(0) + ' ms' : ''}`);
  if (steps) await memory(`after scrolling ${steps} jumps`);

  // 6. Another file from the same site (the page's code in the HTTP cache,
  // nothing of the file in the Cache API): the same file under another URL.
  if (!published) {
    step = 'another file';
    const [other, otherReady, otherT] = await firstRows(`/web/?file=${encodeURIComponent(`/files/${snap.replace(/^.*\//, '')}?another`)}`);
    console.log(`first rows, another file (page code cached): ${other.toFixed(0)} ms, ready ${otherReady.toFixed(0)} ms (page timings ${otherT})`);
  }
} finally {
  await browser.close();
  server.kill();
  // Its keep-alive connections (to the server too) would keep node running.
  proxy?.closeAllConnections?.();
  proxy?.close();
  http.globalAgent.destroy();
}
