// The colsnap engine: open a .colsnap file by byte ranges, query it
// locally, fetch only the strings shown. ES module over the wasm-bindgen
// output (colsnap_web.js, built by web/build.sh into web/www/pkg/). In the
// browser it runs in a module worker (worker.js), behind colsnap.js (the
// module pages import); in node, colsnap.js runs it in the same thread.
//
// The wasm side never fetches: each call decodes from the ranges fetched so
// far and says which ranges it misses; this module fetches them (in one
// multi-range request, or one `Range` request each where the server cannot
// answer several; large ones kept in the Cache API under the file's ETag)
// and calls again. Planning calls fetch most bytes ahead.

import init, { Reader } from './colsnap_web.js';

let wasmReady = null;
let wasmGiven = null;
// 'page' when the module came compiled from the page, 'fetched' when this
// context fetched it (`stats().wasm`).
let wasmSource = null;
/**
 * Where the wasm module comes from: a promise of the `WebAssembly.Module`
 * the page compiled (null: fetch and compile it here). Set before the
 * first `wasm()` (worker.js).
 */
export function wasmFrom(p) {
  wasmGiven = p;
}
/** Compile and instantiate the wasm module (once). */
export function wasm() {
  if (!wasmReady) {
    wasmReady = (async () => {
      const m = wasmGiven ? await wasmGiven : null;
      const fetched = () => { wasmSource = 'fetched'; return init(); };
      if (!m) return fetched();
      wasmSource = 'page';
      // A module that does not instantiate here: fetched and compiled again.
      return init({ module_or_path: m }).catch(fetched);
    })();
  }
  return wasmReady;
}

// Sections the page lends to a reader (`Reader.lend`): by reader id, the
// reader's lent bytes; the wasm side asks for a copy when it reads them.
const lenders = new Map();
let readerIds = 0;
globalThis.__colsnapLent = (id, start, end) => {
  const lent = lenders.get(id);
  if (lent) for (const [s, b] of lent) if (s <= start && end <= s + b.length) return b.subarray(start - s, end - s);
  return undefined;
};

const CACHE = 'colsnap-ranges-v1';
// Read from the end of the file on open: the footer of most files (a larger
// footer's start comes as a miss). The same as viewer.rs's TAIL_BYTES.
const TAIL = 64 * 1024;
// The file's first bytes, read on open beside the tail: the header (16
// bytes), and for a small file more of it.
const HEAD = 1024;
// Ranges kept in the Cache API: at least this long (columns, the footer).
const CACHE_MIN = 64 * 1024;

/** Let the page run (input, rendering) before the next piece of work. */
export function yieldTask() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((r) => setTimeout(r, 0));
}

function pairs(flat) {
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** Wait for every promise; then throw the first failure, if any (no work left running behind an error). */
async function settled(promises) {
  const out = await Promise.allSettled(promises);
  const bad = out.find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
  return out.map((r) => r.value);
}

/** The `boundary` parameter of a `multipart/byteranges` content type (in any position), else undefined. */
export function boundaryOf(type) {
  const [mime, ...params] = (type || '').split(';');
  if (mime.trim().toLowerCase() !== 'multipart/byteranges') return undefined;
  for (const p of params) {
    const m = /^\s*boundary\s*=\s*("?)([^"]+)\1\s*$/i.exec(p);
    if (m) return m[2];
  }
  return undefined;
}

