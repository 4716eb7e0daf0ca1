// The browser grid: every row of a .colsnap file, sorted, filtered and
// searched locally (wasm), strings fetched only for the rows on screen.
// Open as /web/ from colsnap-serve (first snapshot served), or from any
// static server as index.html?file=URL-of-a.colsnap.
import { open, preload } from './pkg/colsnap.js';

// The engine's worker starts (and compiles the wasm) while the page finds
// what to open.
preload();

const $ = (id) => document.getElementById(id);
const ROW = 34;              // px, matches --row
// Below every browser's element height limit; beyond it the scrollbar is
// scaled (?maxpx=N lowers it, for tests).
const MAX_PX = +new URLSearchParams(location.search).get('maxpx') || 8_000_000;
const OVERSCAN = 8;
const SLICE_MS = 12;    // decode work between two yields to the page

// Columns shown: one per role, a column named by one of the role's names, as
// a path or as the end of one after a dot (`summary` finds Jira's
// `fields.summary`, `status.name` its `fields.status.name`; the least nested
// one wins, then the earlier name), of a type the role takes and outside
// arrays (but labels). The names are those of GitHub's, GitLab's and Jira's
// issues; with fewer than 3 roles found, the first 8 scalar columns. The grid
// sorts by `Updated`, newest first, when it has one. (benches/ratio.rs
// mirrors this for its page bytes.)
const NUMERIC = new Set(['i64', 'u64', 'f64', 'number']);
const DATES = ['timestamp', 'string', ...NUMERIC];
const ROLES = [
  { label: 'ID', width: '72px', textWidth: '112px', names: ['number', 'iid', 'key'] },
  { label: 'Title', width: 'minmax(260px, 3fr)', names: ['title', 'summary', 'subject'], types: ['string'] },
  { label: 'State', width: '88px', names: ['state', 'status.name', 'status'], types: ['string'] },
  { label: 'Labels', width: 'minmax(140px, 1.3fr)', names: ['labels[].name', 'labels[]'], types: ['string'], list: true },
  { label: 'Author', width: 'minmax(100px, .8fr)', names: ['user.login', 'author.username', 'author.login', 'reporter.displayName', 'creator.displayName', 'author.name', 'reporter.name', 'creator.name'], types: ['string'] },
  { label: 'Comments', width: '108px', names: ['comments', 'comment.total', 'user_notes_count'], types: [...NUMERIC] },
  { label: 'Created', width: '104px', names: ['created_at', 'created', 'createdAt'], types: DATES },
  { label: 'Updated', width: '104px', names: ['updated_at', 'updated', 'updatedAt'], types: DATES, sort: true },
];
const DETAIL = ['number', 'title', 'state', 'state_reason', 'user.login', 'labels[].name', 'assignees[].login',
  'milestone.title', 'comments', 'created_at', 'updated_at', 'closed_at', 'author_association', 'html_url', 'body'];
const FRIENDLY = {
  state: 'State', state_reason: 'Reason', 'user.login': 'Author', 'labels[].name': 'Labels', 'assignees[].login': 'Assignees',
  'milestone.title': 'Milestone', comments: 'Comments', created_at: 'Created', updated_at: 'Updated', closed_at: 'Closed',
  author_association: 'Association', html_url: 'Link',
};
const state = {
  snap: null, cols: [], sort: [], filters: {}, search: '',
  rows: new Uint32Array(0), total: 0, cache: new Map(), inflight: new Map(), gen: 0, renderPass: 0, waiters: [], cver: 0, usable: null, selected: -1, pending: null,
};
window.grid = { state, ready: null, timings: {} };

function showError(e) {
  console.error(e);
  const el = $('error');
  el.textContent = String(e && e.message ? e.message : e);
  el.hidden = false;
  setTimeout(() => { el.hidden = true; }, 8000);
}

function fmtBytes(n) {
  return n > 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MB' : n > 1024 ? Math.round(n / 1024) + ' KB' : n + ' B';
}

