#!/usr/bin/env bash
# Cold queries as whole processes: `colsnap query` on a snapshot against
# DuckDB running the same ORDER BY / LIMIT / OFFSET on a Parquet file of
# the same rows (a measurement, not run in CI).
#
#   scripts/bench-cold-query.sh SNAPSHOT.colsnap ROWS.parquet
#   RUNS=7 PYTHON=/path/to/venv/bin/python scripts/bench-cold-query.sh ...
#
# For each query: the minimum over RUNS of wall time and of CPU time
# (user + sys). colsnap: the whole process (`colsnap query ... > /dev/null`).
# DuckDB (`pip install duckdb`): a new interpreter per run, timed from
# `duckdb.connect()` to the fetched rows (interpreter start and `import
# duckdb` are left out, in DuckDB's favour). Both return every column of the
# page unless the query names fields. The files are read from the page
# cache (each query runs once untimed first).
set -euo pipefail
cd "$(dirname "$0")/.."
SNAP=$1
PARQUET=$2
RUNS=${RUNS:-5}
PYTHON=${PYTHON:-python3}
BIN=${BIN:-target/release/colsnap}

# name | colsnap arguments | SQL (FROM t)
QUERIES=(
  "sort title, page 3 of 50, every field|--sort title --page 3 --limit 50|SELECT * EXCLUDE (file_row_number) FROM t ORDER BY title, file_row_number LIMIT 50 OFFSET 100"
  "sort title, page 3 of 50, 5 fields|--sort title --page 3 --limit 50 --fields number,title,state,user.login,created_at|SELECT number, title, state, \"user\".login, created_at FROM t ORDER BY title, file_row_number LIMIT 50 OFFSET 100"
  "state=open sort -updated_at, 2 fields|--where state=open --sort -updated_at --limit 50 --fields number,title|SELECT number, title FROM t WHERE state = 'open' ORDER BY updated_at DESC, file_row_number LIMIT 50"
  "no sort, page 3 of 50, every field|--page 3 --limit 50|SELECT * EXCLUDE (file_row_number) FROM t LIMIT 50 OFFSET 100"
)

cpu_ms() { # command...: prints "wall_ms cpu_ms" of one run
  local log
  log=$(mktemp)
  /usr/bin/time -o "$log" -f '%e %U %S' "$@" >/dev/null 2>/dev/null
  tail -1 "$log" | awk '{printf "%d %d\n", $1*1000, ($2+$3)*1000}'
  rm -f "$log"
}

DUCK=$(cat <<'PY'
import sys, time
t0 = time.perf_counter(); c0 = time.process_time()
import duckdb
t1 = time.perf_counter(); c1 = time.process_time()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
path = sys.argv[1].replace("'", "''")
con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}', file_row_number = true)")
rows = con.execute(sys.argv[2]).fetchall()
t2 = time.perf_counter(); c2 = time.process_time()
assert rows, "no rows"
print(int((t2 - t1) * 1000), int((c2 - c1) * 1000))
PY
)

printf '%-40s %12s %12s %12s %12s %8s\n' query "colsnap wall" "colsnap cpu" "duckdb wall" "duckdb cpu" "ratio"
for q in "${QUERIES[@]}"; do
  IFS='|' read -r name args sql <<<"$q"
  # shellcheck disable=SC2086
  $BIN query "$SNAP" $args >/dev/null
  "$PYTHON" -c "$DUCK" "$PARQUET" "$sql" >/dev/null
  cw=999999; cc=999999; dw=999999; dc=999999
  for _ in $(seq "$RUNS"); do
    # shellcheck disable=SC2086
    read -r w c < <(cpu_ms $BIN query "$SNAP" $args)
    (( w < cw )) && cw=$w; (( c < cc )) && cc=$c
    read -r w c < <("$PYTHON" -c "$DUCK" "$PARQUET" "$sql")
    (( w < dw )) && dw=$w; (( c < dc )) && dc=$c
  done
  printf '%-40s %10d ms %10d ms %10d ms %10d ms %7.2fx\n' "$name" "$cw" "$cc" "$dw" "$dc" \
    "$(awk -v a="$dw" -v b="$cw" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }')"
done
