#!/usr/bin/env bash
# Builds {{name}}.wasm (a wasm32-wasip2 component) here, or at $OUT. Installs the
# wasm32-wasip2 target with rustup when it is missing.
set -euo pipefail
cd "$(dirname "$0")"
out=${OUT:-$PWD/{{name}}.wasm}
command -v cargo >/dev/null || { echo "{{name}}: needs Rust (https://rustup.rs)" >&2; exit 1; }
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
  rustup target add wasm32-wasip2 >&2
fi
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --target wasm32-wasip2 --target-dir "$target"
cp "$target/wasm32-wasip2/release/{{name_snake}}.wasm" "$out"
echo "$out"
