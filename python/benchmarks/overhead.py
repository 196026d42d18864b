"""Per-query overhead of the Python layer against `sparsedb bench` (the Swift engine's in-process
latency) on the same queries, and batch search throughput.

    .build/python-venv/bin/python python/benchmarks/overhead.py [--collection scifact] [--rounds 15] [--repeat 3]

Indexes the reference document vectors of ../shared/reference/splade-tiny/NAME through Python
(one upsert per 1,000 documents, each document with a `year` integer and a `lang` keyword
attribute, then a compaction), then measures, per round, each in a fresh process that only opens
the database and runs the queries (one warm-up pass over all queries, then --repeat passes, each
query timed alone):

- bench:  `sparsedb bench --repeat R --payloads`: `VectorCollection.search` alone, inside the
          Swift process, loading payloads as Python's default (with_payload=True) does; the
          same k (10), algorithm and queries. Its result is released after its clock reads;
- python: `collection.search({dim: weight}, k=10)` returning a list of Hit: everything a user
          pays, timed the same way (the list is released after the clock reads, as bench's);
          "python fresh": the same with each query dict built right before its call (as from
          an encoder), so that its objects are in the caches;
- bare:   the C call the package makes for one dict query (sdb_collection_search_call), from
          Python through ctypes (as its pure-Python path does; the C fast path calls it without
          ctypes), on a request packed beforehand: engine + C layer + one ctypes call;
- filtered: the same three with filter={"year": {"gte": 2000}} (about half the documents);
- paired: Collection.search's one-query path with SDB_SEARCH_TIME_ENGINE, which reports the
          engine's own thread CPU time inside the same call: the layer's cost per query measured
          on the same query at the same moment, so that the load of a shared machine cancels out.

The Python paths run in one process per round, pass by pass in rotating order; the bench
processes run right before or right after it (alternating between rounds). On a shared machine
the speed of everything moves by tens of percent from one second to the next, so the overhead is
taken per round (python - bench of the same round, measured seconds apart) and the table gives
the median over rounds of those differences; the per-path rows give the median and the best
(minimum) over rounds of each path's own figure. Both wall time and the calling thread's CPU
time are reported (CPU time leaves out waiting for a core; it still includes the caches and
cores the other jobs share).

Each is measured on a collection of the first 100 documents ("tiny"), where the engine's work is
small so that the layer's share is largest, and on the whole collection.
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
from array import array
from pathlib import Path

import scipy.sparse

import sparsedb
import sparsedb.database
from sparsedb._convert import filter_json
from sparsedb._lib import QUERY_AT, SEARCH_TIME_ENGINE, _HEAD, buffers, search_call_address, search_call_raw
from sparsedb._results import Hit, parse_hits
from sparsedb.database import _ParsedFilter, _algorithm

from _data import TINY, build_database, load  # this folder (the script's) is on sys.path

REPO = Path(__file__).resolve().parents[2]
FILTER = {"year": {"gte": 2000}}
ENGINE_NS = struct.Struct("=q")  # header[4] of sdb_collection_search_call's buffer
STATS = ("wall mean", "wall p50", "CPU mean", "CPU p50")


def stats(values_us):
    """mean and p50."""
    v = sorted(values_us)
    return statistics.fmean(v), v[len(v) // 2]


def bench_cli(cli: Path, db: Path, queries: Path, algorithm: str, repeat: int, collection: str, filter=None):
    command = [str(cli), "bench", "--db", str(db), "--collection", collection, "--query-vectors", str(queries),
               "--algorithm", algorithm, "--k", "10", "--repeat", str(repeat), "--payloads"]
    if filter is not None:
        command += ["--filter", json.dumps(filter)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return [r["mean_ms"] * 1000, r["p50_ms"] * 1000, r["cpu_mean_ms"] * 1000, r["cpu_p50_ms"] * 1000]


class Request:
    """A packed sdb_collection_search_call request for one query (the layout Collection.search
    uses: the call block, the matrix, the options, the query), in its own buffer, made once: the
    bare call then times the C call alone. Its hits go to the thread's output buffer ``s``."""

    def __init__(self, collection, s, query: dict, algorithm: int, filter=None, present: bool = True):
        n = len(query)
        size = QUERY_AT + 8 + 8 * n + 8
        self.buffer = bytearray(size)
        self.pin = (ctypes.c_char * size).from_buffer(self.buffer)
        base = ctypes.addressof(self.pin)
        # The filter parsed once, as Collection.search keeps the last ones (sdb_filter).
        self.filter = None if filter is None else _ParsedFilter(filter_json(filter))
        flags_address = base + size - 8  # one present flag, for the "crossing" component (no search)
        self.buffer[size - 8] = 1 if present else 0
        _HEAD.pack_into(self.buffer, 0, collection._address, base + 64, base + 112, 0 if filter is None else self.filter.address,
                        s.output_address, s.output_size, 0, 0,
                        0, base + QUERY_AT - 8, base + QUERY_AT + 8, base + QUERY_AT + 8 + 4 * n, 0 if present else flags_address, 0,
                        10, 0, 0, 0, 1.0, 0, algorithm, 1, 0, 0, 0)
        struct.pack_into(f"=q{n}I{n}f", self.buffer, QUERY_AT, n, *query, *query.values())
        self.ref = ctypes.byref(self.pin)
        self.address = base
        self.dimensions_address = base + QUERY_AT + 8
        self.weights_address = base + QUERY_AT + 8 + 4 * n
        self.entries = n


