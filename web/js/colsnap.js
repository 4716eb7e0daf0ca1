// colsnap in the browser: open a .colsnap file by byte ranges, query it
// locally, fetch only the strings shown.
//
//   import { open } from './pkg/colsnap.js';
//   const snap = await open('/files/issues.colsnap', { onProgress });
//   const { total, rows } = await snap.query({ sort: '-updated_at', where: ['state=open'] });
//   const page = await snap.rows(rows.subarray(0, 50), ['number', 'title']);
//
// In a browser the engine (engine.js and the wasm: fetching, decoding,
// sorting, writing cells) runs in a module worker (worker.js, next to this
// file), one per open snapshot, so that the page's thread only draws; every
// call is a message to it, and results come back as copies (typed arrays
// moved, not copied twice). Where there is no Worker (node), the engine
// runs in this thread behind the same API.

/** Let the page run (input, rendering) before the next piece of work. */
export function yieldTask() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((r) => setTimeout(r, 0));
}

/** An open snapshot whose engine runs in a worker (the API of engine.js's Snapshot). */
export class Snapshot {
  constructor(worker, memoKey) {
    this.worker = worker;
    this.memoKey = memoKey;
    this.next = 1;
    // id -> {ok, fail, onRow}
    this.calls = new Map();
    this.onProgress = () => {};
    /** Paths of the columns loaded. */
    this.columns = new Set();
    worker.onmessage = (e) => this.receive(e.data);
    // Set once the worker answered: an error before that means it could not start.
    this.started = false;
    worker.onerror = (e) => this.failAll(new Error(`colsnap worker: ${e.message || 'failed to start'}`));
    worker.onmessageerror = () => this.failAll(new Error('colsnap worker: a message could not be read'));
  }