/** `bytes first-last/total` (total may be `*`): {start, end, total}, or null unless first <= last < total. */
export function parseContentRange(h) {
  const m = /^\s*bytes (\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(h || '');
  if (!m) return null;
  const [start, last, total] = [+m[1], +m[2], m[3] === '*' ? null : +m[3]];
  if (last < start || (total != null && last >= total) || !Number.isSafeInteger(last) || !Number.isSafeInteger(total ?? 0)) return null;
  return { start, end: last + 1, total };
}

/** Reads byte ranges of one URL: fetch with `Range`, Cache API by ETag, progress. */
export class RangeFetcher {
  constructor(url, opts) {
    this.url = new URL(url, globalThis.location?.href).href;
    this.onProgress = opts.onProgress || (() => {});
    this.useCache = opts.cache !== false && typeof caches !== 'undefined';
    // Where the file's ETag and length are kept between visits
    // (`{etag, len}`): localStorage, or the hooks of the page (a worker
    // has no localStorage).
    this.memoGet = opts.memoGet || (() => { try { return JSON.parse(localStorage.getItem('colsnap:' + this.url)); } catch { return null; } });
    this.memoSet = opts.memoSet || ((v) => { try { localStorage.setItem('colsnap:' + this.url, JSON.stringify(v)); } catch { /* private mode */ } });
    this.etag = null;
    this.len = 0;
    this.stats = { requests: 0, networkBytes: 0, cacheHits: 0 };
    this.pending = 0;
    this.done = 0;
    // `fetch` calls running: progress resets to idle when none is left
    // (also after one failed, whose bytes never came).
    this.active = 0;
    // Several ranges in one request (see `fetch`), until the server shows
    // it cannot answer them.
    this.multi = opts.multiRange !== false;
    // The link as seen so far: the least time from a request to its
    // answer's headers (a round trip plus the server's time), in ms, and
    // the rate bodies arrive at while any is arriving (bytes per ms, once
    // RATE_MIN bytes have been timed so): the link's rate where the bodies
    // keep it busy, less where the server is slower.
    this.rtt = Infinity;
    this.rate = 0;
    this.flow = { open: 0, since: 0, ms: 0, bytes: 0 };
    // Until then, what an earlier visit saw (the memo's `link`).
    this.prior = null;
    // The server answered several ranges with the whole file.
    this.singleOnly = false;
    // The protocol of the answers (Resource Timing's nextHopProtocol:
    // 'http/1.1', 'h2', 'h3'), once seen; `protocolLooks` counts the looks
    // (a cross-origin answer without Timing-Allow-Origin may not say).
    this.protocol = null;
    this.protocolLooks = 0;
    // Ranges asked and not yet answered: "start-end" -> promise of bytes.
    this.inflight = new Map();
  }

  /**
   * Whether the answers come over HTTP/2 or HTTP/3, where the browser sends
   * every request at once on one connection, rather than HTTP/1.1, where it
   * keeps 6 in flight per server. Unknown counts as HTTP/1.1.
   */
  multiplexed() {
    if (!this.protocol && this.protocolLooks < 16 && globalThis.performance?.getEntriesByName) {
      this.protocolLooks++;
      const seen = performance.getEntriesByName(this.url).find((e) => e.nextHopProtocol);
      if (seen) this.protocol = seen.nextHopProtocol;
    }
    return !!this.protocol && !/^http\/(0|1)/i.test(this.protocol);
  }

  /** A body starts (+1) or ends (-1) arriving. */
  flowing(d) {
    const f = this.flow;
    const now = performance.now();
    if (d > 0 && f.open++ === 0) f.since = now;
    if (d < 0 && --f.open === 0) {
      f.ms += now - f.since;
      const rate = this.rate;
      if (f.bytes >= RATE_MIN && f.ms > 0) this.rate = f.bytes / f.ms;
      if (this.rate && !(Math.abs(this.rate - rate) <= rate / 4)) this.remember();
    }
  }

  observe(res) {
    const t = res.colsnapTimes;
    if (!t) return;
    const rtt = this.rtt;
    this.rtt = Math.min(this.rtt, t[1] - t[0]);
    if (this.rate && this.rtt < rtt * 0.8) this.remember();
  }

  /**
   * The same file (as far as its ETag tells) from the same URL as on an
   * earlier visit, whose server answered several ranges with the whole
   * file: single ranges from the start (asked again once the file changes).
   */
  recall(memo) {
    if (memo?.link?.single === true && (memo.etag ?? null) === this.etag) {
      this.multi = false;
      this.singleOnly = true;
    }
  }

  /** Keep the file's ETag and length, and what was seen of the link, for the next visit. */
  remember() {
    if (!this.useCache) return;
    const link = { single: this.singleOnly };
    if (this.rate) Object.assign(link, { rtt: this.rtt, rate: this.rate });
    this.memoSet({ etag: this.etag, len: this.len, link });
  }

  /**
   * Asked range by range, how many bytes a request costs on this link:
   * over HTTP/1.1 a browser has 6 requests in flight per server, so a
   * request is a sixth of a round trip, which carries `rtt * rate` bytes;
   * over HTTP/2 or 3 all of them are in flight at once (STREAMS, what
   * servers allow at least), so a request costs next to nothing.
   * SINGLE_GAP until a body of RATE_MIN bytes has been timed (or an
   * earlier visit's numbers); at most MAX_GAP.
   */
  requestBytes() {
    // Save-Data (the user asked for fewer bytes): no bytes for requests.
    if (globalThis.navigator?.connection?.saveData) return SINGLE_GAP;
    const { rtt, rate } = this.rate ? this : this.prior || {};
    return requestGap(rtt, rate, this.multiplexed());
  }

  cacheKey(s, e) {
    return `${this.url}${this.url.includes('?') ? '&' : '?'}colsnap-etag=${encodeURIComponent(this.etag)}&range=${s}-${e}`;
  }

  async cache() {
    if (!this.useCache || !this.etag) return null;
    try {
      return await caches.open(CACHE);
    } catch {
      this.useCache = false;
      return null;
    }
  }

  /**
   * The body of `res`, streamed so that progress moves inside large
   * ranges; more than `limit` bytes (what was asked for) is an error as
   * soon as they come, so that an answer cannot fill the memory (a small
   * gzip body that inflates to gigabytes) or run forever.
   */
  async body(res, expect, limit = Infinity) {
    this.observe(res);
    if (!res.body) {
      const b = new Uint8Array(await res.arrayBuffer());
      if (b.length > limit) throw new Error(`${this.url}: an answer of ${b.length} bytes, ${limit} asked for`);
      return b;
    }
    const reader = res.body.getReader();
    const parts = [];
    let n = 0;
    this.flowing(1);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        n += value.length;
        if (n > limit) {
          reader.cancel().catch(() => {});
          throw new Error(`${this.url}: an answer of more than the ${limit} bytes asked for`);
        }
        this.flow.bytes += value.length;
        this.done += value.length;
        this.onProgress({ loaded: this.done, total: this.pending, expect });
      }
    } finally {
      this.flowing(-1);
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async request(range, extra = {}) {
    this.stats.requests++;
    const headers = { Range: range, ...extra };
    // If-Range takes a strong ETag only (RFC 9110 13.1.5: a server that
    // checks answers a weak one with the whole file); with a weak one the
    // answers' ETags and lengths say whether the file changed.
    if (this.etag && !this.etag.startsWith('W/') && !extra['If-None-Match']) headers['If-Range'] = this.etag;
    const t0 = performance.now();
    const res = await fetch(this.url, { headers, cache: 'no-store' });
    res.colsnapTimes = [t0, performance.now()];
    return res;
  }

  /** Open: the last bytes (one suffix request) and the first kilobyte, in parallel. */
  async open() {
    const memo = this.useCache ? this.memoGet() : null;
    const link = memo?.link;
    if (link && link.rtt >= 0 && link.rate > 0) this.prior = { rtt: +link.rtt, rate: +link.rate };
    if (memo && memo.etag) {
      // A second visit: ask whether the file changed; unchanged, the tail is in the cache.
      const res = await this.request(`bytes=-${TAIL}`, { 'If-None-Match': memo.etag });
      if (res.status === 304) {
        this.etag = memo.etag;
        this.len = memo.len;
        this.recall(memo);
        const c = await this.cache();
        const ts = Math.max(0, this.len - TAIL);
        const [head, tail] = await Promise.all([
          c && c.match(this.cacheKey(0, Math.min(this.len, 1024))),
          c && c.match(this.cacheKey(ts, this.len)),
        ]);
        if (head && tail) {
          this.stats.cacheHits += 2;
          return [[0, new Uint8Array(await head.arrayBuffer())], [ts, new Uint8Array(await tail.arrayBuffer())]];
        }
      } else if (res.ok) {
        return this.afterTail(res, memo);
      }
    }
    // A first visit: the head goes out with the tail, not a round trip
    // after it (the tail's answer brings the ETag and the length it is
    // checked against).
    // A server without ranges answers 200 with the whole file: dropped at
    // once (the tail's answer is that file too).
    const head = this.request(`bytes=0-${HEAD - 1}`).then(
      (r) => (r.status === 206 ? r : (r.body?.cancel().catch(() => {}), null)),
      () => null,
    );
    const res = await this.request(`bytes=-${TAIL}`);
    return this.afterTail(res, memo, head);
  }

  /**
   * The head asked beside the tail (`early`: a promise of its answer), if
   * it is the file's first bytes of the version the tail came from; else
   * null (its body dropped), and the head is asked again.
   */
  async earlyHead(early) {
    const res = await early;
    if (!res) return null;
    const cr = parseContentRange(res.headers.get('Content-Range'));
    const want = Math.min(HEAD, this.len);
    const tag = res.headers.get('ETag');
    if (res.status !== 206 || !cr || cr.start !== 0 || cr.end !== want || cr.total !== this.len || (this.etag && tag !== this.etag)) {
      res.body?.cancel().catch(() => {});
      return null;
    }
    this.pending += want;
    const bytes = await this.body(res, 'footer', want);
    this.stats.networkBytes += bytes.length;
    if (bytes.length !== want) return null;
    const c = await this.cache();
    if (c) c.put(this.cacheKey(0, want), new Response(bytes.slice())).catch(() => {});
    return [0, bytes];
  }

  async afterTail(res, memo = null, early = null) {
    if (res.status === 416) {
      // No byte of the last ones exists: an empty file (RFC 9110 15.5.17:
      // `Content-Range: bytes */LENGTH`).
      const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('Content-Range') || '');
      const len = total ? ` (${total[1]} bytes)` : '';
      throw new Error(`${this.url}: HTTP 416 for its last bytes: the file is empty${len}, not a colsnap snapshot`);
    }
    if (!res.ok) throw new Error(`${this.url}: HTTP ${res.status}`);
    this.etag = res.headers.get('ETag');
    this.recall(memo);
    let start = 0;
    let bytes;
    if (res.status === 206) {
      const cr = parseContentRange(res.headers.get('Content-Range'));
      if (!cr || cr.total == null) throw new Error(`${this.url}: no length in Content-Range`);
      this.len = cr.total;
      start = cr.start;
      this.pending += cr.end - cr.start;
      bytes = await this.body(res, 'footer', cr.end - cr.start);
      if (bytes.length !== cr.end - cr.start) throw new Error(`${this.url}: ${bytes.length} bytes for ${res.headers.get('Content-Range')}`);
    } else {
      // No range support: the whole file came.
      bytes = await this.body(res, 'file');
      this.len = bytes.length;
    }
    this.stats.networkBytes += bytes.length;
    const got = [[start, bytes]];
    if (start > 0) {
      const head = early && (await this.earlyHead(early));
      got.push(head || (await this.fetch([[0, Math.min(HEAD, this.len)]]))[0]);
    } else if (early) {
      // The tail is the whole file: the head is in it.
      early.then((r) => r?.body?.cancel().catch(() => {}));
    }
    if (this.useCache && this.etag) {
      this.remember();
      const c = await this.cache();
      if (c && start > 0) await c.put(this.cacheKey(start, this.len), new Response(bytes));
    }
    return got;
  }

  /**
   * Fetch ranges [[start, end], ...]; returns [[start, Uint8Array], ...].
   * Ranges the Cache API does not hold go out in one request
   * (`Range: bytes=a-b,c-d,...`, at most MULTI_PARTS a request), answered
   * `multipart/byteranges`: over HTTP/1.1 a browser keeps 6 requests in
   * flight per server, so ranges asked one by one cost a round trip per six.
   * A server that answers such a request with the whole file (or one range
   * that does not hold them all), or a fetch that fails (a cross-origin
   * server that refuses the preflight a multi-range `Range` needs), turns
   * this off: ranges are asked one by one, in parallel, from then on
   * (`singleGroups` says which share a request), and on later visits to
   * the same file (`recall`).
   */
  async fetch(ranges) {
    this.active++;
    try {
      // A range on its way for another call is awaited, not asked again:
      // a newer render of the grid takes over the rows of one still
      // fetching (web/www/app.js `render`) and asks for the same string
      // chunks, which went out twice on every sort.
      const out = new Array(ranges.length);
      const ask = [];
      const waits = [];
      ranges.forEach(([s, e], i) => {
        const on = this.inflight.get(`${s}-${e}`);
        if (on) waits.push(on.then((b) => { out[i] = [s, b]; }));
        else ask.push(i);
      });
      if (ask.length) {
        const run = this.fetchAll(ask.map((i) => ranges[i]));
        ask.forEach((i, j) => {
          const key = `${ranges[i][0]}-${ranges[i][1]}`;
          const bytes = run.then((r) => r[j][1]);
          this.inflight.set(key, bytes);
          bytes.catch(() => {}).finally(() => { if (this.inflight.get(key) === bytes) this.inflight.delete(key); });
        });
        waits.push(run.then((r) => ask.forEach((i, j) => { out[i] = r[j]; })));
      }
      await settled(waits);
      return out;
    } finally {
      if (--this.active === 0) { this.done = 0; this.pending = 0; this.onProgress({ loaded: 0, total: 0, expect: 'idle' }); }
    }
  }

  async fetchAll(ranges) {
    const c = await this.cache();
    this.pending += ranges.reduce((n, [s, e]) => n + (e - s), 0);
    // Small ranges (string chunks of the rows on screen, a few dozen KB
    // each; not the header, which a second visit opens with) skip the
    // Cache API: while scrolling, putting and matching them cost the page
    // more than fetching them again would.
    const keyOf = (s, e) => c && (e - s >= CACHE_MIN || s === 0) && this.cacheKey(s, e);
    const got = new Array(ranges.length);
    const fromCache = async (i) => {
      const [s, e] = ranges[i];
      const key = keyOf(s, e);
      const hit = key && (await c.match(key));
      if (!hit) return false;
      this.stats.cacheHits++;
      got[i] = new Uint8Array(await hit.arrayBuffer());
      this.done += got[i].length;
      this.onProgress({ loaded: this.done, total: this.pending, expect: 'cache' });
      return true;
    };
    const keep = (i, b) => {
      got[i] = b;
      const key = keyOf(...ranges[i]);
      if (key) c.put(key, new Response(b.slice())).catch(() => {});
    };
    // One request for the ranges `group` (indexes, by start) and the gaps
    // between them.
    const one = async (group) => {
      const s = ranges[group[0]][0];
      const e = group.reduce((m, i) => Math.max(m, ranges[i][1]), s);
      const res = await this.request(`bytes=${s}-${e - 1}`);
      if (res.status === 200) throw new Error(`${this.url} changed on the server (reload the page)`);
      if (res.status !== 206) throw new Error(`${this.url}: HTTP ${res.status} for bytes ${s}-${e - 1}`);
      // The bytes asked for, or an error (not bytes of another range or
      // version; a cross-origin answer may hide its Content-Range).
      const cr = parseContentRange(res.headers.get('Content-Range'));
      if (cr && (cr.start !== s || cr.end !== e || (cr.total != null && cr.total !== this.len))) {
        throw new Error(`${this.url}: asked for bytes ${s}-${e - 1} of ${this.len}, answered ${res.headers.get('Content-Range')}`);
      }
      this.sameVersion(res);
      const b = await this.body(res, 'data', e - s);
      this.stats.networkBytes += b.length;
      if (b.length !== e - s) throw new Error(`${this.url}: asked for ${e - s} bytes (${s}-${e - 1}), answered ${b.length}`);
      for (const i of group) keep(i, group.length === 1 ? b : b.slice(ranges[i][0] - s, ranges[i][1] - s));
    };
    const cached = await Promise.all(ranges.map((_, i) => fromCache(i)));
    const missed = ranges.map((_, i) => i).filter((i) => !cached[i]);
    if (this.multi && missed.length > 1) {
      missed.sort((a, b) => ranges[a][0] - ranges[b][0]);
      const batches = [];
      for (let k = 0; k < missed.length; k += MULTI_PARTS) batches.push(missed.slice(k, k + MULTI_PARTS));
      await settled(batches.map((b) => this.several(b, ranges, keep)));
    }
    await settled(singleGroups(missed.filter((i) => !got[i]).map((i) => [i, ...ranges[i]]), this.requestBytes()).map(one));
    return ranges.map(([s], i) => [s, got[i]]);
  }

  /** With a weak ETag (no If-Range), an answer with another ETag is another version of the file. */
  sameVersion(res) {
    const tag = res.headers.get('ETag');
    if (this.etag?.startsWith('W/') && tag && tag !== this.etag) throw new Error(`${this.url} changed on the server (reload the page)`);
  }

  /** The ranges `which` (indexes into `ranges`) in one multi-range request; `keep(i, bytes)` each one answered. */
  async several(which, ranges, keep) {
    const spec = which.map((i) => `${ranges[i][0]}-${ranges[i][1] - 1}`).join(',');
    let res;
    try {
      res = await this.request(`bytes=${spec}`);
    } catch {
      this.multi = false;
      return;
    }
    if (res.status === 200) {
      res.body?.cancel().catch(() => {});
      const tag = res.headers.get('ETag');
      if (this.etag && tag && tag !== this.etag) throw new Error(`${this.url} changed on the server (reload the page)`);
      this.multi = false;
      this.singleOnly = true;
      this.remember();
      return;
    }
    if (res.status !== 206) throw new Error(`${this.url}: HTTP ${res.status} for ${which.length} ranges`);
    this.sameVersion(res);
    const boundary = boundaryOf(res.headers.get('Content-Type'));
    // At most the span of the ranges (a server may merge them) and each
    // part's headers.
    const span = Math.max(...which.map((i) => ranges[i][1])) - Math.min(...which.map((i) => ranges[i][0]));
    const body = await this.body(res, 'data', span + 512 * which.length + 4096);
    this.stats.networkBytes += body.length;
    let parts;
    if (boundary) {
      parts = multipartParts(body, boundary, this.url);
    } else {
      const cr = parseContentRange(res.headers.get('Content-Range'));
      if (!cr || cr.end - cr.start !== body.length) throw new Error(`${this.url}: a 206 answer without multipart parts nor a valid Content-Range`);
      parts = [[cr.start, body, cr.total]];
    }
    for (const [start, bytes, total] of parts) if (total != null && total !== this.len) throw new Error(`${this.url} changed on the server (reload the page)`);
    let all = true;
    for (const i of which) {
      const [s, e] = ranges[i];
      const p = parts.find(([ps, pb]) => ps <= s && e <= ps + pb.length);
      if (p) keep(i, p[1].slice(s - p[0], e - p[0]));
      else all = false;
    }
    // One range that does not hold them all: a server that merges or
    // answers the first range only; asked one by one from now on.
    if (!all) {
      this.multi = false;
      this.singleOnly = true;
      this.remember();
    }
  }
}