def python_latencies(c, queries, algorithm: str, repeat: int, ready=lambda: None):
    """Per path: (wall µs list, CPU µs list). ``ready()`` is called after the warm-up, right
    before the measured passes."""
    algo = _algorithm(algorithm)
    for q in queries:  # warm-up pass
        c.search(q, k=10, algorithm=algorithm)
        c.search(q, k=10, algorithm=algorithm, filter=FILTER)
    s = buffers()
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    paths = {name: ([], []) for name in ("bare", "python", "python fresh", "bare filtered", "python filtered", "paired", "paired engine")}
    # "python fresh": each query dict built anew right before its (timed) call, from compact
    # arrays, as an application that encodes or decodes its query just before searching has it:
    # its int and float objects are then in the caches, where the "python" path's, made once and
    # cycled through like bench's queries, are not (a dict of 53 entries spans ~70 cache lines,
    # bench's query 7).
    compact = [(array("I", q), array("f", q.values())) for q in queries]
    plain = [Request(c, s, q, algo) for q in queries]
    filtered = [Request(c, s, q, algo, FILTER) for q in queries]
    search = c.search

    def bare(request):  # sdb_collection_search_call through ctypes, as the package's pure-Python path makes it
        return search_call_raw(request.ref)

    field_address = c._sparse_names[None][1]

    def run(name):
        wall, cpus = paths[name]
        if name == "bare" or name == "bare filtered":
            for request in plain if name == "bare" else filtered:
                c0, t0 = cpu(), clock()
                status = bare(request)
                t1, c1 = clock(), cpu()
                wall.append((t1 - t0) / 1000)
                cpus.append((c1 - c0) / 1000)
                assert status == 0 and s.output[0] != 255  # the hits fit the buffer (no result object to free)
        elif name == "python":
            for q in queries:
                c0, t0 = cpu(), clock()
                hits = search(q, 10, algorithm)
                t1, c1 = clock(), cpu()
                wall.append((t1 - t0) / 1000)
                cpus.append((c1 - c0) / 1000)
                del hits  # released after the clock reads, as sparsedb bench releases its result
        elif name == "python fresh":
            for keys, values in compact:
                q = dict(zip(keys.tolist(), values.tolist()))
                c0, t0 = cpu(), clock()
                hits = search(q, 10, algorithm)
                t1, c1 = clock(), cpu()
                wall.append((t1 - t0) / 1000)
                cpus.append((c1 - c0) / 1000)
                del hits
        elif name == "python filtered":
            for q in queries:
                c0, t0 = cpu(), clock()
                hits = search(q, 10, algorithm, filter=FILTER)
                t1, c1 = clock(), cpu()
                wall.append((t1 - t0) / 1000)
                cpus.append((c1 - c0) / 1000)
                del hits
        else:  # paired: Collection.search's one-query path, timing the engine inside the call
            engine = paths["paired engine"]
            for q in queries:
                c0, t0 = cpu(), clock()
                hits = c._search_one(q, 10, algo, 0, 0, 1.0, SEARCH_TIME_ENGINE, field_address, None)
                t1, c1 = clock(), cpu()
                e = ENGINE_NS.unpack_from(s.output, 32)[0] / 1000
                wall.append((t1 - t0) / 1000)
                cpus.append((c1 - c0) / 1000)
                engine[0].append(e)  # the engine's CPU time, for both columns
                engine[1].append(e)
                del hits

    order = ["bare", "python", "python fresh", "bare filtered", "python filtered", "paired"]
    ready()
    for r in range(repeat):
        # One pass over all queries per path, as `sparsedb bench` makes them (each query timed
        # alone, nothing else in between: interleaving the paths query by query would let each
        # evict the others' cache lines); the order of the paths rotates between passes.
        for name in order[r % len(order):] + order[: r % len(order)]:
            run(name)
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
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="measured passes over the queries per round and path")
    parser.add_argument("--skip-components", action="store_true", help="only the latency rounds")
    # The measuring children: the database built by the parent, and what to measure.
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["round", "components"], help=argparse.SUPPRESS)
    parser.add_argument("--child-collection", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.shared) / "reference" / "splade-tiny" / args.collection
    cli = Path(args.cli)
    if not cli.is_file():
        sys.exit(f"{cli} is missing: swift build -c release --product sparsedb")
    query_file = folder / "query_vectors.jsonl"
    if args.child == "round":
        _, queries = load(query_file)

        def ready():  # warmed up: tell the parent, and measure when it says so
            print("ready", flush=True)
            sys.stdin.readline()

        with sparsedb.Database(args.db, read_only=True) as db:
            paths = python_latencies(db.collection(args.child_collection), queries, args.algorithm, args.repeat, ready)
        print(json.dumps({name: [*stats(w), *stats(c)] for name, (w, c) in paths.items()}))
        return
    if args.child == "components":
        components(args, Path(args.db), query_file)
        return

    tmp = Path(tempfile.mkdtemp(prefix="sparsedb-overhead-"))
    db_path = tmp / "db"
    n_docs, upsert_s = build_database(db_path, folder)
    print(f"{args.collection}: {n_docs} documents upserted in {upsert_s:.2f} s "
          f"({n_docs / upsert_s:,.0f} docs/s, 1,000 per transaction)", flush=True)
    n_queries = sum(1 for _ in open(query_file))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{n_queries} queries, k=10, {args.algorithm}, {args.rounds} rounds x {args.repeat} passes")
    try:
        for collection, title in (("tiny", f"the first {TINY} documents"), ("bench", f"all {n_docs} documents")):
            latency_rounds(args, cli, db_path, query_file, collection, title)
        if not args.skip_components:
            # The measurements run in a fresh process that only opens the database, as `sparsedb
            # bench` does: in the process that built it, the engine's own time was up to 50 %
            # above `sparsedb bench`'s, which is no cost of the Python layer.
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--db", str(db_path), "--child", "components"], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


