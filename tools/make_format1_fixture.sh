#!/usr/bin/env bash
# Builds the format-1 test fixture: a small SparseDB database written by the code tagged
# `format-1` (on-disk format version 1), so that format-2 code and its upgrade step can be tested
# against a database made by the old code rather than by themselves.
#
#     tools/make_format1_fixture.sh [FORMAT1_SPARSEDB_BINARY]
#
# The binary is the argument, else $SPARSEDB_FORMAT1_BIN, else it is built from the `format-1`
# tag in a temporary git worktree (`swift build -c release --product sparsedb`; slow). It must
# write format version 1: the script checks the `format` record it wrote and stops otherwise.
# NEVER run this with a binary built from newer code: the fixture's point is that old code made it.
# ($SWIFT, default `swift`, is the compiler command used for that build.)
#
# Output, in Tests/Fixtures/format1/ (README.md there is written by hand and left alone):
#   db/data.mdb           the database, compacted by `mdb_copy -c` (no lock.mdb: LMDB recreates it)
#   manifest.json         what is in it: sources and line ranges, deleted and replaced ids, model
#   expected/*.trec       the old binary's top-10 for 20 queries, per collection and algorithm
#   expected/stats.json   the old binary's `stats`
#
# What goes in (all from ../shared, deterministic rules; "line" = 1-based line of the source file):
#   collection `vectors`: precomputed vectors, reference/splade-tiny/cranfield/doc_vectors.jsonl
#     1. lines 1..N_VEC, --batch-size 64 --no-compact (several batches: partial blocks per term)
#     2. delete the ids of lines 1, 11, 21, ... (every 10th line, starting with the first)
#     3. re-ingest N_REPL of the remaining ids with other vectors: the id of line 2 + 20k gets the
#        vector of line N_VEC + 1 + k (k = 0 ... N_REPL-1), --no-compact, so the replaced
#        versions stay behind as tombstones
#   collection `text`: data/cranfield/corpus.jsonl encoded with the default model (splade-tiny)
#     1. lines 1..N_TEXT, --model default --batch-size 32 --no-compact
#     2. delete the ids of lines 1, 11, 21, ... (every 10th line, starting with the first)
# The counts (N_VEC = 80, N_REPL = 4, N_TEXT = 40) are smaller than first planned (300 / 15 / 80):
# posting blocks are inserted term by term, LMDB leaves those pages about half full, and
# `mdb_copy -c` copies pages as they are, so that database was 3.1 MB; these give 1.2 MB.
#
# Idempotent: every run builds the database from scratch in a temporary directory and replaces
# db/, expected/ and manifest.json. With the same binary, model and machine the output is
# byte-identical (the text collection's vectors come from the native encoder, so another CPU or
# BLAS kernel may change their last float bits, and with them data.mdb's checksum).
set -euo pipefail

N_VEC=80    # vectors: documents ingested first (two batches: 64 + 16)
N_REPL=4    # vectors: ids re-ingested with replaced vectors (needs 2 + 20 * (N_REPL - 1) <= N_VEC)
N_TEXT=40   # text: documents ingested (two batches: 32 + 8)
N_QUERIES=20
FORMAT1_TAG=format-1
# The default model the format-1 code was used with: sha256 of its weights (as tools/fetch-model.sh
# checks) and the CRC-32C fingerprint SparseDB records for the folder.
MODEL_SHA256=96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a
MODEL_FINGERPRINT=817a75a8

repo="$(cd "$(dirname "$0")/.." && pwd)"
shared="$(cd "$repo/../shared" && pwd)"
fixture="$repo/Tests/Fixtures/format1"
doc_vectors="reference/splade-tiny/cranfield/doc_vectors.jsonl"
query_vectors="reference/splade-tiny/cranfield/query_vectors.jsonl"
corpus="data/cranfield/corpus.jsonl"
queries="data/cranfield/queries.jsonl"
algorithms="exhaustive maxscore wand bmw"

