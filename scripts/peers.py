#!/usr/bin/env python3
"""Peer-format size comparison for colsnap.

For every input file (NDJSON, or one JSON array; optionally .zst / .gz /
.xz compressed, detected by magic bytes) this measures the size in bytes of

  json             the uncompressed JSON as given (after removing the outer
                   file compression, nothing else changed)
  gzip9            gzip -9 -n          (CLI; python `gzip` module if missing)
  zstd19           zstd -19            (CLI; python `zstandard` if missing)
  xz9              xz -9               (CLI; python `lzma` if missing)
  parquet_pyarrow  pyarrow Parquet, zstd level 19, dictionary encoding on,
                   nested structs/lists kept as pyarrow infers them
  parquet_duckdb   DuckDB  COPY (SELECT * FROM read_json_auto(...)) TO ...
                   (FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 19)

and prints a table; `--json OUT` writes the results as JSON (read by the
Rust side), `--markdown OUT` writes a markdown table.

The compressors read the JSON from stdin, so no file name or mtime ends up
in the gzip header and zstd/xz use their CLI defaults (zstd: checksum on,
no content size in the frame header; xz: CRC64 check, single thread).

pyarrow schema inference, in order of preference (the method used is
reported per file as `parquet_pyarrow_method`):

  1. "read_json"  pyarrow.json.read_json with one block covering the whole
                  file, so the schema is inferred from every row (keys that
                  appear only on later rows -- schema drift -- are included).
  2. "from_pylist" pyarrow.Table.from_pylist on the rows parsed by Python's
                  json module (unifies keys missing from some rows as nulls).
  3. "from_pylist+json_strings" as 2, but every top-level column whose
                  values pyarrow cannot put into one Arrow type (e.g. an
                  int in one row and an object in another), or whose type
                  cannot be written to Parquet (a struct with no fields,
                  i.e. only `{}` values), is stored as a JSON-text string
                  column (json.dumps of the value, nulls kept as nulls).
                  The names of those columns are reported.

DuckDB output was identical with 1 and 2 threads on the test data
(--duckdb-threads pins it). Nothing is ever silently dropped: if a peer still fails its error is
reported in `errors` and its size is null.

Usage:
  python3 scripts/peers.py data/*.ndjson.zst --json peers.json --markdown peers.md
"""

from __future__ import annotations

import argparse
import gzip as gzip_mod
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"


# ----------------------------------------------------------------- input

