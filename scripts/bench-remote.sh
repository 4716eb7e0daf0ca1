#!/usr/bin/env bash
# Remote reading and publishing, measured (a benchmark, not run in CI).
#
#   scripts/bench-remote.sh                      # 200,000 generated issues
#   ROWS=1000000 WORKDIR=/tmp/bench scripts/bench-remote.sh
#   SNAPSHOT=/work/bench1m/issues-1m.colsnap DAY_AFTER=0 scripts/bench-remote.sh
#                                                # an existing day-1 snapshot
#                                                # (linked, not copied); no day 2
#
# Generates ROWS issues (colsnap_testdata, seed 42), builds the snapshot
# ("day 1"), publishes it, serves the file and the publish directory with
# nginx (apt package `nginx`) on 127.0.0.1, and reports, from `--stats`:
#   - requests and bytes to open and show the first 50 rows sorted by
#     -updated_at, over the single file and over the manifest, against the
#     bytes the same reader reads from the local file ("grid bytes");
#   - the same for one row's detail (every field, its long body included);
#   - "the day after": 1% of the rows edited (title, state, updated_at),
#     rebuilt, published into the same directory: bytes_written / total.
# Counts, not timings: the debug binary gives the same numbers as a release
# one (BIN=target/release/colsnap to use another). WORKDIR keeps the
# generated files between runs. Each measured command also shows the
# requests nginx itself logged (with the Range header asked).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
PORT=${PORT:-18474}
WORK=${WORKDIR:-$(mktemp -d)}
BIN=${BIN:-target/debug/colsnap}
# The program that builds snapshots and diffs them (the format does not
# depend on the branch: any colsnap of this format version, e.g. a release
# build, gives the same bytes faster).
BUILD_BIN=${BUILD_BIN:-$BIN}
MIN_OBJECT=${MIN_OBJECT:-16K}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx not found (apt-get install nginx)" >&2; exit 1; }
DAY_AFTER=${DAY_AFTER:-1}
mkdir -p "$WORK/site" "$WORK/nginx/tmp"
if [ -n "${SNAPSHOT:-}" ]; then
  ln -sf "$(realpath "$SNAPSHOT")" "$WORK/site/day1.colsnap"
  ROWS=$("$BIN" inspect "$WORK/site/day1.colsnap" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')
fi

cargo build -q -p colsnap --bin colsnap --example gen_issues
GEN=target/debug/examples/gen_issues
if [ ! -s "$WORK/site/day1.colsnap" ]; then
  "$GEN" --count "$ROWS" --seed 42 --out "$WORK/day1.ndjson"
  "$BUILD_BIN" build "$WORK/day1.ndjson" -o "$WORK/site/day1.colsnap"
fi
if [ "$DAY_AFTER" = 1 ] && [ ! -s "$WORK/site/day2.colsnap" ]; then
  [ -s "$WORK/day1.ndjson" ] || "$GEN" --count "$ROWS" --seed 42 --out "$WORK/day1.ndjson"
  # 1% of the rows (every 100th) edited: a new title suffix, state flipped,
  # updated_at moved to the next day.
  python3 - "$WORK/day1.ndjson" "$WORK/day2.ndjson" <<'EOF'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for i, line in enumerate(f):
        if i % 100 == 0:
            r = json.loads(line)
            r["title"] = r["title"] + " (edited)"
            r["state"] = "closed" if r.get("state") == "open" else "open"
            r["updated_at"] = "2027-01-01T12:00:00Z"
            line = json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n"
        out.write(line)
EOF
  "$BUILD_BIN" build "$WORK/day2.ndjson" -o "$WORK/site/day2.colsnap"
fi
rm -rf "$WORK/site/pub"

cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 256; }
http {
  log_format ranges '\$request \$status \$body_bytes_sent "\$http_range"';
  access_log $WORK/nginx/access.log ranges;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  types { application/json json; }
  default_type application/octet-stream;
  server { listen 127.0.0.1:$PORT; root $WORK/site; }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT"

echo "== day 1: $ROWS rows, $(stat -L -c %s "$WORK/site/day1.colsnap") bytes"
echo "== publish day 1 (--min-object $MIN_OBJECT)"
"$BIN" publish "$WORK/site/day1.colsnap" "$WORK/site/pub" --name issues --min-object "$MIN_OBJECT" --json

stats() { # LABEL, then a colsnap command line: prints its --stats line
  local label=$1; shift
  : > "$WORK/nginx/access.log"
  "$BIN" --stats "$@" 2>&1 >/dev/null | sed "s|^|$label: |"
  sleep 0.2
  local n
  n=$(wc -l < "$WORK/nginx/access.log")
  if [ "$n" -gt 0 ]; then
    echo "             nginx logged $n requests; the first ones (status, bytes, Range):"
    head -4 "$WORK/nginx/access.log" | awk '{r=$6; if (length(r) > 90) r=substr(r,1,90) "...\""; print "               " $4, $5, r}'
  fi
}
PAGE=(--sort -updated_at --limit 50 --fields number,title,state,user.login,labels[].name,comments,updated_at)
echo "== first page: 50 rows sorted by -updated_at (${PAGE[*]})"
stats "local file " query "$WORK/site/day1.colsnap" "${PAGE[@]}"
stats "http file  " query "$BASE/day1.colsnap" "${PAGE[@]}"
stats "manifest   " query "$BASE/pub/issues.latest.json" "${PAGE[@]}"
ROW=$((ROWS / 2))
echo "== one row's detail: export --rows $ROW..$((ROW + 1)) (every field, body included)"
stats "local file " export "$WORK/site/day1.colsnap" --ndjson --rows "$ROW..$((ROW + 1))"
stats "http file  " export "$BASE/day1.colsnap" --ndjson --rows "$ROW..$((ROW + 1))"
stats "manifest   " export "$BASE/pub/issues.latest.json" --ndjson --rows "$ROW..$((ROW + 1))"
echo "== open only: inspect (footer)"
stats "http file  " inspect "$BASE/day1.colsnap" --json
stats "manifest   " inspect "$BASE/pub/issues.latest.json" --json

[ "$DAY_AFTER" = 1 ] || exit 0
echo "== the day after: 1% of rows edited, rebuilt, published into the same DIR"
"$BIN" publish "$WORK/site/day2.colsnap" "$WORK/site/pub" --name issues --min-object "$MIN_OBJECT" --json \
  | tee "$WORK/day2.json"
python3 - "$WORK/day2.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"bytes_written / snapshot = {r['bytes_written']:,} / {r['snapshot_bytes']:,} = "
      f"{r['bytes_written'] / r['snapshot_bytes']:.1%}; objects written {r['objects_written']} of {r['objects']}")
EOF

echo "== the day after through events: day 1's objects plus the diff as an event segment"
[ -s "$WORK/day1-to-day2.ndjson" ] ||
  "$BUILD_BIN" diff "$WORK/site/day1.colsnap" "$WORK/site/day2.colsnap" -o "$WORK/day1-to-day2.ndjson"
"$BIN" publish "$WORK/site/day1.colsnap" "$WORK/site/pub" --name issues-events --min-object "$MIN_OBJECT" \
  --events "$WORK/day1-to-day2.ndjson" --json | tee "$WORK/events.json"
python3 - "$WORK/events.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"catch-up bytes (new objects + manifest) / snapshot = {r['bytes_written']:,} / {r['snapshot_bytes']:,} = "
      f"{r['bytes_written'] / r['snapshot_bytes']:.2%}")
EOF
