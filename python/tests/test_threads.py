"""Threads: searches from 8 Python threads while another thread writes see committed states only,
and run in parallel (ctypes releases the GIL during the engine's work)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse

import sparsedb
from conftest import brute_force, random_corpus

BATCH = 150
BATCHES = 12


def test_eight_searchers_while_one_writer_ingests(db):
    rng = np.random.default_rng(11)
    docs = random_corpus(rng, BATCH * BATCHES, 500, 20)
    ids = [f"d{i}" for i in range(docs.shape[0])]
    queries = random_corpus(rng, 12, 500, 5)
    c = db.create_collection("live", dimensions=500)
    # The top-10 ids and scores brute force gives after each committed batch (state j holds the
    # first j batches).
    states = []
    for j in range(BATCHES + 1):
        n = j * BATCH
        exp = brute_force(docs[:n], ids[:n], queries) if n else [{} for _ in range(queries.shape[0])]
        states.append([sorted(e.items(), key=lambda kv: (-kv[1], int(kv[0][1:])))[:10] for e in exp])

    def matches(q, hits):
        got = [(h.id, h.score) for h in hits]
        for state in states:
            want = state[q]
            if len(want) == len(got) and all(
                a == b[0] and abs(s - b[1]) <= 1e-9 * max(1, b[1]) for (a, s), b in zip(got, want)
            ):
                return True
        return False

    failures, searched = [], [0] * 8
    done = threading.Event()

    def writer():
        try:
            for j in range(BATCHES):
                c.upsert(ids[j * BATCH : (j + 1) * BATCH], docs[j * BATCH : (j + 1) * BATCH])
        finally:
            done.set()

    def searcher(t):
        algorithms = ["maxscore", "wand", "bmw", "exhaustive"]
        i = 0
        while not done.is_set() or i < 20:
            q = (t + i) % queries.shape[0]
            hits = c.search(queries[q], k=10, algorithm=algorithms[(t + i) % 4])[0]
            if not matches(q, hits):
                failures.append((t, q, hits))
            i += 1
        searched[t] = i

    threads = [threading.Thread(target=searcher, args=(t,)) for t in range(8)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert len(c) == len(ids)
    assert min(searched) >= 20
    # And the final state exactly.
    for q, hits in enumerate(c.search(queries, k=10)):
        assert matches(q, hits) and [h.id for h in hits] == [d for d, _ in states[-1][q]]


def test_searches_release_the_gil(db):
    """While one thread is inside a long engine call, another Python thread keeps running."""
    rng = np.random.default_rng(3)
    docs = random_corpus(rng, 20000, 1000, 30)
    c = db.create_collection("big", dimensions=1000)
    c.upsert([str(i) for i in range(docs.shape[0])], docs)
    queries = random_corpus(rng, 100, 1000, 40)
    ticks = 0
    stop = threading.Event()

    def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=ticker)
    t.start()
    try:
        c.search(queries, k=100, algorithm="exhaustive", threads=1)  # one long foreign call
    finally:
        stop.set()
        t.join()
    assert ticks > 1000


def test_filtered_dense_and_hybrid_searches_from_several_threads(db):
    """The filtered and dense paths fill per-thread structs: threads must not see each other's."""
    rng = np.random.default_rng(21)
    n = 600
    c = db.create_collection(
        "mixed", fields=[sparsedb.SparseField("s", 300), sparsedb.DenseField("e", 8)], attributes={"g": "integer"})
    c.upsert([f"d{i}" for i in range(n)], {"s": random_corpus(rng, n, 300, 10), "e": rng.normal(size=(n, 8)).astype(np.float32)},
             attributes={"g": [i % 7 for i in range(n)]})
    rows = random_corpus(rng, 16, 300, 4)
    sq = [dict(zip(rows[i].indices.tolist(), rows[i].data.tolist())) for i in range(16)]
    dq = rng.normal(size=(16, 8)).astype(np.float32)
    calls = []
    for i in range(16):
        flt = {"g": i % 7}
        calls.append((lambda i=i, flt=flt: c.search(sq[i], k=10, field="s", filter=flt)))
        calls.append((lambda i=i, flt=flt: c.search(dq[i], k=10, field="e", filter=flt)))
        calls.append((lambda i=i: c.search(dq[i], k=10, field="e", truncate_dim=4)))
        calls.append((lambda i=i, flt=flt: c.search_hybrid({"s": sq[i], "e": dq[i]}, k=10, filter=flt)))
    expected = [call() for call in calls]
    failures = []

    def worker(t):
        for r in range(5):
            for j in range(t, len(calls), 3):
                if calls[j]() != expected[j]:
                    failures.append((t, j))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    for i in range(16):  # and the filters held
        assert all(int(h.id[1:]) % 7 == i % 7 for h in expected[4 * i] + expected[4 * i + 1])
