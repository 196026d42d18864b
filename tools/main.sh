#!/usr/bin/env bash
# The main job: set up a fresh machine, then ingest a corpus into the default database and
# answer a few queries, printing the top hits.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bin=.build/release/sparsedb
ref=../shared/reference/splade-tiny/scifact
"$bin" ingest --collection scifact --vectors "$ref/doc_vectors.jsonl"
head -n 3 "$ref/query_vectors.jsonl" > /tmp/sparsedb-main-queries.jsonl
"$bin" search --collection scifact --query-vectors /tmp/sparsedb-main-queries.jsonl --k 5 --algorithm bmw --format trec
