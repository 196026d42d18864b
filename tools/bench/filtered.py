#!/usr/bin/env python3
"""Filtered search at scale: exact filtered top-k against unfiltered search, against "search then
filter" with a deep top-k, and against scoring the matching documents by brute force.

    tools/bench/filtered.py --jsonl /work/scale/grown/grown-1M.jsonl --docs /work/scale/grown/grown-1M.csr \\
        --queries /work/scale/vectors/queries.csr --work /work/scale/bench/filtered [--n-queries 300] \\
        [--algorithms maxscore,wand,bmw]

- Builds (once; --rebuild to redo) a SparseDB collection from the vector JSONL with one keyword
  attribute `sel`: row r gets, for each selectivity s in 0.1%, 1%, 10%, 50%, the keyword "pS"
  when u(r) < s, where u(r) is a fixed hash of r mapped to [0, 1) — nested sets, so
  `{"sel": "p1"}` admits about 1% of the documents.
- For each selectivity and for no filter, runs `sparsedb bench` (one thread, pinned with
  taskset to --cpu, warm caches) with each of --algorithms (default maxscore and bmw) and the
  filter; checks every filtered run against numpy brute force over the matching rows (float64
  dot products; a hit whose exact score reaches the exact k-th score counts, so ties at the
  cut-off are free) and prints the recall (exact search must be 1.0).
- "Search then filter": the unfiltered maxscore run with k = --deep (default 1000), the hits then
  filtered by the attribute: its latency and the recall of the filtered top-k it yields.
- Brute force: scipy's CSR product of the matching rows with each query, one thread, timed per
  query (the matrix of matching rows is built once per selectivity, outside the timing).

Writes WORK/filtered.json and WORK/filtered.md (a table for BENCHMARKS.md).
"""
import argparse, json, os, subprocess, sys, time

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import data as D  # noqa: E402

SELECTIVITIES = [("p0.1", 0.001), ("p1", 0.01), ("p10", 0.1), ("p50", 0.5)]


def unit(rows):
    """A fixed hash of the row numbers mapped to [0, 1) (Knuth's multiplicative hash, 32 bits)."""
    r = np.asarray(rows, dtype=np.uint64)
    return ((r * np.uint64(2654435761)) % np.uint64(1 << 32)).astype(np.float64) / float(1 << 32)


