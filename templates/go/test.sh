#!/usr/bin/env bash
# The module's own test, usable from any CI:
#   1. native: go vet + go test of ./module and ./nthlayer (the logic against a fake Host;
#      no bindings, no wasm);
#   2. the component: build it, `nthlayer-host check` it, and run one cycle with
#      `nthlayer-host run-once <name>.wasm --task <name> --fixtures fixtures/ --grant
#      <name>=core,prometheus,assessment:*` (recorded core/Prometheus answers; the host's
#      docs/modules.md; a module from a file may post no record kind it was not granted) — it must succeed, answer every
#      call from the fixtures and submit at least one assessment.
# WASM: test this already built component instead of building one.
# NTHLAYER_HOST: the nthlayer-host binary (default: the one on PATH).
set -euo pipefail
cd "$(dirname "$0")"
name=$(sed -n 's/^\s*Name\s*=\s*"\(.*\)"$/\1/p' module/module.go)
host=${NTHLAYER_HOST:-nthlayer-host}
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/go; fi
tc=$("$toolchain")
export PATH=$tc/bin:$PATH GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOMODCACHE=$tc/gomod GOCACHE=$tc/gocache
go vet ./module/ ./nthlayer/
go test ./module/ ./nthlayer/ >&2

wasm=${WASM:-$(./build.sh)}
"$host" check "$wasm" >/dev/null
out=$(mktemp)
"$host" run-once "$wasm" --task "$name" --fixtures fixtures --grant "$name=core,prometheus,assessment:*" >"$out" || { cat "$out" >&2; exit 1; }
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
n = len((r.get("submitted") or {}).get("assessments") or [])
if not r.get("ok") or n == 0:
    sys.exit("run-once: ok=%s, %d assessments\n%s" % (r.get("ok"), n, json.dumps(r, indent=1)))
' "$out"
rm -f "$out"
echo "$name: ok"
