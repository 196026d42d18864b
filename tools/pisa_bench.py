#!/usr/bin/env python3
"""Side by side with PISA (PyPI pyterrier-pisa) on the same vectors and queries: per-query latency
(mean, p50, p99) of each exact algorithm, index bytes per posting, and ingest documents per second;
SparseDB's figures come from its CLI in the same run. Top-10 agreement with exact search is
reported too (PISA scores quantized weights).

    pip install python-terrier pyterrier-pisa
    swift build -c release
    tools/pisa_bench.py [--collection scifact] [--binary .build/release/sparsedb] [--repeat 3] [--out report.json]
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "reference", "splade-tiny")


def load(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def summary(xs):
    xs = sorted(xs)
    return {"mean_ms": statistics.fmean(xs), "p50_ms": xs[len(xs) // 2], "p99_ms": xs[min(len(xs) - 1, int(len(xs) * 0.99))]}


def dir_bytes(path, pattern=None):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            if pattern is None or re.search(pattern, f):
                total += os.path.getsize(os.path.join(d, f))
    return total


def pisa(docs, queries, repeat, k, workdir):
    import pyterrier as pt
    from pyterrier_pisa import PisaIndex, PisaRetrieve, _pisathon
    path = os.path.join(workdir, "pisa")
    index = PisaIndex(path, stemmer="none", threads=1)
    t0 = time.perf_counter()
    index.toks_indexer(scale=100.0).index({"docno": d["_id"], "toks": d["vector"]} for d in docs)
    ingest_s = time.perf_counter() - t0
    postings = sum(len(d["vector"]) for d in docs)
    out = {"ingest_docs_per_s": len(docs) / ingest_s, "algorithms": {}, "top10": {}}
    for algo in ["maxscore", "wand", "block_max_wand", "block_max_maxscore"]:
        retr = PisaRetrieve(index, scorer="quantized", num_results=k, threads=1, query_algorithm=algo, toks_scale=100.0)
        retr.reset_retrieval_context()
        inputs = [(0, {str(t): float(w) * 100.0 for t, w in q["vector"].items()}) for q in queries]
        buf = dict(result_qidxs=np.empty(k, dtype=np.int32), result_docnos=np.empty(k, dtype=object),
                   result_ranks=np.empty(k, dtype=np.int32), result_scores=np.empty(k, dtype=np.float32))
        lat = []
        tops = {}
        for r in range(repeat + 1):
            for q, inp in zip(queries, inputs):
                t0 = time.perf_counter_ns()
                n = _pisathon.retrieve(retr._ctxt, retr.query_algorithm.value, [inp], k=k, threads=1, query_weighted=1,
                                       pretokenised=True, **buf)
                dt = (time.perf_counter_ns() - t0) / 1e6
                if r > 0:
                    lat.append(dt)
                tops[q["_id"]] = list(buf["result_docnos"][:n])
        out["algorithms"][algo] = summary(lat)
        out["top10"][algo] = tops
    # The compressed index (block_simdbp docs + quantized scores) and its block-max data are
    # built on first retrieval, next to the uncompressed inv.docs / inv.freqs.
    files = {os.path.relpath(os.path.join(d, f), path): os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs}
    encoded = {f: s for f, s in files.items() if f.endswith(".block_simdbp")}
    block_max = {f: s for f, s in files.items() if ".bmw" in f and not f.endswith(".block_simdbp")}
    out["index_files"] = files
    out["bytes_per_posting_postings_only"] = sum(encoded.values()) / postings
    out["bytes_per_posting_with_block_max"] = (sum(encoded.values()) + sum(block_max.values())) / postings
    return out


def sparsedb(binary, docs_path, queries_path, repeat, k, workdir):
    db = os.path.join(workdir, "sdb")
    env = dict(os.environ)
    t0 = time.perf_counter()
    subprocess.run([binary, "ingest", "--db", db, "--collection", "c", "--vectors", docs_path, "--batch-size", "10000", "--quiet"], check=True, env=env)
    ingest_s = time.perf_counter() - t0
    subprocess.run([binary, "compact", "--db", db], check=True, env=env, capture_output=True)
    stats = json.loads(subprocess.run([binary, "stats", "--db", db], check=True, capture_output=True, text=True, env=env).stdout)
    c = stats["collections"][0]
    out = {"ingest_docs_per_s": c["documents"] / ingest_s, "bytes_per_posting": c["bytesPerPosting"],
           "forward_bytes_per_posting": c["forwardBytes"] / c["postings"], "file_bytes_per_posting": stats["bytesOnDisk"] / c["postings"],
           "algorithms": {}, "top10": {}}
    for algo in ["exhaustive", "maxscore", "wand", "bmw"]:
        lat = []
        for r in range(repeat):
            # One warm-up pass inside the process (as for PISA), then the measured pass.
            res = subprocess.run([binary, "search", "--db", db, "--collection", "c", "--query-vectors", queries_path, "--k", str(k),
                                  "--algorithm", algo, "--format", "jsonl", "--latencies", "--warmup"], check=True, capture_output=True, text=True, env=env)
            lines = [json.loads(l) for l in res.stdout.splitlines()]
            lat += [l["latency_ms"] for l in lines]
        out["algorithms"][algo] = summary(lat)
        out["top10"][algo] = {l["query_id"]: [h["id"] for h in l["hits"]] for l in lines}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", default="scifact")
    ap.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "sparsedb"))
    ap.add_argument("--repeat", type=int, default=3, help="measured passes over the queries (after one warm-up pass)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", help="write the JSON report here (PISA's own logging also goes to stdout)")
    args = ap.parse_args()
    docs_path = os.path.join(REF, args.collection, "doc_vectors.jsonl")
    queries_path = os.path.join(REF, args.collection, "query_vectors.jsonl")
    docs, queries = load(docs_path), load(queries_path)
    work = tempfile.mkdtemp()
    try:
        ours = sparsedb(args.binary, docs_path, queries_path, args.repeat, args.k, work)
        theirs = pisa(docs, queries, args.repeat, args.k, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    exact = ours["top10"]["exhaustive"]
    def agreement(tops):
        return statistics.fmean(len(set(tops[q]) & set(exact[q])) / max(1, len(exact[q])) for q in exact)
    best_pisa = min(theirs["algorithms"], key=lambda a: theirs["algorithms"][a]["mean_ms"])
    best_ours = min(ours["algorithms"], key=lambda a: ours["algorithms"][a]["mean_ms"])
    report = {
        "collection": args.collection, "documents": len(docs), "queries": len(queries),
        "postings": sum(len(d["vector"]) for d in docs), "k": args.k,
        "sparsedb": {k: v for k, v in ours.items() if k != "top10"},
        "pisa": {k: v for k, v in theirs.items() if k != "top10"},
        "pisa_top10_agreement_with_exact": {a: agreement(t) for a, t in theirs["top10"].items()},
        "ratios": {
            "best_exact_latency_sparsedb_over_pisa": ours["algorithms"][best_ours]["mean_ms"] / theirs["algorithms"][best_pisa]["mean_ms"],
            "best_algorithms": [best_ours, best_pisa],
            "bytes_per_posting_sparsedb_over_pisa": ours["bytes_per_posting"] / max(theirs["bytes_per_posting_with_block_max"], 1e-9),
            "ingest_docs_per_s_sparsedb_over_pisa": ours["ingest_docs_per_s"] / theirs["ingest_docs_per_s"],
        },
    }
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


main()
