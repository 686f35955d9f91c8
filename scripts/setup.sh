#!/usr/bin/env bash
# Installs what the usersync test suite needs and a fresh machine lacks. Idempotent: each
# step is skipped when its tool is already there.
set -euo pipefail

have_target() { rustup target list --installed | grep -qx "$1"; }
have_component() { rustup component list --installed | grep -q "^$1"; }

for component in rustfmt clippy; do
  have_component "$component" || rustup component add "$component"
done
# usersync-core must build for the browser (issue: WASM build).
have_target wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