const MULTI_PARTS = 100;
// Asked range by range (a server without multi-range answers), ranges at
// most this far apart are always one request: the viewer merges only
// within 512 bytes, for multi-range requests, where a gap costs bytes and
// no request. Further apart, up to what a request costs on the link
// (`requestBytes`, at most MAX_GAP; timed on bodies of RATE_MIN bytes or
// more), see `singleGroups`.
const SINGLE_GAP = 4096;
const MAX_GAP = 64 * 1024;
const RATE_MIN = 32 * 1024;
// Requests in flight at once over HTTP/2 or 3: the least that servers
// allow (RFC 9113 5.1.2 recommends no fewer than 100).
const STREAMS = 100;

/**
 * The gap, in bytes, that costs the link about what one more request does
 * (`RangeFetcher.requestBytes`): a round trip's bytes (`rtt` ms times
 * `rate` bytes a ms) over the requests in flight at once, 6 over HTTP/1.1
 * and STREAMS when `multiplexed` (HTTP/2, 3); within SINGLE_GAP..MAX_GAP,
 * SINGLE_GAP while the link is not timed.
 */
export function requestGap(rtt, rate, multiplexed = false) {
  if (!(rtt >= 0 && rate > 0)) return SINGLE_GAP;
  return Math.min(MAX_GAP, Math.max(SINGLE_GAP, Math.round((rtt * rate) / (multiplexed ? STREAMS : 6))));
}