  receive(m) {
    this.started = true;
    if (m.progress) return this.onProgress(m.progress);
    if (m.memoSet) {
      try { localStorage.setItem(this.memoKey, JSON.stringify(m.memoSet)); } catch { /* private mode */ }
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    if (m.row) {
      if (c.onRow) c.onRow(m.row[0], m.row[1]);
      // Stop the worker's decoding once the page no longer wants it.
      if (c.cancelled && !c.stop && c.cancelled()) { c.stop = true; this.worker.postMessage({ cancel: m.id }); }
      return;
    }
    this.calls.delete(m.id);
    if ('err' in m) c.fail(new Error(m.err));
    else c.ok(m.ok);
  }

  failAll(err) {
    const c = [...this.calls.values()];
    this.calls.clear();
    for (const x of c) x.fail(err);
  }

  call(op, args = [], extra = {}, transfer = []) {
    const id = this.next++;
    // Cells the page no longer wants (a newer render took over) stop now,
    // not at their next row: their fetched ranges leave the wasm memory
    // sooner, and the worker turns to this call.
    for (const [cid, c] of this.calls) if (c.cancelled && !c.stop && c.cancelled()) { c.stop = true; this.worker.postMessage({ cancel: cid }); }
    return new Promise((ok, fail) => {
      this.calls.set(id, { ok, fail, ...extra });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  setMeta(m) {
    /** Rows in the view (snapshot plus events). */
    this.rowCount = m.rowCount;
    /** Columns: [{path, type, list}]. */
    this.fields = m.fields;
    this.fileLen = m.fileLen;
    this.eventCount = m.eventCount;
    /** The file's ETag (its version; the Cache API keeps ranges under it), or null. */
    this.etag = m.etag;
  }

  /** Load columns (fetching their sections in one round). */
  async load(paths) {
    const have = await this.call('load', [paths]);
    this.columns = new Set(have);
  }

  /** Start fetching the sections of columns (not decoding them): a later `load` takes the bytes from there. */
  prefetch(paths) {
    this.call('prefetch', [paths]).catch(() => {});
  }

  /**
   * A column as typed arrays (copies of the engine's): `values` (Uint32Array
   * string ids / list lengths, BigInt64Array integers and timestamp seconds,
   * Uint8Array booleans, Float64Array other numbers), `null`/`absent`/`valid`
   * bitmaps (Uint32Array, bit i at [i >>> 5] >>> (i & 31)), `offsets`
   * (Uint32Array, rows + 1) for columns inside arrays.
   */
  async column(path) {
    const c = await this.call('column', [path]);
    this.columns.add(path);
    return c;
  }

  /**
   * Sort, filter, search: `{sort: '-updated_at,title', where: ['state=open'],
   * search: 'crash', in: ['title'], offset, limit}` (strings as in
   * docs/query.md). Returns `{total, rows}`: every matching row index in
   * result order (a Uint32Array), and `page`, the rows of
   * `offset..offset+limit` when a limit is given.
   */
  query(q = {}) {
    return this.call('query', [q]);
  }

  /** Rows (indexes into the view) as objects, restricted to `fields` (all when empty). */
  rows(indexes, fields = []) {
    return this.call('rows', [Uint32Array.from(indexes), fields]);
  }

  /**
   * The cells of rows (indexes into the view) in the columns `fields`:
   * objects keyed by display path (`{"number": 7, "labels[].name": ["bug"],
   * "created_at": "2024-05-01T12:00:00Z"}`, absent cells left out), written
   * from the loaded columns. With events applied: nested rows, as `rows`.
   * `opts`: `sliceMs` (the engine yields after each slice of that much
   * work), `onRow(k, cells)` as each row is ready, `cancelled()` (asked as
   * rows come: true stops the engine; the rows so far are returned).
   */
  async cells(indexes, fields, opts = {}) {
    const extra = { onRow: opts.onRow, cancelled: opts.cancelled };
    const out = await this.call('cells', [Uint32Array.from(indexes), fields, { sliceMs: opts.sliceMs, onRow: !!(opts.onRow || opts.cancelled) }], extra);
    for (const f of fields) if (!this.eventCount) this.columns.add(f);
    return out;
  }

  /** One row, every field (or `fields`): the long text comes with it. */
  async row(i, fields = []) {
    return (await this.rows([i], fields))[0];
  }

  /** The strings of string ids of column `path`, fetching only their chunks. */
  strings(path, ids) {
    return this.call('strings', [path, Uint32Array.from(ids)]);
  }

  /** Apply NDJSON events (docs/events) after those applied before; answers the events applied so far. */
  async applyEvents(ndjson) {
    const { n, meta } = await this.call('applyEvents', [ndjson]);
    this.setMeta(meta);
    this.columns = new Set();
    return n;
  }

  /** Bytes: fetched from the file, typed arrays loaded, wasm memory; requests made. */
  stats() {
    return this.call('stats');
  }

  /** Stop the worker (the snapshot is no longer usable). */
  close() {
    this.worker.terminate();
    this.failAll(new Error('colsnap: the snapshot was closed'));
  }
}

let compiled = null;
/**
 * The engine's wasm, fetched and compiled by the page (`preload` starts it
 * first thing; index.html's `<link rel="preload">` even before) and sent to
 * each worker: it downloads while the worker's script loads instead of
 * after, and compiles once. Null where the page cannot (the worker then
 * fetches it itself).
 */
function pageWasm() {
  if (!compiled) {
    compiled = typeof WebAssembly === 'object' && typeof WebAssembly.compileStreaming === 'function'
      ? WebAssembly.compileStreaming(fetch(new URL('./colsnap_web_bg.wasm', import.meta.url))).catch(() => null)
      : Promise.resolve(null);
  }
  return compiled;
}

function newWorker() {
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'colsnap' });
  w.postMessage({ wasmFollows: true });
  pageWasm().then((m) => {
    try { w.postMessage({ wasm: m }); } catch { w.postMessage({ wasm: null }); }
  });
  return w;
}
let spare = null;

/**
 * Start an engine's worker (it compiles the wasm) ahead of `open`, which
 * takes it: a page calls this first thing, before it knows what to open.
 */
export function preload() {
  if (!spare && typeof Worker !== 'undefined') {
    try { spare = newWorker(); } catch { /* open falls back to this thread */ }
    // An error before `open` takes the worker (its script failed to
    // start) would otherwise be lost, and `open` would wait forever; `open`
    // runs the engine in this thread instead (the error is handled).
    if (spare) { const w = spare; w.onerror = (e) => { e.preventDefault(); w.failed = true; }; }
  }
}

/** The engine in this thread (node; browsers without module workers). */
async function inThread(abs, opts) {
  // Not bundled into the page's script (the worker bundles it).
  const engine = './engine.js';
  return (await import(/* @vite-ignore */ engine)).open(abs, opts);
}

/**
 * Open a snapshot: a `.colsnap` URL read by byte ranges, or a published
 * snapshot (SPEC.md section 15) by its pointer (`NAME.latest.json`) or
 * manifest (`manifests/HEX.json`) URL, whose event segments are applied.
 * Options: onProgress({loaded, total}), cache (default true), multiRange
 * (default true: the ranges of one read in one `Range: bytes=a-b,c-d`
 * request; false: one request each, for a server known to answer such a
 * request with the whole file; one that does is detected and asked range
 * by range anyway), worker
 * (default true where there is a Worker: false runs the engine in this thread;
 * so does a browser where a module worker cannot start).
 */
export async function open(url, opts = {}) {
  const abs = new URL(url, globalThis.location?.href).href;
  if (typeof Worker === 'undefined' || opts.worker === false) return inThread(abs, opts);
  let worker = spare;
  spare = null;
  if (worker?.failed) { worker.terminate(); return inThread(abs, opts); }
  if (!worker) {
    // A browser without module workers throws here (or fails the worker's
    // start, below): the engine then runs in this thread.
    try { worker = newWorker(); } catch { return inThread(abs, opts); }
  }
  const memoKey = 'colsnap:' + abs;
  const snap = new Snapshot(worker, memoKey);
  if (opts.onProgress) snap.onProgress = opts.onProgress;
  let memo = null;
  try { memo = JSON.parse(localStorage.getItem(memoKey)); } catch { /* none */ }
  try {
    snap.setMeta(await snap.call('open', [abs, { cache: opts.cache, multiRange: opts.multiRange, memo }]));
  } catch (e) {
    worker.terminate();
    if (snap.started) throw e;
    // The worker never answered (its script or the wasm did not load in a
    // worker): the engine in this thread, which reports its own errors.
    return inThread(abs, opts);
  }
  return snap;
}
