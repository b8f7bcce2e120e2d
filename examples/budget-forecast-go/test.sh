#!/usr/bin/env bash
# The module's own test, usable from any CI:
#   1. native: go vet + go test ./forecast/ (the logic, against a fake Host; no wasm);
#   2. the component: `nthlayer-host run-once <name>.wasm --task <name> --fixtures fixtures/`
#      (recorded core/Prometheus answers; docs/modules.md), built first if missing.
# NTHLAYER_HOST names the host binary (default: nthlayer-host on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
name=$(sed -n 's/^\s*Name\s*=\s*"\(.*\)"$/\1/p' export_wit_world/export.go)
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/go; fi
tc=$("$toolchain")
export PATH=$tc/bin:$PATH GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOMODCACHE=$tc/gomod GOCACHE=$tc/gocache
go vet ./forecast/
go test ./forecast/

host=${NTHLAYER_HOST:-nthlayer-host}
wasm=${WASM:-$here/$name.wasm}
if [ ! -d fixtures ]; then
  echo "$name: no fixtures/ — component run skipped" >&2
  exit 0
fi
[ -f "$wasm" ] || ./build.sh "$wasm"
"$host" run-once "$wasm" --task "$name" --fixtures fixtures/
