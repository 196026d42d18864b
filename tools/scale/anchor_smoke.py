#!/usr/bin/env python3
"""Smoke test of the two anchors the scale harness compares against, on a few thousand documents:
PISA (PyPI pyterrier-pisa) and Seismic (PyPI pyseismic-lsr). Both index the same vectors and
answer the same query vectors, k = 10, one thread, one query at a time; latency per query after a
warm-up pass, and recall@10 against exact brute force (float dot products with scipy; a returned
document counts as a hit when its exact score reaches the exact 10th score, so ties at the cut-off
are hits).

    pip install python-terrier pyterrier-pisa pyseismic-lsr scipy
    tools/scale/anchor_smoke.py --docs /work/scale/vectors/real.jsonl --queries /work/scale/vectors/queries.jsonl \
        [--n-docs 10000] [--n-queries 100] [--out report.json]

What each engine is given:
- PISA: PisaIndex(path, stemmer="none", threads=1).toks_indexer(scale=100).index(
  {"docno": id, "toks": {str(dim): weight}}) -- weights become int(weight * 100) (truncated; a
  weight under 0.01 is dropped); the quantized scorer scores the stored integers; query weights
  are passed scaled by 100 and PISA repeats a term floor(weight) times (query_weighted=1), i.e.
  integer query weights. Per query: _pisathon.retrieve(ctx, algorithm, [(0, {tok: w*100})], k,
  threads=1, query_weighted=1, pretokenised=True, result arrays) as tools/pisa_bench.py does.
- Seismic: SeismicDataset().add_documents_by_id(ids, int64 dims, float32 weights, int64 offsets)
  then SeismicIndex.build_from_dataset(dataset, n_postings, centroid_fraction, summary_energy,
  doc_cut, num_threads); per query index.search(qid, np.array([str(dim)], dtype=U100),
  float32 weights, k, query_cut, heap_factor) -> [(qid, score, docid)].
"""
import argparse, contextlib, json, os, random, shutil, statistics, sys, tempfile, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl_to_csr import read_csr, read_jsonl  # noqa: E402

DIMS = 30522


def load_vectors(path):
    if path.endswith(".csr"):
        indptr, indices, data, _ = read_csr(path, mmap=False)
        ids = open(path + ".ids").read().split("\n")[:-1]
        return ids, np.array(indptr), np.array(indices), np.array(data)
    return read_jsonl(path)


def take(ids, indptr, indices, data, rows):
    rows = np.asarray(rows)
    lens = indptr[rows + 1] - indptr[rows]
    pos = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows]) if len(rows) else np.zeros(0, np.int64)
    ip = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lens, out=ip[1:])
    return [ids[r] for r in rows], ip, indices[pos], data[pos]


