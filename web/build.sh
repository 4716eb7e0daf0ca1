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
# wasm-opt from binaryen 132 (npm, web/test's packages; Debian's 108 breaks
# the bindings): -O1 only, and kept only when the gzip is smaller. Its -Oz
# and -Os make this module 9% smaller raw but 6% larger gzip (290 -> 307 KB),
# and gzip is what the page downloads. `--converge` (repeat -O1 until the
# module stops shrinking) saves another ~0.8 KB gzip.
wopt=web/test/node_modules/.bin/wasm-opt
if [ -x "$wopt" ]; then
    w="$out/colsnap_web_bg.wasm"
    "$wopt" -O1 --converge --enable-reference-types --enable-bulk-memory --enable-sign-ext \
        --enable-mutable-globals --enable-multivalue --enable-nontrapping-float-to-int \
        -o "$w.opt" "$w"
    if [ "$(gzip -9c "$w.opt" | wc -c)" -lt "$(gzip -9c "$w" | wc -c)" ]; then
        mv "$w.opt" "$w"
    else
        rm "$w.opt"
    fi
else
    echo "note: no $wopt (cd web/test && npm ci): the module is not run through wasm-opt" >&2
fi
cp web/js/colsnap.js web/js/engine.js web/js/worker.js web/js/published.js web/js/colsnap.d.ts "$out/"
# The page's script: app.js with colsnap.js (the page's side: messages to
# the worker) in one minified module, and the worker's: worker.js with
# engine.js and the wasm-bindgen glue in another, plus a chunk loaded only
# for published snapshots (published.js; esbuild --splitting). esbuild comes
# from web/test's npm packages (`npm ci` there); without it the files are
# used as they are.
esbuild=web/test/node_modules/.bin/esbuild
if [ -x "$esbuild" ]; then
    "$esbuild" web/www/app.js --bundle --format=esm --minify --target=es2022 \
        --log-level=warning --outfile="$out/app.js"
    "$esbuild" "$out/worker.js" --allow-overwrite --bundle --splitting --format=esm --minify --target=es2022 \
        --log-level=warning --chunk-names='chunk-[hash]' --outdir="$out"
else
    echo "note: no $esbuild (cd web/test && npm ci): $out/app.js and worker.js not minified" >&2
    sed "s#'./pkg/colsnap.js'#'./colsnap.js'#" web/www/app.js >"$out/app.js"
fi
# Each file's gzip beside it (FILE.gz), which `colsnap serve` sends as is
# to a browser that takes gzip: zopfli (Debian package `zopfli`; gzip
# format, about 5% smaller than gzip -9, compressed once here instead of
# per request), else gzip -9.
gz() {
    if command -v zopfli >/dev/null; then
        zopfli --i15 -c "$1" >"$1.gz"
    else
        gzip -9nc "$1" >"$1.gz"
    fi
}
[ -n "$(command -v zopfli)" ] || echo "note: no zopfli (apt-get install zopfli): $out/*.gz made by gzip -9" >&2
for f in "$out"/colsnap_web_bg.wasm "$out"/app.js "$out"/worker.js "$out"/chunk-*.js web/www/index.html web/www/style.css; do
    gz "$f"
    printf '%-36s %8d bytes, %7d gzip -9, %7d served (.gz)\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" "$(wc -c <"$f.gz")"
done
