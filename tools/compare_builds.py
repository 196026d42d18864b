#!/usr/bin/env python3
"""Side by side: search latency and encoding speed of two `sparsedb` binaries on the same data,
measured alternately in one run (A, B, A, B, ...), so that the ratio holds on these noisy machines.

Used for the cost of removing `-Ounchecked` (issue 8): A = a binary of the format-1 commit (built
with -Ounchecked), B = the current release build.

    tools/compare_builds.py --a /path/to/old/sparsedb --b .build/release/sparsedb [--rounds 3]

Search: each binary ingests the reference vectors of scifact and nfcorpus into its own database
(each writes its own format), compacts, then answers all test queries with every algorithm, k = 10,
one query at a time, after a warm-up pass in the same process (posting cache warm). Encode: each
binary encodes the first --n scifact passages with the default model (2 worker threads, OpenBLAS
one thread each). Prints a JSON summary with means and B/A ratios.
"""
import argparse, json, os, statistics, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared")
ALGORITHMS = ["exhaustive", "maxscore", "wand", "bmw"]


def search_latency(binary, db, collection, queries, algorithm):
    out = subprocess.run(
        [binary, "search", "--db", db, "--collection", collection, "--query-vectors", queries, "--algorithm", algorithm,
         "--format", "jsonl", "--latencies", "--warmup"],
        check=True, capture_output=True, text=True).stdout
    lat = [json.loads(l)["latency_ms"] for l in out.splitlines()]
    return statistics.mean(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="baseline binary")
    ap.add_argument("--b", required=True, help="candidate binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=500, help="passages to encode")
    args = ap.parse_args()
    results = {"search_ms": {}, "encode_docs_per_s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {}
        for name, binary in (("a", args.a), ("b", args.b)):
            for coll in ("scifact", "nfcorpus"):
                db = os.path.join(tmp, f"{name}-{coll}")
                vectors = os.path.join(SHARED, "reference", "splade-tiny", coll, "doc_vectors.jsonl")
                subprocess.run([binary, "ingest", "--db", db, "--collection", coll, "--vectors", vectors, "--quiet"], check=True)
                subprocess.run([binary, "compact", "--db", db], check=True, capture_output=True)
                dbs[(name, coll)] = db
        for coll in ("scifact", "nfcorpus"):
            queries = os.path.join(SHARED, "reference", "splade-tiny", coll, "query_vectors.jsonl")
            for algorithm in ALGORITHMS:
                samples = {"a": [], "b": []}
                for _ in range(args.rounds):
                    for name, binary in (("a", args.a), ("b", args.b)):
                        samples[name].append(search_latency(binary, dbs[(name, coll)], coll, queries, algorithm))
                a, b = min(samples["a"]), min(samples["b"])
                results["search_ms"][f"{coll}/{algorithm}"] = {"a": round(a, 4), "b": round(b, 4), "ratio_b_over_a": round(b / a, 3)}
        corpus = os.path.join(SHARED, "data", "scifact", "corpus.jsonl")
        docs = os.path.join(tmp, "docs.jsonl")
        with open(corpus) as f, open(docs, "w") as out:
            for _, line in zip(range(args.n), f):
                out.write(line)
        samples = {"a": [], "b": []}
        for _ in range(args.rounds):
            for name, binary in (("a", args.a), ("b", args.b)):
                t0 = time.perf_counter()
                subprocess.run([binary, "encode", "--documents", docs, "--quiet"], check=True, capture_output=True)
                samples[name].append(args.n / (time.perf_counter() - t0))
        a, b = max(samples["a"]), max(samples["b"])
        results["encode_docs_per_s"] = {"a": round(a, 1), "b": round(b, 1), "ratio_b_over_a": round(b / a, 3)}
    ratios = [v["ratio_b_over_a"] for v in results["search_ms"].values()]
    results["search_geomean_ratio_b_over_a"] = round(statistics.geometric_mean(ratios), 3)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
