"""Memory handed across the C boundary is freed exactly once: RSS (anonymous memory) stays flat
over many calls of every kind, successes and failures alike, the calls of every field kind,
filters, hybrid search and attributes (ABI 2) included.

    python python/benchmarks/leaks.py [--calls 1000000]

Prints the anonymous resident memory after a warm-up and after the calls, per kind of call.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

import sparsedb


def rss_anon_kib() -> int:
    """Anonymous resident memory (heap, not the database's memory-mapped file)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


def fields_workload(m: "sparsedb.Collection"):
    """The calls of ABI 2: dense and filtered searches, hybrid, documents with attributes, schema
    and attribute errors, upserts with attributes."""
    rng = np.random.default_rng(6)
    dense = rng.normal(size=(64, 16)).astype(np.float32)
    sparse = [dict(zip(rng.choice(1000, 8, replace=False).tolist(), rng.random(8).tolist())) for _ in range(64)]
    filters = [{"lang": "en"}, {"year": {"gte": 2010}}, {"$or": [{"lang": "de"}, {"year": {"lt": 2000}}]}, '{"lang": {"in": ["en", "fr"]}}']

    def filtered(i):
        m.search(sparse[i % 64], k=10, field="s", filter=filters[i % 4])

    def dense_search(i):
        m.search(dense[i % 64], k=10, field="e", filter=filters[i % 4] if i % 2 else None)

    def hybrid(i):
        m.search_hybrid({"s": sparse[i % 64], "e": dense[i % 64]}, k=5, filter=filters[i % 4], fusion=("rrf", "weighted")[i % 2])

    def documents(i):
        m.get(["m1", "m2", "nope"])

    def failing_fields(i):
        for bad in ({"lang": 3}, {"nope": 1}, "{bad"):
            try:
                m.search(dense[0], field="e", filter=bad)
            except sparsedb.InvalidInputError:
                pass
        try:
            m.upsert(["x"], {"e": dense[:1]}, attributes=[{"year": "soon"}])
        except sparsedb.InvalidInputError:
            pass

    def upsert_fields(i):
        m.upsert(["w"], {"s": [sparse[i % 64]], "e": dense[i % 64 : i % 64 + 1]}, attributes=[{"lang": "en", "year": i % 50 + 1980}])

    return dict(filtered=filtered, dense_search=dense_search, hybrid=hybrid, documents=documents, failing_fields=failing_fields,
                upsert_fields=upsert_fields)


def workload(c: "sparsedb.Collection", encoder):
    rng = np.random.default_rng(5)
    queries = [dict(zip(rng.choice(1000, 8, replace=False).tolist(), rng.random(8).tolist())) for _ in range(64)]
    batch = scipy.sparse.random(16, 1000, density=0.01, format="csr", random_state=1, dtype=np.float32)
    kinds = {}

    def search(i):
        c.search(queries[i % 64], k=10)

    def search_batch(i):
        c.search(batch, k=10, threads=1, return_arrays=(i % 2 == 0))

    def get(i):
        c.get(["d1", "d2", "nope"])

    def failing(i):
        try:
            c.search({1: math.nan})
        except sparsedb.InvalidInputError:
            pass
        try:
            c.upsert(["x"], [{5000: 1.0}])
        except sparsedb.InvalidInputError:
            pass
        try:
            c.database.collection("nope")
        except sparsedb.NotFoundError:
            pass

    def metadata(i):
        len(c)
        c.encoder_info()
        c.database.collections()

    def upsert_same(i):
        # Rewrites one document: the database grows on disk (tombstones) but not the heap.
        c.upsert(["w"], [{i % 1000: 1.0}], payloads=[{"i": i}])

    kinds.update(search=search, search_batch=search_batch, get=get, failing=failing, metadata=metadata, upsert=upsert_same)
    if encoder is not None:
        kinds["encode"] = lambda i: encoder.encode_queries(["a short query about wings"])
    return kinds


def run(calls: int, with_encoder: bool = True, verbose: bool = True):
    """Runs `calls` calls of each kind (after a warm-up); returns {kind: KiB of growth}."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sparsedb.Database(Path(tmp) / "db")
        c = db.create_collection("leaks", dimensions=1000)
        rng = np.random.default_rng(0)
        docs = scipy.sparse.random(2000, 1000, density=0.02, format="csr", random_state=rng, dtype=np.float32)
        c.upsert([f"d{i}" for i in range(2000)], docs, payloads=[{"n": i} for i in range(2000)])
        encoder = None
        if with_encoder:
            try:
                encoder = sparsedb.Encoder("default")
            except sparsedb.Error:
                encoder = None
        m = db.create_collection(
            "fields", fields=[sparsedb.SparseField("s", 1000), sparsedb.DenseField("e", 16, metric="cosine")],
            attributes={"lang": "keyword", "year": "integer"})
        n_docs = 500
        m.upsert(
            [f"m{i}" for i in range(n_docs)],
            {"s": docs[:n_docs], "e": rng.normal(size=(n_docs, 16)).astype(np.float32)},
            attributes={"lang": [("en", "de", "fr")[i % 3] for i in range(n_docs)], "year": [1990 + i % 30 for i in range(n_docs)]},
        )
        growth = {}
        kinds = {**workload(c, encoder), **fields_workload(m)}
        for kind, fn in kinds.items():
            if kind in ("upsert", "encode", "search_batch", "upsert_fields", "hybrid"):
                n = max(calls // 20, 1)
            elif kind in ("filtered", "dense_search", "documents", "failing_fields"):
                n = max(calls // 4, 1)  # slower calls; a leak of 512 bytes per call still shows as 1 MiB in the tests
            else:
                n = calls
            warm = max(n // 10, 100)
            for i in range(warm):
                fn(i)
            before = rss_anon_kib()
            t0 = time.perf_counter()
            for i in range(n):
                fn(i)
            elapsed = time.perf_counter() - t0
            growth[kind] = rss_anon_kib() - before
            if verbose:
                print(f"{kind:13s} {n:>9,d} calls  {elapsed / n * 1e6:8.1f} us/call  anon RSS {before / 1024:7.1f} MiB -> "
                      f"{(before + growth[kind]) / 1024:7.1f} MiB ({growth[kind]:+d} KiB)", flush=True)
        db.close()
        return growth


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    run(args.calls)
