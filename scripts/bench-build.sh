#!/usr/bin/env bash
# Build throughput and memory of `colsnap build` (a measurement, not run in CI).
#
#   scripts/bench-build.sh                       # neovim issues + 1,000,000 generated issues
#   ROWS=100000 scripts/bench-build.sh           # a smaller generated file
#   STREAM_ROWS=10000000 scripts/bench-build.sh  # also `gen | colsnap build -` of 10M issues (hours)
#   BUILD_ARGS="--threads 1" scripts/bench-build.sh
#   BUILD_ARGS="--memory 256M" scripts/bench-build.sh  # another memory budget (default 1G)
#   NO_BUDGET=1 ...                              # also --fast --memory 0 (no spills: the old build)
#   NO_BUILD=1 ...                               # use the release binaries already built
#
# For each input, prints one line per preset (default, --fast): wall
# seconds, MB/s of JSON, peak RSS (GNU time's "Maximum resident set size"),
# output bytes. With DuckDB (`pip install duckdb`), also its Parquet
# (zstd level 19) write of the same file. Inputs: NEOVIM (default
# /work/shared/data/neovim-issues.ndjson.zst, skipped when absent; it is
# decompressed first), ROWS generated issues (`examples/gen_issues`, seed 42),
# and, when STREAM_ROWS is set, a stream of that many generated issues that
# never touches the disk. WORKDIR keeps the inputs between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
STREAM_ROWS=${STREAM_ROWS:-}
NEOVIM=${NEOVIM:-/work/shared/data/neovim-issues.ndjson.zst}
WORK=${WORKDIR:-$(mktemp -d)}
mkdir -p "$WORK"
BUILD_ARGS=${BUILD_ARGS:-}
[ -x /usr/bin/time ] || { echo "GNU time not found (apt-get install time)" >&2; exit 1; }

[ -n "${NO_BUILD:-}" ] || cargo build --release -p colsnap --bin colsnap --example gen_issues
BIN=target/release/colsnap
GEN=target/release/examples/gen_issues

# row NAME PRESET SECONDS JSON_BYTES RSS_KB OUT_BYTES
printf '%-22s %-9s %9s %9s %10s %14s\n' input preset seconds MB/s "RSS MB" "output bytes"
row() {
  awk -v n="$1" -v p="$2" -v s="$3" -v j="$4" -v r="$5" -v o="$6" 'BEGIN {
    printf "%-22s %-9s %9.2f %9.1f %10.1f %14d\n", n, p, s, j / 1e6 / s, r / 1024, o }'
}
# measure NAME PRESET JSON_BYTES COMMAND... : runs COMMAND under GNU time.
measure() {
  local name=$1 preset=$2 bytes=$3
  shift 3
  local log="$WORK/time.log"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$log" "$@" >/dev/null
  t1=$(date +%s.%N)
  local rss
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$log")
  local out
  out=$(stat -c %s "$WORK/out.colsnap" 2>/dev/null || stat -c %s "$WORK/out.parquet")
  row "$name" "$preset" "$(echo "$t1 - $t0" | bc)" "$bytes" "$rss" "$out"
  rm -f "$WORK/out.colsnap" "$WORK/out.parquet"
}
duckdb_write() {
  python3 -c 'import duckdb' 2>/dev/null || return 0
  measure "$1" duckdb-19 "$2" python3 -c "
import duckdb, sys
con = duckdb.connect()
con.execute(\"COPY (SELECT * FROM read_json_auto('$3', format='newline_delimited', maximum_object_size=1073741824, sample_size=-1)) TO '$WORK/out.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19)\")
"
}
file_input() {
  local name=$1 file=$2 bytes
  bytes=$(stat -c %s "$file")
  # shellcheck disable=SC2086
  measure "$name" default "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet $BUILD_ARGS
  # shellcheck disable=SC2086
  measure "$name" fast "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet --fast $BUILD_ARGS
  if [ -n "${NO_BUDGET:-}" ]; then
    # shellcheck disable=SC2086
    measure "$name" fast-mem0 "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet --fast $BUILD_ARGS --memory 0
  fi
  duckdb_write "$name" "$bytes" "$file"
}

if [ -f "$NEOVIM" ]; then
  [ -s "$WORK/neovim.ndjson" ] || zstd -dqf "$NEOVIM" -o "$WORK/neovim.ndjson"
  file_input neovim-issues "$WORK/neovim.ndjson"
fi
if [ "$ROWS" -gt 0 ]; then
  [ -s "$WORK/gen-$ROWS.ndjson" ] || "$GEN" --count "$ROWS" --out "$WORK/gen-$ROWS.ndjson" 2>/dev/null
  file_input "generated-$ROWS" "$WORK/gen-$ROWS.ndjson"
fi
if [ -n "$STREAM_ROWS" ]; then
  # The JSON byte count of the stream (gen prints it on stderr) is read
  # after the build; the stream itself never touches the disk.
  for preset in default fast; do
    flag=; [ "$preset" = fast ] && flag=--fast
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    /usr/bin/time -v -o "$WORK/time.log" sh -c \
      "'$GEN' --count '$STREAM_ROWS' 2>'$WORK/gen.log' | '$BIN' build - -o '$WORK/out.colsnap' --quiet $flag $BUILD_ARGS"
    t1=$(date +%s.%N)
    bytes=$(grep -o '[0-9.]* MB in' "$WORK/gen.log" | awk '{print $1 * 1e6}')
    rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.log")
    row "stream-$STREAM_ROWS" "$preset" "$(echo "$t1 - $t0" | bc)" "$bytes" "$rss" "$(stat -c %s "$WORK/out.colsnap")"
    rm -f "$WORK/out.colsnap"
  done
fi
echo "(peak RSS of a stream is the larger of gen's and colsnap's; inputs in $WORK)"
