#!/usr/bin/env bash
# Load test of colsnap-serve, side by side with Datasette (a measurement, not
# run in CI).
#
#   scripts/bench-serve.sh                 # 1,000,000 generated issues, 32 connections, 20 s
#   ROWS=100000 DURATION=10s scripts/bench-serve.sh
#   NDJSON=/data/issues.ndjson SNAPSHOT=/data/issues.colsnap WORKDIR=/tmp/bench scripts/bench-serve.sh
#   DATASETTE=0 scripts/bench-serve.sh     # colsnap-serve only
#   SERVE=0 WORKDIR=... scripts/bench-serve.sh   # Datasette only (after a run in WORKDIR)
#
# Generates ROWS issues (colsnap_testdata's gen_issues) unless NDJSON is
# given, builds the snapshot unless SNAPSHOT is given, starts colsnap-serve
# and loads it with wrk (apt package `wrk`) over a mix of page requests:
# sort by a string column, by a timestamp, a filter with a sort, a numeric
# filter with a sort; pages 1-200 of 50 whole rows. Then the same with a
# search added to the mix and with four fields only, and one SSE stream of
# every row (whole rows, then four fields). Prints wrk's reports (req/s,
# latency percentiles) and the server's resident memory.
#
# Datasette's side (DATASETTE=1, the default): a Python venv in WORKDIR
# (pip install datasette sqlite-utils), the same NDJSON loaded into SQLite
# (sqlite-utils; nested values stored as JSON text) with indexes on the
# sorted and filtered columns, served by `datasette serve`, loaded by wrk
# with the same mix as SQL with LIMIT/OFFSET (`?sql=...&_shape=array`: the
# same pages, the same rows). WORKDIR keeps the venv, the snapshot and the
# database between runs (the 1M-row load takes a long while).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DURATION=${DURATION:-20s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18473}
DPORT=${DPORT:-18474}
DATASETTE=${DATASETTE:-1}
SERVE=${SERVE:-1}
WORK=${WORKDIR:-$(mktemp -d)}
mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

cargo build --release -p colsnap-server --bin colsnap-serve
NDJSON=${NDJSON:-$WORK/issues.ndjson}
SNAPSHOT=${SNAPSHOT:-$WORK/issues.colsnap}
NAME=$(basename "$SNAPSHOT" .colsnap)
DB=$WORK/$NAME.db
# The NDJSON is needed only to build what is missing.
if [ ! -s "$NDJSON" ] && { [ ! -s "$SNAPSHOT" ] || { [ "$DATASETTE" = 1 ] && [ ! -s "$DB" ]; }; }; then
  cargo build --release -p colsnap --example gen_issues
  target/release/examples/gen_issues --count "$ROWS" --out "$NDJSON"
fi
if [ ! -s "$SNAPSHOT" ]; then
  cargo build --release -p colsnap --bin colsnap
  target/release/colsnap build "$NDJSON" -o "$SNAPSHOT"
fi
echo "== machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
rss() { awk '/VmRSS/ {printf "%.1f MB\n", $2/1024}' "/proc/$1/status"; }
run_wrk() { # $1: title, $2: Lua file, $3: base URL, $4: pid
  echo "== $1: wrk -t$THREADS -c$CONNS -d$DURATION (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$2" "$3"
  echo "== RSS after load: $(rss "$4")"
}
PID=
DPID=
trap 'kill ${PID:-} ${DPID:-} 2>/dev/null || true' EXIT
if [ "$SERVE" = 1 ]; then
# SERVE_ARGS: more options, e.g. SERVE_ARGS="--cache-mb 4096".
# shellcheck disable=SC2086
RUST_LOG=warn target/release/colsnap-serve "$SNAPSHOT" --addr "127.0.0.1:$PORT" --no-web --reload 0 ${SERVE_ARGS:-} &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 600); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
echo "== colsnap-serve RSS after start: $(rss $PID)"
# Whole rows come from the row store once it is built (docs/http.md).
t0=$(date +%s)
for _ in $(seq 7200); do curl -fs "$BASE/healthz" | grep -q '"state":"building"' || break; sleep 0.5; done
echo "== row store: $(curl -fs "$BASE/healthz" | sed -n 's/.*"rowStore":\(.*\)}$/\1/p') after $(( $(date +%s) - t0 )) s; RSS $(rss $PID)"

QUERIES=("sort=title" "sort=-created_at" "where=state%3Dopen&sort=-updated_at" "where=comments%3E%3D3&sort=number")
SEARCH="search=crash&in=title&sort=-number"
echo "== first (cold) request of each query: column loads + filter + sort"
for q in "${QUERIES[@]}" "$SEARCH"; do
  printf '%-45s %s s\n' "$q" "$(curl -s -o /dev/null -w '%{time_total}' "$BASE/api/$NAME/rows?$q&page=1&limit=50")"
done
echo "== colsnap-serve RSS after warm-up: $(rss $PID)"

