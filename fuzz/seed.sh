#!/usr/bin/env bash
# Create the fuzz corpora (git-ignored) from the committed seeds and fixtures/:
#   fuzz/corpus/open_read   snapshots built from every small fixture (several options)
#   fuzz/corpus/open_read_repaired   the same
#   fuzz/corpus/build_json  the fixture JSON/NDJSON files
#   fuzz/corpus/roundtrip   the committed seeds plus a few random inputs
# Usage: fuzz/seed.sh      (from anywhere; needs cargo)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
for t in open_read open_read_repaired build_json roundtrip; do
    mkdir -p "fuzz/corpus/$t"
    cp fuzz/seeds/$t/* "fuzz/corpus/$t/" 2>/dev/null || true
done
cargo build --quiet --release --example build_file
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/examples/build_file"
# Fixtures under 256 KiB: larger ones only slow the fuzzer down.
find fixtures -type f \( -name '*.json' -o -name '*.ndjson' \) -size -256k | sort | while read -r f; do
    name="$(echo "$f" | tr '/' '_')"
    cp "$f" "fuzz/corpus/build_json/$name"
    for opt in "--chunk-size 64 --codec auto" "--chunk-size 65536 --codec none" "--chunk-size 256 --codec gzip" \
        "--chunk-size 32 --codec none --plain-footer yes"; do
        tag="$(echo "$opt" | tr -d ' -')"
        # shellcheck disable=SC2086
        "$bin" "$f" "fuzz/corpus/open_read/$name.$tag.colsnap" $opt --level 3 >/dev/null
    done
done
find fixtures -type f -name '*.colsnap' -size -256k | while read -r f; do
    cp "$f" "fuzz/corpus/open_read/$(echo "$f" | tr '/' '_')"
done
for i in 1 2 3 4 5 6 7 8; do
    head -c $((i * 64)) /dev/urandom > "fuzz/corpus/roundtrip/random-$i"
done
cp fuzz/corpus/open_read/* fuzz/corpus/open_read_repaired/
for t in open_read open_read_repaired build_json roundtrip; do
    echo "fuzz/corpus/$t: $(find "fuzz/corpus/$t" -type f | wc -l) inputs"
done
