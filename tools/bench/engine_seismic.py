#!/usr/bin/env python3
"""Seismic (PyPI pyseismic-lsr) for the benchmark harness; one process per step.

    engine_seismic.py build  --docs docs.csr --index PREFIX --config '{"n_postings": ...}' [--threads 1] --out build.json
    engine_seismic.py search --index PREFIX --queries q.csr --settings '[{"query_cut": 10, "heap_factor": 0.9}, ...]'
                             --k 10 --run-prefix RUN --out search.json

Build: SeismicDataset.add_documents_by_id (CSR arrays) then SeismicIndex.build_from_dataset with
the given configuration (n_postings, centroid_fraction, summary_energy, max_fraction, doc_cut,
...), saved as PREFIX.index.seismic, whose size is the index size.

Search: the saved index is loaded once; for each setting (query_cut, heap_factor, sorted), one
warm-up pass and one measured pass, one query at a time (`index.search`, one thread); the latency
of a query is the wall time of that call. RUN-<i>.jsonl holds setting i's hits.
"""
import argparse, json, os, sys, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402


def build(args):
    import seismic
    from seismic import SeismicDataset, SeismicIndex
    cfg = json.loads(args.config)
    docs = D.load(args.docs)
    t0 = time.perf_counter()
    ds = SeismicDataset()
    ds.add_documents_by_id(list(docs.ids), docs.indices.astype(np.int64), docs.data.astype(np.float32), docs.indptr.astype(np.int64))
    dataset_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = SeismicIndex.build_from_dataset(ds, num_threads=args.threads, **cfg)
    build_s = time.perf_counter() - t0
    del ds
    os.makedirs(os.path.dirname(os.path.abspath(args.index)), exist_ok=True)
    index.save(args.index)
    size = os.path.getsize(args.index + ".index.seismic")
    out = {"engine": "seismic", "config": cfg, "threads": args.threads, "documents": len(docs), "dataset_s": dataset_s,
           "build_s": dataset_s + build_s, "index_build_s": build_s, "index_bytes": size, "seismic_version": getattr(seismic, "__version__", "")}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def search(args):
    import seismic
    from seismic import SeismicIndex
    stype = seismic.get_seismic_string()
    queries = D.load(args.queries)
    t0 = time.perf_counter()
    index = SeismicIndex.load(args.index + ".index.seismic")
    load_s = time.perf_counter() - t0
    comps = [np.array([str(int(t)) for t in queries.row(i)[0]], dtype=stype) for i in range(len(queries))]
    vals = [np.asarray(queries.row(i)[1], np.float32) for i in range(len(queries))]
    results = []
    for si, st in enumerate(json.loads(args.settings)):
        load0 = os.getloadavg()[0]
        runs, scores, lat, cpu = [], [], [], []
        for rep in range(2):
            t_pass = time.perf_counter()
            for qi in range(len(queries)):
                c1 = time.thread_time_ns()
                t1 = time.perf_counter_ns()
                res = index.search(str(qi), comps[qi], vals[qi], args.k, st["query_cut"], st["heap_factor"], sorted=st.get("sorted", True))
                dt = (time.perf_counter_ns() - t1) / 1e6
                dc = (time.thread_time_ns() - c1) / 1e6
                if rep == 1:
                    lat.append(dt)
                    cpu.append(dc)
                    runs.append([r[2] for r in res])
                    scores.append([float(r[1]) for r in res])
            if rep == 1:
                wall = time.perf_counter() - t_pass
        run = "%s-%d.jsonl" % (args.run_prefix, si)
        D.write_run(run, queries.ids, runs, scores)
        results.append(dict(D.latency_summary(lat), **D.latency_summary(cpu, prefix="cpu_"), setting=st, run=run, queries=len(queries), qps=len(queries) / wall, wall_s=wall,
                            load_average_1m={"start": load0, "end": os.getloadavg()[0]}))
    out = {"engine": "seismic", "load_s": load_s, "cpus_allowed": sorted(os.sched_getaffinity(0)), "settings": results}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--docs", required=True)
    b.add_argument("--index", required=True)
    b.add_argument("--config", required=True)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--out", required=True)
    s = sub.add_parser("search")
    s.add_argument("--index", required=True)
    s.add_argument("--queries", required=True)
    s.add_argument("--settings", required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--run-prefix", required=True)
    s.add_argument("--out", required=True)
    args = ap.parse_args()
    build(args) if args.cmd == "build" else search(args)


if __name__ == "__main__":
    main()