# Pages 1-200, or fewer where a query has fewer pages (so every answer is a 200).
# $1: extra parameters, $2: Lua file, $3...: queries
mix() {
  local extra=$1 out=$2
  shift 2
  {
    echo 'local queries = {'
    for q in "$@"; do
      pages=$(curl -s "$BASE/api/$NAME/rows?$q&limit=50$extra" | sed -n 's/.*"totalPages":\([0-9]*\).*/\1/p')
      [ "${pages:-0}" -gt 200 ] && pages=200
      [ "${pages:-0}" -ge 1 ] && echo "  {\"$q$extra\", $pages},"
    done
    echo '}'
    cat <<LUAEND
request = function()
  local q = queries[math.random(#queries)]
  return wrk.format("GET", "/api/$NAME/rows?" .. q[1] .. "&limit=50&page=" .. math.random(q[2]))
end
LUAEND
  } > "$out"
}
mix "" "$WORK/mix.lua" "${QUERIES[@]}"
run_wrk "colsnap-serve: pages 1-200 of the mix, whole rows" "$WORK/mix.lua" "$BASE" $PID
mix "&fields=number,title,state,updated_at" "$WORK/mix-fields.lua" "${QUERIES[@]}" "$SEARCH"
run_wrk "colsnap-serve: the mix and a search, fields=number,title,state,updated_at" "$WORK/mix-fields.lua" "$BASE" $PID

# SSE_MAX: seconds a stream may take (curl --max-time); rows counted from
# the data events received (chunkSize each, the last maybe fewer).
sse() { # $1: extra parameters
  local start end out
  start=$(date +%s.%N)
  out=$(curl -sN --max-time "${SSE_MAX:-600}" "$BASE/api/$NAME/stream?chunkSize=1000$1" | tee >(wc -c > "$WORK/sse.bytes") | grep -c '^event: data' || true)
  end=$(date +%s.%N)
  sleep 0.2
  awk -v n="$out" -v s="$start" -v e="$end" -v b="$(cat "$WORK/sse.bytes")" -v q="$1" \
    'BEGIN { t = e - s; r = n * 1000; printf "SSE chunkSize=1000%s: about %d rows, %.1f MB in %.2f s: %.0f rows/s, %.0f MB/s\n", q, r, b/1e6, t, r/t, b/1e6/t }'
}
echo "== SSE of every row (load average $(cut -d' ' -f1-3 /proc/loadavg))"
sse ""
sse "&fields=number,title,state,updated_at"
echo "== colsnap-serve RSS at the end: $(rss $PID)"
kill $PID; wait $PID 2>/dev/null || true
fi

[ "$DATASETTE" = 1 ] || exit 0
VENV=$WORK/venv
if [ ! -x "$VENV/bin/datasette" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q datasette sqlite-utils
fi
if [ ! -s "$DB" ]; then
  echo "== loading $NDJSON into SQLite (sqlite-utils)"
  rm -f "$DB.tmp"
  t0=$(date +%s)
  "$VENV/bin/sqlite-utils" insert "$DB.tmp" issues "$NDJSON" --nl --pk id --alter --batch-size 1000
  for c in title created_at updated_at number comments; do
    "$VENV/bin/sqlite-utils" create-index "$DB.tmp" issues "$c"
  done
  "$VENV/bin/sqlite-utils" create-index "$DB.tmp" issues state updated_at
  mv "$DB.tmp" "$DB"
  echo "loaded in $(( $(date +%s) - t0 )) s"
fi
"$VENV/bin/datasette" serve "$DB" --port "$DPORT" --setting sql_time_limit_ms 10000 >"$WORK/datasette.log" 2>&1 &
DPID=$!
DBASE="http://127.0.0.1:$DPORT"
DNAME=$(basename "$DB" .db)
for _ in $(seq 600); do curl -fs "$DBASE/-/versions.json" >/dev/null && break; sleep 0.1; done
echo "== datasette $("$VENV/bin/datasette" --version | awk '{print $3}') RSS after start: $(rss $DPID)"
# The same four queries as SQL (ORDER BY ... LIMIT 50 OFFSET 50*(page-1));
# ties broken by id, as colsnap's sort is stable in row order.
DQUERIES=(
  "select * from issues order by title, id"
  "select * from issues order by created_at desc, id"
  "select * from issues where state = 'open' order by updated_at desc, id"
  "select * from issues where comments >= 3 order by number, id"
)
echo "== first (cold) request of each query"
for q in "${DQUERIES[@]}"; do
  printf '%-72s %s s\n' "$q" "$(curl -s -o /dev/null -w '%{time_total}' -G "$DBASE/$DNAME.json" --data-urlencode "sql=$q limit 50 offset 0" --data-urlencode "_shape=array")"
done
{
  echo 'local queries = {'
  for i in "${!DQUERIES[@]}"; do
    q=${DQUERIES[$i]}
    enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$q")
    # The page counts of colsnap's mix: the same pages.
    pages=$(sed -n "$((i + 2))p" "$WORK/mix.lua" | sed -n 's/.*, \([0-9]*\)},/\1/p')
    echo "  {\"$enc\", ${pages:-200}},"
  done
  echo '}'
  cat <<LUAEND
request = function()
  local q = queries[math.random(#queries)]
  local off = 50 * (math.random(q[2]) - 1)
  return wrk.format("GET", "/$DNAME.json?_shape=array&sql=" .. q[1] .. "+limit+50+offset+" .. off)
end
LUAEND
} > "$WORK/mix-datasette.lua"
run_wrk "datasette: pages 1-200 of the mix, whole rows" "$WORK/mix-datasette.lua" "$DBASE" $DPID
