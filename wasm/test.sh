#!/usr/bin/env bash
# The browser module's tests (called by scripts/test.sh, after scripts/setup.sh installed
# wasm-bindgen-cli, Chromium and the npm tools):
#   1. lints for wasm32;
#   2. the shared fixture corpus through the exported functions, in Node.js and in headless
#      Chromium (wasm-bindgen-test);
#   3. the npm package built by build.sh, installed and imported the way a user does;
#   4. the demo page driven in Chromium (screenshots in target/wasm-artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== wasm: %s\n' "$*"; }

step "lints (wasm32)"
cargo clippy --locked -p usersync-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings

# Chromium leaves directories of its own in $TMPDIR when its driver ends it (18 MB a run):
# the browser steps get a temporary directory that goes when this script ends.
browser_tmp=$(mktemp -d)
trap 'rm -rf "$browser_tmp"' EXIT

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
step "fixture corpus in Node.js"
cargo test --locked -p usersync-wasm --target wasm32-unknown-unknown
step "fixture corpus in headless Chromium"
TMPDIR="$browser_tmp" WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
  cargo test --locked -p usersync-wasm --target wasm32-unknown-unknown

step "npm package"
wasm/build.sh
step "package and demo page"
TMPDIR="$browser_tmp" node --test wasm/tests/node/package.test.mjs wasm/tests/browser/demo.test.mjs
