#!/usr/bin/env python3
"""Search latency while another process ingests, against the same database quiet: does the
posting cache survive writes? (issue 8: before, every commit invalidated every cached list.)

    tools/ingest_search_bench.py --binary .build/release/sparsedb [--binary OTHER ...] [--batch-size 50]

For each binary: a database holding the reference vectors of scifact (5,183 documents),
compacted; then the scifact test queries (k = 10, maxscore and bmw) are answered by one
long-running search process, first on the quiet database (after a warm-up pass), then while a
second process ingests the reference vectors of nfcorpus and cranfield (5,033 more documents)
in batches of --batch-size (one commit each). The two processes share nothing but the database,
as two programs of a user would. Prints JSON: per binary and algorithm, latency mean / p50 / p99
quiet and during the ingest, their ratio, the commits that happened meanwhile and, where the
binary reports it, the blocks each query had to decompress itself.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "reference", "splade-tiny")


def summary(values):
    s = sorted(values)
    rank = lambda p: s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]
    return {"mean": round(statistics.mean(s), 4), "p50": round(rank(50), 4), "p99": round(rank(99), 4), "n": len(s)}


def search(binary, db, queries, algorithm, repeat, stop=None):
    """Runs the queries `repeat` times in one process (plus a warm-up pass); returns per-query
    (latency, blocks decompressed or None). With `stop`, keeps only the queries answered while
    `stop()` is false."""
    path = queries + f".x{repeat}"
    with open(queries) as f, open(path, "w") as out:
        lines = f.read()
        for _ in range(repeat):
            out.write(lines)
    proc = subprocess.Popen(
        [binary, "search", "--db", db, "--collection", "c", "--query-vectors", path, "--algorithm", algorithm, "--format", "jsonl",
         "--latencies", "--warmup"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    results = []
    for line in proc.stdout:
        if stop is not None and stop():
            proc.kill()
            break
        o = json.loads(line)
        results.append((o["latency_ms"], o["stats"].get("blocks_decompressed")))
    proc.wait()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", action="append", required=True)
    ap.add_argument("--batch-size", type=int, default=50)
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        queries = os.path.join(REF, "scifact", "query_vectors.jsonl")
        rest = os.path.join(tmp, "rest.jsonl")
        with open(rest, "w") as f:
            for name in ("nfcorpus", "cranfield"):
                for line in open(os.path.join(REF, name, "doc_vectors.jsonl")):
                    o = json.loads(line)
                    o["_id"] = f"{name}-{o['_id']}"
                    f.write(json.dumps(o) + "\n")
        for binary in args.binary:
            label = os.path.basename(binary)
            out[label] = {}
            for algorithm in ("maxscore", "bmw"):
                db = os.path.join(tmp, f"{label}-{algorithm}")
                subprocess.run([binary, "ingest", "--db", db, "--collection", "c", "--vectors",
                                os.path.join(REF, "scifact", "doc_vectors.jsonl"), "--quiet"], check=True)
                subprocess.run([binary, "compact", "--db", db], check=True, capture_output=True)
                quiet = search(binary, db, queries, algorithm, repeat=3)
                ingest = subprocess.Popen([binary, "ingest", "--db", db, "--collection", "c", "--vectors", rest, "--batch-size",
                                           str(args.batch_size), "--no-compact", "--quiet"])
                t0 = time.time()
                during = search(binary, db, queries, algorithm, repeat=1000, stop=lambda: ingest.poll() is not None)
                ingest.wait()
                seconds = time.time() - t0
                commits = -(-5033 // args.batch_size)
                q, d = summary([x[0] for x in quiet]), summary([x[0] for x in during])
                row = {"quiet_ms": q, "during_ingest_ms": d, "mean_ratio": round(d["mean"] / q["mean"], 3),
                       "ingest_seconds": round(seconds, 1), "commits": commits}
                if during and during[0][1] is not None:
                    row["blocks_decompressed_per_query_quiet"] = round(statistics.mean(x[1] for x in quiet), 2)
                    row["blocks_decompressed_per_query_during"] = round(statistics.mean(x[1] for x in during), 2)
                out[label][algorithm] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
