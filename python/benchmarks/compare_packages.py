"""Two (or more) builds of the package against `sparsedb bench`, end to end, in alternating rounds:
before/after figures on a machine whose speed moves between seconds.

    .build/python-venv/bin/python python/benchmarks/compare_packages.py --package OLD --package NEW [--rounds 20]

Each --package is a directory holding an installed `sparsedb` package with its library (for one
from another commit: `git worktree add /tmp/old COMMIT` then `pip install --no-deps --target
/tmp/old-package /tmp/old/python`). Builds overhead.py's database once, then per round runs
`sparsedb bench --payloads` and, for each package, a fresh process that opens the database,
makes one warm-up pass and --repeat measured passes of `collection.search({dim: weight}, 10)`
(each query timed alone, its hits released after the clock reads, as bench releases its
result); the packages' processes start and warm up first, then the measured passes run one
after the other, in an order that rotates between rounds. Reports, per collection, the median
and best of each process's CPU p50 and mean, and the median over rounds of each package's
difference to bench and to the first package, measured in the same round.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _data import build_database  # this folder (the script's) is on sys.path

REPO = Path(__file__).resolve().parents[2]

CHILD = r'''
import json, statistics, sys, time
import sparsedb
db_path, coll, passes, query_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
queries = []
with open(query_file) as f:
    for line in f:
        queries.append({int(d): float(w) for d, w in json.loads(line)["vector"].items()})
with sparsedb.Database(db_path, read_only=True) as db:
    c = db.collection(coll)
    search = c.search
    for q in queries:
        search(q, 10)
    print("ready", flush=True)  # warmed up: measure when the parent says so
    sys.stdin.readline()
    clock = time.thread_time_ns
    t = []
    for _ in range(passes):
        for q in queries:
            t0 = clock()
            hits = search(q, 10)
            t1 = clock()
            t.append((t1 - t0) / 1000)
            del hits
print(json.dumps([statistics.median(t), statistics.fmean(t), sparsedb.__file__]))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", action="append", required=True, help="a directory holding a sparsedb package")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--cli", default=str(REPO / ".build" / "release" / "sparsedb"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--collections", default="tiny,bench")
    args = parser.parse_args()
    folder = Path(args.shared) / "reference" / "splade-tiny" / args.collection
    query_file = folder / "query_vectors.jsonl"
    packages = [str(Path(p).resolve()) for p in args.package]
    names = [Path(p).name for p in packages]
    with tempfile.TemporaryDirectory(prefix="sparsedb-compare-") as name:
        tmp = Path(name)
        db_path = tmp / "db"
        build_database(db_path, folder)
        child = tmp / "child.py"
        child.write_text(CHILD)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for coll in args.collections.split(","):
            rows = []
            for r in range(args.rounds):
                row = {}
                order = ["bench", *range(len(packages))]
                order = order[r % len(order):] + order[: r % len(order)]
                # Every package's process starts, opens the database and warms up first; then
                # the measured passes run one after the other, in the round's order.
                children = {}
                for i, package in enumerate(packages):
                    children[i] = subprocess.Popen(
                        [sys.executable, str(child), str(db_path), coll, str(args.repeat), str(query_file)],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=package))
                    if children[i].stdout.readline().strip() != "ready":
                        sys.exit(f"{package}: the measuring process failed")
                for what in order:
                    if what == "bench":
                        out = subprocess.run(
                            [args.cli, "bench", "--db", str(db_path), "--collection", coll, "--query-vectors", str(query_file),
                             "--k", "10", "--repeat", str(args.repeat), "--payloads"], check=True, capture_output=True, text=True).stdout
                        o = json.loads(out)
                        row["bench"] = (o["cpu_p50_ms"] * 1000, o["cpu_mean_ms"] * 1000)
                    else:
                        process = children[what]
                        process.stdin.write("go\n")
                        process.stdin.flush()
                        p50, mean, where = json.loads(process.stdout.readline())
                        if process.wait() != 0:
                            sys.exit(f"{packages[what]}: the measuring process failed")
                        if not where.startswith(packages[what]):
                            sys.exit(f"{packages[what]} did not provide sparsedb (imported {where})")
                        row[what] = (p50, mean)
                rows.append(row)
            print(f"\n{coll}: {args.rounds} rounds of {args.repeat} passes (load {os.getloadavg()[0]:.1f} at the end)")
            print("| process | CPU p50, median (best) | CPU mean, median (best) | − bench, per round: p50 / mean (median) "
                  f"| − {names[0]}, per round: p50 / mean (median) |")
            print("|---|---|---|---|---|")
            for key, label in [("bench", "`sparsedb bench`"), *[(i, n) for i, n in enumerate(names)]]:
                p50 = [row[key][0] for row in rows]
                mean = [row[key][1] for row in rows]
                cells = [f"{statistics.median(p50):.1f} ({min(p50):.1f})", f"{statistics.median(mean):.1f} ({min(mean):.1f})"]
                for base in ("bench", 0):
                    if key == base or (key == "bench" and base == 0):
                        cells.append("")
                        continue
                    d = [(row[key][0] - row[base][0], row[key][1] - row[base][1]) for row in rows]
                    cells.append(f"{statistics.median(x for x, _ in d):.1f} / {statistics.median(y for _, y in d):.1f}")
                print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
