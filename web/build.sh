#!/usr/bin/env bash
# Build colsnap for the browser: web/www/pkg/colsnap_web.js + colsnap_web_bg.wasm.
# Needs: rustup target add wasm32-unknown-unknown
#        cargo install wasm-bindgen-cli --version 0.2.130 --locked   (the crate's pinned version)
# wasm-opt (binaryen 116 or later) is used when it is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' web/Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
    echo "wasm-bindgen-cli $want is needed (found: ${have:-none}):" >&2
    echo "  cargo install wasm-bindgen-cli --version $want --locked" >&2
    exit 1
fi
# Size over speed for the download; no debug info in the module.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}
export CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-true}
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort
export CARGO_PROFILE_RELEASE_DEBUG=0
cargo build --release --target wasm32-unknown-unknown -p colsnap-web
out=web/www/pkg
rm -rf "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
    target/wasm32-unknown-unknown/release/colsnap_web.wasm
# Old binaryen (Debian 12 ships 108) breaks wasm-bindgen's externref table:
# only a recent wasm-opt is used.
wopt=$(wasm-opt --version 2>/dev/null | awk '{print $3}' || true)
if [ "${wopt:-0}" -ge 116 ] 2>/dev/null; then
    wasm-opt -Os --enable-reference-types --enable-bulk-memory --enable-sign-ext \
        --enable-mutable-globals --enable-multivalue --enable-nontrapping-float-to-int \
        -o "$out/colsnap_web_bg.wasm" "$out/colsnap_web_bg.wasm"
fi
cp web/js/colsnap.js web/js/colsnap.d.ts "$out/"
for f in "$out"/colsnap_web_bg.wasm "$out"/colsnap_web.js "$out"/colsnap.js; do
    printf '%-36s %8d bytes, %7d gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
