#!/usr/bin/env bash
# The module's own test, usable from any CI:
#   1. native: type check, then test/*.test.ts under node --test against a fake Host;
#   2. the component: `nthlayer-host run-once <name>.wasm --task <name> --fixtures fixtures/`
#      (recorded core/Prometheus answers; docs/modules.md), built first if missing.
# NTHLAYER_HOST names the host binary (default: nthlayer-host on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
name=$(node -p 'require("./package.json").name')
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/js; fi
tc=$("$toolchain")
"$tc/node_modules/.bin/tsc" -p tsconfig.json
rm -rf .work/test
NTHLAYER_ESBUILD=$tc/node_modules/esbuild/lib/main.js node build.mjs test .work/test
node --test .work/test/

host=${NTHLAYER_HOST:-nthlayer-host}
wasm=${WASM:-$here/$name.wasm}
if [ ! -d fixtures ]; then
  echo "$name: no fixtures/ — component run skipped" >&2
  exit 0
fi
[ -f "$wasm" ] || ./build.sh "$wasm"
"$host" run-once "$wasm" --task "$name" --fixtures fixtures/
