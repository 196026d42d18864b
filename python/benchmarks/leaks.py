"""Memory handed across the C boundary is freed exactly once: RSS (anonymous memory) stays flat
over many calls of every kind, successes and failures alike.

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
        growth = {}
        for kind, fn in workload(c, encoder).items():
            n = calls if kind not in ("upsert", "encode", "search_batch") else max(calls // 20, 1)
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