/**
 * Requests for ranges asked one by one: `items` are [index, start, end];
 * returns groups of indexes, each one request (the ranges and the gaps
 * between them). Ranges at most SINGLE_GAP apart share a request, and so
 * do ranges at most `gapMax` apart: the bytes of a smaller gap take less
 * of the link than a request does (`requestBytes`).
 */
export function singleGroups(items, gapMax = SINGLE_GAP) {
  const max = Math.max(SINGLE_GAP, gapMax);
  const groups = [];
  let end = -Infinity;
  for (const [i, s, e] of [...items].sort((a, b) => a[1] - b[1])) {
    if (s - end <= max) groups[groups.length - 1].push(i);
    else groups.push([i]);
    end = Math.max(end, e);
  }
  return groups;
}

function indexOf(b, pat, from) {
  outer: for (let i = from; i + pat.length <= b.length; i++) {
    for (let k = 0; k < pat.length; k++) if (b[i + k] !== pat[k]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The parts of a `multipart/byteranges` body (RFC 9110 section 14.6):
 * [[start, bytes, total]], each cut by the length its own `Content-Range`
 * gives (never by searching the data for the boundary).
 */
export function multipartParts(body, boundary, what = 'answer') {
  const enc = new TextEncoder();
  const delim = enc.encode('--' + boundary);
  const crlf2 = enc.encode('\r\n\r\n');
  const dec = new TextDecoder();
  const parts = [];
  let at = 0;
  for (;;) {
    const i = indexOf(body, delim, at);
    if (i < 0) throw new Error(`${what}: multipart answer without its closing delimiter`);
    at = i + delim.length;
    if (body[at] === 45 && body[at + 1] === 45) return parts; // "--": the end
    const h = indexOf(body, crlf2, at);
    if (h < 0) throw new Error(`${what}: multipart part without the end of its headers`);
    const cr = parseContentRange(/^content-range:\s*(.*)$/im.exec(dec.decode(body.subarray(at, h)))?.[1]);
    at = h + 4;
    if (!cr || at + (cr.end - cr.start) > body.length) throw new Error(`${what}: multipart part without a valid Content-Range`);
    parts.push([cr.start, body.subarray(at, at + cr.end - cr.start), cr.total]);
    at += cr.end - cr.start;
  }
}

/** An open snapshot (in the thread that runs the wasm). */
export class Snapshot {
  constructor(fetcher, reader, memory, id) {
    this.id = id;
    // Section bytes lent to the reader: start -> Uint8Array.
    this.lent = new Map();
    lenders.set(id, this.lent);
    this.fetcher = fetcher;
    this.reader = reader;
    this.memory = memory;
    this.columns = new Map();
    // Column sections fetched ahead (`prefetch`): start -> [end, Promise<bytes>].
    this.prefetched = new Map();
    // Ranges fetched during the outermost operation running (see `op`).
    this.taken = null;
    this.depth = 0;
  }

  /**
   * Run `f`; the byte ranges fetched meanwhile are dropped from the wasm
   * memory when it ends: they are decoded by then (columns, string chunks
   * in the decoded-chunk cache), and a later read of them is answered from
   * the Cache API.
   */
  async op(f) {
    if (this.depth++ === 0) this.taken = [];
    try {
      return await f();
    } finally {
      if (--this.depth === 0) {
        const t = this.taken;
        this.taken = null;
        if (t && t.length) this.reader.release(Float64Array.from(t));
      }
    }
  }

  /** The file's ETag (its version; the Cache API keeps ranges under it), or null. */
  get etag() {
    return this.fetcher.etag;
  }

  refresh() {
    const s = JSON.parse(this.reader.schema());
    /** Rows in the view (snapshot plus events). */
    this.rowCount = s.rows;
    /** Columns: [{path, type, list}]. */
    this.fields = s.fields;
    this.fileLen = s.fileLen;
    this.eventCount = s.events;
    this.columns = new Map();
  }

  /**
   * Fetch ranges `[start, end, ...]` and hand them to wasm; `keep`: not
   * released by `op`; `lent` (an array): lent (`Reader.lend`), not
   * provided, their starts pushed to it.
   */
  async need(flat, keep = false, lent = null) {
    const r = pairs(flat);
    if (!r.length) return;
    // A range a `prefetch` is fetching already (a column's source column,
    // missed while the column prefetched for it waits its turn) is taken
    // from it, and left there for that column's `load`.
    const early = [];
    const rest = [];
    for (const [s, e] of r) {
      let b = null;
      for (const [ps, [pe, p]] of this.prefetched) {
        if (ps <= s && e <= pe) {
          const got = await p;
          if (got && got.length >= e - ps) b = got.subarray(s - ps, e - ps);
          break;
        }
      }
      if (b) early.push([s, b]); else rest.push([s, e]);
    }
    for (const [s, b] of [...early, ...(rest.length ? await this.fetcher.fetch(rest) : [])]) {
      if (lent) {
        this.lent.set(s, b);
        this.reader.lend(s, s + b.length);
        lent.push(s);
      } else {
        this.reader.provide(s, b);
      }
      if (this.taken && !keep) this.taken.push(s, s + b.length);
    }
  }

  /** Run `f` against the bytes fetched; fetch what it misses (lent to `lent`, see `need`) and run it again. */
  async retry(f, lent = null) {
    for (let round = 0; ; round++) {
      try {
        return f();
      } catch (e) {
        const miss = this.reader.missing();
        if (!miss.length || round > 1000) throw e;
        await this.need(miss, false, lent);
      }
    }
  }

  /** Load columns (fetching their sections in one round). */
  async load(paths) {
    const todo = paths.filter((p) => !this.columns.has(p));
    if (!todo.length) return;
    // One round of requests for every column, held by JavaScript; each
    // column's bytes enter the wasm memory just before it decodes and
    // leave it once decoded. The wasm memory never shrinks (its peak is
    // what the page keeps), so it never holds more than one column's
    // compressed bytes and decode temporaries at a time.
    const plans = todo.map((p) => pairs(this.reader.planColumns(JSON.stringify([p]))));
    const byStart = new Map();
    for (const plan of plans) for (const r of plan) if (!byStart.has(r[0]) || byStart.get(r[0])[1] < r[1]) byStart.set(r[0], r);
    // Ranges `prefetch` asked for already are taken from it.
    const early = new Map();
    for (const [s, [, e]] of byStart) {
      const [, p] = this.prefetched.get(s) ?? [];
      if (!p) continue;
      this.prefetched.delete(s);
      const b = await p;
      if (b && b.length >= e - s) early.set(s, b);
    }
    const rest = [...byStart.values()].filter((r) => !early.has(r[0])).sort((a, b) => a[0] - b[0]);
    const got = new Map([...early, ...(rest.length ? await this.fetcher.fetch(rest) : [])]);
    for (let i = 0; i < todo.length; i++) {
      // Lent, not provided: the wasm side copies a section in when it
      // decodes it, after allocating the column's arrays (its memory
      // never shrinks: bytes copied in first would leave a hole below them).
      // So are the sections it misses (a mapped column's source columns,
      // named in its bytes).
      const mine = [];
      for (const [s] of plans[i]) {
        const b = got.get(s);
        if (b) {
          this.lent.set(s, b);
          this.reader.lend(s, s + b.length);
          mine.push(s);
        }
      }
      let d;
      try {
        d = JSON.parse(await this.op(() => this.retry(() => this.reader.column(todo[i]), mine)));
      } finally {
        for (const s of mine) this.lent.delete(s);
      }
      this.columns.set(todo[i], d);
      this.reader.release(Float64Array.from(plans[i].flat()));
      // A range no later column plans is not needed again.
      for (const [s] of plans[i]) if (!plans.slice(i + 1).some((p) => p.some((r) => r[0] === s))) got.delete(s);
    }
  }

  /**
   * Start fetching the sections of columns (not decoding them): a later
   * `load` of them takes the bytes from here. The page asks for the
   * columns on screen while the sort column decodes.
   */
  prefetch(paths) {
    const todo = paths.filter((p) => !this.columns.has(p));
    if (!todo.length) return;
    // Planned column by column, as `load` plans them (the same ranges).
    const ranges = [];
    for (const p of todo) for (const r of pairs(this.reader.planColumns(JSON.stringify([p])))) if (!this.prefetched.has(r[0]) && !ranges.some((x) => x[0] === r[0])) ranges.push(r);
    if (!ranges.length) return;
    const all = this.fetcher.fetch(ranges).then((got) => new Map(got), () => new Map());
    // Kept until a `load` takes them (a failed prefetch leaves it to fetch).
    ranges.forEach(([s, e]) => this.prefetched.set(s, [e, all.then((m) => m.get(s))]));
  }

  /**
   * A column as typed arrays over the wasm memory (no copy): `values`
   * (Uint32Array string ids / list lengths, BigInt64Array integers and
   * timestamp seconds, Uint8Array booleans, Float64Array other numbers),
   * `null`/`absent`/`valid` bitmaps (Uint32Array, bit i at [i >>> 5] >>> (i & 31)),
   * `offsets` (Uint32Array, rows + 1) for columns inside arrays. The views
   * are valid until `applyEvents` (and are rebuilt if the memory grew).
   */
  async column(path) {
    await this.load([path]);
    const d = this.columns.get(path);
    const buf = this.memory.buffer;
    const T = { u32: Uint32Array, i64: BigInt64Array, u8: Uint8Array, f64: Float64Array }[d.kind];
    const bits = (p) => (p ? new Uint32Array(buf, p, d.words * 2) : null);
    return {
      path: d.path, type: d.type, kind: d.kind, sentinels: d.sentinels,
      values: new T(buf, d.ptr, d.len),
      null: bits(d.nullPtr), absent: bits(d.absentPtr), valid: bits(d.validPtr),
      offsets: d.offsetsPtr ? new Uint32Array(buf, d.offsetsPtr, this.rowCount + 1) : null,
    };
  }

  /**
   * Sort, filter, search: `{sort: '-updated_at,title', where: ['state=open'],
   * search: 'crash', in: ['title'], offset, limit}` (strings as in
   * docs/query.md). Returns `{total, rows}`: every matching row index in
   * result order (a Uint32Array copy), and `page`, the rows of
   * `offset..offset+limit` when a limit is given.
   */
  async query(q = {}) {
    return this.op(() => this.query1(q));
  }

  async query1(q) {
    const spec = JSON.stringify({ sort: q.sort || '', where: q.where || [], search: q.search || '', in: q.in || [] });
    await this.need(this.reader.planQuery(spec));
    if (q.search) {
      const cols = q.in && q.in.length ? q.in : this.fields.filter((f) => f.type === 'string').map((f) => f.path);
      await this.load(cols);
      await this.need(this.reader.planSearch(JSON.stringify(q.in || [])));
    }
    const total = await this.retry(() => this.reader.query(spec));
    const rows = new Uint32Array(this.memory.buffer, this.reader.resultPtr(), total).slice();
    this.reader.clearResult();
    const out = { total, rows };
    if (q.limit) {
      const off = q.offset || 0;
      out.page = rows.subarray(off, off + q.limit);
    }
    return out;
  }

  /** Rows (indexes into the view) as objects, restricted to `fields` (all when empty). */
  async rows(indexes, fields = []) {
    return this.op(() => this.rows1(indexes, fields));
  }

  async rows1(indexes, fields) {
    const idx = indexes instanceof Uint32Array ? indexes : Uint32Array.from(indexes);
    // With events applied, columns inside arrays do not load (the rows
    // still write them): the misses are fetched as they come.
    if (fields.length && !this.eventCount) {
      await this.load(fields);
      await this.need(this.reader.planRows(idx, JSON.stringify(fields)));
    }
    return JSON.parse(await this.retry(() => this.reader.rows(idx, JSON.stringify(fields))));
  }

  /**
   * The cells of rows (indexes into the view) in the columns `fields`:
   * objects keyed by display path (`{"number": 7, "labels[].name": ["bug"],
   * "created_at": "2024-05-01T12:00:00Z"}`, absent cells left out), written
   * from the loaded columns, so the columns are decoded once, as typed
   * arrays (what a grid shows). With events applied: `rows` (nested objects).
   */
  async cells(indexes, fields, opts = {}) {
    const idx = indexes instanceof Uint32Array ? indexes : Uint32Array.from(indexes);
    return this.op(async () => {
      const fj = JSON.stringify(fields);
      // With events applied: nested rows (see `rows`).
      const some = this.eventCount
        ? (sub) => this.rows1(sub, fields)
        : async (sub) => JSON.parse(await this.retry(() => this.reader.cells(sub, fj)));
      if (!this.eventCount) {
        await this.load(fields);
        // Cancelled while the columns loaded: nothing more to fetch.
        if (opts.cancelled && opts.cancelled()) return [];
        await this.need(this.reader.planRows(idx, fj));
      }
      if (!opts.sliceMs) return some(idx);
      // Row by row, yielding to the page whenever a slice of work ran
      // `sliceMs` (each row decodes at most a few string chunks), so that
      // no task runs long while the rows on screen fill in.
      const out = [];
      let t0 = performance.now();
      for (let i = 0; i < idx.length; i++) {
        if (opts.cancelled && opts.cancelled()) break;
        const [cell] = await some(idx.subarray(i, i + 1));
        out.push(cell);
        if (opts.onRow) opts.onRow(i, cell);
        if (performance.now() - t0 > opts.sliceMs && i + 1 < idx.length) {
          await yieldTask();
          t0 = performance.now();
        }
      }
      return out;
    });
  }

  /** One row, every field (or `fields`): the long text comes with it. */
  async row(i, fields = []) {
    return (await this.rows([i], fields))[0];
  }

  /** The strings of string ids of column `path`, fetching only their chunks. */
  async strings(path, ids) {
    const a = ids instanceof Uint32Array ? ids : Uint32Array.from(ids);
    return this.op(async () => {
      await this.need(this.reader.planStrings(path, a));
      return JSON.parse(await this.retry(() => this.reader.strings(path, a)));
    });
  }

  /** Apply NDJSON events (docs/events) after those applied before. */
  async applyEvents(ndjson) {
    const n = await this.op(() => this.retry(() => this.reader.applyEvents(ndjson)));
    this.refresh();
    return n;
  }

  /** Forget the bytes lent to the reader (colsnap.js's `close` stops a worker). */
  close() {
    lenders.delete(this.id);
  }

  /** Bytes: fetched from the file, typed arrays loaded, wasm memory; requests made. */
  async stats() {
    return { ...JSON.parse(this.reader.stats()), wasmMemory: this.memory.buffer.byteLength, ...this.fetcher.stats, protocol: this.fetcher.protocol ?? null, wasm: wasmSource };
  }
}

/**
 * Open a snapshot: a `.colsnap` URL read by byte ranges, or a published
 * snapshot (SPEC.md section 15) by its pointer (`NAME.latest.json`) or
 * manifest (`manifests/HEX.json`) URL, whose event segments are applied.
 * Options: onProgress({loaded, total}), cache (default true).
 */
export async function open(url, opts = {}) {
  const abs = new URL(url, globalThis.location?.href).href;
  const published = /\.json(?:[?#].*)?$/.test(abs);
  // The module compiles while the first bytes come.
  let pub = null;
  let f = null;
  const first = published
    ? import('./published.js').then(async (m) => { pub = await m.readManifest(abs); f = new m.ObjectFetcher(pub.root, pub.manifest, opts); pub.segments = m.segments; return f.open(); })
    : (f = new RangeFetcher(url, opts)).open();
  const [w, parts] = await Promise.all([wasm(), first]);
  const id = ++readerIds;
  const reader = new Reader(f.len, id);
  for (const [s, b] of parts) reader.provide(s, b);
  const snap = new Snapshot(f, reader, w.memory, id);
  await snap.retry(() => reader.open());
  snap.refresh();
  if (pub && snap.rowCount !== pub.manifest.snapshot.rows && !(pub.manifest.events || []).length) {
    throw new Error(`${abs}: the manifest says ${pub.manifest.snapshot.rows} rows, the snapshot has ${snap.rowCount}`);
  }
  if (pub && (pub.manifest.events || []).length) {
    // Event segments recorded after the snapshot, in order.
    const texts = await pub.segments(pub);
    await snap.applyEvents(texts.join('\n'));
  }
  return snap;
}
