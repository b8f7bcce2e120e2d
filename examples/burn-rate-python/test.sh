#!/usr/bin/env bash
# The module's own test: native unit tests (CPython), then one cycle of the built component
# against the recorded fixtures. NTHLAYER_HOST: the host binary (default: on PATH).
set -euo pipefail
cd "$(dirname "$0")"
host=${NTHLAYER_HOST:-nthlayer-host}
python3 -m unittest -q test_module
wasm=${WASM:-$(./build.sh)}
out=$(mktemp)
"$host" run-once "$wasm" --task burn-rate-python --fixtures fixtures --grant burn-rate-python=core,prometheus,assessment:burn_rate > "$out"
grep -q '"status": "PAGE"' "$out" || { echo "expected a PAGE record" >&2; cat "$out" >&2; exit 1; }
echo "burn-rate-python: ok"
