#!/usr/bin/env bash
# Builds this module's component from source:
#   1. the JS toolchain (componentize-js, esbuild, typescript from npm) if missing;
#   2. tsc --noEmit: the type check (esbuild does none);
#   3. esbuild: src/component.ts -> one ES module, contract imports pinned to the WIT version;
#   4. componentize-js -d http fetch-event: without these two the component imports
#      wasi:http (fetch() and the fetch-event handler), which the host does not offer.
# Usage: ./build.sh [OUT.wasm]   (or OUT=…; prints the path on stdout)
# Default: ./<package.json name>.wasm.
# WIT: the newest wit/nthlayer-worker@X.Y.Z/ here (a project made by `nthlayer-host new`),
# else the newest one of the repository this example lives in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
caller=$PWD
cd "$here"
name=$(node -p 'require("./package.json").name')
out=${OUT:-${1:-$here/$name.wasm}}
case "$out" in /*) ;; *) out=$caller/$out ;; esac
wit=$(ls -d wit/nthlayer-worker@*/ 2>/dev/null | sort -V | tail -1 || true)
[ -n "$wit" ] || wit=$(ls -d ../../wit/nthlayer-worker@*/ 2>/dev/null | sort -V | tail -1 || true)
[ -n "$wit" ] || { echo "$name: no wit/nthlayer-worker@X.Y.Z/ here or in ../../wit" >&2; exit 1; }
wit=$(cd "$wit" && pwd)
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/js; fi
tc=$("$toolchain")
bin=$tc/node_modules/.bin
mkdir -p .work "$(dirname "$out")"
"$bin/tsc" -p tsconfig.json
NTHLAYER_ESBUILD=$tc/node_modules/esbuild/lib/main.js node build.mjs component "$wit" .work/component.js
"$bin/componentize-js" .work/component.js --wit "$wit" --world-name worker \
  --disable http fetch-event -o "$out" >&2
echo "$name: built $out ($(stat -c %s "$out") bytes)" >&2
echo "$out"
