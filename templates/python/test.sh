#!/usr/bin/env bash
# The module's own test: native unit tests (CPython), then one cycle of the built component
# against fixtures/ (the host answers every import from those files).
# NTHLAYER_HOST: the nthlayer-host binary (default: the one on PATH).
set -euo pipefail
cd "$(dirname "$0")"
host=${NTHLAYER_HOST:-nthlayer-host}
python3 -m unittest -q test_module
wasm=$(./build.sh)
"$host" check "$wasm" >/dev/null
out=$(mktemp)
"$host" run-once "$wasm" --task {{name}} --fixtures fixtures --grant {{name}}=core,prometheus,assessment:slo_snapshot > "$out" || { cat "$out" >&2; exit 1; }
grep -q '"meeting": true' "$out" || { echo "expected a met SLO" >&2; cat "$out" >&2; exit 1; }
echo "{{name}}: ok"
