#!/usr/bin/env python3
"""Search cost of two `sparsedb` binaries in CPU instructions (valgrind's callgrind), which a
busy machine does not change: the load-independent companion of tools/compare_builds.py.

    tools/compare_instructions.py --a OLD_BINARY --b NEW_BINARY [--collections scifact,nfcorpus]

Each binary ingests the reference vectors of each collection into its own database (each writes
its own format) and compacts; then, per algorithm (k = 10), callgrind counts the instructions of
one process answering all test queries once (`search --query-vectors`) and of one answering them
twice (`--warmup`: a warm-up pass, then the measured pass). The difference is one pass over the
queries with the posting cache warm, without process start-up, database opening or query
parsing; divided by the number of queries it is the instructions per query. Debug information
is stripped from copies of the binaries first (valgrind 3.19 cannot read Swift 6.3's DWARF 5).
Prints JSON with instructions per query and the B/A ratios.
"""
import argparse, json, os, re, shutil, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "reference", "splade-tiny")
ALGORITHMS = ["exhaustive", "maxscore", "wand", "bmw"]


def instructions(binary, args, tmp):
    out = os.path.join(tmp, "cg.out")
    # The CLI re-executes itself to set OpenBLAS's environment, which valgrind cannot follow:
    # set it here and tell the CLI to keep it.
    # Swift seeds its hash tables per process; the seed moves dictionary-heavy counts by a few
    # percent between runs of the same binary, so every run gets the same one.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", SPARSEDB_KEEP_OPENBLAS_ENV="1", SWIFT_DETERMINISTIC_HASHING="1")
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary] + args,
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit("%s failed: %s" % (binary, r.stderr[-2000:]))
    m = re.search(r"Collected : (\d+)", r.stderr)
    if not m:
        raise SystemExit("no callgrind total in: " + r.stderr[-1000:])
    os.remove(out)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--collections", default="scifact,nfcorpus")
    args = ap.parse_args()
    result = {"instructions_per_query": {}}
    with tempfile.TemporaryDirectory() as tmp:
        bins = {}
        for name, path in (("a", args.a), ("b", args.b)):
            bins[name] = os.path.join(tmp, "sparsedb-" + name)
            shutil.copy(path, bins[name])
            subprocess.run(["strip", "-g", bins[name]], check=True)
        for coll in args.collections.split(","):
            docs = os.path.join(REF, coll, "doc_vectors.jsonl")
            queries = os.path.join(REF, coll, "query_vectors.jsonl")
            n = sum(1 for line in open(queries) if line.strip())
            for name, b in bins.items():
                db = os.path.join(tmp, "%s-%s" % (name, coll))
                subprocess.run([b, "ingest", "--db", db, "--collection", coll, "--vectors", docs, "--batch-size", "100000", "--quiet"],
                               check=True)
                subprocess.run([b, "compact", "--db", db, "--collection", coll], check=True, capture_output=True)
            for algo in ALGORITHMS:
                row = {}
                for name, b in bins.items():
                    db = os.path.join(tmp, "%s-%s" % (name, coll))
                    base = ["search", "--db", db, "--collection", coll, "--query-vectors", queries, "--algorithm", algo,
                            "--format", "jsonl"]
                    once = instructions(b, base, tmp)
                    twice = instructions(b, base + ["--warmup"], tmp)
                    row[name] = round((twice - once) / n)
                row["ratio_b_over_a"] = round(row["b"] / row["a"], 4)
                result["instructions_per_query"]["%s/%s" % (coll, algo)] = row
                print(json.dumps({"%s/%s" % (coll, algo): row}), flush=True)
    ratios = [r["ratio_b_over_a"] for r in result["instructions_per_query"].values()]
    prod = 1.0
    for r in ratios:
        prod *= r
    result["geomean_ratio_b_over_a"] = round(prod ** (1 / len(ratios)), 4)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
