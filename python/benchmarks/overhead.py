"""Per-query overhead of the Python layer against the Swift CLI's in-process latency on the same
queries, and batch search throughput.

    .build/python-venv/bin/python python/benchmarks/overhead.py [--collection scifact] [--rounds 3]

Indexes the reference document vectors of ../shared/reference/splade-tiny/NAME through Python
(one upsert per 1,000 documents, then a compaction, as BENCHMARKS.md measures), then, per round,
with warm posting caches (one warm-up pass over all queries first, in each process):

- cli:    `sparsedb search --query-vectors ... --warmup --latencies`: the time of
          `VectorCollection.search` alone, per query, inside the Swift process;
- ctypes: the bare C call from Python on prepared arrays (sdb_collection_search +
          sdb_results_free): engine + C layer + one ctypes call;
- python: `collection.search({dim: weight}, k=10)` returning a list of Hit: everything a
          user pays.

The overhead is python - cli. Rounds alternate CLI and Python runs; each query's latency is the
minimum over the rounds (which filters out the moments other load on the machine took the CPU),
and the table gives mean / p50 / p99 of those minima and of the per-query differences. The Python
side also reports thread CPU time (not disturbed by waiting for a core). Batch throughput: all queries in one call (threads=0: one per core; threads=1), as
lists of hits and as arrays, and single-query calls from 2 Python threads.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from ctypes import c_void_p
from pathlib import Path

import numpy as np
import scipy.sparse

import sparsedb
from sparsedb._convert import to_csr
from sparsedb._lib import lib, slots
from sparsedb._results import parse_results
from sparsedb.database import _algorithm, _search_numbers

REPO = Path(__file__).resolve().parents[2]


def load(path: Path):
    ids, rows = [], []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            ids.append(o["_id"])
            rows.append({int(d): float(w) for d, w in o["vector"].items()})
    return ids, rows


def summary(values_us):
    v = sorted(values_us)
    return statistics.fmean(v), v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))]


def cli_latencies(cli: Path, db: Path, queries: Path, algorithm: str):
    out = subprocess.run(
        [str(cli), "search", "--db", str(db), "--collection", "bench", "--query-vectors", str(queries),
         "--algorithm", algorithm, "--k", "10", "--warmup", "--format", "jsonl", "--latencies"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line)["latency_ms"] * 1000 for line in out.splitlines()]


def python_latencies(c, queries, prepared, algorithm: str, reps: int = 4):
    algo = {"exhaustive": 0, "maxscore": 1, "wand": 2, "bmw": 3}[algorithm]
    for q in queries:  # warm-up pass
        c.search(q, k=10, algorithm=algorithm)
    bare, full, bare_cpu, full_cpu = [], [], [], []
    s = slots
    handle = c._handle
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns

    def run_bare(indptr, indices, values):
        c0, t0 = cpu(), clock()
        status = lib.sdb_collection_search(handle, None, 1, indptr, indices, values, 10, algo, 0, 1.0, 0, 1, s.out_ref, s.err_ref)
        lib.sdb_results_free(s.out.value)
        t1, c1 = clock(), cpu()
        assert status == 0
        return (t1 - t0) / 1000, (c1 - c0) / 1000

    def run_full(q):
        c0, t0 = cpu(), clock()
        c.search(q, k=10, algorithm=algorithm)
        t1, c1 = clock(), cpu()
        return (t1 - t0) / 1000, (c1 - c0) / 1000

    for q, arrays in zip(queries, prepared):
        # Each of the two several times, alternating which goes first, keeping the minimum: both
        # then see the same warm CPU caches, and a moment of other load does not count.
        b, f = [], []
        for r in range(reps):
            if r % 2 == 0:
                b.append(run_bare(*arrays))
                f.append(run_full(q))
            else:
                f.append(run_full(q))
                b.append(run_bare(*arrays))
        bare.append(min(x[0] for x in b))
        bare_cpu.append(min(x[1] for x in b))
        full.append(min(x[0] for x in f))
        full_cpu.append(min(x[1] for x in f))
    return bare, full, bare_cpu, full_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "sparsedb"))
    parser.add_argument("--algorithm", default="maxscore")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.shared) / "reference" / "splade-tiny" / args.collection
    cli = Path(args.cli)
    if not cli.is_file():
        sys.exit(f"{cli} is missing: swift build -c release --product sparsedb")

    doc_ids, docs = load(folder / "doc_vectors.jsonl")
    query_file = folder / "query_vectors.jsonl"
    _, queries = load(query_file)
    tmp = Path(tempfile.mkdtemp(prefix="sparsedb-overhead-"))
    db_path = tmp / "db"
    with sparsedb.Database(db_path) as db:
        c = db.create_collection("bench", dimensions=30522)
        t0 = time.perf_counter()
        for start in range(0, len(docs), 1000):
            c.upsert(doc_ids[start : start + 1000], docs[start : start + 1000])
        upsert_s = time.perf_counter() - t0
        c.compact()
    print(f"{args.collection}: {len(docs)} documents upserted in {upsert_s:.2f} s "
          f"({len(docs) / upsert_s:,.0f} docs/s, 1,000 per transaction), {len(queries)} queries, k=10, {args.algorithm}")

    prepared_csr = [to_csr(q) for q in queries]  # kept alive: the addresses point into them
    prepared = [p.addresses for p in prepared_csr]
    per_round = []
    for r in range(args.rounds):
        cli_us = cli_latencies(cli, db_path, query_file, args.algorithm)
        with sparsedb.Database(db_path, read_only=True) as db:
            measured = python_latencies(db.collection("bench"), queries, prepared, args.algorithm)
        per_round.append((cli_us, *measured))
        print(f"round {r + 1}: mean cli {statistics.fmean(cli_us):.1f} us, ctypes {statistics.fmean(measured[0]):.1f} us, "
              f"python {statistics.fmean(measured[1]):.1f} us", flush=True)
    # Per query, the minimum over rounds of each measurement.
    cli_us, bare_us, full_us, bare_cpu, full_cpu = (
        np.min(np.array([r[i] for r in per_round]), axis=0) for i in range(5)
    )
    print()
    print(f"| per query (µs, warm cache, min over {args.rounds} rounds) | mean | p50 | p99 |")
    print("|---|---|---|---|")
    rows = (
        ("CLI in-process (`VectorCollection.search`), wall", cli_us),
        ("ctypes, bare C call, wall", bare_us),
        ("Python `collection.search(dict)` → hits, wall", full_us),
        ("**overhead: Python − CLI**, per query", full_us - cli_us),
        ("of which C layer + ctypes (ctypes − CLI)", bare_us - cli_us),
        ("of which Python conversion and hits (Python − ctypes)", full_us - bare_us),
        ("ctypes, bare C call, thread CPU time", bare_cpu),
        ("Python `collection.search`, thread CPU time", full_cpu),
        ("Python − ctypes, thread CPU time", full_cpu - bare_cpu),
    )
    for name, v in rows:
        sm = summary(list(v))
        print(f"| {name} | {sm[0]:.1f} | {sm[1]:.1f} | {sm[2]:.1f} |")
    best = (summary(list(cli_us)),)

    # The Python layer by component, each timed in a tight loop over all queries (minimum of 5
    # passes): robust to other load, since no engine work is inside the timed code.
    with sparsedb.Database(db_path, read_only=True) as db:
        c = db.collection("bench")
        raws = []
        for arrays in prepared:
            s = slots
            lib.sdb_collection_search(c._handle, None, 1, *arrays, 10, 1, 0, 1.0, 0, 1, s.out_ref, s.err_ref)
            handle = s.out.value
            lib.sdb_results_packed(handle, s.out_ref, s.size_ref)
            raws.append(ctypes.string_at(s.out.value, s.size.value))
            lib.sdb_results_free(handle)

        def arguments():
            for _ in queries:
                _search_numbers(10, None, 1.0, 0)
                _algorithm(args.algorithm)

        def convert():
            for q in queries:
                to_csr(q, "queries").addresses

        def boundary():  # the C call with no query, then packed + copy + free: the fixed cost of crossing
            s = slots
            for _ in queries:
                lib.sdb_collection_search(c._handle, None, 0, None, None, None, 10, 1, 0, 1.0, 0, 0, s.out_ref, s.err_ref)
                h = s.out.value
                lib.sdb_results_packed(h, s.out_ref, s.size_ref)
                ctypes.string_at(s.out.value, s.size.value)
                lib.sdb_results_free(h)

        def parse():
            for raw in raws:
                parse_results(raw, True, False)

        print()
        print("| Python layer, by component (µs per query, min of 5 passes) | µs |")
        print("|---|---|")
        total = 0.0
        for label, fn in (("argument checks", arguments), ("dict → arrays (to_csr)", convert),
                          ("crossing: ctypes call + C entry + packed copy + free (empty batch)", boundary),
                          ("10 hits → list of Hit (parse_results)", parse)):
            best_s = min(_timed(fn) for _ in range(5))
            per = best_s / len(queries) * 1e6
            total += per
            print(f"| {label} | {per:.1f} |")
        print(f"| **sum** | **{total:.1f}** |")

    # Batch throughput.
    batch = scipy.sparse.vstack([
        scipy.sparse.csr_matrix((list(q.values()), ([0] * len(q), list(q.keys()))), shape=(1, 30522)) for q in queries
    ]).tocsr()
    with sparsedb.Database(db_path, read_only=True) as db:
        c = db.collection("bench")
        c.search(batch, k=10)
        print()
        print("| batch of all queries, one call | queries/s |")
        print("|---|---|")
        for label, kw in (("threads=1, lists of hits", dict(threads=1)), ("threads=0 (2 cores), lists of hits", dict(threads=0)),
                          ("threads=0, return_arrays=True", dict(threads=0, return_arrays=True))):
            best_s = min(_timed(lambda: c.search(batch, k=10, algorithm=args.algorithm, **kw)) for _ in range(3))
            print(f"| {label} | {len(queries) / best_s:,.0f} |")
        # Single-query calls from 2 Python threads (the GIL is released inside the engine).
        def worker(part):
            for q in part:
                c.search(q, k=10, algorithm=args.algorithm)
        for n_threads in (1, 2):
            parts = [queries[i::n_threads] for i in range(n_threads)]
            def run():
                ts = [threading.Thread(target=worker, args=(p,)) for p in parts]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            best_s = min(_timed(run) for _ in range(3))
            print(f"| {n_threads} Python thread(s), one query per call | {len(queries) / best_s:,.0f} |")
        cli_qps = 1e6 / best[0][0]
        print(f"| CLI, one query at a time (1 / mean latency) | {cli_qps:,.0f} |")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