def latency_rounds(args, cli: Path, db_path: Path, query_file: Path, collection: str, title: str):
    rounds = []
    for r in range(args.rounds):
        # The Python process starts, opens the database and warms up first; its measured passes
        # then run right before or right after the bench processes' (alternating between
        # rounds, so that neither always follows the other), a second or two apart.
        child = subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--db", str(db_path), "--child", "round",
                                  "--child-collection", collection], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if child.stdout.readline().strip() != "ready":
            sys.exit("the measuring process failed")
        row = {}
        if r % 2 == 1:
            row["bench"] = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection)
            row["bench filtered"] = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection, FILTER)
        child.stdin.write("go\n")
        child.stdin.flush()
        row.update(json.loads(child.stdout.readline()))
        if child.wait() != 0:
            sys.exit("the measuring process failed")
        if r % 2 == 0:
            row["bench"] = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection)
            row["bench filtered"] = bench_cli(cli, db_path, query_file, args.algorithm, args.repeat, collection, FILTER)
        rounds.append(row)
        print(f"{collection} round {r + 1} (load {os.getloadavg()[0]:.1f}): CPU mean / p50 µs: bench {row['bench'][2]:.1f} / "
              f"{row['bench'][3]:.1f}, python {row['python'][2]:.1f} / {row['python'][3]:.1f}; filtered: bench "
              f"{row['bench filtered'][2]:.1f} / {row['bench filtered'][3]:.1f}, python {row['python filtered'][2]:.1f} / "
              f"{row['python filtered'][3]:.1f}", flush=True)

    def median(name):
        return [statistics.median(r[name][i] for r in rounds) for i in range(4)]

    def best(name):
        return [min(r[name][i] for r in rounds) for i in range(4)]

    def diff(a, b):  # per round, then the median over rounds
        return [statistics.median(r[a][i] - r[b][i] for r in rounds) for i in range(4)]

    print()
    print(f"| {title}: per query, µs ({args.rounds} rounds of {args.repeat} passes; median over rounds, "
          f"best round in parentheses) | wall mean | wall p50 | CPU mean | CPU p50 |")
    print("|---|---|---|---|---|")

    def row(label, v, b=None):
        cells = [f"{x:.1f}" if b is None else f"{x:.1f} ({y:.1f})" for x, y in zip(v, b or v)]
        print(f"| {label} | " + " | ".join(cells) + " |")

    for name, label in (("bench", "`sparsedb bench` (Swift, in-process `VectorCollection.search`)"),
                        ("bare", "bare `sdb_collection_search_call` ctypes call from Python (request packed beforehand)"),
                        ("python", "Python `collection.search(dict, k=10)` → list of Hit")):
        row(label, median(name), best(name))
    row("**overhead: Python − `sparsedb bench`** (per round)", diff("python", "bench"))
    row("of which C layer + ctypes (bare − bench)", diff("bare", "bench"))
    row("of which Python packing and hits (Python − bare)", diff("python", "bare"))
    row("Python, each query dict built just before its call (as from an encoder)", median("python fresh"), best("python fresh"))
    row("**overhead with such fresh dicts: Python − `sparsedb bench`** (per round)", diff("python fresh", "bench"))
    row("filtered (`year >= 2000`): `sparsedb bench --filter`", median("bench filtered"), best("bench filtered"))
    row("filtered: bare `sdb_collection_search_call`", median("bare filtered"), best("bare filtered"))
    row("filtered: Python `collection.search(dict, k=10, filter=...)`", median("python filtered"), best("python filtered"))
    row("**filtered overhead: Python − `sparsedb bench --filter`** (per round)", diff("python filtered", "bench filtered"))
    row("paired: Python's one-query path (`SDB_SEARCH_TIME_ENGINE`), whole call", median("paired"), best("paired"))
    row("paired: the engine's own CPU time inside those calls", median("paired engine"), best("paired engine"))
    row("**paired overhead: call − engine, per query (same query, same moment)**", median("paired overhead"), best("paired overhead"))
    print(flush=True)


