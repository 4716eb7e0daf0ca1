#!/usr/bin/env bash
# Build colsnap for the browser: web/www/pkg/colsnap_web.js + colsnap_web_bg.wasm.
# Needs: rustup target add wasm32-unknown-unknown
#        cargo install wasm-bindgen-cli --version 0.2.130 --locked   (the crate's pinned version)
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' web/Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
    echo "wasm-bindgen-cli $want is needed (found: ${have:-none}):" >&2
    echo "  cargo install wasm-bindgen-cli --version $want --locked" >&2
    exit 1
fi
# Size over speed: the `wasm-release` profile of the root Cargo.toml
# (opt-level "z", fat LTO, one codegen unit, panic = "abort", no debug info).
cargo build --profile wasm-release --target wasm32-unknown-unknown -p colsnap-web
out=web/www/pkg
rm -rf "$out"
# The name and producers sections are debugging aids (a third of the raw
# module): left out of what the page downloads.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$out" target/wasm32-unknown-unknown/wasm-release/colsnap_web.wasm
# No wasm-opt: binaryen 132's -Oz/-Os make this module 9% smaller raw but
# 6% larger gzip (290 -> 307 KB), and gzip is what the page downloads.
cp web/js/colsnap.js web/js/colsnap.d.ts "$out/"
for f in "$out"/colsnap_web_bg.wasm "$out"/colsnap_web.js "$out"/colsnap.js; do
    printf '%-36s %8d bytes, %7d gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
