#!/usr/bin/env bash
# Builds {{name}}.wasm here (or at $OUT) with componentize-py, installed from PyPI into
# $NTHLAYER_TOOLCHAINS/python (default ./.toolchains/python) when missing.
set -euo pipefail
cd "$(dirname "$0")"
out=${OUT:-$PWD/{{name}}.wasm}
VERSION=${COMPONENTIZE_PY_VERSION:-0.25.1}
venv=${NTHLAYER_TOOLCHAINS:-$PWD/.toolchains}/python
componentize="$venv/bin/componentize-py"
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("componentize-py"))' 2>/dev/null || true)
if [ "$installed" != "$VERSION" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "componentize-py==$VERSION" >&2
fi
wit=$(ls -d wit/nthlayer-worker@* | sort -V | tail -1)
# The world imports only what the host offers, so the component does too.
"$componentize" -d "$wit" -w worker componentize app -o "$out" >&2
echo "$out"
