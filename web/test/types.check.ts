// Compiled (never run) by the browser test: `tsc --noEmit` checks that
// web/js/colsnap.d.ts is valid TypeScript and describes the API as the
// grid page (web/www/app.js) uses it.
import { open, preload, yieldTask, type ColumnView, type Snapshot, type Stats } from '../js/colsnap.js';

preload();

export async function use(): Promise<number> {
  const snap: Snapshot = await open('/files/issues.colsnap', {
    onProgress: ({ loaded, total, expect }) => void (expect === 'idle' ? 0 : loaded / total),
    cache: false,
    worker: false,
  });
  const q = await snap.query({ sort: '-updated_at', where: ['state=open'], search: 'crash', in: ['title'], offset: 0, limit: 50 });
  const rows: Uint32Array = q.rows;
  snap.prefetch(['title']);
  await snap.load(['number', 'title']);
  const cells = await snap.cells(rows.subarray(0, 10), ['number', 'title'], {
    sliceMs: 12,
    onRow: (k, c) => void c[String(k)],
    cancelled: () => false,
  });
  const one: Record<string, unknown> = await snap.row(rows[0], ['title']);
  const col: ColumnView = await snap.column('number');
  const big = col.kind === 'i64' ? (col.values as BigInt64Array)[0] : 0n;
  const names: (string | null)[] = await snap.strings('title', [1, 2]);
  const n: number = await snap.applyEvents('{"op":"upsert","id":1}\n');
  const st: Stats = await snap.stats();
  await yieldTask();
  const has: boolean = snap.columns.has('title');
  snap.close();
  return q.total + (q.page?.length ?? 0) + cells.length + Object.keys(one).length + Number(big) + names.length + n
    + st.wasmMemory + snap.rowCount + snap.fields.length + (snap.etag ? 1 : 0) + Number(has);
}
