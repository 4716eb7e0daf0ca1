// Published snapshots (SPEC.md section 15) for colsnap.js: read a pointer
// or manifest, fetch whole objects checked against their SHA-256. Loaded
// only when `open` is given a pointer or manifest URL (a chunk of its own in
// the page's bundle).

const CACHE = 'colsnap-ranges-v1';

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) throw new Error('a published snapshot needs crypto.subtle (a secure context: https or localhost)');
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

/** The body of `res`, at most `cap` bytes (more is an error as soon as it comes: an answer cannot fill the memory). */
async function readAtMost(res, cap, what) {
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    if (b.length > cap) throw new Error(`${what}: more than the ${cap} bytes expected`);
    return b;
  }
  const reader = res.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > cap) {
      reader.cancel().catch(() => {});
      throw new Error(`${what}: more than the ${cap} bytes expected`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Pointers and manifests are read up to this size. */
const MANIFEST_MAX = 64 << 20;

/** Wait for every promise; then throw the first failure, if any. */
async function settled(promises) {
  const out = await Promise.allSettled(promises);
  const bad = out.find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
  return out.map((r) => r.value);
}

function base64(s) {
  if (typeof s !== 'string') throw new Error('not a base64 string');
  let bin;
  try { bin = atob(s); } catch { throw new Error('not base64'); }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Reads byte ranges of a published snapshot (SPEC.md section 15): whole
 * immutable objects named by their SHA-256, each checked (length and hash)
 * before any byte of it is used, kept in the Cache API by name (they never
 * change), cut to the ranges asked for.
 */
export class ObjectFetcher {
  constructor(root, manifest, opts) {
    this.root = root;
    this.m = manifest;
    this.onProgress = opts.onProgress || (() => {});
    this.useCache = opts.cache !== false && typeof caches !== 'undefined';
    // The snapshot's identity: what the ETag is to a plain file.
    this.etag = manifest.snapshot.sha256;
    this.len = manifest.snapshot.len;
    this.objects = manifest.objects;
    this.stats = { requests: 0, networkBytes: 0, cacheHits: 0 };
    this.pending = 0;
    this.done = 0;
    this.active = 0;
    this.inflight = new Map();
  }

  /** Header and tail from the manifest: nothing fetched. */
  async open() {
    const m = this.m;
    return [[0, base64(m.head)], [m.tail.offset, base64(m.tail.data)]];
  }

  /** Objects overlapping a..b (the objects tile the file, in order). */
  overlapping(a, b) {
    const o = this.objects;
    let lo = 0, hi = o.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (o[mid].offset <= a) lo = mid; else hi = mid - 1;
    }
    const out = [];
    for (let k = lo; k < o.length && o[k].offset < b; k++) out.push(k);
    return out;
  }

  async object(k) {
    if (!this.inflight.has(k)) this.inflight.set(k, this.load(k).finally(() => this.inflight.delete(k)));
    return this.inflight.get(k);
  }

  async load(k) {
    const o = this.objects[k];
    this.pending += o.len;
    const url = new URL(`objects/${o.sha256}`, this.root).href;
    let bytes = null;
    let c = null;
    if (this.useCache) {
      try { c = await caches.open(CACHE); } catch { this.useCache = false; }
    }
    const hit = c && (await c.match(url));
    if (hit) {
      this.stats.cacheHits++;
      bytes = new Uint8Array(await hit.arrayBuffer());
    } else {
      this.stats.requests++;
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      bytes = await readAtMost(res, o.len, url);
      this.stats.networkBytes += bytes.length;
    }
    if (bytes.length !== o.len) throw new Error(`${url}: ${bytes.length} bytes, the manifest says ${o.len}`);
    const h = await sha256(bytes);
    if (h !== o.sha256) throw new Error(`${url}: its bytes hash to ${h}, not to its name`);
    if (c && !hit) c.put(url, new Response(bytes.slice())).catch(() => {});
    this.done += bytes.length;
    this.onProgress({ loaded: this.done, total: this.pending, expect: hit ? 'cache' : 'data' });
    return bytes;
  }

  /** Fetch ranges [[start, end], ...]; returns [[start, Uint8Array], ...]. */
  async fetch(ranges) {
    const need = new Set();
    for (const [a, b] of ranges) for (const k of this.overlapping(a, b)) need.add(k);
    this.active++;
    try {
      const got = new Map(await settled([...need].map(async (k) => [k, await this.object(k)])));
      return ranges.map(([a, b]) => {
        const ks = this.overlapping(a, b);
        const out = new Uint8Array(b - a);
        for (const k of ks) {
          const o = this.objects[k];
          const bytes = got.get(k);
          const from = Math.max(a, o.offset);
          const to = Math.min(b, o.offset + o.len);
          out.set(bytes.subarray(from - o.offset, to - o.offset), from - a);
        }
        return [a, out];
      });
    } finally {
      // Idle once no fetch runs (also after one failed, whose bytes never came).
      if (--this.active === 0) { this.done = 0; this.pending = 0; this.onProgress({ loaded: 0, total: 0, expect: 'idle' }); }
    }
  }
}

/**
 * Read a pointer (`NAME.latest.json`) or a manifest (`manifests/HEX.json`)
 * and check it as SPEC.md section 15 says: its bytes hash to its name (and
 * to the pointer's `sha256`), the objects tile the file, the tail is the
 * last object. Returns `{root, manifest}` (or null when `url` answers
 * something else than JSON).
 */
export async function readManifest(url) {
  const res = await fetch(url, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  let bytes = await readAtMost(res, MANIFEST_MAX, url);
  let doc;
  try { doc = JSON.parse(new TextDecoder().decode(bytes)); } catch { throw new Error(`${url}: not JSON (a pointer or a manifest of a published snapshot)`); }
  let murl = res.url || url;
  let want = null;
  let pointer = null;
  if (doc && typeof doc.manifest === 'string' && doc.colsnap_manifest === undefined) {
    // A pointer: the manifest is relative to the pointer's directory,
    // and must hash to the pointer's `sha256` (SPEC.md 15.4 step 1).
    want = doc.sha256;
    if (!HEX64.test(want || '')) throw new Error(`${url}: a pointer without the manifest's sha256`);
    if (doc.manifest !== `manifests/${want}.json`) throw new Error(`${url}: the manifest must be manifests/SHA256.json, SHA256 its sha256`);
    pointer = doc;
    murl = new URL(doc.manifest, murl).href;
    const r2 = await fetch(murl);
    if (!r2.ok) throw new Error(`${murl}: HTTP ${r2.status}`);
    bytes = await readAtMost(r2, MANIFEST_MAX, murl);
    try { doc = JSON.parse(new TextDecoder().decode(bytes)); } catch { throw new Error(`${murl}: not JSON (the manifest the pointer ${url} names)`); }
  }
  const m = doc;
  if (!m || m.colsnap_manifest !== 1) throw new Error(`${murl}: not a colsnap manifest (colsnap_manifest ${m && m.colsnap_manifest})`);
  const known = ['colsnap_manifest', 'snapshot', 'head', 'tail', 'objects', 'events'];
  const extra = Object.keys(m).filter((k) => !known.includes(k));
  if (extra.length) throw new Error(`${murl}: unknown manifest keys ${extra.join(', ')}`);
  const h = await sha256(bytes);
  const name = /manifests\/([0-9a-f]{64})\.json(?:[?#].*)?$/.exec(murl);
  if (name && name[1] !== h) throw new Error(`${murl}: the manifest hashes to ${h}, not to its name`);
  if (want && want !== h) throw new Error(`${murl}: the manifest hashes to ${h}, the pointer says ${want}`);
  const len = m.snapshot?.len;
  const objs = m.objects;
  const bad = (why) => new Error(`${murl}: ${why}`);
  if (!Number.isSafeInteger(len) || len < 0 || !HEX64.test(m.snapshot.sha256 || '')) throw bad('bad snapshot entry');
  if (!Array.isArray(objs) || !objs.length) throw bad('no objects');
  let at = 0;
  for (const o of objs) {
    if (!o || typeof o !== 'object' || !HEX64.test(o.sha256 || '') || o.offset !== at || !Number.isSafeInteger(o.len) || o.len < 1) throw bad(`the objects do not tile the file (at byte ${at})`);
    at += o.len;
  }
  if (at !== len) throw bad(`the objects end at ${at}, the file at ${len}`);
  const b64 = (v, what) => { try { return base64(v); } catch (e) { throw bad(`${what}: ${e.message}`); } };
  const tail = b64(m.tail?.data ?? '', 'tail.data');
  if (m.tail?.offset + tail.length !== len) throw bad('tail.data does not end the file');
  const last = objs[objs.length - 1];
  if (last.offset !== m.tail.offset || (await sha256(tail)) !== last.sha256) throw bad('tail.data is not the last object');
  if (b64(m.head ?? '', 'head').length !== Math.min(16, len)) throw bad('head is not the header');
  if (!Array.isArray(m.events)) throw bad('events is not an array (every manifest key is required: [] when there are none)');
  for (const e of m.events) {
    if (!e || typeof e !== 'object' || !HEX64.test(e.sha256 || '') || !Number.isSafeInteger(e.len) || e.len < 1) throw bad('bad event segment');
  }
  if (pointer && (pointer.snapshot !== m.snapshot.sha256 || pointer.rows !== m.snapshot.rows)) {
    throw new Error(`${url}: names snapshot ${pointer.snapshot} of ${pointer.rows} rows, the manifest ${m.snapshot.sha256} of ${m.snapshot.rows}`);
  }
  // ROOT: the directory above manifests/.
  const root = new URL('..', new URL('.', murl)).href;
  return { root, manifest: m };
}

/** The texts of a manifest's event segments, in order, each checked against its hash. */
export async function segments(pub) {
  return Promise.all((pub.manifest.events || []).map(async (e) => {
    const u = new URL(`objects/${e.sha256}`, pub.root).href;
    const r = await fetch(u);
    if (!r.ok) throw new Error(`${u}: HTTP ${r.status}`);
    const b = await readAtMost(r, e.len, u);
    if (b.length !== e.len) throw new Error(`${u}: ${b.length} bytes, the manifest says ${e.len}`);
    if ((await sha256(b)) !== e.sha256) throw new Error(`${u}: its bytes hash to another name`);
    return new TextDecoder().decode(b);
  }));
}
