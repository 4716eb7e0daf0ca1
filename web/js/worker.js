// The module worker that runs the colsnap engine (engine.js and the wasm)
// for a page: colsnap.js starts one per open snapshot and sends it calls;
// fetching, decoding, sorting and writing cells happen here, so that the
// page's thread only draws.
//
// Messages from the page: {id, op, args} (op: a Snapshot method, or
// 'open'), {cancel: id}, {memo: v} (the answer to a 'memoGet'),
// {wasmFollows: true} then {wasm: WebAssembly.Module or null}.
// To the page: {id, ok: value} or {id, err: message}; {id, row: [k, cell]}
// for `cells` with `onRow`; {progress}; {memoSet: v}.
import { open, wasm, wasmFrom } from './engine.js';

// The wasm module: the page fetches and compiles it while this script
// loads, and sends it ({wasmFollows} first thing, then {wasm: module or
// null}); a page that says nothing (an older colsnap.js) leaves it to this
// worker, which compiles it while the page asks for the file.
let wasmGiven = null;
let wasmFollows = false;
wasmFrom(new Promise((resolve) => { wasmGiven = resolve; }));
wasm().catch(() => {});

let snap = null;
const cancelled = new Set();

/** What the page's Snapshot mirrors (changes with applyEvents). */
function meta() {
  return { rowCount: snap.rowCount, fields: snap.fields, fileLen: snap.fileLen, eventCount: snap.eventCount, etag: snap.etag };
}

/** Typed arrays of `v` whose buffers can move to the page (copies, not views of the wasm memory). */
function transferables(v) {
  const out = [];
  const add = (a) => { if (ArrayBuffer.isView(a) && !out.includes(a.buffer)) out.push(a.buffer); };
  if (v && typeof v === 'object') for (const x of Object.values(v)) add(x);
  return out;
}

const ops = {
  async open([url, opts]) {
    snap = await open(url, {
      cache: opts.cache,
      multiRange: opts.multiRange,
      onProgress: (progress) => postMessage({ progress }),
      memoGet: () => opts.memo ?? null,
      memoSet: (v) => postMessage({ memoSet: v }),
    });
    return meta();
  },
  async load([paths]) {
    await snap.load(paths);
    return [...snap.columns.keys()];
  },
  prefetch([paths]) {
    snap.prefetch(paths);
  },
  async column([path]) {
    const c = await snap.column(path);
    // Views of the wasm memory: copied, and the copies moved to the page.
    for (const k of ['values', 'null', 'absent', 'valid', 'offsets']) if (c[k]) c[k] = c[k].slice();
    return c;
  },
  query([q]) {
    return snap.query(q);
  },
  rows([idx, fields]) {
    return snap.rows(idx, fields);
  },
  cells([idx, fields, opts], id) {
    return snap.cells(idx, fields, {
      sliceMs: opts.sliceMs,
      onRow: opts.onRow ? (k, cell) => postMessage({ id, row: [k, cell] }) : undefined,
      cancelled: () => cancelled.has(id),
    });
  },
  strings([path, ids]) {
    return snap.strings(path, ids);
  },
  async applyEvents([ndjson]) {
    const n = await snap.applyEvents(ndjson);
    return { n, meta: meta() };
  },
  stats() {
    return snap.stats();
  },
};

onmessage = async (e) => {
  const m = e.data;
  if (m.cancel !== undefined) {
    cancelled.add(m.cancel);
    return;
  }
  if (m.wasmFollows) {
    wasmFollows = true;
    return;
  }
  if ('wasm' in m) {
    wasmGiven(m.wasm instanceof WebAssembly.Module ? m.wasm : null);
    return;
  }
  if (!wasmFollows) wasmGiven(null);
  const { id, op, args } = m;
  try {
    if (!Object.hasOwn(ops, op) || (op !== 'open' && !snap)) throw new Error(`colsnap worker: no operation ${op} here`);
    const v = await ops[op](args, id);
    postMessage({ id, ok: v }, transferables(v));
  } catch (err) {
    postMessage({ id, err: String(err && err.message ? err.message : err) });
  } finally {
    cancelled.delete(id);
  }
};
