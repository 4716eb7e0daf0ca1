#!/usr/bin/env bash
# Build throughput and memory of `colsnap build` (a measurement, not run in CI).
#
#   scripts/bench-build.sh                       # neovim issues + 1,000,000 generated issues
#   ROWS=100000 scripts/bench-build.sh           # fewer generated issues
#   STREAM_ROWS=10000000 scripts/bench-build.sh  # also a stream of 10M issues (default and --fast)
#   PRESETS="default fast" ...                   # presets of the generated inputs (default: default fast ppmd)
#   BUILD_ARGS="--threads 1" scripts/bench-build.sh
#   BUILD_ARGS="--memory 256M" scripts/bench-build.sh  # another memory budget (default 1G)
#   NO_BUDGET=1 ...                              # also --fast --memory 0 (no spills: the old build)
#   NO_BUILD=1 ...                               # use the release binaries already built
#
# For each input, prints one line per preset (default, --fast, and the long
# text the other way: `--long-text-codec zstd` for the neovim file, whose
# default is PPMd, `--long-text-codec ppmd` for generated issues, whose
# default is zstd past 256 MiB of text): wall
# seconds, MB/s of JSON, peak RSS (GNU time's "Maximum resident set size"),
# output bytes. With DuckDB (`pip install duckdb`; PYTHON names the
# interpreter), also its Parquet (zstd level 19) write of the same JSON.
# Inputs: NEOVIM (default /work/shared/data/neovim-issues.ndjson.zst,
# skipped when absent; it is decompressed first), ROWS generated issues
# (`examples/gen_issues`, seed 42) and, when STREAM_ROWS is set, that many
# more. Generated issues are piped from gen_issues and never touch the disk
# (1M issues are 4 GB of JSON). DuckDB cannot stream them from a pipe (it
# holds /dev/stdin in memory), so for up to DUCKDB_ROWS (default 1000000)
# rows the same generated issues are written to a file in WORKDIR first
# (not timed; 4.2 GB for 1M) and DuckDB reads that file; it is removed after.
# WORKDIR keeps the neovim file between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
STREAM_ROWS=${STREAM_ROWS:-}
NEOVIM=${NEOVIM:-/work/shared/data/neovim-issues.ndjson.zst}
WORK=${WORKDIR:-$(mktemp -d)}
mkdir -p "$WORK"
BUILD_ARGS=${BUILD_ARGS:-}
DUCKDB_ROWS=${DUCKDB_ROWS:-1000000}
PYTHON=${PYTHON:-python3}
[ -x /usr/bin/time ] || { echo "GNU time not found (apt-get install time)" >&2; exit 1; }

[ -n "${NO_BUILD:-}" ] || cargo build --release -p colsnap --bin colsnap --example gen_issues
BIN=target/release/colsnap
GEN=target/release/examples/gen_issues

# row NAME PRESET SECONDS JSON_BYTES RSS_KB OUT_BYTES
printf '%-22s %-9s %9s %9s %10s %14s\n' input preset seconds MB/s "RSS MB" "output bytes"
row() {
  awk -v n="$1" -v p="$2" -v s="$3" -v j="$4" -v r="$5" -v o="$6" 'BEGIN {
    printf "%-22s %-9s %9.2f %9.1f %10.1f %14.0f\n", n, p, s, j / 1e6 / s, r / 1024, o }'
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
DUCKDB_COPY="import duckdb, sys
con = duckdb.connect()
con.execute(\"COPY (SELECT * FROM read_json_auto('\" + sys.argv[1] + \"', format='newline_delimited', maximum_object_size=1073741824, sample_size=-1)) TO '\" + sys.argv[2] + \"' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19)\")"
duckdb_write() {
  "$PYTHON" -c 'import duckdb' 2>/dev/null || return 0
  measure "$1" duckdb-19 "$2" "$PYTHON" -c "$DUCKDB_COPY" "$3" "$WORK/out.parquet"
}
file_input() {
  local name=$1 file=$2 bytes
  bytes=$(stat -c %s "$file")
  # shellcheck disable=SC2086
  measure "$name" default "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet $BUILD_ARGS
  # shellcheck disable=SC2086
  measure "$name" fast "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet --fast $BUILD_ARGS
  # shellcheck disable=SC2086
  measure "$name" zstd-long "$bytes" "$BIN" build "$file" -o "$WORK/out.colsnap" --quiet --long-text-codec zstd $BUILD_ARGS
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
# stream NAME ROWS: `gen_issues | colsnap build -` under GNU time, default
# and --fast (and DuckDB up to DUCKDB_ROWS). The JSON byte count (gen
# prints it on stderr) is read after the build.
stream() {
  local name=$1 rows=$2
  local presets=${PRESETS:-default fast ppmd}
  [ -n "${NO_BUDGET:-}" ] && presets="$presets fast-mem0"
  [ "$rows" -le "$DUCKDB_ROWS" ] && "$PYTHON" -c 'import duckdb' 2>/dev/null && presets="$presets duckdb-19"
  for preset in $presets; do
    local cmd
    case $preset in
      default) cmd="'$BIN' build - -o '$WORK/out.colsnap' --quiet $BUILD_ARGS" ;;
      fast) cmd="'$BIN' build - -o '$WORK/out.colsnap' --quiet --fast $BUILD_ARGS" ;;
      ppmd) cmd="'$BIN' build - -o '$WORK/out.colsnap' --quiet --long-text-codec ppmd $BUILD_ARGS" ;;
      fast-mem0) cmd="'$BIN' build - -o '$WORK/out.colsnap' --quiet --fast $BUILD_ARGS --memory 0" ;;
      duckdb-19) cmd="'$PYTHON' -c \"\$DUCKDB_COPY\" '$WORK/gen.ndjson' '$WORK/out.parquet'" ;;
    esac
    local t0 t1
    if [ "$preset" = duckdb-19 ]; then
      # The same rows as a file (not timed): DuckDB does not stream a pipe.
      "$GEN" --count "$rows" --seed 42 >"$WORK/gen.ndjson" 2>"$WORK/gen.log"
      t0=$(date +%s.%N)
      DUCKDB_COPY=$DUCKDB_COPY /usr/bin/time -v -o "$WORK/time.log" sh -c "$cmd"
    else
      t0=$(date +%s.%N)
      DUCKDB_COPY=$DUCKDB_COPY /usr/bin/time -v -o "$WORK/time.log" sh -c \
        "'$GEN' --count '$rows' --seed 42 2>'$WORK/gen.log' | $cmd"
    fi
    t1=$(date +%s.%N)
    local bytes rss out
    bytes=$(grep -o '[0-9.]* MB in' "$WORK/gen.log" | awk '{print $1 * 1e6}')
    rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.log")
    out=$(stat -c %s "$WORK/out.colsnap" 2>/dev/null || stat -c %s "$WORK/out.parquet")
    row "$name" "$preset" "$(echo "$t1 - $t0" | bc)" "$bytes" "$rss" "$out"
    rm -f "$WORK/out.colsnap" "$WORK/out.parquet" "$WORK/gen.ndjson"
  done
}
[ "$ROWS" -gt 0 ] && stream "generated-$ROWS" "$ROWS"
[ -n "$STREAM_ROWS" ] && stream "stream-$STREAM_ROWS" "$STREAM_ROWS"
echo "(peak RSS of a stream is the larger of gen's and the builder's; CPU seconds in $WORK/time.log; inputs in $WORK)"
