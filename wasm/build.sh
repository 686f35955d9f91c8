#!/usr/bin/env bash
# Builds the npm package `@usersync/filters` into wasm/pkg/:
#   pkg/bundler/  ES module for bundlers (webpack, Vite, Rollup): the package's default
#   pkg/web/      ES module a page loads directly (`import init from ".../web/usersync.js"`)
#   pkg/node/     CommonJS for Node.js (what `import … from "@usersync/filters"` picks in node)
# each with its TypeScript declarations and its own copy of the optimised module.
# Prints the gzipped size of the module. Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
target_dir="${CARGO_TARGET_DIR:-$root/target}"

want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' "$root/Cargo.lock")
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "wasm/build.sh: wasm-bindgen $want is needed (found ${have:-none}): run scripts/setup.sh" >&2
  exit 1
fi
[ -x node_modules/.bin/wasm-opt ] && [ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund

cargo build --locked -p usersync-wasm --target wasm32-unknown-unknown --profile wasm
raw="$target_dir/wasm32-unknown-unknown/wasm/usersync_wasm.wasm"

rm -rf pkg
for target in bundler web nodejs; do
  dir=$target
  [ "$target" = nodejs ] && dir=node
  wasm-bindgen --target "$target" --out-dir "pkg/$dir" --out-name usersync \
    --remove-producers-section "$raw"
  # The features rustc enables by default for wasm32-unknown-unknown; Debian's binaryen is
  # too old for current wasm-bindgen output, so this is npm's binaryen (wasm/package.json).
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-reference-types --enable-multivalue --enable-mutable-globals \
    --strip-debug --strip-producers "pkg/$dir/usersync_bg.wasm" -o "pkg/$dir/usersync_bg.wasm"
done
# `options` is optional; wasm-bindgen cannot say so next to a declared parameter type.
sed -i 's/options: ScimFilterOptions)/options?: ScimFilterOptions)/g' pkg/*/usersync.d.ts
# The package is an ES module; the node build is CommonJS.
echo '{"type": "commonjs"}' > pkg/node/package.json

version=$(awk -F'"' '/^version = / {print $2; exit}' "$root/Cargo.toml")
cat > pkg/package.json <<JSON
{
  "name": "@usersync/filters",
  "version": "$version",
  "description": "SCIM 2.0 and LDAP filter validation, formatting and completion: usersync's engine in WebAssembly",
  "license": "Apache-2.0",
  "type": "module",
  "main": "./node/usersync.js",
  "module": "./bundler/usersync.js",
  "types": "./bundler/usersync.d.ts",
  "exports": {
    ".": {
      "node": {
        "types": "./node/usersync.d.ts",
        "default": "./node/usersync.js"
      },
      "types": "./bundler/usersync.d.ts",
      "default": "./bundler/usersync.js"
    },
    "./web": {
      "types": "./web/usersync.d.ts",
      "default": "./web/usersync.js"
    },
    "./package.json": "./package.json"
  },
  "sideEffects": ["./bundler/usersync.js", "./bundler/snippets/*"],
  "files": ["bundler", "web", "node", "README.md"]
}
JSON
cp package-readme.md pkg/README.md

bytes=$(wc -c < pkg/web/usersync_bg.wasm)
gzipped=$(gzip -9 -c pkg/web/usersync_bg.wasm | wc -c)
echo "wasm/pkg: module $bytes bytes, $gzipped bytes gzipped ($((gzipped / 1024)) KiB)"