def summary(lat):
    xs = sorted(lat)
    return {"mean_ms": round(statistics.fmean(xs), 4), "p50_ms": round(xs[len(xs) // 2], 4),
            "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 4)}


class Exact:
    """Brute-force float scores and the tie-aware recall@k."""

    def __init__(self, d, q, k):
        from scipy import sparse
        D = sparse.csr_matrix((d[3], d[2], d[1]), shape=(len(d[0]), DIMS), dtype=np.float64)
        Q = sparse.csr_matrix((q[3], q[2], q[1]), shape=(len(q[0]), DIMS), dtype=np.float64)
        self.S = (Q @ D.T).toarray()
        self.doc_row = {i: r for r, i in enumerate(d[0])}
        self.k = k
        self.kth = np.array([np.partition(-s, k - 1)[k - 1] * -1 if len(s) >= k else 0 for s in self.S])

    def recall(self, qi, returned):
        s = self.S[qi]
        kth = self.kth[qi]
        if kth <= 0:  # fewer than k documents score above zero: the positive ones are the answer
            want = int((s > 0).sum())
            if want == 0:
                return 1.0
            hits = sum(1 for d in dict.fromkeys(returned) if s[self.doc_row[d]] > 0)
            return min(hits, want) / want
        eps = 1e-5 * max(1.0, abs(kth))
        hits = sum(1 for d in dict.fromkeys(returned) if s[self.doc_row[d]] >= kth - eps)
        return min(hits, self.k) / self.k


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def run_pisa(d, q, exact, k, work, algorithms):
    import pyterrier as pt  # noqa: F401  (pyterrier_pisa imports it; no Java needed for PISA)
    from pyterrier_pisa import PisaIndex, PisaRetrieve, _pisathon
    path = os.path.join(work, "pisa")
    ids, ip, ix, dt = d
    docs = ({"docno": ids[r], "toks": {str(int(t)): float(w) for t, w in zip(ix[ip[r]:ip[r + 1]], dt[ip[r]:ip[r + 1]])}}
            for r in range(len(ids)))
    index = PisaIndex(path, stemmer="none", threads=1)
    t0 = time.perf_counter()
    index.toks_indexer(scale=100.0).index(docs)
    out = {"index_s": round(time.perf_counter() - t0, 3), "algorithms": {}}
    qids, qp, qx, qd = q
    inputs = [(0, {str(int(t)): float(w) * 100.0 for t, w in zip(qx[qp[i]:qp[i + 1]], qd[qp[i]:qp[i + 1]])}) for i in range(len(qids))]
    for algo in algorithms:
        retr = PisaRetrieve(index, scorer="quantized", num_results=k, threads=1, query_algorithm=algo, toks_scale=100.0)
        t0 = time.perf_counter()
        retr.reset_retrieval_context()  # builds the block_simdbp index and block-max data on first use
        prep = time.perf_counter() - t0
        buf = dict(result_qidxs=np.empty(k, np.int32), result_docnos=np.empty(k, dtype=object),
                   result_ranks=np.empty(k, np.int32), result_scores=np.empty(k, np.float32))
        lat, rec = [], []
        for rep in range(2):  # warm-up pass, measured pass
            for qi, inp in enumerate(inputs):
                t0 = time.perf_counter_ns()
                n = _pisathon.retrieve(retr._ctxt, retr.query_algorithm.value, [inp], k=k, threads=1, query_weighted=1,
                                       pretokenised=True, **buf)
                dt_ms = (time.perf_counter_ns() - t0) / 1e6
                if rep == 1:
                    lat.append(dt_ms)
                    rec.append(exact.recall(qi, list(buf["result_docnos"][:n])))
        out["algorithms"][algo] = dict(summary(lat), recall_at_10=round(statistics.fmean(rec), 4), prepare_s=round(prep, 3))
    files = {os.path.relpath(os.path.join(dd, f), path): os.path.getsize(os.path.join(dd, f)) for dd, _, fs in os.walk(path) for f in fs}
    out["index_bytes"] = {"total_dir": sum(files.values()),
                          "block_simdbp_plus_bmw": sum(s for f, s in files.items() if ".bmw" in f)}
    return out


@contextlib.contextmanager
def captured_stdout():
    """Captures what native code prints on fd 1 (Seismic's print_space_usage_byte)."""
    sys.stdout.flush()
    saved = os.dup(1)
    tmp = tempfile.TemporaryFile(mode="w+b")
    os.dup2(tmp.fileno(), 1)
    box = []
    try:
        yield box
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1); os.close(saved)
        tmp.seek(0); box.append(tmp.read().decode("utf-8", "replace")); tmp.close()


def run_seismic(d, q, exact, k, work, configs, searches):
    import seismic
    from seismic import SeismicDataset, SeismicIndex
    stype = seismic.get_seismic_string()
    ids, ip, ix, dt = d
    out = {"builds": []}
    t0 = time.perf_counter()
    ds = SeismicDataset()
    added = ds.add_documents_by_id(list(ids), ix.astype(np.int64), dt.astype(np.float32), ip.astype(np.int64))
    out["dataset_s"] = round(time.perf_counter() - t0, 3)
    out["documents_added"] = added
    qids, qp, qx, qd = q
    qcomp = [np.array([str(int(t)) for t in qx[qp[i]:qp[i + 1]]], dtype=stype) for i in range(len(qids))]
    qval = [np.asarray(qd[qp[i]:qp[i + 1]], np.float32) for i in range(len(qids))]
    for cfg in configs:
        t0 = time.perf_counter()
        index = SeismicIndex.build_from_dataset(ds, num_threads=1, **cfg)
        build_s = time.perf_counter() - t0
        base = os.path.join(work, "seismic")
        index.save(base)
        size = os.path.getsize(base + ".index.seismic")
        with captured_stdout() as box:
            index.print_space_usage_byte()
        b = {"config": cfg, "build_s": round(build_s, 3), "file_bytes": size,
             "space_usage_printout": box[0].strip().splitlines()[-1:] if box and box[0].strip() else [], "searches": []}
        loaded = SeismicIndex.load(base + ".index.seismic")
        same = [r[2] for r in loaded.search("0", qcomp[0], qval[0], k, 10, 0.9)] == [r[2] for r in index.search("0", qcomp[0], qval[0], k, 10, 0.9)]
        b["save_load_same_results"] = same
        os.remove(base + ".index.seismic")
        for query_cut, heap_factor, sort in searches:
            lat, rec = [], []
            for rep in range(2):
                for qi in range(len(qids)):
                    t0 = time.perf_counter_ns()
                    res = index.search(str(qi), qcomp[qi], qval[qi], k, query_cut, heap_factor, sorted=sort)
                    dt_ms = (time.perf_counter_ns() - t0) / 1e6
                    if rep == 1:
                        lat.append(dt_ms)
                        rec.append(exact.recall(qi, [r[2] for r in res]))
            b["searches"].append(dict(query_cut=query_cut, heap_factor=heap_factor, sorted=sort, recall_at_10=round(statistics.fmean(rec), 4), **summary(lat)))
        out["builds"].append(b)
        del index, loaded
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", required=True, help="vector JSONL or .csr (+ .csr.ids)")
    ap.add_argument("--queries", required=True, help="query vector JSONL")
    ap.add_argument("--n-docs", type=int, default=10000)
    ap.add_argument("--n-queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--skip", choices=["pisa", "seismic"], action="append", default=[])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    d_all = load_vectors(args.docs)
    q_all = load_vectors(args.queries)
    rows = sorted(rng.sample(range(len(d_all[0])), min(args.n_docs, len(d_all[0]))))
    qrows = sorted(rng.sample(range(len(q_all[0])), min(args.n_queries, len(q_all[0]))))
    d = take(*d_all, rows)
    q = take(*q_all, qrows)
    exact = Exact(d, q, args.k)
    report = {"documents": len(d[0]), "postings": int(len(d[2])), "queries": len(q[0]),
              "mean_query_terms": round(len(q[2]) / max(1, len(q[0])), 1), "k": args.k}
    work = tempfile.mkdtemp(dir="/work/scale" if os.path.isdir("/work/scale") else None)
    try:
        if "pisa" not in args.skip:
            report["pisa"] = run_pisa(d, q, exact, args.k, work, ["maxscore", "block_max_maxscore", "block_max_wand", "wand"])
            print(json.dumps(report["pisa"]), file=sys.stderr, flush=True)
        if "seismic" not in args.skip:
            n = len(d[0])
            # n_postings: average posting-list length kept (Seismic's lambda); the defaults (3500 /
            # 0.1 / 0.4) are the MS MARCO (8.8 M documents) ones; scaled here to the collection.
            # Second config: the "highly effective" one of Seismic's docs/Guidelines.md (MS MARCO).
            configs = [dict(n_postings=max(200, n // 10), centroid_fraction=0.1, summary_energy=0.4, max_fraction=1.5, doc_cut=15),
                       dict(n_postings=max(400, n // 4), centroid_fraction=0.2, summary_energy=0.5, max_fraction=6.0, doc_cut=15)]
            # heap_factor: a block is scored when its summary's score reaches heap_factor times the
            # current k-th score, so a smaller heap_factor is more exact (measured: 0.9 > 1.0 in recall).
            # sorted=False scans every summary of the first list in order: slower, more exact.
            searches = [(5, 0.9, True), (10, 0.9, True), (10, 0.8, True), (10, 0.8, False), (20, 0.8, True), (20, 0.7, True), (40, 0.7, True)]
            report["seismic"] = run_seismic(d, q, exact, args.k, work, configs, searches)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
