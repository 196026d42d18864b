#!/usr/bin/env python3
"""PISA (PyPI pyterrier-pisa) for the benchmark harness; one process per step, so that the
harness can pin it to a core and read its peak resident memory.

    engine_pisa.py build  --docs docs.csr --index DIR [--inverter numpy|toks] --out build.json
    engine_pisa.py search --index DIR --queries q.csr --algorithm A --k 10 --run run.jsonl --out search.json

Build: the documents are inverted into PISA's uncompressed collection (inv.docs / inv.freqs /
inv.sizes, fwd.documents / fwd.terms and their binary lexicons, pt_meta.json) exactly as
pyterrier-pisa's toks_indexer(scale=100) does -- weights become int(weight * 100), truncated,
and postings under 1 are dropped; terms are str(dimension), in sorted string order -- then PISA
builds the quantized block_simdbp index and its block-max data (PisaRetrieve's
reset_retrieval_context: PISA's C++ compress and wand-data steps). `--inverter numpy` does the
inversion with numpy (seconds for a million documents) instead of toks_indexer's Python loop
(about 20 minutes for a million); `--inverter toks` uses toks_indexer itself. The harness's quick
mode builds both ways and requires byte-identical files.

Search: the quantized scorer, one thread, k results; query weights are passed scaled by 100 and
PISA repeats a term floor(weight * 100) times (query_weighted=1). One warm-up pass, then one
measured pass; the latency of a query is the wall time of one `_pisathon.retrieve` call (and its
CPU time, thread_time, as cpu_*_ms).
"""
import argparse, json, os, sys, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402


def load_pisa():
    import pyterrier as pt  # noqa: F401  (pyterrier_pisa imports it; PISA itself needs no Java)
    import pyterrier_pisa
    from pyterrier_pisa import PisaIndex, PisaRetrieve, _pisathon
    return pyterrier_pisa, PisaIndex, PisaRetrieve, _pisathon


def invert_numpy(docs, path, scale=100.0):
    """pyterrier-pisa's PisaToksIndexer._index, vectorised (same files, same bytes)."""
    _, _, _, _pisathon = load_pisa()
    os.makedirs(path, exist_ok=True)
    n = len(docs)
    q = (docs.data.astype(np.float64) * scale).astype(np.int64)  # int(score * scale): truncation
    keep = q > 0
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(docs.indptr))
    terms = docs.indices[keep].astype(np.int64)
    rows = rows[keep]
    q = q[keep]
    lens = np.bincount(rows, weights=q, minlength=n).astype(np.uint64)
    if lens.max(initial=0) >= 2 ** 32 or (len(q) and q.max() >= 2 ** 32):
        raise ValueError("quantized weights do not fit PISA's uint32")
    order = np.lexsort((rows, terms))  # by term, then document
    terms, rows, q = terms[order], rows[order], q[order]
    present, starts, counts = np.unique(terms, return_index=True, return_counts=True)
    names = [str(int(t)) for t in present]
    by_name = sorted(range(len(names)), key=lambda i: names[i])
    with open(os.path.join(path, "fwd.documents"), "w", encoding="utf-8") as f:
        f.write("".join(d + "\n" for d in docs.ids))
    with open(os.path.join(path, "fwd.terms"), "w", encoding="utf-8") as f:
        f.write("".join(names[i] + "\n" for i in by_name))
    with open(os.path.join(path, "inv.docs"), "wb") as fd, open(os.path.join(path, "inv.freqs"), "wb") as ff:
        fd.write(np.array([1, n], dtype=np.uint32).tobytes())
        for i in by_name:
            a, c = starts[i], counts[i]
            head = np.array([c], dtype=np.uint32).tobytes()
            fd.write(head)
            fd.write(rows[a:a + c].astype(np.uint32).tobytes())
            ff.write(head)
            ff.write(q[a:a + c].astype(np.uint32).tobytes())
    with open(os.path.join(path, "inv.sizes"), "wb") as f:
        f.write(np.array([n], dtype=np.uint32).tobytes())
        f.write(lens.astype(np.uint32).tobytes())
    _pisathon.build_binlex(os.path.join(path, "fwd.documents"), os.path.join(path, "fwd.doclex"))
    _pisathon.build_binlex(os.path.join(path, "fwd.terms"), os.path.join(path, "fwd.termlex"))
    with open(os.path.join(path, "pt_meta.json"), "wt") as f:
        json.dump({"type": "sparse_index", "format": "pisa", "package_hint": "pyterrier-pisa", "stemmer": "none"}, f)


