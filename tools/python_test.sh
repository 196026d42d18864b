#!/usr/bin/env bash
# Builds and installs the Python package into a fresh virtual environment and runs its tests:
#   tools/python_test.sh [pytest arguments...]
# The venv sees the machine's site packages (--system-site-packages), so numpy, scipy, torch and
# sentence-transformers already installed there are used offline; `pip install ./python` builds
# the Swift library in release mode (swift build -c release --product SparseDBC).
# SPARSEDB_VENV names the venv directory (default .build/python-venv, rebuilt on every run).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SPARSEDB_VENV:-.build/python-venv}"
rm -rf "$venv"
python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet ./python
# Run from outside the source tree, so that the installed package (with its library) is tested.
cd python
exec "../$venv/bin/python" -m pytest -p no:cacheprovider tests "$@"
