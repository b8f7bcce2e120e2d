#!/usr/bin/env bash
# Builds burn-rate-python.wasm here, or at $OUT, with componentize-py (PyPI; installed by
# scripts/toolchains/python into $NTHLAYER_TOOLCHAINS when missing) against the newest
# contract folder in wit/.
set -euo pipefail
cd "$(dirname "$0")"
name=burn-rate-python
out=${OUT:-$PWD/$name.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
repo=$(cd ../.. && pwd)
componentize=$("$repo/scripts/toolchains/python")
wit=$(ls -d "$repo"/wit/nthlayer-worker@* | sort -V | tail -1)
mkdir -p "$(dirname "$out")"
# The world imports only what the host offers; no --stub-wasi needed (the host links the
# WASI interfaces Python's runtime imports and grants nothing through them).
# app.py is a link to the Python template's glue; componentize-py does not follow links, so
# it reads the sources from a copy with the link resolved.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -L ./*.py "$src/"
(cd "$src" && "$componentize" -d "$wit" -w worker componentize app -o "$out") >&2
echo "$out"
