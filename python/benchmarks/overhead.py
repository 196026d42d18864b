"""Per-query overhead of the Python layer against `sparsedb bench` (the Swift engine's in-process
latency) on the same queries, and batch search throughput.

    .build/python-venv/bin/python python/benchmarks/overhead.py [--collection scifact] [--rounds 3] [--repeat 3]

Indexes the reference document vectors of ../shared/reference/splade-tiny/NAME through Python
(one upsert per 1,000 documents, each document with a `year` integer and a `lang` keyword
attribute, then a compaction), then, per round, with warm caches (one warm-up pass over all
queries first, in each process), each query timed alone, --repeat passes over all queries per
path (the paths' passes alternate):

- bench:  `sparsedb bench --repeat R --payloads`: `VectorCollection.search` alone, inside the
          Swift process, loading payloads as Python's default (with_payload=True) does;
- ctypes: the bare C call from Python on prepared arrays (sdb_collection_search +
          sdb_results_free): engine + C layer + one ctypes call;
- python: `collection.search({dim: weight}, k=10)` returning a list of Hit: everything a
          user pays;
- filtered: the same queries with filter={"year": {"gte": 2000}} (about half the documents),
          through Python and as the bare C call (sdb_collection_search_matrix), which bench
          has no flag for: their difference is the Python layer's cost on that path.

Each is measured twice: on a collection of the first 100 documents ("tiny"), where the engine's
own work per query is small so that the differences are not lost in the noise of a shared
machine, and on the whole collection (realistic engine times, noisier differences).
Wall time and the calling thread's CPU time (which waiting for a core, on a shared machine, does
not inflate) are both reported: mean and p50 over every measured query, best round of --rounds
(rounds alternate bench and Python). The overhead is python - bench.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from ctypes import byref, c_void_p
from pathlib import Path

import numpy as np
import scipy.sparse

import sparsedb
from sparsedb._convert import filter_json, to_csr
from sparsedb._lib import Matrix, SearchOptions, lib, slots
from sparsedb._results import parse_results
from sparsedb.database import _algorithm, _search_numbers

REPO = Path(__file__).resolve().parents[2]
FILTER = {"year": {"gte": 2000}}
TINY = 100


def load(path: Path):
    ids, rows = [], []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            ids.append(o["_id"])
            rows.append({int(d): float(w) for d, w in o["vector"].items()})
    return ids, rows


def stats(values_us):
    """mean and p50."""
    v = sorted(values_us)
    return statistics.fmean(v), v[len(v) // 2]


def bench_cli(cli: Path, db: Path, queries: Path, algorithm: str, repeat: int, collection: str = "bench"):
    out = subprocess.run(
        [str(cli), "bench", "--db", str(db), "--collection", collection, "--query-vectors", str(queries),
         "--algorithm", algorithm, "--k", "10", "--repeat", str(repeat), "--payloads"],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out)
    return (r["mean_ms"] * 1000, r["p50_ms"] * 1000, r["cpu_mean_ms"] * 1000, r["cpu_p50_ms"] * 1000)


def python_latencies(c, queries, prepared, algorithm: str, repeat: int):
    """Per path (bare, python, bare filtered, python filtered): (wall µs list, CPU µs list)."""
    algo = {"exhaustive": 0, "maxscore": 1, "wand": 2, "bmw": 3}[algorithm]
    for q in queries:  # warm-up pass
        c.search(q, k=10, algorithm=algorithm)
        c.search(q, k=10, algorithm=algorithm, filter=FILTER)
    s = slots
    handle = c._handle
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    options = SearchOptions(10, 0, 0, 0, 1.0, filter_json(FILTER), algo, 1, 0, 0)
    options_ref = byref(options)
    paths = {name: ([], []) for name in ("bare", "python", "bare filtered", "python filtered")}

    def timed(name, fn, *args):
        c0, t0 = cpu(), clock()
        fn(*args)
        t1, c1 = clock(), cpu()
        paths[name][0].append((t1 - t0) / 1000)
        paths[name][1].append((c1 - c0) / 1000)

    def bare(indptr, indices, values):
        status = lib.sdb_collection_search(handle, None, 1, indptr, indices, values, 10, algo, 0, 1.0, 0, 1, s.out_ref, s.err_ref)
        lib.sdb_results_free(s.out.value)
        assert status == 0

    def search_filtered(q):
        c.search(q, 10, algorithm, filter=FILTER)

    def bare_filtered(matrix_ref):
        status = lib.sdb_collection_search_matrix(handle, matrix_ref, 1, options_ref, s.out_ref, s.err_ref)
        lib.sdb_results_free(s.out.value)
        assert status == 0

    matrices = [Matrix(None, a[0], a[1], a[2] or None, None, 0) for a in prepared]
    matrix_refs = [byref(m) for m in matrices]
    order = ["bare", "python", "bare filtered", "python filtered"]
    for r in range(repeat):
        # One pass over all queries per path, as `sparsedb bench` makes them (each query timed
        # alone, nothing else in between: interleaving the paths query by query would let each
        # evict the others' cache lines); the order of the paths rotates between passes.
        for name in order[r % 4:] + order[: r % 4]:
            if name == "bare":
                for arrays in prepared:
                    timed(name, bare, *arrays)
            elif name == "python":
                for q in queries:
                    timed(name, c.search, q, 10, algorithm)
            elif name == "bare filtered":
                for m in matrix_refs:
                    timed(name, bare_filtered, m)
            else:
                for q in queries:
                    timed(name, search_filtered, q)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "sparsedb"))
    parser.add_argument("--algorithm", default="maxscore")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="measured passes over the queries per round")
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
    rng = np.random.default_rng(0)
    years = rng.integers(1980, 2021, size=len(docs)).tolist()
    langs = rng.choice(["en", "de", "fr"], size=len(docs)).tolist()
    with sparsedb.Database(db_path) as db:
        # "tiny": the first TINY documents, where the engine's own work per query is a few µs, so
        # that the overhead is not drowned by the noise of a shared machine.
        tiny = db.create_collection("tiny", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        tiny.upsert(doc_ids[:TINY], docs[:TINY], attributes={"year": years[:TINY], "lang": langs[:TINY]})
        c = db.create_collection("bench", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        t0 = time.perf_counter()
        for start in range(0, len(docs), 1000):
            end = start + 1000
            c.upsert(doc_ids[start:end], docs[start:end], attributes={"year": years[start:end], "lang": langs[start:end]})
        upsert_s = time.perf_counter() - t0
        c.compact()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{args.collection}: {len(docs)} documents upserted in {upsert_s:.2f} s "
          f"({len(docs) / upsert_s:,.0f} docs/s, 1,000 per transaction), {len(queries)} queries, k=10, {args.algorithm}, "
          f"{args.rounds} rounds x {args.repeat} passes")

    prepared_csr = [to_csr(q) for q in queries]  # kept alive: the addresses point into them
    prepared = [p.addresses for p in prepared_csr]
    for collection, title in (("tiny", f"the first {TINY} documents"), ("bench", f"all {len(docs)} documents")):
        rounds = []
        for r in range(args.rounds):
            cli_stats = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection)
            with sparsedb.Database(db_path, read_only=True) as db:
                paths = python_latencies(db.collection(collection), queries, prepared, args.algorithm, args.repeat)
            py = {name: (*stats(w), *stats(cpu_)) for name, (w, cpu_) in paths.items()}
            rounds.append({"bench": cli_stats, **py})
            print(f"{collection} round {r + 1}: mean wall / CPU µs: bench {cli_stats[0]:.1f} / {cli_stats[2]:.1f}, "
                  f"python {py['python'][0]:.1f} / {py['python'][2]:.1f}, filtered python {py['python filtered'][0]:.1f} / "
                  f"{py['python filtered'][2]:.1f}", flush=True)
        best = {name: [min(r[name][i] for r in rounds) for i in range(4)] for name in rounds[0]}
        print()
        print(f"| {title}: per query, µs (warm caches; best of {args.rounds} rounds of {args.repeat} passes) | wall mean | wall p50 | CPU mean | CPU p50 |")
        print("|---|---|---|---|---|")

        def row(label, v):
            print(f"| {label} | {v[0]:.1f} | {v[1]:.1f} | {v[2]:.1f} | {v[3]:.1f} |")

        def diff(a, b):
            return [x - y for x, y in zip(best[a], best[b])]

        row("`sparsedb bench` (Swift, in-process `VectorCollection.search`)", best["bench"])
        row("ctypes: bare `sdb_collection_search` call from Python", best["bare"])
        row("Python `collection.search(dict, k=10)` → list of Hit", best["python"])
        row("**overhead: Python − `sparsedb bench`**", diff("python", "bench"))
        row("of which C layer + ctypes (bare − bench)", diff("bare", "bench"))
        row("of which Python conversion and hits (Python − bare)", diff("python", "bare"))
        row("filtered (`year >= 2000`): bare `sdb_collection_search_matrix`", best["bare filtered"])
        row("filtered: Python `collection.search(dict, k=10, filter=...)`", best["python filtered"])
        row("**filtered: Python − bare**", diff("python filtered", "bare filtered"))
        print()
    cli_mean = best["bench"][0]

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
        print(f"| `sparsedb bench`, one query at a time (1 / mean wall latency) | {1e6 / cli_mean:,.0f} |")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
