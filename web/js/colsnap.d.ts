// Types of web/js/colsnap.js.
export interface Field { path: string; type: 'null' | 'bool' | 'i64' | 'u64' | 'f64' | 'number' | 'string' | 'timestamp' | 'object' | 'list' | 'mixed' | string; list: boolean }
export interface Progress { loaded: number; total: number; expect: 'footer' | 'file' | 'data' | 'cache' | 'idle' }
/** `worker`: run the engine in a module worker (default where `Worker` exists; false: in this thread, as where a module worker cannot start). */
export interface OpenOptions { onProgress?: (p: Progress) => void; cache?: boolean; multiRange?: boolean; worker?: boolean }
export interface QueryOptions { sort?: string; where?: string[]; search?: string; in?: string[]; offset?: number; limit?: number }
export interface QueryResult { total: number; rows: Uint32Array; page?: Uint32Array }
export interface ColumnView {
  path: string; type: string; kind: 'u32' | 'i64' | 'u8' | 'f64';
  values: Uint32Array | BigInt64Array | Uint8Array | Float64Array;
  sentinels?: { null: number; absent: number };
  null: Uint32Array | null; absent: Uint32Array | null; valid: Uint32Array | null;
  offsets: Uint32Array | null;
}
/** `sliceMs`: decode row by row, yielding to the page after each `sliceMs` of work; `onRow(k, cells)` as each row is ready; `cancelled()`: stop early (the rows so far are returned). */
export interface CellsOptions { sliceMs?: number; onRow?: (k: number, cells: Record<string, unknown>) => void; cancelled?: () => boolean }
export interface Stats { fetchedBytes: number; loadedBytes: number; wasmMemory: number; requests: number; networkBytes: number; cacheHits: number;
  /** The protocol the file's answers came over (`http/1.1`, `h2`, `h3`), from Resource Timing; null until seen, and for published snapshots. */
  protocol: string | null;
  /** Where the engine's wasm module came from: 'page' (compiled by the page, handed to the worker), 'fetched' (fetched and compiled by the engine's own thread). */
  wasm: 'page' | 'fetched' | null }
export declare class Snapshot {
  readonly rowCount: number;
  readonly fields: Field[];
  readonly fileLen: number;
  readonly eventCount: number;
  /** The file's ETag (its version), or null. */
  readonly etag: string | null;
  /** Paths of the columns loaded. */
  readonly columns: ReadonlySet<string> | ReadonlyMap<string, unknown>;
  load(paths: string[]): Promise<void>;
  /** Start fetching the sections of columns without decoding them (a later `load` uses the bytes). */
  prefetch(paths: string[]): void;
  /** Typed arrays of a column (copies made by the worker; views of the wasm memory in-thread). */
  column(path: string): Promise<ColumnView>;
  query(q?: QueryOptions): Promise<QueryResult>;
  rows(indexes: ArrayLike<number>, fields?: string[]): Promise<Record<string, unknown>[]>;
  /** Cells keyed by display path, from the loaded columns (nested rows, as `rows`, once events are applied). */
  cells(indexes: ArrayLike<number>, fields: string[], opts?: CellsOptions): Promise<Record<string, unknown>[]>;
  row(i: number, fields?: string[]): Promise<Record<string, unknown>>;
  strings(path: string, ids: ArrayLike<number>): Promise<(string | null)[]>;
  applyEvents(ndjson: string): Promise<number>;
  stats(): Promise<Stats>;
  /** Stop the engine's worker (the snapshot is no longer usable). */
  close(): void;
}
/** Let the page run (input, rendering) before the next piece of work: `scheduler.yield()` or a macrotask. */
export declare function yieldTask(): Promise<void>;
/** Start an engine's worker (it compiles the wasm) ahead of `open`, which takes it. */
export declare function preload(): void;
export declare function open(url: string, opts?: OpenOptions): Promise<Snapshot>;
