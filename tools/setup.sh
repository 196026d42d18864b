#!/usr/bin/env bash
# Sets up a fresh Debian machine for SparseDB, idempotently: the C libraries (LMDB, zstd,
# OpenBLAS) and tools from Debian's packages, the default model (splade-tiny) in the model
# cache, and a release build of the `sparsedb` command.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(liblmdb-dev libzstd-dev libopenblas-dev lmdb-utils pkg-config unzip wordnet-base time)  # time: GNU time, peak memory in the benchmark harness
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The default model (splade-tiny) and the dense model the tests and hybrid examples use (all-MiniLM-L6-v2).
tools/fetch-model.sh all

if [ "${SPARSEDB_SKIP_BUILD:-0}" != 1 ]; then
  swift build -c release --product sparsedb 2>&1 | tail -n 1 >&2
fi
