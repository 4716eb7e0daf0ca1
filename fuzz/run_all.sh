#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60), one after the other,
# without sanitizers (works on stable Rust), then print libFuzzer's final
# statistics and any crash files.
#   fuzz/run_all.sh 600             # 10 minutes per target
#   JOBS=8 fuzz/run_all.sh 600      # 8 parallel fuzzing jobs per target
#   SANITIZER=address fuzz/run_all.sh 600   # ASan (uses RUSTC_BOOTSTRAP=1 on stable)
#   MEM_MB=2048 fuzz/run_all.sh 600 # memory limit per input (default 1024 MB)
# Every target runs under -rss_limit_mb and -malloc_limit_mb (MEM_MB): an
# input that makes the library allocate more than that is a crash, so the
# fuzzers find memory bombs (issue 11) rather than being killed by them.
# Logs: fuzz/logs/TARGET.log; crashes: fuzz/artifacts/TARGET/.
set -uo pipefail
secs="${1:-60}"
jobs="${JOBS:-1}"
san="${SANITIZER:-none}"
mem="${MEM_MB:-1024}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
[ -d corpus/open_read ] || ../fuzz/seed.sh
boot=()
[ "$san" != none ] && boot=(env RUSTC_BOOTSTRAP=1)
mkdir -p logs
status=0
for t in open_read open_read_repaired build_json roundtrip; do
    echo "== $t: ${secs}s, ${jobs} job(s), sanitizer $san, ${mem} MB memory limit"
    mkdir -p "corpus/$t" "artifacts/$t"
    extra=()
    [ "$jobs" -gt 1 ] && extra=(-jobs="$jobs" -workers="$jobs")
    "${boot[@]}" cargo fuzz run -s "$san" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb="$mem" -malloc_limit_mb="$mem" -print_final_stats=1 \
        "${extra[@]}" > "logs/$t.log" 2>&1
    rc=$?
    # With -jobs, libFuzzer writes each job's output to fuzz-N.log.
    cat fuzz-*.log >> "logs/$t.log" 2>/dev/null && rm -f fuzz-*.log
    grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "logs/$t.log" | sed "s/^/   /"
    grep -E "Test unit written to|panicked at|ERROR: libFuzzer|SUMMARY" "logs/$t.log" | sort -u | sed "s/^/   /"
    if [ $rc -ne 0 ]; then
        echo "   FAILED (exit $rc), see fuzz/logs/$t.log"
        status=1
    fi
done
if find artifacts -type f 2>/dev/null | grep -q .; then
    echo "crash files:"
    find artifacts -type f
    status=1
fi
exit $status