function onProgress({ loaded, total, expect }) {
  const p = $('progress');
  if (!total || expect === 'idle') { p.hidden = true; return; }
  p.hidden = false;
  p.querySelector('.fill').style.width = Math.min(100, (100 * loaded) / total) + '%';
  p.querySelector('.label').textContent = `Downloading ${fmtBytes(loaded)} of ${fmtBytes(total)}`;
}

async function findFile() {
  const q = new URLSearchParams(location.search).get('file');
  if (q) return q;
  const r = await fetch('/api');
  if (!r.ok) throw new Error('no ?file=URL given and no /api to list snapshots');
  const j = await r.json();
  if (!j.snapshots || !j.snapshots.length) throw new Error('the server serves no snapshot');
  state.apiName = j.snapshots[0].name;
  return j.snapshots[0].file;
}

// Served by colsnap-serve: follow the snapshot's events (GET /api/NAME/events,
// the whole log from its start, then live ones). Events arriving together are
// applied in one batch; an EventSource reconnects with Last-Event-ID itself.
function followEvents(name) {
  if (!name || typeof EventSource === 'undefined') return;
  const src = new EventSource(`/api/${encodeURIComponent(name)}/events?from=0`);
  let lines = [];
  let timer = null;
  let chain = Promise.resolve();
  const flush = () => {
    timer = null;
    const batch = lines.join('\n') + '\n';
    lines = [];
    chain = chain.then(async () => {
      // applyEvents answers the events applied so far.
      window.grid.eventsApplied = await state.snap.applyEvents(batch);
      await run();
    }).catch((e) => { src.close(); showError(e); });
  };
  src.onmessage = (m) => {
    lines.push(m.data);
    if (!timer) timer = setTimeout(flush, 50);
  };
  window.grid.events = src;
}

function chooseColumns(fields) {
  const depth = (p) => p.split('.').length;
  const used = new Set();
  let cols = [];
  for (const r of ROLES) {
    // [depth of what precedes the name, the name's rank, field]: the least
    // nested wins, then the earlier name (Jira's `fields.status.name`
    // before `fields.sprint.state`).
    let best = null;
    r.names.forEach((n, k) => {
      for (const f of fields) {
        if (!(f.path === n || f.path.endsWith('.' + n)) || used.has(f.path)) continue;
        if (!(r.types ? r.types.includes(f.type) : !['object', 'list', 'null'].includes(f.type)) || (f.list && !r.list)) continue;
        const d = depth(f.path) - n.split('.').length;
        if (!best || d < best[0] || (d === best[0] && k < best[1])) best = [d, k, f];
      }
    });
    if (!best) continue;
    const f = best[2];
    used.add(f.path);
    const width = f.type === 'string' && r.textWidth ? r.textWidth : r.width;
    cols.push({ path: f.path, label: r.label, width, type: f.type, sort: !!r.sort });
  }
  if (cols.length < 3) {
    // (Not the top-level key "": its path is empty, which a sort string
    // cannot name; its values still show in a row's details.)
    cols = fields.filter((f) => f.path !== '' && !['object', 'list', 'null'].includes(f.type)).slice(0, 8)
      .map((f) => ({ path: f.path, label: f.path, width: f.type === 'string' ? 'minmax(120px, 1fr)' : '110px', type: f.type }));
  }
  for (const c of cols) c.num = NUMERIC.has(c.type);
  return cols;
}

// ---- rendering ---------------------------------------------------------

function fmtDate(v) {
  if (typeof v !== 'string') return '';
  const d = new Date(v);
  if (isNaN(d)) return v;
  return d.toISOString().slice(0, 10);
}

