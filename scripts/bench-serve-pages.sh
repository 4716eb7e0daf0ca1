#!/usr/bin/env bash
# Whole-row pages of a running colsnap-serve, in server CPU (a measurement,
# not run in CI; docs/http.md "Benchmark"):
#
#   scripts/bench-serve-pages.sh http://127.0.0.1:18601 PID [NAME]
#
# Warms the four queries of scripts/bench-serve.sh's mix, asks 200 random
# pages (1-200, 50 whole rows) one after another and prints the server's
# CPU time per page (utime + stime of PID), the same pages again, then
# loads it with wrk (32 connections, DUR, default 20 s) over the same mix.
set -euo pipefail
B=$1; P=$2; N=${3:-issues-1m}
cpu() { awk '{print ($14+$15)}' /proc/$P/stat; }
Q=("sort=title" "sort=-created_at" "where=state%3Dopen&sort=-updated_at" "where=comments%3E%3D3&sort=number")
for q in "${Q[@]}"; do curl -s -o /dev/null "$B/api/$N/rows?$q&limit=50&page=1"; done
RANDOM=7
urls=()
for i in $(seq 200); do q=${Q[$((RANDOM % 4))]}; urls+=("$B/api/$N/rows?$q&limit=50&page=$((RANDOM % 200 + 1))"); done
c0=$(cpu); t0=$(date +%s.%N)
for u in "${urls[@]}"; do curl -s -o /dev/null "$u"; done
c1=$(cpu); t1=$(date +%s.%N)
awk -v c="$((c1-c0))" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "200 random whole-row pages (sequential): server CPU %.2f ms/page, wall %.1f ms/page\n", c*10/200, (t1-t0)*1000/200 }'
# the same pages again (warm)
c0=$(cpu); for u in "${urls[@]}"; do curl -s -o /dev/null "$u"; done; c1=$(cpu)
awk -v c="$((c1-c0))" 'BEGIN { printf "same 200 pages again: server CPU %.2f ms/page\n", c*10/200 }'
grep -E "VmRSS|VmHWM" /proc/$P/status
cat > /tmp/mix.lua <<LUA
local queries = {"sort=title","sort=-created_at","where=state%3Dopen&sort=-updated_at","where=comments%3E%3D3&sort=number"}
request = function()
  return wrk.format("GET", "/api/$N/rows?" .. queries[math.random(#queries)] .. "&limit=50&page=" .. math.random(200))
end
LUA
c0=$(cpu)
wrk -t2 -c32 -d${DUR:-20s} --latency -s /tmp/mix.lua "$B" | grep -E "Requests/sec|50%|99%|Non-2xx|requests in"
c1=$(cpu)
echo "wrk: server CPU $(( (c1-c0)/100 )) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E "VmRSS|VmHWM" /proc/$P/status
