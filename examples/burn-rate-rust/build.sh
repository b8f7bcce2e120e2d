#!/usr/bin/env bash
# Builds burn-rate-rust.wasm (wasm32-wasip2 component) here, or at $OUT.
# Toolchain: cargo with the wasm32-wasip2 target (added with rustup when missing).
set -euo pipefail
cd "$(dirname "$0")"
name=burn-rate-rust
out=${OUT:-$PWD/$name.wasm}
if ! rustc --print sysroot >/dev/null 2>&1; then
  echo "$name: needs a Rust toolchain (https://rustup.rs)" >&2; exit 1
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
  rustup target add wasm32-wasip2 >&2
fi
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --target wasm32-wasip2 --target-dir "$target"
mkdir -p "$(dirname "$out")"
cp "$target/wasm32-wasip2/release/${name//-/_}.wasm" "$out"
echo "$out"