function cellHTML(col, v, el) {
  el.className = 'c' + (col.num ? ' num' : '') + (col.path === 'title' ? ' title' : '') + (col.type === 'timestamp' ? ' date' : '');
  el.textContent = '';
  if (v === null || v === undefined) return;
  if (col.type === 'timestamp') { el.textContent = fmtDate(v); el.title = v; return; }
  if (col.path === 'state' || col.path.endsWith('[].name') || col.path.endsWith('[].login')) {
    for (const s of Array.isArray(v) ? v : [v]) {
      if (s === null) continue;
      const chip = document.createElement('span');
      chip.className = 'chip ' + (col.path === 'state' ? s : '');
      chip.textContent = s;
      if (col.path !== 'state') chip.style.setProperty('--chip', labelColor(s));
      el.appendChild(chip);
    }
    return;
  }
  if (col.num && typeof v === 'number') { el.textContent = v.toLocaleString('en-US'); return; }
  el.textContent = Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
  el.title = el.textContent.length > 40 ? el.textContent : '';
}

function labelColor(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 70% 90%)`;
}

// Cells come keyed by display path (`cells`), or as nested rows (`rows`,
// with events applied).
function get(obj, path) {
  if (obj && Object.prototype.hasOwnProperty.call(obj, path)) return obj[path];
  const parts = path.split('.');
  let v = obj;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (v == null) return undefined;
    if (p.endsWith('[]')) {
      const arr = v[p.slice(0, -2)];
      if (!Array.isArray(arr)) return arr;
      const rest = parts.slice(i + 1).join('.');
      return rest ? arr.map((x) => get(x, rest)) : arr;
    }
    v = v[p];
  }
  return v;
}

function buildHead() {
  const tmpl = state.cols.map((c) => c.width).join(' ');
  document.documentElement.style.setProperty('--cols', tmpl);
  const head = $('head');
  head.textContent = '';
  const filters = $('filters');
  filters.textContent = '';
  for (const c of state.cols) {
    const h = document.createElement('div');
    h.className = 'h' + (c.num ? ' num' : '');
    h.dataset.field = c.path;
    h.title = `Sort by ${c.path} (click again to reverse)`;
    const key = state.sort.find((k) => k.path === c.path);
    h.innerHTML = '';
    h.append(c.label);
    if (key) {
      const a = document.createElement('span');
      a.className = 'arrow';
      a.textContent = key.desc ? '▼' : '▲';
      h.append(a);
    }
    h.onclick = () => sortBy(c.path);
    head.appendChild(h);
    const f = document.createElement('input');
    f.dataset.field = c.path;
    f.placeholder = c.num ? '>= 5' : c.type === 'timestamp' ? '>= 2024' : c.path === 'state' ? 'open' : 'starts with…';
    f.value = state.filters[c.path] || '';
    f.onkeydown = (e) => { if (e.key === 'Enter') { state.filters[c.path] = f.value.trim(); run(); } };
    f.onchange = () => { state.filters[c.path] = f.value.trim(); run(); };
    filters.appendChild(f);
  }
}

// A filter cell: `>= 5`, `!= closed`, `= null`, `in a,b`, or plain text
// (strings: equal for chips, starts-with otherwise; numbers and dates: equal).
function whereOf(col, text) {
  const t = text.trim();
  if (!t) return null;
  const m = /^(>=|<=|!=|\^=|=|<|>|in\s)\s*(.*)$/.exec(t);
  if (m) return `${col.path}${m[1].trim() === 'in' ? ' in ' : m[1]}${m[2].trim()}`;
  if (col.num || col.type === 'timestamp' || col.type === 'bool') return `${col.path}=${t}`;
  const chips = col.path === 'state' || col.path.endsWith('[].name');
  return `${col.path}${chips ? '=' : '^='}${t}`;
}

function sortBy(path) {
  const cur = state.sort[0];
  if (cur && cur.path === path) cur.desc = !cur.desc;
  else state.sort = [{ path, desc: NUMERIC.has(state.cols.find((c) => c.path === path)?.type) || state.cols.find((c) => c.path === path)?.type === 'timestamp' }];
  run();
}

function sortString() {
  return state.sort.map((k) => (k.desc ? '-' : '') + k.path).join(',');
}

async function run() {
  const gen = ++state.gen;
  const t0 = performance.now();
  const where = [];
  for (const c of state.cols) {
    const w = whereOf(c, state.filters[c.path] || '');
    if (w) where.push(w);
  }
  const q = { sort: sortString(), where, search: state.search, in: state.search ? searchFields() : [] };
  // 'ready' again once this query's rows are drawn (the engine answers
  // from its worker while the page keeps drawing the old rows).
  document.body.dataset.state = 'busy';
  try {
    for (const el of $('filters').children) el.classList.remove('bad');
    const r = await state.snap.query(q);
    window.grid.timings.query = performance.now() - t0;
    if (gen !== state.gen) return;
    state.rows = r.rows;
    state.total = r.total;
    state.cache = new Map();
    state.inflight = new Map();
    state.waiters = [];
    state.lastQuery = q;
    // The saved first page stays when the query gives the same rows (its
    // columns then load when the rows on screen change).
    const m = state.memo;
    state.memo = null;
    state.usable = null;
    if (m && r.total === m.total && m.rows.every((x, i) => r.rows[i] === x)) m.cells.forEach((c, i) => { c.__v = state.cver; state.cache.set(i, c); });
    buildHead();
    $('scroller').scrollTop = 0;
    layout();
    updateCount();
    // Columns on screen not loaded yet (the first query of a visit): they
    // load in groups, cheapest first, and the rows are drawn after each
    // group, so the first rows show before the slow columns decode (their
    // cells wait, greyed).
    const later = state.snap.eventCount || (m && state.cache.size) ? [] : state.cols.map((c) => c.path).filter((p) => !state.snap.columns.has(p) && !q.sort.split(',').some((k) => k.replace(/^-/, '') === p));
    if (later.length) {
      state.usable = new Set(state.cols.map((c) => c.path).filter((p) => !later.includes(p)));
      // Lists (labels), then mapped columns (the author: decoded from the
      // column it is mapped from) are the slow ones.
      const slow = (p) => (p.includes('[]') ? 1 : p.includes('.') ? 2 : 0);
      const groups = [[], [], []];
      for (const p of later) groups[Math.min(2, slow(p))].push(p);
      let firstPaint = true;
      for (const g of groups.filter((x) => x.length)) {
        await state.snap.load(g);
        if (gen !== state.gen) return;
        for (const p of g) state.usable.add(p);
        state.cver++;
        if (g === groups.filter((x) => x.length).pop()) state.usable = null;
        await render(firstPaint ? () => {
          window.grid.firstPaintAt = performance.now();
        } : undefined);
        firstPaint = false;
        if (gen !== state.gen) return;
      }
    }
    await render(() => {
      const ms = performance.now() - t0;
      window.grid.timings.lastQuery = ms;
      window.grid.visibleAt = performance.now();
      $('timing').textContent = `query + rows on screen ${ms.toFixed(0)} ms`;
    });
    document.body.dataset.state = 'ready';
  } catch (e) {
    if (gen !== state.gen) return;
    const msg = String(e.message || e);
    for (const el of $('filters').children) if (msg.includes(el.dataset.field)) el.classList.add('bad');
    showError(e);
    document.body.dataset.state = 'error';
  }
}

function searchFields() {
  return state.cols.filter((c) => c.type === 'string' && !c.path.includes('[]')).map((c) => c.path);
}

function updateCount() {
  const all = state.snap.rowCount;
  $('count').textContent = state.total === all ? `${all.toLocaleString('en-US')} rows` : `${state.total.toLocaleString('en-US')} of ${all.toLocaleString('en-US')} rows`;
}

// ---- virtual scrolling ----------------------------------------------------

function layout() {
  const sc = $('scroller');
  const virt = state.total * ROW;
  const real = Math.min(virt, MAX_PX);
  $('spacer').style.height = Math.max(0, real - sc.clientHeight) + 'px';
}

// First row and pixel offset for the scroller's position (scaled beyond MAX_PX).
function position() {
  const sc = $('scroller');
  const h = sc.clientHeight;
  const virt = state.total * ROW;
  const real = Math.min(virt, MAX_PX);
  const maxReal = Math.max(0, real - h);
  const maxVirt = Math.max(0, virt - h);
  const v = maxReal > 0 ? (sc.scrollTop / maxReal) * maxVirt : 0;
  return { first: Math.floor(v / ROW), shift: -(v % ROW), visible: Math.ceil(h / ROW) + 1 };
}

let scheduled = false;
function onScroll() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; render().catch(showError); });
}

// Draw the rows at the scroll position; `onVisible` runs once the rows on
// screen are drawn (rows above and below are fetched after).
async function render(onVisible) {
  const { first, shift, visible } = position();
  const inner = $('inner');
  inner.style.transform = `translateY(${shift}px)`;
  const end = Math.min(state.total, first + visible);
  draw(first, end);
  // Fetch what is missing around the window, then draw again.
  const from = Math.max(0, first - OVERSCAN);
  const to = Math.min(state.total, end + OVERSCAN);
  const need = [];
  // Rows another render is decoding are taken over (that one stops: see
  // `pass`); rows drawn before more columns loaded are decoded again.
  const ver = state.cver;
  const fresh = (i) => state.cache.get(i)?.__v === ver;
  for (let i = from; i < to; i++) if (!fresh(i)) need.push(i);
  const shown = () => { for (let i = first; i < end; i++) if (!fresh(i)) return false; return true; };
  // `onVisible` waits for the rows on screen, whichever render draws them.
  if (onVisible) state.waiters.push(onVisible);
  const tell = tellVisible;
  tell();
  if (!need.length) return;
  const gen = state.gen;
  // A newer render (the page scrolled on) takes over: this one stops
  // decoding rows that may have left the screen.
  const pass = ++state.renderPass;
  // Visible rows first; decoded row by row with a yield whenever a slice
  // of work ran SLICE_MS, so that decoding string chunks never blocks the
  // page for long; drawn as they come.
  need.sort((a, b) => (a >= first && a < end ? 0 : 1) - (b >= first && b < end ? 0 : 1) || a - b);
  const paths = state.cols.map((c) => c.path).filter((p) => !state.usable || state.usable.has(p));
  for (const i of need) state.inflight.set(i, pass);
  let drawn = performance.now();
  const redraw = () => {
    const now = position();
    draw(now.first, Math.min(state.total, now.first + now.visible));
    tell();
  };
  try {
    await state.snap.cells(Uint32Array.from(need, (i) => state.rows[i]), paths, {
      sliceMs: SLICE_MS,
      cancelled: () => gen !== state.gen || pass !== state.renderPass,
      onRow: (k, cells) => {
        cells.__v = ver;
        state.cache.set(need[k], cells);
        // Draw once the rows on screen are all there, and now and then before.
        if (shown() || performance.now() - drawn > 30) { drawn = performance.now(); redraw(); }
      },
    });
  } finally {
    if (gen === state.gen) for (const i of need) if (state.inflight.get(i) === pass) state.inflight.delete(i);
  }
  if (gen !== state.gen) return;
  redraw();
  if (state.cache.size > 5000) {
    for (const k of state.cache.keys()) { if (k < from || k >= to) state.cache.delete(k); if (state.cache.size < 2500) break; }
  }
}

// Run the callbacks waiting for the rows on screen once they are all drawn.
function tellVisible() {
  if (!state.waiters.length) return;
  const { first, visible } = position();
  const end = Math.min(state.total, first + visible);
  for (let i = first; i < end; i++) if (state.cache.get(i)?.__v !== state.cver) return;
  const w = state.waiters;
  state.waiters = [];
  for (const f of w) f();
}

function draw(first, end) {
  const inner = $('inner');
  while (inner.children.length < end - first) {
    const r = document.createElement('div');
    r.className = 'row';
    r.setAttribute('role', 'row');
    for (let k = 0; k < state.cols.length; k++) r.appendChild(document.createElement('div'));
    r.onclick = () => openDetail(+r.dataset.pos);
    inner.appendChild(r);
  }
  while (inner.children.length > end - first) inner.lastChild.remove();
  for (let i = first; i < end; i++) {
    const r = inner.children[i - first];
    const obj = state.cache.get(i);
    r.dataset.pos = i;
    r.dataset.row = state.rows[i];
    r.classList.toggle('sel', state.rows[i] === state.selected);
    r.classList.toggle('ph', !obj);
    const key = `${state.gen}:${i}:${obj ? obj.__v : '-'}`;
    if (r.dataset.drawn === key) continue;
    r.dataset.drawn = key;
    state.cols.forEach((c, k) => {
      const el = r.children[k];
      el.dataset.field = c.path;
      if (obj && !(state.usable && !state.usable.has(c.path))) cellHTML(c, get(obj, c.path), el);
      else { el.className = obj ? 'c wait' : 'c'; el.textContent = ''; }
    });
  }
}

// ---- detail pane -----------------------------------------------------------

async function openDetail(pos) {
  const row = state.rows[pos];
  state.selected = row;
  for (const r of $('inner').children) r.classList.toggle('sel', +r.dataset.row === row);
  const pane = $('detail');
  pane.hidden = false;
  const body = $('detailBody');
  body.innerHTML = '<p class="muted">Loading…</p>';
  const have = new Set(state.snap.fields.map((f) => f.path));
  const fields = DETAIL.filter((f) => have.has(f));
  const t0 = performance.now();
  const obj = fields.length >= 3 ? (await state.snap.cells([row], fields))[0] : await state.snap.row(row);
  if (state.selected !== row) return;
  window.grid.timings.detail = performance.now() - t0;
  body.textContent = '';
  const h = document.createElement('h2');
  h.textContent = obj.title ?? `Row ${row}`;
  body.appendChild(h);
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = [obj.number != null ? `#${obj.number}` : '', obj.user?.login ? `opened by ${obj.user.login}` : '', obj.created_at ? `on ${fmtDate(obj.created_at)}` : ''].filter(Boolean).join(' ');
  body.appendChild(meta);
  const dl = document.createElement('dl');
  for (const f of fields.length >= 3 ? fields : Object.keys(obj)) {
    if (['title', 'body', 'number'].includes(f)) continue;
    const v = get(obj, f);
    if (v === undefined || v === null || (Array.isArray(v) && !v.length)) continue;
    const dt = document.createElement('dt');
    dt.textContent = FRIENDLY[f] || (f === '' ? '""' : f.replace('[].', ' › '));
    const dd = document.createElement('dd');
    const col = { path: f, type: state.snap.fields.find((x) => x.path === f)?.type || '', num: false };
    col.num = NUMERIC.has(col.type);
    cellHTML(col, v, dd);
    dd.className = '';
    dl.append(dt, dd);
  }
  body.appendChild(dl);
  const text = document.createElement('div');
  text.className = 'body';
  text.id = 'detailText';
  text.textContent = obj.body ?? '(no description)';
  body.appendChild(text);
  document.body.dataset.detail = String(row);
}

