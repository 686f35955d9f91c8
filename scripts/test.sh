#!/usr/bin/env bash
# The whole usersync test suite: formatting, lints, every test (unit, corpus, property,
# command line, doc examples, the C programs), the browser module (wasm/test.sh), the Python
# module (python/test.sh) and the fuzz targets' build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check
step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "fuzz targets build"
cargo check --locked --manifest-path fuzz/Cargo.toml --target-dir target/fuzz-check
step "tests"
cargo test --locked
step "the browser module"
wasm/test.sh
step "the Python module"
python/test.sh
