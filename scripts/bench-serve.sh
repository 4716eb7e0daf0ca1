#!/usr/bin/env bash
# Load test of colsnap-serve (a measurement, not run in CI).
#
#   scripts/bench-serve.sh                 # 1,000,000 generated issues, 32 connections, 20 s
#   ROWS=100000 DURATION=10s scripts/bench-serve.sh
#
# Builds the release binaries, generates ROWS issues (colsnap_testdata),
# builds the snapshot, starts colsnap-serve, and loads it with wrk (apt
# package `wrk`) over a mix of page requests: sort by a string column, by a
# timestamp, a filter with a sort, a search; pages 1-200 of 50 rows. Prints
# wrk's report (req/s, latency percentiles), the server's resident memory
# and the rows/s of one SSE stream of every row.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DURATION=${DURATION:-20s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18473}
WORK=${WORKDIR:-$(mktemp -d)}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

cargo build --release -p colsnap --bin colsnap --example gen_issues
cargo build --release -p colsnap-server --bin colsnap-serve
if [ ! -s "$WORK/issues.colsnap" ]; then
  target/release/examples/gen_issues --count "$ROWS" --out "$WORK/issues.ndjson"
  target/release/colsnap build "$WORK/issues.ndjson" -o "$WORK/issues.colsnap"
  rm -f "$WORK/issues.ndjson"
fi
RUST_LOG=warn target/release/colsnap-serve "$WORK/issues.colsnap" --addr "127.0.0.1:$PORT" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%.1f MB\n", $2/1024}' "/proc/$PID/status"; }
echo "== server RSS after start: $(rss)"

QUERIES=("sort=title" "sort=-created_at" "where=state%3Dopen&sort=-updated_at" "where=comments%3E%3D3&sort=number" "search=crash&in=title&sort=-number")
echo "== first (cold) request of each query: column loads + filter + sort"
for q in "${QUERIES[@]}"; do
  printf '%-45s %s s\n' "$q" "$(curl -s -o /dev/null -w '%{time_total}' "$BASE/api/issues/rows?$q&page=1&limit=50")"
done
echo "== server RSS after warm-up: $(rss)"

# Pages 1-200, or fewer where a query has fewer pages (so every answer is a 200).
mix() { # $1: extra parameters, $2: Lua file
  {
    echo 'local queries = {'
    for q in "${QUERIES[@]}"; do
      pages=$(curl -s "$BASE/api/issues/rows?$q&limit=50$1" | sed -n 's/.*"totalPages":\([0-9]*\).*/\1/p')
      [ "${pages:-0}" -gt 200 ] && pages=200
      [ "${pages:-0}" -ge 1 ] && echo "  {\"$q$1\", $pages},"
    done
    echo '}'
    cat <<'LUAEND'
request = function()
  local q = queries[math.random(#queries)]
  return wrk.format("GET", "/api/issues/rows?" .. q[1] .. "&limit=50&page=" .. math.random(q[2]))
end
LUAEND
  } > "$2"
}
mix "" "$WORK/mix.lua"
echo "== wrk -t$THREADS -c$CONNS -d$DURATION: pages 1-200 of the mix, whole rows"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$WORK/mix.lua" "$BASE"
echo "== server RSS after load: $(rss)"
mix "&fields=number,title,state,updated_at" "$WORK/mix-fields.lua"
echo "== wrk -t$THREADS -c$CONNS -d$DURATION: the same pages, fields=number,title,state,updated_at"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$WORK/mix-fields.lua" "$BASE"
echo "== server RSS after load: $(rss)"

echo "== SSE: every row, chunkSize=1000"
START=$(date +%s.%N)
BYTES=$(curl -sN "$BASE/api/issues/stream?chunkSize=1000" | wc -c)
END=$(date +%s.%N)
awk -v r="$ROWS" -v s="$START" -v e="$END" -v b="$BYTES" \
  'BEGIN { t = e - s; printf "%d rows, %.1f MB in %.2f s: %.0f rows/s\n", r, b/1e6, t, r/t }'
echo "== server RSS at the end: $(rss)"
