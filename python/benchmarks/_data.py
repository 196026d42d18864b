"""The data overhead.py and instructions.py measure on: the reference vectors of
../shared/reference/splade-tiny/NAME, and the database they build from them."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import sparsedb

#: Documents in the "tiny" collection (the first ones of the reference vectors).
TINY = 100


def load(path: Path):
    ids, rows = [], []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            ids.append(o["_id"])
            rows.append({int(d): float(w) for d, w in o["vector"].items()})
    return ids, rows


def build_database(db_path: Path, folder: Path):
    """The measured database: collection "tiny" holds the first TINY documents, "bench" all of
    them (one upsert per 1,000, then a compaction); each document has a `year` integer and a
    `lang` keyword attribute. Returns the number of documents and the seconds "bench"'s upserts
    took."""
    doc_ids, docs = load(folder / "doc_vectors.jsonl")
    rng = np.random.default_rng(0)
    years = rng.integers(1980, 2021, size=len(docs)).tolist()
    langs = rng.choice(["en", "de", "fr"], size=len(docs)).tolist()
    with sparsedb.Database(db_path) as db:
        tiny = db.create_collection("tiny", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        tiny.upsert(doc_ids[:TINY], docs[:TINY], attributes={"year": years[:TINY], "lang": langs[:TINY]})
        c = db.create_collection("bench", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        t0 = time.perf_counter()
        for start in range(0, len(docs), 1000):
            end = start + 1000
            c.upsert(doc_ids[start:end], docs[start:end], attributes={"year": years[start:end], "lang": langs[start:end]})
        upsert_s = time.perf_counter() - t0
        c.compact()
    return len(docs), upsert_s
