#!/usr/bin/env bash
# Installs what the usersync test suite needs and a fresh machine lacks. Idempotent: each
# step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null; then
  echo "usersync needs Rust 1.89 or later through rustup: https://rustup.rs" >&2
  exit 1
fi

have_target() { rustup target list --installed | grep -qx "$1"; }
have_component() { rustup component list --installed | grep -q "^$1"; }

for component in rustfmt clippy; do
  have_component "$component" || rustup component add "$component"
done
# usersync-core must build for the browser (issue: WASM build).
have_target wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# Debian packages the tests start or call: slapd and ldap-utils for the LDAP sync tests,
# openssl makes test certificates, curl checks
# `usersync serve --tls-cert` the way a user would; gcc, valgrind and pkg-config build, check
# and link the C programs of tests/c/ against libusersync; Chromium and its driver run the
# browser module's tests (wasm/test.sh) headless; postgresql is the server the PostgreSQL
# store's tests start in a temporary directory (the package's own cluster is not used);
# samba-ad-dc and friends make the Active Directory domain controller the AD tests provision
# into a temporary directory (samba-ad-provision holds the schema files provisioning needs).
debs=(openssl curl ca-certificates slapd ldap-utils gcc libc6-dev valgrind pkgconf chromium chromium-driver postgresql
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind)
missing=()
for p in "${debs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js and npm run the browser module's build and tests (wasm/); g++ builds libFuzzer for
# the fuzz targets' smoke run. Asked for by command, not package: a NodeSource Node.js
# brings its own npm, which Debian's npm package would conflict with.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v g++ >/dev/null || missing+=(g++)
# The Python module builds into a virtualenv (python/test.sh): Debian's python3 needs
# python3-venv for that (a pyenv or python.org Python has it built in).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The wasm-bindgen CLI must be the version of the crate in Cargo.lock. `--locked` is left
# out on purpose: the CLI's own lockfile names a crate version the registry lacks.
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
  cargo install wasm-bindgen-cli --version "$want"
fi
# npm tools of the browser module (wasm-opt from npm's binaryen, playwright-core, tsc), pinned by
# wasm/package-lock.json. playwright-core drives Debian's Chromium: it downloads no browser.
[ -x wasm/node_modules/.bin/wasm-opt ] && [ -x wasm/node_modules/.bin/tsc ] ||
  (cd wasm && npm ci --no-audit --no-fund)
