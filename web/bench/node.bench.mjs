// The CPU-bound part of the grid's numbers in node (no DOM, no Cache API):
// colsnap.js and the wasm against colsnap-serve, each step timed, min and
// median of N runs (the min is what to compare on a loaded machine).
//
//   SNAPSHOT=/tmp/issues-1m.colsnap N=3 node web/bench/node.bench.mjs
//   WWW=/tmp/old-www SNAPSHOT=... node web/bench/node.bench.mjs      # another build of the page
//
// Needs web/build.sh and colsnap-serve in BIN (default target/release).
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { resolve, dirname, basename } from 'node:path';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const www = resolve(process.env.WWW || root + '/web/www'), N = +(process.env.N || 3);
const bin = resolve(root, process.env.BIN || 'target/release');
const realFetch = globalThis.fetch;
globalThis.fetch = async (u, o) => {
  const s = String(u);
  if (s.startsWith('file:')) return new Response(readFileSync(new URL(s)), { headers: { 'Content-Type': 'application/wasm' } });
  return realFetch(u, o);
};
const server = spawn(bin + '/colsnap-serve', [process.env.SNAPSHOT, '--addr', '127.0.0.1:0', '--web', www, '--reload', '0', '--row-store', 'off'], { stdio: ['ignore', 'pipe', 'ignore'] });
const base = await new Promise((ok) => { let b = ''; server.stdout.on('data', (d) => { b += d; const m = /open (http:\/\/[^/\s]+)\//.exec(b); if (m) ok(m[1]); }); });
const { open } = await import(pathToFileURL(www + '/pkg/colsnap.js').href);
const cols = ['number', 'title', 'state', 'labels[].name', 'user.login', 'comments', 'created_at', 'updated_at'];
const t = {};
const rec = (k, ms) => { (t[k] ||= []).push(ms); };
for (let n = 0; n < N; n++) {
  let t0 = performance.now();
  const snap = await open(`${base}/files/${basename(process.env.SNAPSHOT)}`, { cache: false });
  rec('open', performance.now() - t0);
  t0 = performance.now();
  const r = await snap.query({ sort: '-updated_at' });
  rec('query -updated_at (loads the column)', performance.now() - t0); rec('  mem after query', (await snap.stats()).wasmMemory / 1048576);
  for (const c of cols) {
    t0 = performance.now();
    await snap.load([c]);
    rec('load ' + c, performance.now() - t0); rec('  mem after ' + c, (await snap.stats()).wasmMemory / 1048576);
  }
  t0 = performance.now();
  await snap.cells(r.rows.subarray(0, 43), cols);
  rec('cells of 43 rows', performance.now() - t0);
  for (const s of ['title', '-title', 'user.login']) {
    t0 = performance.now();
    const q = await snap.query({ sort: s });
    rec('query ' + s, performance.now() - t0); rec('  mem after query ' + s, (await snap.stats()).wasmMemory / 1048576);
    t0 = performance.now();
    await snap.cells(q.rows.subarray(0, 43), cols);
    rec('cells after ' + s, performance.now() - t0);
  }
  t0 = performance.now();
  for (let j = 0; j < 20; j++) {
    const at = Math.floor((j * 48271) % 1000000);
    await snap.cells(r.rows.subarray(at, at + 43), cols);
  }
  rec('20 random pages of 43 rows', performance.now() - t0);
  const st = await snap.stats();
  rec('wasm memory MB', st.wasmMemory / 1048576);
  rec('loaded MB', st.loadedBytes / 1048576);
}
for (const [k, v] of Object.entries(t)) console.log(`${k.padEnd(40)} min ${Math.min(...v).toFixed(1).padStart(8)}  median ${v.sort((a, b) => a - b)[v.length >> 1].toFixed(1).padStart(8)}`);
server.kill();
process.exit(0);
