#!/usr/bin/env bash
# The main job, on the embedded defaults: set up a fresh machine (apt packages, the default model,
# a release build), turn the WordNet glosses from Debian's wordnet-base into a corpus, ingest it
# with the default model (splade-tiny) into the default database, and answer a few queries.
# Running it again resumes an interrupted ingest and skips what is already stored.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
home="${SPARSEDB_HOME:-$HOME/.local/share/sparsedb}"
corpus="$home/corpora/wordnet.jsonl"
if [ ! -s "$corpus" ]; then
  mkdir -p "$(dirname "$corpus")"
  python3 tools/wordnet_corpus.py > "$corpus.partial"
  mv "$corpus.partial" "$corpus"
fi
bin=.build/release/sparsedb
# A database left by an older SparseDB is converted first (a no-op when it is current).
if [ -f "$home/db/data.mdb" ]; then "$bin" upgrade --db "$home/db"; fi
# A wordnet collection made before it had the part-of-speech attribute is rebuilt once.
if [ -f "$home/db/data.mdb" ] && "$bin" stats --db "$home/db" | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["collections"] if c["name"] == "wordnet"]
sys.exit(0 if c and "pos" not in c[0].get("attributes", {}) else 1)'; then
  "$bin" drop --db "$home/db" --collection wordnet
fi
"$bin" ingest --collection wordnet --corpus "$corpus" --model default --batch-size 1000 --attribute pos:keyword
for q in "a large animal that lives in the sea" "machine for flying through the air" "feeling very happy"; do
  "$bin" search --collection wordnet --query "$q" --k 5 --format text | sed "s/^query 1:/query: $q/"
done
# The same engine, restricted by an attribute: verbs only.
q="move fast"
"$bin" search --collection wordnet --query "$q" --k 5 --format text --filter '{"pos": "verb"}' | sed "s/^query 1:/query: $q (verbs only)/"
"$bin" stats | head -n 20
