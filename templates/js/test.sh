#!/usr/bin/env bash
# The module's own test, usable from any CI:
#   1. native: tsc type check, then test/*.test.ts under node --test against a fake Host;
#   2. the component: build it, `nthlayer-host check` it, and run one cycle with
#      `nthlayer-host run-once <name>.wasm --task <name> --fixtures fixtures/ --grant
#      <name>=core,prometheus,assessment:*` (recorded core/Prometheus answers; the host's
#      docs/modules.md; a module from a file may post no record kind it was not granted) — it must succeed, answer every
#      call from the fixtures and submit at least one assessment.
# WASM: test this already built component instead of building one.
# NTHLAYER_HOST: the nthlayer-host binary (default: the one on PATH).
set -euo pipefail
cd "$(dirname "$0")"
name=$(node -p 'require("./package.json").name')
host=${NTHLAYER_HOST:-nthlayer-host}
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/js; fi
tc=$("$toolchain")
"$tc/node_modules/.bin/tsc" -p tsconfig.json
rm -rf .work/test
NTHLAYER_ESBUILD=$tc/node_modules/esbuild/lib/main.js node build.mjs test .work/test
node --test .work/test/ >&2

wasm=${WASM:-$(./build.sh)}
"$host" check "$wasm" >/dev/null
out=$(mktemp)
"$host" run-once "$wasm" --task "$name" --fixtures fixtures --grant "$name=core,prometheus,assessment:*" >"$out" || { cat "$out" >&2; exit 1; }
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const n = r.submitted?.assessments?.length ?? 0;
  if (!r.ok || n === 0) { console.error("run-once: ok=" + r.ok + ", " + n + " assessments\n" + JSON.stringify(r, null, 1)); process.exit(1); }
' "$out"
rm -f "$out"
echo "$name: ok"
