"""The Python layer's cost per query in CPU instructions (valgrind's callgrind), which a busy
machine does not change: the load-independent companion of overhead.py.

    .build/python-venv/bin/python python/benchmarks/instructions.py [--collection scifact] [--passes 2]

Builds overhead.py's database (the first 100 documents as "tiny", and all of them), then counts,
with callgrind, the instructions of processes that open it and answer every test query once as a
warm-up, with and without --passes more passes over the queries; the difference, divided by the
number of queries searched, is the cost per query with warm caches, without start-up:

- `sparsedb bench --payloads` (k = 10, MaxScore): the CLI's in-process search;
- Python `collection.search({dim: weight}, 10)`, each result released after the call (as the CLI
  releases its result after timing it), in a loop whose own cost is measured alone and taken off.

Inside each, the inclusive count of `VectorCollection.search` (the engine's entry) separates the
engine's instructions from the rest; the Python layer's are the Python total minus the engine's.
Debug information is stripped from copies of the library and the CLI first (valgrind 3.19 cannot
read Swift 6's DWARF 5), and Swift's per-process hash seed is fixed (counts of dictionary-heavy
code otherwise move by a few percent between runs).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE = re.compile(r"\$s8SparseDB16VectorCollectionC6search_7optionsAA12SearchResultVAA05FieldC0O_AA0G7OptionsVtKF \[")
# The C entry the one-query path calls: sdb_collection_search_call (ABI 4), or, in a package of ABI 3,
# sdb_collection_search_into (the function itself, not its closure).
CALL = re.compile(r"SparseDBCAPI\d+sdb_collection_search_(?:call|into)y\S*F \[")

# The measured process: opens the database, warms up, then `passes` passes of `mode`.
CHILD = r'''
import json, operator, sys, time
import sparsedb
db_path, coll, mode, passes, query_file = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
queries = []
with open(query_file) as f:
    for line in f:
        queries.append({int(d): float(w) for d, w in json.loads(line)["vector"].items()})
db = sparsedb.Database(db_path, read_only=True)
c = db.collection(coll)
for q in queries:
    c.search(q, 10)

def loop(search, passes):
    clock = time.thread_time_ns
    for _ in range(passes):
        for q in queries:
            t0 = clock()
            hits = search(q, 10)
            t1 = clock()
            del hits

# "noop": the loop alone, calling a C function that does nothing of note instead of search.
loop(c.search if mode == "python" else operator.is_, passes)
'''


def callgrind(command, env, tmp: Path):
    """(total instructions, the engine's inclusive instructions, the C entry's (CALL))."""
    out = tmp / "callgrind.out"
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{command[0]} failed under valgrind: {r.stderr[-2000:]}")
    total = int(re.search(r"Collected : (\d+)", r.stderr).group(1))
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                               capture_output=True, text=True, check=True).stdout
    engine = call = 0
    for line in annotated.splitlines():
        m = re.match(r"\s*([\d,]+)", line)
        if m and ENGINE.search(line):
            engine = int(m.group(1).replace(",", ""))
        elif m and CALL.search(line):
            call = int(m.group(1).replace(",", ""))
    out.unlink()
    return total, engine, call


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "sparsedb"))
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--collections", default="tiny,bench", help="tiny (the first 100 documents), bench (all)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    import sparsedb
    from _data import build_database  # the same database as overhead.py

    folder = Path(args.shared) / "reference" / "splade-tiny" / args.collection
    query_file = folder / "query_vectors.jsonl"
    n_queries = sum(1 for _ in open(query_file))
    with tempfile.TemporaryDirectory(prefix="sparsedb-instructions-") as name:
        tmp = Path(name)
        lib = tmp / "libSparseDBC.so"
        shutil.copy(os.environ.get("SPARSEDB_LIBRARY") or Path(sparsedb.__file__).with_name("libSparseDBC.so"), lib)
        cli = tmp / "sparsedb"
        shutil.copy(args.cli, cli)
        subprocess.run(["strip", "-g", str(lib), str(cli)], check=True)
        db_path = tmp / "db"
        build_database(db_path, folder)
        child = tmp / "child.py"
        child.write_text(CHILD)
        # The CLI re-executes itself to set OpenBLAS's environment, which valgrind cannot follow:
        # set it here and tell the CLI (and the package) to keep it.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", SPARSEDB_KEEP_OPENBLAS_ENV="1", SWIFT_DETERMINISTIC_HASHING="1",
                   PYTHONHASHSEED="0", SPARSEDB_LIBRARY=str(lib))
        searched = args.passes * n_queries
        print(f"{args.collection}: {n_queries} queries, k=10, maxscore; instructions per query over {args.passes} warm passes")
        print()
        print("| collection | `sparsedb bench`: all | of which the engine | Python `search(dict)`: all | of which the engine "
              "| of which the C entry (`sdb_collection_search_call`) outside the engine | Python layer (all − engine − loop) |")
        print("|---|---|---|---|---|---|---|")
        for coll in args.collections.split(","):
            bench = [str(cli), "bench", "--db", str(db_path), "--collection", coll, "--query-vectors", str(query_file),
                     "--k", "10", "--payloads"]
            b1 = callgrind(bench + ["--repeat", "1"], env, tmp)
            b2 = callgrind(bench + ["--repeat", str(1 + args.passes)], env, tmp)
            py = [sys.executable, str(child), str(db_path), coll]
            p0 = callgrind(py + ["python", "0", str(query_file)], env, tmp)
            p1 = callgrind(py + ["python", str(args.passes), str(query_file)], env, tmp)
            n0 = callgrind(py + ["noop", "0", str(query_file)], env, tmp)
            n1 = callgrind(py + ["noop", str(args.passes), str(query_file)], env, tmp)
            per = lambda a, b, i=0: (b[i] - a[i]) / searched  # noqa: E731
            loop = per(n0, n1)
            py_total, py_engine, py_call = per(p0, p1), per(p0, p1, 1), per(p0, p1, 2)
            print(f"| {coll} | {per(b1, b2):,.0f} | {per(b1, b2, 1):,.0f} | {py_total - loop:,.0f} | {py_engine:,.0f} | "
                  f"{py_call - py_engine:,.0f} | **{py_total - loop - py_engine:,.0f}** |", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