def components(args, db_path: Path, query_file: Path):
    """The Python layer by component, each timed in a tight loop over all queries (minimum of 5
    passes): robust to other load, since no engine work is inside the timed code; then batch
    throughput."""
    _, queries = load(query_file)
    with sparsedb.Database(db_path, read_only=True) as db:
        c = db.collection("bench")
        s = buffers()
        algo = _algorithm(args.algorithm)
        outputs = []
        for q in queries:
            c.search(q, k=10, algorithm=args.algorithm)
            outputs.append(bytes(s.output[:4096]))
        empty = [Request(c, s, q, algo, present=False) for q in queries]  # rows flagged absent: no search
        field_address = c._sparse_names[None][1]

        class Output:  # parse_hits reads `output` (and grows it through grow_output when needed)
            output = bytearray(4096)

        current = [b""]

        def fake_call(*_):  # the C call replaced by a copy of the output it wrote for this query
            s.output[:4096] = current[0]
            return 0

        def python_side():  # the pure-Python path of Collection.search(dict), the C call replaced by fake_call
            for q, raw in zip(queries, outputs):
                current[0] = raw
                hits = c.search(q, 10)
                del hits

        def fake_only():  # fake_call's own cost, to subtract
            for q, raw in zip(queries, outputs):
                current[0] = raw
                fake_call()

        def pack():  # the options' head compared, the query packed (as Collection._search_one's Python path)
            for q in queries:
                n = len(q)
                head = (c._address, field_address, 10, 0, 0, 1.0, algo, 0, 0)
                if head != s.head:
                    s.write_head(head)
                pack_dimensions, pack_weights = s.packers.get(n) or s.packer(n)
                pack_dimensions(s.request, QUERY_AT, n, *q)
                pack_weights(s.request, s.weights_at, *q.values())

        def crossing():  # the ctypes call on a query flagged absent: the fixed cost of the call and C entry
            for r in empty:
                search_call_raw(r.ref)

        def fast_crossing():  # the C fast path on a query flagged absent: its packing, the call and C entry
            for q, r in zip(queries, empty):
                fast(q, search_call_address, r.address, r.dimensions_address, r.weights_address, r.entries, s.output_address, Hit)

        def parse():
            o = Output()
            for raw in outputs:
                o.output[:] = raw
                parse_hits(o)

        def copy_only():  # the copy parse() makes of each output, to subtract
            o = Output()
            for raw in outputs:
                o.output[:] = raw

        def per_query(fn, minus=None):
            best_s = min(_timed(fn) for _ in range(5)) - (0.0 if minus is None else min(_timed(minus) for _ in range(5)))
            return best_s / len(queries) * 1e6

        fast = sparsedb.database.fast_search
        real_call = sparsedb.database.search_call_raw
        sparsedb.database.search_call_raw = fake_call
        sparsedb.database.fast_search = None
        try:
            whole = per_query(python_side, fake_only)
        finally:
            sparsedb.database.search_call_raw = real_call
            sparsedb.database.fast_search = fast
        cross = per_query(crossing)
        print()
        print("| Python layer in tight loops (µs per query, min of 5 passes; no engine work inside) | µs |")
        print("|---|---|")
        print(f"| pure-Python path: Python side of `collection.search(dict, k=10)` (the C call replaced by a copy of its output) | {whole:.1f} |")
        print(f"| of which: options compared, dict → packed request (`struct.pack_into`) | {per_query(pack):.1f} |")
        print(f"| of which: 10 hits → list of Hit (`parse_hits`) | {per_query(parse, copy_only):.1f} |")
        print(f"| crossing: ctypes call + C entry (a query flagged absent) | {cross:.1f} |")
        print(f"| **pure-Python path: Python side + crossing** | **{whole + cross:.1f}** |")
        if fast is not None:
            print(f"| C fast path (`sparsedb._fastpath`): dict packed, call + C entry (a query flagged absent) | {per_query(fast_crossing):.1f} |")

    # Batch throughput.
    batch = scipy.sparse.vstack([
        scipy.sparse.csr_matrix((list(q.values()), ([0] * len(q), list(q.keys()))), shape=(1, 30522)) for q in queries
    ]).tocsr()
    cli_mean = bench_cli(Path(args.cli), db_path, query_file, args.algorithm, args.repeat, "bench")[0]
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


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
