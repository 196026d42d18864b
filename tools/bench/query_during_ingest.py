#!/usr/bin/env python3
"""Query latency while another process ingests into the same database (issue 11's goal:
queries during an ingest no slower than 2x a quiet database).

    swift build -c release --product sparsedb
    cp -r /work/scale/bench/1M/sparsedb/db /tmp/scratch-db      # it is written to: use a copy
    tools/bench/query_during_ingest.py --db /tmp/scratch-db --collection bench \\
        --queries /work/scale/vectors/queries.csr --ingest docs100k.csr --limit 600

1. `sparsedb bench` (warm-up pass, then one measured pass over --limit queries, pinned to
   --query-cpu) on the quiet database;
2. the same while `sparsedb ingest --vectors INGEST` (pinned to --ingest-cpu) upserts into the
   same collection from another process, started again and again until the bench process ends
   (the ingest file's ids are upserted: existing documents are replaced, new ones added; an
   automatic compaction may run, as it would for a user);
3. the quiet bench once more (the database now holds the ingested versions).
Each bench process opens the database afresh, so its posting cache starts empty and its warm-up
pass fills it; during the ingest the engine's cache must survive the other process's commits.
Prints one JSON object: the three runs' mean / p50 / p99 latency (wall and CPU), how many
ingests ran and finished during run 2, and the ratios of run 2 to the mean of runs 1 and 3.
"""
import argparse, json, os, subprocess, sys, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(a, exe):
    cmd = ["taskset", "-c", str(a.query_cpu), exe, "bench", "--db", a.db, "--collection", a.collection,
           "--query-vectors", a.queries, "--algorithm", a.algorithm, "--k", "10", "--limit", str(a.limit)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    d = json.loads(out)
    return {k: d[k] for k in ("mean_ms", "p50_ms", "p99_ms", "cpu_mean_ms", "cpu_p50_ms", "cpu_p99_ms", "qps", "load_average_1m")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="database directory (written to: use a scratch copy)")
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", required=True, help="query vectors (.csr or JSONL)")
    ap.add_argument("--ingest", required=True, help="vectors to upsert during the second run (.csr or JSONL)")
    ap.add_argument("--limit", type=int, default=600, help="queries per run")
    ap.add_argument("--algorithm", default="maxscore")
    ap.add_argument("--batch-size", type=int, default=10000, help="ingest batch (documents per transaction)")
    ap.add_argument("--query-cpu", type=int, default=1)
    ap.add_argument("--ingest-cpu", type=int, default=0)
    a = ap.parse_args()
    exe = os.environ.get("SPARSEDB_BIN") or os.path.join(REPO, ".build", "release", "sparsedb")

    before = bench(a, exe)
    ingest_cmd = ["taskset", "-c", str(a.ingest_cpu), exe, "ingest", "--db", a.db, "--collection", a.collection,
                  "--vectors", a.ingest, "--batch-size", str(a.batch_size), "--quiet"]
    started = finished = 0
    ingest = subprocess.Popen(ingest_cmd, stdout=subprocess.DEVNULL)
    started += 1
    time.sleep(2)  # into its first write transactions
    query = subprocess.Popen(["taskset", "-c", str(a.query_cpu), exe, "bench", "--db", a.db, "--collection", a.collection,
                              "--query-vectors", a.queries, "--algorithm", a.algorithm, "--k", "10", "--limit", str(a.limit)],
                             stdout=subprocess.PIPE, text=True)
    while query.poll() is None:
        if ingest.poll() is not None:
            if ingest.returncode != 0:
                sys.exit("ingest failed with exit %d" % ingest.returncode)
            finished += 1
            ingest = subprocess.Popen(ingest_cmd, stdout=subprocess.DEVNULL)
            started += 1
        time.sleep(0.05)
    out = query.stdout.read()
    ingest.wait()
    if ingest.returncode != 0:
        sys.exit("ingest failed with exit %d" % ingest.returncode)
    finished += 1
    if query.returncode != 0:
        sys.exit("bench failed with exit %d" % query.returncode)
    d = json.loads(out)
    during = {k: d[k] for k in before}
    after = bench(a, exe)
    quiet = lambda k: (before[k] + after[k]) / 2
    result = {"quiet_before": before, "during_ingest": during, "quiet_after": after,
              "ingests_started": started, "ingests_finished": finished,
              "ratio_mean": during["mean_ms"] / quiet("mean_ms"), "ratio_p99": during["p99_ms"] / quiet("p99_ms"),
              "ratio_cpu_mean": during["cpu_mean_ms"] / quiet("cpu_mean_ms")}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