def read_input(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(ZSTD_MAGIC):
        import zstandard

        # decompressobj handles frames without a content size in the header
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if data.startswith(GZIP_MAGIC):
        return gzip_mod.decompress(data)
    if data.startswith(XZ_MAGIC):
        return lzma.decompress(data)
    return data


def to_rows_and_ndjson(raw: bytes) -> tuple[list, bytes]:
    """Parse the JSON, return (rows, ndjson_bytes).

    For NDJSON input the NDJSON bytes are the input lines unchanged (blank
    lines dropped); for a JSON array each element is re-serialised compactly
    on its own line (needed by pyarrow.json.read_json, which reads NDJSON only).
    """
    text = raw.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError("top-level JSON is not an array")
        nd = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        return rows, nd.encode("utf-8")
    rows = []
    lines = []
    # NDJSON lines end at "\n" only: str.splitlines() would also split inside
    # strings holding U+2028, U+0085, \x1c.. (real Jira text does).
    for line in text.split("\n"):
        if line.strip():
            rows.append(json.loads(line))
            lines.append(line)
    return rows, ("\n".join(lines) + "\n").encode("utf-8")


# ----------------------------------------------------------- compressors

def _cli(cmd: list[str], data: bytes) -> int:
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return len(p.stdout)


def size_gzip9(data: bytes) -> tuple[int, str]:
    if shutil.which("gzip"):
        return _cli(["gzip", "-9", "-n", "-c"], data), "gzip -9 -n -c (stdin)"
    return len(gzip_mod.compress(data, compresslevel=9, mtime=0)), "python gzip level 9"


def size_zstd19(data: bytes) -> tuple[int, str]:
    if shutil.which("zstd"):
        return _cli(["zstd", "-19", "-q", "-c"], data), "zstd -19 -c (stdin)"
    import zstandard

    c = zstandard.ZstdCompressor(level=19, write_checksum=True, write_content_size=False)
    return len(c.compress(data)), "python zstandard level 19"


def size_xz9(data: bytes) -> tuple[int, str]:
    if shutil.which("xz"):
        return _cli(["xz", "-9", "-c"], data), "xz -9 -c (stdin)"
    return len(lzma.compress(data, preset=9)), "python lzma preset 9"


# -------------------------------------------------------------- parquet

def _problem_columns(rows: list, pa) -> list[str]:
    """Top-level keys whose values do not convert to one writable Arrow type."""
    keys: dict[str, None] = {}
    for r in rows:
        for k in r:
            keys.setdefault(k, None)
    bad = []
    for k in keys:
        vals = [r.get(k) for r in rows]
        try:
            arr = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            bad.append(k)
            continue
        if _has_empty_struct(arr.type, pa):
            bad.append(k)
    return bad


def _has_empty_struct(t, pa) -> bool:
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return True
        return any(_has_empty_struct(t.field(i).type, pa) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_empty_struct(t.value_type, pa)
    return False


def _write_parquet(table, path: str) -> int:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd", compression_level=19, use_dictionary=True)
    return os.path.getsize(path)


def size_parquet_pyarrow(rows: list, ndjson: bytes, tmpdir: str) -> tuple[int, str, list[str]]:
    import pyarrow as pa
    import pyarrow.json as pj

    out = os.path.join(tmpdir, "pyarrow.parquet")
    src = os.path.join(tmpdir, "input.ndjson")
    with open(src, "wb") as f:
        f.write(ndjson)
    errors = []
    # 1. pyarrow's own JSON reader, one block = whole file -> schema from all rows
    try:
        block = max(1 << 20, len(ndjson) + 1)
        # block_size is an int32 in Arrow's C++ reader
        block = min(block, (1 << 31) - 1)
        table = pj.read_json(src, read_options=pj.ReadOptions(block_size=block, use_threads=True))
        if any(_has_empty_struct(f.type, pa) for f in table.schema):
            raise ValueError("schema has a struct with no fields (not writable to Parquet)")
        return _write_parquet(table, out), "read_json", []
    except Exception as e:  # noqa: BLE001 - report and fall back
        errors.append(f"read_json: {type(e).__name__}: {str(e)[:200]}")
    # 2. from_pylist
    try:
        table = pa.Table.from_pylist(rows)
        if any(_has_empty_struct(f.type, pa) for f in table.schema):
            raise ValueError("schema has a struct with no fields (not writable to Parquet)")
        return _write_parquet(table, out), "from_pylist (" + "; ".join(errors) + ")", []
    except Exception as e:  # noqa: BLE001
        errors.append(f"from_pylist: {type(e).__name__}: {str(e)[:200]}")
    # 3. conflicting top-level columns as JSON text
    bad = _problem_columns(rows, pa)
    fixed = []
    for r in rows:
        r2 = dict(r)
        for k in bad:
            if k in r2 and r2[k] is not None:
                r2[k] = json.dumps(r2[k], ensure_ascii=False, separators=(",", ":"))
        fixed.append(r2)
    table = pa.Table.from_pylist(fixed)
    return _write_parquet(table, out), "from_pylist+json_strings (" + "; ".join(errors) + ")", bad


def size_parquet_duckdb(ndjson: bytes, tmpdir: str, threads: int | None) -> int:
    import duckdb

    src = os.path.join(tmpdir, "duck_input.ndjson")
    out = os.path.join(tmpdir, "duckdb.parquet")
    with open(src, "wb") as f:
        f.write(ndjson)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    esc = lambda p: p.replace("'", "''")  # noqa: E731
    con.execute(
        f"COPY (SELECT * FROM read_json_auto('{esc(src)}')) TO '{esc(out)}' "
        "(FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 19)"
    )
    con.close()
    return os.path.getsize(out)


# ----------------------------------------------------------------- main

PEERS = ["gzip9", "zstd19", "xz9", "parquet_pyarrow", "parquet_duckdb"]


def versions() -> dict:
    v = {"python": platform.python_version()}
    for mod in ("pyarrow", "duckdb", "zstandard"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            v[mod] = None
    for tool, args in (("zstd", ["-V"]), ("xz", ["--version"]), ("gzip", ["--version"])):
        if shutil.which(tool):
            p = subprocess.run([tool, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            v[tool] = p.stdout.splitlines()[0].strip()
        else:
            v[tool] = None
    return v


def measure(path: str, skip: set[str], threads: int | None) -> dict:
    res: dict = {"file": os.path.basename(path), "path": path, "errors": {}, "seconds": {}, "methods": {}}
    raw = read_input(path)
    rows, ndjson = to_rows_and_ndjson(raw)
    res["rows"] = len(rows)
    res["json"] = len(raw)
    funcs = {
        "gzip9": lambda: size_gzip9(raw),
        "zstd19": lambda: size_zstd19(raw),
        "xz9": lambda: size_xz9(raw),
    }
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        for name in PEERS:
            if name in skip:
                res[name] = None
                continue
            t0 = time.perf_counter()
            try:
                if name in funcs:
                    res[name], res["methods"][name] = funcs[name]()
                elif name == "parquet_pyarrow":
                    size, method, bad = size_parquet_pyarrow(rows, ndjson, tmp)
                    res[name] = size
                    res["methods"][name] = method
                    res["parquet_pyarrow_json_string_columns"] = bad
                elif name == "parquet_duckdb":
                    res[name] = size_parquet_duckdb(ndjson, tmp, threads)
                    res["methods"][name] = "read_json_auto + COPY (FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 19)"
            except Exception as e:  # noqa: BLE001 - a failing peer is a result
                res[name] = None
                res["errors"][name] = f"{type(e).__name__}: {e}"
            res["seconds"][name] = round(time.perf_counter() - t0, 3)
    sizes = {k: res[k] for k in ("zstd19", "xz9", "parquet_pyarrow", "parquet_duckdb") if res.get(k)}
    if sizes:
        best = min(sizes, key=sizes.get)
        res["best_peer"] = best
        res["best_peer_bytes"] = sizes[best]
    return res


def fmt(n) -> str:
    return "n/a" if n is None else f"{n:,}"


def markdown(results: list[dict]) -> str:
    cols = ["json"] + PEERS
    out = ["| file | rows | " + " | ".join(cols) + " | best peer (excl. gzip) | 0.9 x best |",
           "|---|---:|" + "---:|" * len(cols) + "---|---:|"]
    for r in results:
        best = r.get("best_peer_bytes")
        out.append(
            f"| {r['file']} | {r['rows']:,} | " + " | ".join(fmt(r.get(c)) for c in cols)
            + f" | {r.get('best_peer', 'n/a')} | {fmt(int(best * 0.9) if best else None)} |"
        )
    notes = []
    for r in results:
        m = r["methods"].get("parquet_pyarrow")
        if m and m != "read_json":
            notes.append(f"- {r['file']}: pyarrow via {m}; JSON-string columns: {r.get('parquet_pyarrow_json_string_columns')}")
        for k, e in r["errors"].items():
            notes.append(f"- {r['file']}: {k} FAILED: {e}")
    return "\n".join(out + ([""] + notes if notes else [])) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="NDJSON or JSON-array files, optionally .zst/.gz/.xz")
    ap.add_argument("--json", metavar="OUT", help="write results as JSON to OUT")
    ap.add_argument("--markdown", metavar="OUT", help="write a markdown table to OUT")
    ap.add_argument("--skip", default="", help="comma-separated peers to skip: " + ",".join(PEERS))
    ap.add_argument("--duckdb-threads", type=int, default=None, help="SET threads for DuckDB (default: DuckDB's)")
    args = ap.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - set(PEERS)
    if unknown:
        ap.error(f"unknown peers in --skip: {sorted(unknown)}")

    results = []
    for p in args.inputs:
        r = measure(p, skip, args.duckdb_threads)
        results.append(r)
        print(f"{r['file']}: rows={r['rows']:,} " + " ".join(f"{k}={fmt(r.get(k))}" for k in ["json"] + PEERS),
              file=sys.stderr)
    md = markdown(results)
    print(md)
    doc = {"schema": "colsnap-peers/1", "versions": versions(), "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