// ---- the first page of a second visit -------------------------------------------

function memoView() {
  return JSON.stringify({ etag: state.snap.etag, sort: sortString(), cols: state.cols.map((c) => c.path) });
}

function readMemo(key) {
  if (!state.snap.etag || state.snap.eventCount) return null;
  try {
    const m = JSON.parse(localStorage.getItem(key));
    return m && m.view === memoView() ? m : null;
  } catch {
    return null;
  }
}

// Saved after the first query of a visit: the rows on screen, as drawn.
function saveMemo(key) {
  if (!state.snap.etag || state.snap.eventCount || state.search || Object.values(state.filters).some(Boolean)) return;
  const n = Math.min(state.total, position().visible + OVERSCAN);
  const cells = [];
  for (let i = 0; i < n; i++) {
    if (!state.cache.has(i)) return;
    cells.push(state.cache.get(i));
  }
  try {
    localStorage.setItem(key, JSON.stringify({ view: memoView(), total: state.total, rows: Array.from(state.rows.subarray(0, n)), cells }));
  } catch { /* storage full or private mode */ }
}

function paintMemo(m) {
  state.total = m.total;
  state.rows = new Uint32Array(m.total);
  state.rows.set(m.rows);
  state.cache = new Map(m.cells.map((c, i) => { c.__v = state.cver; return [i, c]; }));
  state.memo = m;
  layout();
  updateCount();
  const { first, visible } = position();
  draw(first, Math.min(m.cells.length, first + visible));
  document.body.dataset.preview = '1';
}

