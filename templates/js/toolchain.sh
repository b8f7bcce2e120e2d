#!/usr/bin/env bash
# Installs the JavaScript/TypeScript component toolchain from the npm registry, once:
# componentize-js (SpiderMonkey compiled to wasm + the guest's JS, wizened into a component),
# esbuild (TypeScript -> one ES module, no type check) and typescript (tsc --noEmit, the type
# check). Idempotent: a second run with the same pins is a no-op (~0.1 s).
# Prints the install directory; its node_modules/.bin holds componentize-js, esbuild, tsc.
set -euo pipefail
# Where: $NTHLAYER_TOOLCHAINS; else <repo>/.work/toolchains when run from the repository's
# scripts/toolchains/, else (a copy inside a module project) ~/.cache/nthlayer/toolchains.
root=${NTHLAYER_TOOLCHAINS:-}
if [ -z "$root" ]; then
  repo=$(cd "$(dirname "$0")/../.." && pwd)
  if [ -d "$repo/wit" ] && [ -d "$repo/scripts/toolchains" ]; then root=$repo/.work/toolchains
  else root=${XDG_CACHE_HOME:-$HOME/.cache}/nthlayer/toolchains; fi
fi
# The pins: componentize-js 0.23.x is the series whose `-d http fetch-event` leaves a
# component importing no wasi:http (docs/modules-js-go.md).
COMPONENTIZE_JS=0.23.0 ESBUILD=0.28.2 TYPESCRIPT=7.0.2
dir="$root/js-cjs$COMPONENTIZE_JS-esbuild$ESBUILD-ts$TYPESCRIPT"
if [ ! -f "$dir/.done" ]; then
  command -v npm >/dev/null || { echo "toolchains/js: npm not found (install Node.js 18+)" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$dir" && [ -f package.json ] || echo '{"private":true}' >"$dir/package.json")
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS" "esbuild@$ESBUILD" "typescript@$TYPESCRIPT" >&2
  touch "$dir/.done"
fi
echo "$dir"