say() { echo "make_format1_fixture: $*" >&2; }
die() { say "error: $*"; exit 1; }

for f in "$doc_vectors" "$query_vectors" "$corpus" "$queries"; do
  [ -f "$shared/$f" ] || die "missing ../shared/$f"
done
for tool in mdb_copy mdb_dump python3 git; do
  command -v "$tool" >/dev/null || die "needs $tool (mdb_* are in Debian's lmdb-utils)"
done

work="$(mktemp -d)"
worktree=""
cleanup() {
  if [ -n "$worktree" ]; then git -C "$repo" worktree remove --force "$worktree" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- The format-1 binary -------------------------------------------------------------------------
bin="${1:-${SPARSEDB_FORMAT1_BIN:-}}"
if [ -z "$bin" ]; then
  # Build the tag in its own worktree and build directory: never the repository's own .build.
  worktree="$work/format1-src"
  say "building $FORMAT1_TAG in a temporary worktree (swift build -c release; takes a while)"
  git -C "$repo" worktree add --detach "$worktree" "$FORMAT1_TAG" >&2
  "${SWIFT:-swift}" build -c release --product sparsedb --package-path "$worktree" >&2
  bin="$worktree/.build/release/sparsedb"
fi
[ -x "$bin" ] || die "$bin is not an executable"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
version="$("$bin" --version)"
say "using $bin (sparsedb $version)"

# --- The default model ---------------------------------------------------------------------------
# Fetched (when missing) by the format-1 tag's own tools/fetch-model.sh, not the working tree's.
bash <(git -C "$repo" show "$FORMAT1_TAG:tools/fetch-model.sh")
model_dir="${SPARSEDB_HOME:-$HOME/.local/share/sparsedb}/models/splade-tiny"
[ "$(sha256sum "$model_dir/model.safetensors" | cut -d' ' -f1)" = "$MODEL_SHA256" ] \
  || die "$model_dir/model.safetensors is not the splade-tiny the fixture was made with"

# --- Inputs, cut from ../shared ------------------------------------------------------------------
in="$work/inputs"
mkdir -p "$in"
ids_of_every_10th_line() { awk -v n="$2" 'NR <= n && (NR - 1) % 10 == 0' "$1" | python3 -c '
import json, sys
for line in sys.stdin: print(json.loads(line)["_id"])'; }

head -n "$N_VEC" "$shared/$doc_vectors" > "$in/vectors.jsonl"
ids_of_every_10th_line "$shared/$doc_vectors" "$N_VEC" > "$in/vectors.deleted"
# Replacement lines: the source line's bytes with only its "_id" swapped, so the weights are
# exactly the reference file's text.
python3 - "$shared/$doc_vectors" "$N_VEC" "$N_REPL" > "$in/vectors.replacements.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
n, r = int(sys.argv[2]), int(sys.argv[3])
assert 2 + 20 * (r - 1) <= n, "N_REPL too large for N_VEC"
for k in range(r):
    target = json.loads(lines[1 + 20 * k])["_id"]       # line 2 + 20k
    source = lines[n + k]                                 # line N_VEC + 1 + k
    prefix = '{"_id":%s,' % json.dumps(json.loads(source)["_id"])
    assert source.startswith(prefix), "unexpected vector line layout"
    print('{"_id":%s,' % json.dumps(target) + source[len(prefix):])
PY
head -n "$N_TEXT" "$shared/$corpus" > "$in/text.jsonl"
ids_of_every_10th_line "$shared/$corpus" "$N_TEXT" > "$in/text.deleted"
head -n "$N_QUERIES" "$shared/$query_vectors" > "$in/query_vectors.jsonl"
head -n "$N_QUERIES" "$shared/$queries" > "$in/queries.jsonl"

# --- The database, written by the format-1 binary --------------------------------------------
db="$work/build/db"
run() { say "\$ sparsedb $*"; "$bin" "$@"; }
run ingest --db "$db" --collection vectors --vectors "$in/vectors.jsonl" --batch-size 64 --no-compact --quiet
# The format record (meta table, key "format"): "SPARSEDB" magic then the version, u32le.
format_record="$(mdb_dump -s meta "$db" 2>/dev/null | awk 'prev == " 666f726d6174" { print $1 } { prev = $0 }')" \
  || format_record="(no SparseDB database)"
[ "$format_record" = "535041525345444201000000" ] \
  || die "$bin wrote format record '$format_record', not format 1; use a binary built from tag $FORMAT1_TAG"
run delete --db "$db" --collection vectors --ids "$in/vectors.deleted"
run ingest --db "$db" --collection vectors --vectors "$in/vectors.replacements.jsonl" --batch-size 64 --no-compact --quiet
run ingest --db "$db" --collection text --corpus "$in/text.jsonl" --model default --batch-size 32 --no-compact --quiet
run delete --db "$db" --collection text --ids "$in/text.deleted"

# Compacting copy: only the live pages, renumbered; values untouched. lock.mdb is not copied.
final="$work/final"
mkdir -p "$final/db"
mdb_copy -c "$db" "$final/db"
size="$(stat -c %s "$final/db/data.mdb")"
say "data.mdb after mdb_copy -c: $size bytes"
[ "$size" -lt 2000000 ] || die "data.mdb is $size bytes; lower N_VEC / N_TEXT"

# --- The old binary's answers, from the compacted copy ----------------------------------------
# Run from the copy's parent with --db db, so that stats records the path as "db", not this
# machine's temporary directory.
old() { # old OUTPUT ARGS...: the format-1 binary's stdout into OUTPUT; stderr shown only on failure
  local out="$1"; shift
  "$bin" "$@" > "$out" 2> "$work/stderr" || { cat "$out" "$work/stderr" >&2; die "sparsedb $* failed"; }
}
mkdir -p "$final/expected"
cd "$final"
old "$work/verify.txt" verify --db db
old expected/stats.json stats --db db
for a in $algorithms; do
  old "expected/vectors.$a.trec" search --db db --collection vectors --query-vectors "$in/query_vectors.jsonl" \
    --k 10 --algorithm "$a" --format trec
  old "expected/text.$a.trec" search --db db --collection text --queries "$in/queries.jsonl" \
    --k 10 --algorithm "$a" --format trec
done
cd "$repo"
say "verify: $(cat "$work/verify.txt")"
for c in vectors text; do
  [ "$(wc -l < "$final/expected/$c.exhaustive.trec")" -gt 0 ] || die "$c: no search results"
  for a in maxscore wand bmw; do
    diff "$final/expected/$c.exhaustive.trec" "$final/expected/$c.$a.trec" >&2 \
      || die "$c: $a disagrees with exhaustive (above: < exhaustive, > $a)"
  done
done

# --- Manifest, and checks of the database against it -------------------------------------------
# The manifest is derived from the inputs above; the checks then compare it with what the database
# holds (catalog records, ids table, tombstone counts) and the vectors run with a brute-force
# top-10 computed here from ../shared, so a wrong rule in this script cannot go unnoticed.
mdb_dump -s meta "$final/db" > "$work/meta.dump"
mdb_dump -s ids "$final/db" > "$work/ids.dump"
mdb_dump -s tombstones "$final/db" > "$work/tombstones.dump"
export N_VEC N_REPL N_TEXT N_QUERIES FORMAT1_TAG MODEL_SHA256 MODEL_FINGERPRINT version \
  doc_vectors query_vectors corpus queries algorithms
export format1_commit="$(git -C "$repo" rev-parse "$FORMAT1_TAG^{commit}")"
python3 - "$work" "$shared" "$final" <<'PY'
import hashlib, json, os, sys
work, shared, final = sys.argv[1:4]
env = os.environ
N_VEC, N_REPL, N_TEXT, N_QUERIES = (int(env[k]) for k in ("N_VEC", "N_REPL", "N_TEXT", "N_QUERIES"))

def dump(path):
    """key -> value (bytes) from mdb_dump's hex output."""
    rows = [l[1:].strip() for l in open(path) if l.startswith(" ")]
    return {bytes.fromhex(rows[i]): bytes.fromhex(rows[i + 1]) for i in range(0, len(rows), 2)}

def ids(path, n=None):
    out = [json.loads(l)["_id"] for l in open(os.path.join(shared, path), encoding="utf-8")]
    return out if n is None else out[:n]

meta = dump(f"{work}/meta.dump")
catalog = {k[len(b"collection:"):].decode(): json.loads(v) for k, v in meta.items() if k.startswith(b"collection:")}
assert meta[b"format"] == b"SPARSEDB" + (1).to_bytes(4, "little")

vec_ids = ids(env["doc_vectors"])
vec_deleted = [vec_ids[i] for i in range(0, N_VEC, 10)]
replaced = [{"id": vec_ids[1 + 20 * k], "id_line": 2 + 20 * k,
             "vector_line": N_VEC + 1 + k, "vector_line_id": vec_ids[N_VEC + k]} for k in range(N_REPL)]
vec_live = [i for i in vec_ids[:N_VEC] if i not in set(vec_deleted)]
text_ids = ids(env["corpus"], N_TEXT)
text_deleted = [text_ids[i] for i in range(0, N_TEXT, 10)]
text_live = [i for i in text_ids if i not in set(text_deleted)]
encoder = catalog["text"]["encoder"]
assert encoder["name"] == "splade-tiny" and encoder["checksum"] == env["MODEL_FINGERPRINT"], encoder

# The database against the rules: live ids, tombstones, catalog counts, stats.
cid = {name: c["id"].to_bytes(4, "big") for name, c in catalog.items()}
stored = {n: {k[4:].decode() for k in dump(f"{work}/ids.dump") if k[:4] == c} for n, c in cid.items()}
tomb = {n: sum(1 for k in dump(f"{work}/tombstones.dump") if k[:4] == c) for n, c in cid.items()}
assert stored["vectors"] == set(vec_live) and stored["text"] == set(text_live), "live ids differ from the rules"
assert tomb["vectors"] == len(vec_deleted) + N_REPL and tomb["text"] == len(text_deleted), tomb
assert catalog["vectors"]["liveDocuments"] == len(vec_live) and catalog["text"]["liveDocuments"] == len(text_live)
stats = json.load(open(f"{final}/expected/stats.json"))
assert stats["formatVersion"] == 1, stats
assert {c["name"]: (c["documents"], c["deletedDocuments"]) for c in stats["collections"]} == \
    {"vectors": (len(vec_live), len(vec_deleted) + N_REPL), "text": (len(text_live), len(text_deleted))}, stats

# The vectors run against a brute-force top-10 over the live vectors, computed here from the
# source lines (float64 here, float32 in the database: scores agree within 1e-4; where scores tie
# the ids may be in another order, so each returned id is checked by its own score).
def vec(line):
    o = json.loads(line)
    return o["_id"], {int(d): w for d, w in o["vector"].items()}
src = open(os.path.join(shared, env["doc_vectors"]), encoding="utf-8").read().split("\n")
live = {i: v for i, v in map(vec, src[:N_VEC]) if i in set(vec_live)}
for r in replaced:
    live[r["id"]] = vec(src[r["vector_line"] - 1])[1]
run = {}
for l in open(f"{final}/expected/vectors.exhaustive.trec"):
    q, _, d, rank, score, _ = l.split()
    run.setdefault(q, []).append((d, float(score)))
for l in open(f"{work}/inputs/query_vectors.jsonl"):
    qid, qv = vec(l)
    score = {i: sum(w * qv.get(d, 0.0) for d, w in v.items()) for i, v in live.items()}
    brute = sorted((s for s in score.values() if s > 0), reverse=True)[:10]
    got = run.get(qid, [])
    assert len(got) == len(brute), (qid, len(got), len(brute))
    for (d, s), b in zip(got, brute):
        assert abs(s - b) < 1e-4 and abs(score[d] - s) < 1e-4, (qid, d, s, b, score[d])

def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()

manifest = {
    "what": "SparseDB database written by the code tagged format-1 (on-disk format version 1); "
            "regenerate only with tools/make_format1_fixture.sh and a format-1 binary",
    "format_version": 1,
    "generator": {"script": "tools/make_format1_fixture.sh", "git_tag": env["FORMAT1_TAG"],
                  "commit": env["format1_commit"], "sparsedb_version": env["version"]},
    "shared": "../shared (source paths below are relative to it)",
    "lines": "1-based line numbers of the source files",
    "database": {"directory": "db", "files": ["data.mdb"], "made_with": "mdb_copy -c",
                 "data_mdb_bytes": os.path.getsize(f"{final}/db/data.mdb"),
                 "data_mdb_sha256": sha256(f"{final}/db/data.mdb")},
    "collections": {
        "vectors": {
            "id": catalog["vectors"]["id"], "dimensions": catalog["vectors"]["dimensions"],
            "source": env["doc_vectors"],
            "steps": [
                {"op": "ingest --vectors", "lines": [1, N_VEC], "batch_size": 64, "no_compact": True},
                {"op": "delete", "rule": "ids of lines 1, 11, 21, ... (every 10th line from the first)",
                 "ids": vec_deleted},
                {"op": "ingest --vectors", "batch_size": 64, "no_compact": True,
                 "rule": "the id of line 2 + 20k gets the vector of line N + 1 + k, k = 0 .. R-1 (N = lines of the "
                         "first ingest, R = replacements); only _id is changed in the line",
                 "replaced": replaced},
            ],
            "payload": "none (vector lines carry only _id and vector)",
            "live_ids": vec_live,
            "tombstoned_documents": len(vec_deleted) + N_REPL,
            "catalog_record": catalog["vectors"],
        },
        "text": {
            "id": catalog["text"]["id"], "dimensions": catalog["text"]["dimensions"],
            "source": env["corpus"],
            "model": {"name": encoder["name"], "checksum": encoder["checksum"], "kind": encoder["kind"],
                      "path_recorded": encoder["path"], "model_safetensors_sha256": env["MODEL_SHA256"]},
            "document_text": "title + ' ' + text (text alone when the title is empty), encoded by format-1's native encoder",
            "payload": "the line's other fields (title, text, metadata) as a JSON object",
            "steps": [
                {"op": "ingest --corpus --model default", "lines": [1, N_TEXT], "batch_size": 32, "no_compact": True},
                {"op": "delete", "rule": "ids of lines 1, 11, 21, ... (every 10th line from the first)",
                 "ids": text_deleted},
            ],
            "live_ids": text_live,
            "tombstoned_documents": len(text_deleted),
            "catalog_record": catalog["text"],
        },
    },
    "expected": {
        "stats": "expected/stats.json (sparsedb stats --db db, run from this folder)",
        "runs": "expected/<collection>.<algorithm>.trec: search --k 10 --format trec --algorithm <algorithm>; "
                "identical for the four algorithms",
        "algorithms": env["algorithms"].split(),
        "vectors_queries": {"source": env["query_vectors"], "lines": [1, N_QUERIES], "flag": "--query-vectors"},
        "text_queries": {"source": env["queries"], "lines": [1, N_QUERIES],
                         "flag": "--queries (no --model: the collection's recorded model)"},
    },
}
with open(f"{final}/manifest.json", "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
PY

# --- Install (replace the previous output; README.md stays) --------------------------------------
mkdir -p "$fixture"
rm -rf "$fixture/db" "$fixture/expected" "$fixture/manifest.json"
mkdir -p "$fixture/db"
cp "$final/db/data.mdb" "$fixture/db/data.mdb"
cp -r "$final/expected" "$fixture/expected"
cp "$final/manifest.json" "$fixture/manifest.json"
say "wrote $fixture (data.mdb $size bytes, sha256 $(sha256sum "$fixture/db/data.mdb" | cut -c1-16)...)"