// ---- start -------------------------------------------------------------------

async function main() {
  const t0 = performance.now();
  const file = await findFile();
  $('name').textContent = decodeURIComponent(file.split('/').pop());
  document.title = `${$('name').textContent} — colsnap`;
  state.snap = await open(file, { onProgress });
  window.grid.snap = state.snap;
  window.grid.timings.open = performance.now() - t0;
  state.cols = chooseColumns(state.snap.fields);
  const newest = state.cols.find((c) => c.sort);
  if (newest) state.sort = [{ path: newest.path, desc: true }];
  buildHead();
  // A second visit paints the first page it saved for this version of the
  // file (same ETag, the default view, nothing filtered) at once, and the
  // query loads its columns behind it.
  const memoKey = 'colsnap:page:' + new URL(file, location.href).href;
  const memo = readMemo(memoKey);
  if (memo) {
    paintMemo(memo);
    window.grid.firstRowsAt = performance.now();
    window.grid.timings.firstRows = window.grid.firstRowsAt - t0;
    window.grid.timings.firstRowsFrom = 'cache';
  }
  // The sections of the columns on screen download while the sort column
  // decodes and sorts.
  state.snap.prefetch(state.cols.map((c) => c.path).filter((p) => !state.sort.some((k) => k.path === p)));
  await run();
  window.grid.timings.ready = (window.grid.visibleAt || performance.now()) - t0;
  if (!memo) {
    // First rows: drawn with the quick columns (the rest greyed), or all.
    window.grid.timings.firstRows = window.grid.firstPaintAt ? window.grid.firstPaintAt - t0 : window.grid.timings.ready;
    window.grid.firstRowsAt = window.grid.firstPaintAt ?? window.grid.visibleAt;
  }
  saveMemo(memoKey);
  // The saved page left the shown columns unloaded: load them while idle,
  // so the first sort or scroll does not wait for them.
  if (memo) {
    const idle = globalThis.requestIdleCallback || ((f) => setTimeout(f, 50));
    idle(() => state.snap.load(state.cols.map((c) => c.path)).catch(showError));
  }
  $('timing').textContent = `first rows ${window.grid.timings.firstRows.toFixed(0)} ms` +
    (memo ? ` (saved page), ready ${window.grid.timings.ready.toFixed(0)} ms` : '');
  $('scroller').addEventListener('scroll', onScroll, { passive: true });
  new ResizeObserver(() => { layout(); render().catch(showError); }).observe($('scroller'));
  $('search').addEventListener('keydown', (e) => { if (e.key === 'Enter') { state.search = e.target.value.trim(); run(); } });
  $('close').onclick = () => { $('detail').hidden = true; state.selected = -1; render(); };
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') $('close').click(); });
  followEvents(state.apiName);
}

// Edits that arrive after the snapshot (NDJSON events): applied locally, the
// grid re-runs its query. Served by colsnap-serve, the page gets them from
// GET /api/NAME/events (followEvents).
window.grid.applyEvents = async (ndjson) => {
  const n = await state.snap.applyEvents(ndjson);
  await run();
  return n;
};

window.grid.ready = main().catch((e) => { showError(e); document.body.dataset.state = 'error'; throw e; });