def invert_toks(docs, path, scale=100.0):
    _, PisaIndex, _, _ = load_pisa()
    it = ({"docno": docs.ids[r], "toks": {str(int(t)): float(w) for t, w in zip(*docs.row(r))}} for r in range(len(docs)))
    PisaIndex(path, stemmer="none", threads=1).toks_indexer(scale=scale).index(it)


def files(path):
    out = {}
    for d, _, fs in os.walk(path):
        for f in fs:
            out[os.path.relpath(os.path.join(d, f), path)] = os.path.getsize(os.path.join(d, f))
    return out


def build(args):
    docs = D.load(args.docs)
    t0 = time.perf_counter()
    (invert_numpy if args.inverter == "numpy" else invert_toks)(docs, args.index)
    invert_s = time.perf_counter() - t0
    _, PisaIndex, PisaRetrieve, _ = load_pisa()
    index = PisaIndex(args.index, stemmer="none", threads=1)
    t0 = time.perf_counter()
    retr = PisaRetrieve(index, scorer="quantized", num_results=10, threads=1, query_algorithm="maxscore", toks_scale=100.0)
    retr.reset_retrieval_context()  # PISA's compress (block_simdbp) and block-max (wand data) steps
    compress_s = time.perf_counter() - t0
    fs = files(args.index)
    query_files = {f: s for f, s in fs.items() if ".block_simdbp" in f or ".bmw." in f or f.endswith("lex")}
    out = {"engine": "pisa", "inverter": args.inverter, "documents": len(docs), "invert_s": invert_s, "compress_s": compress_s,
           "build_s": invert_s + compress_s, "index_bytes": sum(fs.values()), "index_bytes_query_files": sum(query_files.values()),
           "index_bytes_postings": sum(s for f, s in fs.items() if ".block_simdbp" in f or ".bmw." in f), "files": fs}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def search(args):
    queries = D.load(args.queries)
    _, PisaIndex, PisaRetrieve, _pisathon = load_pisa()
    index = PisaIndex(args.index, stemmer="none", threads=1)
    retr = PisaRetrieve(index, scorer="quantized", num_results=args.k, threads=1, query_algorithm=args.algorithm, toks_scale=100.0)
    retr.reset_retrieval_context()
    algo = retr.query_algorithm.value
    inputs = [(0, {str(int(t)): float(w) * 100.0 for t, w in zip(*queries.row(i))}) for i in range(len(queries))]
    k = args.k
    buf = dict(result_qidxs=np.empty(k, np.int32), result_docnos=np.empty(k, dtype=object),
               result_ranks=np.empty(k, np.int32), result_scores=np.empty(k, np.float32))
    load0 = os.getloadavg()[0]
    runs, scores, lat, cpu = [], [], [], []
    warm_s = 0.0
    for rep in range(2):  # warm-up pass, measured pass
        t_pass = time.perf_counter()
        for inp in inputs:
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            n = _pisathon.retrieve(retr._ctxt, algo, [inp], k=k, threads=1, query_weighted=1, pretokenised=True, **buf)
            dt = (time.perf_counter_ns() - t0) / 1e6
            dc = (time.thread_time_ns() - c0) / 1e6
            if rep == 1:
                lat.append(dt)
                cpu.append(dc)
                runs.append([str(d) for d in buf["result_docnos"][:n]])
                scores.append([float(s) for s in buf["result_scores"][:n]])
        if rep == 0:
            warm_s = time.perf_counter() - t_pass
        else:
            wall = time.perf_counter() - t_pass
    D.write_run(args.run, queries.ids, runs, scores)
    out = dict(D.latency_summary(lat), **D.latency_summary(cpu, prefix="cpu_"), engine="pisa", algorithm=args.algorithm, queries=len(queries), qps=len(queries) / wall,
               wall_s=wall, warmup_s=warm_s, load_average_1m={"start": load0, "end": os.getloadavg()[0]},
               cpus_allowed=sorted(os.sched_getaffinity(0)))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--docs", required=True)
    b.add_argument("--index", required=True)
    b.add_argument("--inverter", choices=["numpy", "toks"], default="numpy")
    b.add_argument("--out", required=True)
    s = sub.add_parser("search")
    s.add_argument("--index", required=True)
    s.add_argument("--queries", required=True)
    s.add_argument("--algorithm", required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--run", required=True)
    s.add_argument("--out", required=True)
    args = ap.parse_args()
    build(args) if args.cmd == "build" else search(args)


if __name__ == "__main__":
    main()
