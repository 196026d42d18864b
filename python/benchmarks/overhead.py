"""Per-query overhead of the Python layer against `sparsedb bench` (the Swift engine's in-process
latency) on the same queries, and batch search throughput.

    .build/python-venv/bin/python python/benchmarks/overhead.py [--collection scifact] [--rounds 3] [--repeat 3]

Indexes the reference document vectors of ../shared/reference/splade-tiny/NAME through Python
(one upsert per 1,000 documents, each document with a `year` integer and a `lang` keyword
attribute, then a compaction), then, per round, with warm caches (one warm-up pass over all
queries first, in each process), each query timed alone, --repeat passes over all queries per
path (the paths' passes alternate):

- bench:  `sparsedb bench --repeat R --payloads`: `VectorCollection.search` alone, inside the
          Swift process, loading payloads as Python's default (with_payload=True) does; the
          same k (10), algorithm and queries;
- bare:   the C call Python makes for one dict query (sdb_collection_search_into), from Python,
          on a request packed beforehand: engine + C layer + one ctypes call;
- python: `collection.search({dim: weight}, k=10)` returning a list of Hit: everything a
          user pays;
- filtered: the same three with filter={"year": {"gte": 2000}} (about half the documents):
          `sparsedb bench --filter`, the bare call with the filter parsed once (as
          Collection.search keeps it), and `collection.search(..., filter=...)`;
- paired: Collection.search's one-query path (without its argument checks, which the
          component table times) with SDB_SEARCH_TIME_ENGINE, which reports the engine's own
          thread CPU time inside the same call: the layer's cost per query, measured on the
          same query at the same moment, so that the load of a shared machine cancels out
          (the python - bench difference compares two processes at two moments).

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
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse

import sparsedb
from sparsedb._convert import filter_json
from sparsedb._lib import SEARCH_TIME_ENGINE, lib, slots
from sparsedb._results import parse_hits
from sparsedb.database import _ParsedFilter, _algorithm, _request_struct, _search_numbers

REPO = Path(__file__).resolve().parents[2]
FILTER = {"year": {"gte": 2000}}
ENGINE_NS = struct.Struct("=q")  # header[4] of sdb_collection_search_into's buffer
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


def bench_cli(cli: Path, db: Path, queries: Path, algorithm: str, repeat: int, collection: str = "bench", filter=None):
    command = [str(cli), "bench", "--db", str(db), "--collection", collection, "--query-vectors", str(queries),
               "--algorithm", algorithm, "--k", "10", "--repeat", str(repeat), "--payloads"]
    if filter is not None:
        command += ["--filter", json.dumps(filter)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return (r["mean_ms"] * 1000, r["p50_ms"] * 1000, r["cpu_mean_ms"] * 1000, r["cpu_p50_ms"] * 1000)


class Request:
    """A packed sdb_collection_search_into request for one query (as Collection.search packs it),
    in its own buffer, made once: the bare call then times the C call alone."""

    def __init__(self, query: dict, algorithm: int, filter=None, present: bool = True):
        n = len(query)
        self.buffer = bytearray(128 + 8 * n + 8)
        self.pin = (ctypes.c_char * len(self.buffer)).from_buffer(self.buffer)
        base = ctypes.addressof(self.pin)
        # The filter parsed once, as Collection.search keeps the last one (sdb_filter).
        self.filter = None if filter is None else _ParsedFilter(filter_json(filter))
        self.filter_handle = None if filter is None else self.filter.pointer.value
        flags_address = base + 128 + 8 * n  # one present flag, for the empty "crossing" call
        self.buffer[128 + 8 * n] = 1 if present else 0
        _request_struct(n).pack_into(
            self.buffer, 0, 0, base + 112, base + 128, base + 128 + 4 * n, 0 if present else flags_address, 0,
            10, 0, 0, 0, 1.0, 0, algorithm, 1, 0, 0, 0, n, *query, *query.values())
        self.matrix = base
        self.options = base + 48


def python_latencies(c, queries, algorithm: str, repeat: int):
    """Per path (bare, python, bare filtered, python filtered): (wall µs list, CPU µs list)."""
    algo = _algorithm(algorithm)
    for q in queries:  # warm-up pass
        c.search(q, k=10, algorithm=algorithm)
        c.search(q, k=10, algorithm=algorithm, filter=FILTER)
    s = slots
    handle = c._handle
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    paths = {name: ([], []) for name in ("bare", "python", "bare filtered", "python filtered", "paired", "paired engine")}
    plain = [Request(q, algo) for q in queries]
    filtered = [Request(q, algo, FILTER) for q in queries]
    search_into = lib.sdb_collection_search_into

    def timed(name, fn, *args):
        c0, t0 = cpu(), clock()
        fn(*args)
        t1, c1 = clock(), cpu()
        paths[name][0].append((t1 - t0) / 1000)
        paths[name][1].append((c1 - c0) / 1000)

    def bare(r):
        status = search_into(handle, r.matrix, r.options, r.filter_handle, s.output_address, s.output_size, s.err_ref)
        assert status == 0 and s.output[0] != 255  # the hits fit the buffer (no result object to free)

    def search_filtered(q):
        c.search(q, 10, algorithm, filter=FILTER)

    field_address = c._sparse_names[None][1]

    def paired(q):
        c0, t0 = cpu(), clock()
        c._search_one(q, 10, algo, 0, 1.0, SEARCH_TIME_ENGINE, field_address, None)
        t1, c1 = clock(), cpu()
        engine = ENGINE_NS.unpack_from(s.output, 32)[0] / 1000
        paths["paired"][0].append((t1 - t0) / 1000)
        paths["paired"][1].append((c1 - c0) / 1000)
        paths["paired engine"][0].append(engine)  # the engine's CPU time, for both columns
        paths["paired engine"][1].append(engine)

    order = ["bare", "python", "bare filtered", "python filtered", "paired"]
    for r in range(repeat):
        # One pass over all queries per path, as `sparsedb bench` makes them (each query timed
        # alone, nothing else in between: interleaving the paths query by query would let each
        # evict the others' cache lines); the order of the paths rotates between passes.
        for name in order[r % 5:] + order[: r % 5]:
            if name == "bare":
                for request in plain:
                    timed(name, bare, request)
            elif name == "python":
                for q in queries:
                    timed(name, c.search, q, 10, algorithm)
            elif name == "bare filtered":
                for request in filtered:
                    timed(name, bare, request)
            elif name == "python filtered":
                for q in queries:
                    timed(name, search_filtered, q)
            else:
                for q in queries:
                    paired(q)
    # Per query: the layer's own time, the call's (wall, CPU) minus the engine's CPU in that call.
    engine = paths["paired engine"][1]
    paths["paired overhead"] = tuple([a - b for a, b in zip(paths["paired"][i], engine)] for i in (0, 1))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "sparsedb"))
    parser.add_argument("--algorithm", default="maxscore")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="measured passes over the queries per round")
    parser.add_argument("--db", help=argparse.SUPPRESS)  # the measuring child: the database built by its parent
    args = parser.parse_args()
    folder = Path(args.shared) / "reference" / "splade-tiny" / args.collection
    cli = Path(args.cli)
    if not cli.is_file():
        sys.exit(f"{cli} is missing: swift build -c release --product sparsedb")
    query_file = folder / "query_vectors.jsonl"
    if args.db:
        measure(args, cli, Path(args.db), query_file)
        return

    doc_ids, docs = load(folder / "doc_vectors.jsonl")
    tmp = Path(tempfile.mkdtemp(prefix="sparsedb-overhead-"))
    db_path = tmp / "db"
    rng = np.random.default_rng(0)
    years = rng.integers(1980, 2021, size=len(docs)).tolist()
    langs = rng.choice(["en", "de", "fr"], size=len(docs)).tolist()
    with sparsedb.Database(db_path) as db:
        # "tiny": the first TINY documents, where the engine's work per query is smallest, so that
        # the overhead is not drowned by the noise of a shared machine.
        tiny = db.create_collection("tiny", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        tiny.upsert(doc_ids[:TINY], docs[:TINY], attributes={"year": years[:TINY], "lang": langs[:TINY]})
        c = db.create_collection("bench", dimensions=30522, attributes={"year": "integer", "lang": "keyword"})
        t0 = time.perf_counter()
        for start in range(0, len(docs), 1000):
            end = start + 1000
            c.upsert(doc_ids[start:end], docs[start:end], attributes={"year": years[start:end], "lang": langs[start:end]})
        upsert_s = time.perf_counter() - t0
        c.compact()
    print(f"{args.collection}: {len(docs)} documents upserted in {upsert_s:.2f} s "
          f"({len(docs) / upsert_s:,.0f} docs/s, 1,000 per transaction)", flush=True)
    # The measurements run in a fresh process that only opens the database and runs the queries,
    # as `sparsedb bench` does: measured in this one, after the ingest and with the documents
    # still in memory, the engine's own time inside the calls was up to 50 % above `sparsedb
    # bench`'s (144 against 93 µs on 100 documents), which is no cost of the Python layer.
    del docs, doc_ids
    try:
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--db", str(db_path)], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args, cli: Path, db_path: Path, query_file: Path):
    _, queries = load(query_file)
    n_docs = sum(1 for _ in open(query_file.with_name("doc_vectors.jsonl")))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{len(queries)} queries, k=10, {args.algorithm}, {args.rounds} rounds x {args.repeat} passes")

    for collection, title in (("tiny", f"the first {TINY} documents"), ("bench", f"all {n_docs} documents")):
        rounds = []
        for r in range(args.rounds):
            cli_stats = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection)
            cli_filtered = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection, FILTER)
            with sparsedb.Database(db_path, read_only=True) as db:
                paths = python_latencies(db.collection(collection), queries, args.algorithm, args.repeat)
            py = {name: (*stats(w), *stats(cpu_)) for name, (w, cpu_) in paths.items()}
            rounds.append({"bench": cli_stats, "bench filtered": cli_filtered, **py})
            print(f"{collection} round {r + 1}: mean wall / CPU µs: bench {cli_stats[0]:.1f} / {cli_stats[2]:.1f}, "
                  f"python {py['python'][0]:.1f} / {py['python'][2]:.1f}; filtered: bench {cli_filtered[0]:.1f} / "
                  f"{cli_filtered[2]:.1f}, python {py['python filtered'][0]:.1f} / {py['python filtered'][2]:.1f}", flush=True)
        best = {name: [min(r[name][i] for r in rounds) for i in range(4)] for name in rounds[0]}
        print()
        print(f"| {title}: per query, µs (warm caches; best of {args.rounds} rounds of {args.repeat} passes) | wall mean | wall p50 | CPU mean | CPU p50 |")
        print("|---|---|---|---|---|")

        def row(label, v):
            print(f"| {label} | {v[0]:.1f} | {v[1]:.1f} | {v[2]:.1f} | {v[3]:.1f} |")

        def diff(a, b):
            return [x - y for x, y in zip(best[a], best[b])]

        row("`sparsedb bench` (Swift, in-process `VectorCollection.search`)", best["bench"])
        row("bare `sdb_collection_search_into` call from Python (request packed beforehand)", best["bare"])
        row("Python `collection.search(dict, k=10)` → list of Hit", best["python"])
        row("**overhead: Python − `sparsedb bench`**", diff("python", "bench"))
        row("of which C layer + ctypes (bare − bench)", diff("bare", "bench"))
        row("of which Python packing and hits (Python − bare)", diff("python", "bare"))
        row("filtered (`year >= 2000`): `sparsedb bench --filter`", best["bench filtered"])
        row("filtered: bare `sdb_collection_search_into`", best["bare filtered"])
        row("filtered: Python `collection.search(dict, k=10, filter=...)`", best["python filtered"])
        row("**filtered overhead: Python − `sparsedb bench --filter`**", diff("python filtered", "bench filtered"))
        row("paired: Python's one-query path (`SDB_SEARCH_TIME_ENGINE`), whole call", best["paired"])
        row("paired: the engine's own CPU time inside those calls", best["paired engine"])
        row("**paired overhead: call − engine, per query (same query, same moment)**", best["paired overhead"])
        print()
    cli_mean = best["bench"][0]

    # The Python layer by component, each timed in a tight loop over all queries (minimum of 5
    # passes): robust to other load, since no engine work is inside the timed code.
    with sparsedb.Database(db_path, read_only=True) as db:
        c = db.collection("bench")
        s = slots
        algo = _algorithm(args.algorithm)
        outputs = []
        for q in queries:
            c.search(q, k=10, algorithm=args.algorithm)
            outputs.append(bytes(s.output[:4096]))
        empty = [Request(q, algo, present=False) for q in queries]  # rows flagged absent: no search

        class Output:  # parse_hits reads `output` (and grows it through grow_output when needed)
            output = bytearray(4096)

        def arguments():
            for _ in queries:
                _search_numbers(10, None, 1.0, 0)
                _algorithm(args.algorithm)

        def pack():
            base, buffer = s.request_address, s.request
            for q in queries:
                n = len(q)
                _request_struct(n).pack_into(
                    buffer, 0, 0, base + 112, base + 128, base + 128 + 4 * n, 0, 0, 10, 0, 0, 0, 1.0, 0, algo, 1, 0, 0, 0, n,
                    *q, *q.values())

        def crossing():  # the C call on a query flagged absent: the fixed cost of the call and C entry
            handle, search_into = c._handle, lib.sdb_collection_search_into
            for r in empty:
                search_into(handle, r.matrix, r.options, None, s.output_address, s.output_size, s.err_ref)

        def parse():
            o = Output()
            for raw in outputs:
                o.output[:] = raw
                parse_hits(o)

        def copy_only():  # the copy parse() makes of each output, to subtract
            o = Output()
            for raw in outputs:
                o.output[:] = raw

        print()
        print("| Python layer, by component (µs per query, min of 5 passes) | µs |")
        print("|---|---|")
        total = 0.0
        copy_s = min(_timed(copy_only) for _ in range(5))
        for label, fn, minus in (("argument checks", arguments, 0.0), ("dict → packed request (`struct.pack_into`)", pack, 0.0),
                                 ("crossing: ctypes call + C entry (a query flagged absent)", crossing, 0.0),
                                 ("10 hits → list of Hit (`parse_hits`)", parse, copy_s)):
            best_s = min(_timed(fn) for _ in range(5)) - minus
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
