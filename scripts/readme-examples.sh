#!/bin/sh
# Regenerate the outputs of README.md's ```console examples from the real
# program, then show what changed. CI runs `cargo test --test readme`, which
# fails when an example's output (timings aside) no longer matches.
set -e
cd "$(dirname "$0")/.."
COLSNAP_UPDATE_README=1 cargo test --quiet --test readme
git diff --stat -- README.md