def log(msg):
    print("[filtered %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def build(args, exe, db):
    """Streams the JSONL into `sparsedb ingest` with the `sel` keywords appended to every line."""
    log("ingesting %s with the sel attribute" % args.jsonl)
    t0 = time.time()
    ingest = subprocess.Popen(
        ["taskset", "-c", args.cpu, exe, "ingest", "--db", db, "--collection", "f", "--vectors", "-", "--dimensions", "30522",
         "--batch-size", "100000", "--attribute", "sel:keyword", "--quiet"], stdin=subprocess.PIPE)
    with open(args.jsonl, "rb") as f:
        row = 0
        chunk = []
        for line in f:
            if args.n_docs is not None and row >= args.n_docs:
                break
            u = unit([row])[0]
            sel = [name for name, s in SELECTIVITIES if u < s]
            line = line.rstrip(b"\n")
            assert line.endswith(b"}")
            chunk.append(line[:-1] + b',"sel":' + json.dumps(sel).encode() + b"}\n")
            row += 1
            if len(chunk) == 10000:
                ingest.stdin.write(b"".join(chunk))
                chunk = []
        ingest.stdin.write(b"".join(chunk))
    ingest.stdin.close()
    if ingest.wait() != 0:
        raise SystemExit("ingest failed")
    log("ingested %d rows in %.1f s" % (row, time.time() - t0))
    return time.time() - t0


def bench(args, exe, db, algorithm, k, filt, tag):
    runf = os.path.join(args.work, "run-%s.jsonl" % tag)
    cmd = ["taskset", "-c", args.cpu, exe, "bench", "--db", db, "--collection", "f", "--query-vectors", args.queries_used,
           "--algorithm", algorithm, "--k", str(k), "--run", runf]
    if filt is not None:
        cmd += ["--filter", json.dumps(filt)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    report["run_file"] = runf
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jsonl", required=True)
    ap.add_argument("--docs", required=True, help="the same documents as .csr (+ .ids), for the brute-force oracle")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--n-queries", type=int, default=300)
    ap.add_argument("--n-docs", type=int, help="only the first N documents (a smoke test)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--deep", type=int, default=1000)
    ap.add_argument("--cpu", default="1")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--algorithms", default="maxscore,bmw", help="comma-separated traversal algorithms to run")
    ap.add_argument("--sparsedb", default=os.environ.get("SPARSEDB_BIN") or os.path.join(REPO, ".build", "release", "sparsedb"))
    args = ap.parse_args()
    algorithms = args.algorithms.split(",")
    os.makedirs(args.work, exist_ok=True)
    db = os.path.join(args.work, "db")
    build_s = None
    if args.rebuild or not os.path.exists(os.path.join(db, "data.mdb")):
        if os.path.exists(db):
            subprocess.run(["rm", "-rf", db], check=True)
        build_s = build(args, args.sparsedb, db)

    docs = D.load(args.docs, limit=args.n_docs)
    queries = D.load(args.queries, limit=args.n_queries)
    args.queries_used = os.path.join(args.work, "queries.csr")
    D.save(queries, args.queries_used)
    n = len(docs)
    u = unit(np.arange(n))
    X = sp.csr_matrix((docs.data.astype(np.float64), docs.indices, docs.indptr), shape=(n, docs.cols))
    Q = sp.csr_matrix((queries.data.astype(np.float64), queries.indices, queries.indptr), shape=(len(queries), docs.cols))
    ids = np.array(docs.ids, dtype=object)
    k = args.k
    rows = []

    def exact_topk(mask):
        """Exact top-k ids and k-th scores over the rows in `mask`, and brute-force ms per query."""
        sub = X[mask] if mask is not None else X
        sub_ids = ids[mask] if mask is not None else ids
        out, kth, ms = [], [], []
        for qi in range(Q.shape[0]):
            t0 = time.perf_counter()
            s = (sub @ Q[qi].T).toarray().ravel()
            ms.append((time.perf_counter() - t0) * 1e3)
            s[s <= 0] = -1
            top = np.argsort(-s, kind="stable")[:k]
            top = top[s[top] > 0]
            out.append(set(sub_ids[top]))
            kth.append(s[top[-1]] if len(top) else 0.0)
        return out, kth, ms

    def recall(run_ids, mask, kth, allowed_ids=None):
        """Share of the exact top-k found; a hit whose exact score reaches the k-th counts."""
        got = 0
        want = 0
        for qi, hits in enumerate(run_ids):
            hits = [h for h in hits if allowed_ids is None or h in allowed_ids][:k]
            qv = Q[qi]
            exp = exact[qi]
            want += len(exp)
            for h in hits:
                if h in exp:
                    got += 1
                else:
                    r = index_of[h]
                    if mask is not None and not mask[r]:
                        continue
                    if (X[r] @ qv.T).toarray()[0, 0] >= kth[qi] - 1e-6 * max(1, kth[qi]):
                        got += 1
        return got / max(want, 1)

    index_of = {d: i for i, d in enumerate(docs.ids)}
    qids = queries.ids
    log("unfiltered runs")
    unf = {}
    for algo in algorithms:
        unf[algo] = bench(args, args.sparsedb, db, algo, k, None, "none-" + algo)
    deep = bench(args, args.sparsedb, db, "maxscore", args.deep, None, "none-deep")
    deep_runs = D.read_run(deep["run_file"], qids)
    for name, s in [(None, 1.0)] + SELECTIVITIES:
        mask = None if name is None else (u < s)
        matching = n if mask is None else int(mask.sum())
        log("selectivity %s: %d documents" % (name or "none", matching))
        exact, kth, bf_ms = exact_topk(mask)
        row = {"selectivity": name or "none", "fraction": s, "matching": matching,
               "brute_force_mean_ms": float(np.mean(bf_ms))}
        for algo in algorithms:
            if name is None:
                r = unf[algo]
            else:
                r = bench(args, args.sparsedb, db, algo, k, {"sel": name}, "%s-%s" % (name, algo))
            runs = D.read_run(r["run_file"], qids)
            row[algo] = {"mean_ms": r["mean_ms"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "cpu_mean_ms": r.get("cpu_mean_ms"),
                         "recall": recall(runs, mask, kth), "load": r.get("load_average_1m")}
        allowed = None if mask is None else set(ids[mask])
        row["search_then_filter"] = {"k": args.deep, "mean_ms": deep["mean_ms"], "cpu_mean_ms": deep.get("cpu_mean_ms"),
                                     "recall": recall(deep_runs, mask, kth, allowed)}
        rows.append(row)
        log(json.dumps(row))
    result = {"documents": n, "queries": len(qids), "k": k, "algorithms": algorithms, "build_s": build_s, "rows": rows}
    with open(os.path.join(args.work, "filtered.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["| filter | matching docs | " + " | ".join("%s mean ms (cpu) | recall" % a for a in algorithms)
             + " | search→filter k=%d mean ms | its recall | brute force ms |" % args.deep,
             "|---|---|" + "---|---|" * len(algorithms) + "---|---|---|"]
    for r in rows:
        st = r["search_then_filter"]
        cells = ["%.2f (%.2f) | %.3f" % (r[a]["mean_ms"], r[a]["cpu_mean_ms"] or 0, r[a]["recall"]) for a in algorithms]
        lines.append("| %s | %d | %s | %.2f | %.3f | %.2f |" % (
            r["selectivity"], r["matching"], " | ".join(cells), st["mean_ms"], st["recall"], r["brute_force_mean_ms"]))
    with open(os.path.join(args.work, "filtered.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
