#!/usr/bin/env python3
"""Flat indexes (issue 10): CSR codes and dense embeddings, SparseDB against numpy/scipy and
faiss-cpu, and against this machine's memory-bandwidth bound.

    swift build -c release --product sparsedb
    pip install numpy scipy faiss-cpu
    tools/bench/flat.py --work /work/scale/flat --configs csr-k16-100k,csr-k64-100k,... [--rounds 2]
    tools/bench/flat.py --work /work/scale/flat --table        # the markdown table from WORK/flat.json

Configurations are named `csr-k{K}-{N}` (K active dimensions of 4,096, N = 100k or 1M rows) and
`dense-d{D}-{N}` (D = 1024, 256, 64; f32, dot product); `dense-d{D}h-{N}` is the same rows rounded
to f16 in a field stored in f16 (`--precision f16`); `--configs all` is every one of them
(csr k = 16, 64, 256 and dense d = 1024, 256, 64, f32 and f16, at 100k and 1M).

Data (fixed seeds; written once under WORK/data, re-used afterwards):
- CSR: each row holds K distinct dimensions drawn without replacement with probabilities
  following a Zipf law (p ∝ 1/rank^1.0 over the 4,096 dimensions, ranks a fixed random
  permutation of the dimensions; the first K distinct of 3K + 32 draws with replacement),
  weights log-normal (μ 0, σ 0.6), positive. Queries are drawn the same way (another seed).
  Files are big-ann-benchmarks `.csr`, one per configuration.
- Dense: rows N(0, 1) with dimension j scaled by 1/sqrt(1 + j/64) (a Matryoshka-like decay);
  queries the same (another seed). Files are big-ann-benchmarks `.fbin`, one per configuration.
  f16 configurations: the same rows rounded to the nearest f16 (numpy), written as f32, so every
  engine reads the same values; the queries stay f32.

Engines (k = 10, the exact top-10 by inner product):
- `sparsedb` — `sparsedb bench` on a collection ingested from the file (`ingest --kind csr
  --index flat` / `--kind dense`), warm (one warm-up pass, then --repeat passes), the decoded-row
  cache large enough for the field (`--flat-cache-mb`); CSR also `sparsedb-inv` (`--index
  inverted`, maxscore).
- `scipy` (CSR) — `X @ q` with X a float32 `scipy.sparse.csr_matrix` and q the query densified
  (csr_matvec), then `np.argpartition` + sort of the 10; `numpy` (dense) — `X @ q` (OpenBLAS
  sgemv, one thread) + argpartition.
- `faiss-fp16` (f16 configurations) — `faiss.IndexScalarQuantizer(QT_fp16, inner product)`: faiss's
  flat scan over rows kept in f16 (exact for these rows), the engine that reads the same bytes as
  SparseDB's f16 field; numpy has no f16 matrix product in BLAS, so `numpy` is the f32 product
  over the same (f16-representable) values.
- `faiss` — `faiss.IndexFlatIP` on the same rows (CSR rows densified to 4,096 floats; skipped
  when that exceeds --faiss-max-gb; on CSR only the first --faiss-queries queries, as each
  reads 16 KiB per row), one query per `search` call, `omp_set_num_threads(1)`.
Batches (dense configurations, --batch N, default 64): SparseDB `bench --batch N` (one sgemm
per chunk of rows for the batch), numpy `X @ Q[lo:hi].T` (sgemm) + argpartition per query, faiss
`index.search(Q[lo:hi])`; one thread pinned to --cpu; per-query time = batch time / N.
One thread: the process (SparseDB) or thread (Python) is pinned to CPU --cpu with taskset /
sched_setaffinity, one query at a time; mean/p50/p99 wall latency and the mean thread CPU time.
Two threads: pinned to CPUs 0,1, two threads each taking the next query (`bench --threads 2`;
a ThreadPoolExecutor of 2 for the Python engines, which release the GIL in the scan): queries
per second. The engines are interleaved (all engines, then all again, --rounds times) so that the
machine's load hits them alike; the table shows each engine's best round (lowest mean wall
latency, lowest mean CPU time, highest throughput, each on its own), the JSON keeps every round
and the load average.

Exactness: every engine's top-10 is checked against an exact oracle (float64 numpy products,
ties broken by row number); a returned row counts when its exact score reaches the exact 10th
score (so ties at the cut-off are free). SparseDB must score 1.0 and return the oracle's order.

Bandwidth: tools/bench/membw.c (each thread sums its own 1 GiB float32 buffer with AVX2, best of
5 passes), 1 thread pinned to --cpu and 2 threads on CPUs 0,1, by wall time and by thread CPU
time (`--bandwidth-only` measures again into WORK/bandwidth.json; the table uses the highest
figures, the tightest bound); the bound of a flat configuration is (bytes a scan reads) /
(bandwidth), with the bytes of
SparseDB's scan: CSR 6k + 4 per row (k × (f32 value + u16 dimension) + u32 document), dense
2d + 8 per row for an f16 field (its rows stay f16 in memory: values + norm + document) and
2d + 12 for an f32 field (its cached rows are scanned through a half-precision copy, with each
row's distance to the copy; the candidates are rescored from the stored f32 rows).
In f16 configurations the numpy and faiss (IndexFlatIP) cells are marked [f32]: they read the same
values as 4 bytes each.

Writes WORK/flat.json (appending configurations) and prints WORK/flat.md.
"""
import argparse, concurrent.futures, json, os, subprocess, sys, time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DIMS = 4096
K = 10
SEED = 20261126
SIZES = {"100k": 100_000, "1M": 1_000_000}


def log(msg):
    print("[flat %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def parse(name):
    kind, p, size = name.split("-")
    return kind, int(p[1:].rstrip("h")), SIZES[size], size


def is_half(name):
    """`dense-d{D}h-{N}`: the rows rounded to f16, in a field stored in f16."""
    return name.split("-")[1].endswith("h")


# ---------------------------------------------------------------- data

def zipf_probs(rng, s=1.0):
    ranks = np.arange(1, DIMS + 1, dtype=np.float64)
    p = 1.0 / ranks ** s
    p /= p.sum()
    out = np.empty(DIMS)
    out[rng.permutation(DIMS)] = p
    return out


def csr_rows(seed, n, k, p):
    """n rows of k distinct dimensions (sorted) and positive weights: per row, draws with
    replacement from p (inverse CDF), the first k distinct draws kept (successive sampling, the
    same law as drawing without replacement with probabilities ∝ p); a row with fewer than k
    distinct draws draws again."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    m = 3 * k + 32
    idx = np.empty((n, k), np.int32)
    val = np.empty((n, k), np.float32)
    for b in range(0, n, 16384):
        rows = np.arange(b, min(b + 16384, n))
        while len(rows):
            draws = np.minimum(np.searchsorted(cdf, rng.random((len(rows), m))), DIMS - 1).astype(np.int32)
            order = np.argsort(draws, axis=1, kind="stable")
            sd = np.take_along_axis(draws, order, 1)
            first = np.ones(sd.shape, bool)
            first[:, 1:] = sd[:, 1:] != sd[:, :-1]
            pos = np.sort(np.where(first, order, m), axis=1)[:, :k]  # first occurrences, in draw order
            ok = pos[:, -1] < m
            chosen = np.take_along_axis(draws, np.minimum(pos, m - 1), 1)
            chosen.sort(axis=1)
            idx[rows[ok]] = chosen[ok]
            rows = rows[~ok]
    val[:] = rng.lognormal(0.0, 0.6, (n, k)).astype(np.float32)
    return idx, val


def write_csr(path, idx, val):
    n, k = idx.shape
    with open(path + ".partial", "wb") as f:
        np.array([n, DIMS, n * k], "<i8").tofile(f)
        (np.arange(n + 1, dtype="<i8") * k).tofile(f)
        idx.astype("<i4").tofile(f)
        val.astype("<f4").tofile(f)
    os.rename(path + ".partial", path)


def read_csr(path):
    import scipy.sparse as sp
    with open(path, "rb") as f:
        rows, cols, nnz = np.fromfile(f, "<i8", 3)
        indptr = np.fromfile(f, "<i8", rows + 1)
        indices = np.fromfile(f, "<i4", nnz)
        data = np.fromfile(f, "<f4", nnz)
    return sp.csr_matrix((data, indices, indptr), shape=(int(rows), int(cols)))


def dense_rows(seed, n, d):
    rng = np.random.default_rng(seed)
    scale = (1.0 / np.sqrt(1.0 + np.arange(d) / 64.0)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for b in range(0, n, 65536):
        m = min(65536, n - b)
        out[b:b + m] = rng.standard_normal((m, d), dtype=np.float32) * scale
    return out


def write_fbin(path, x):
    with open(path + ".partial", "wb") as f:
        np.array(x.shape, "<u4").tofile(f)
        x.astype("<f4").tofile(f)
    os.rename(path + ".partial", path)


def read_fbin(path):
    with open(path, "rb") as f:
        n, d = np.fromfile(f, "<u4", 2)
        return np.fromfile(f, "<f4", int(n) * int(d)).reshape(int(n), int(d))


def data_files(work, name, n_queries):
    """Writes (once) the documents and queries of a configuration; returns their paths."""
    kind, p, n, size = parse(name)
    ddir = os.path.join(work, "data")
    os.makedirs(ddir, exist_ok=True)
    if kind == "csr":
        docs = os.path.join(ddir, "csr-k%d-%s.csr" % (p, size))
        queries = os.path.join(ddir, "csr-k%d-queries.csr" % p)
        probs = zipf_probs(np.random.default_rng(SEED))
        if not os.path.exists(docs):
            log("generating %s" % docs)
            idx, val = csr_rows(SEED + p, n, p, probs)
            write_csr(docs, idx, val)
        if not os.path.exists(queries):
            idx, val = csr_rows(SEED + 1000 + p, n_queries, p, probs)
            write_csr(queries, idx, val)
    else:
        half = is_half(name)
        docs = os.path.join(ddir, "dense-d%d%s-%s.fbin" % (p, "h" if half else "", size))
        queries = os.path.join(ddir, "dense-d%d-queries.fbin" % p)
        if not os.path.exists(docs):
            log("generating %s" % docs)
            x = dense_rows(SEED + p, n, p)
            if half:
                for b in range(0, n, 65536):  # in place, a block at a time: the same rows, rounded to f16
                    x[b:b + 65536] = x[b:b + 65536].astype(np.float16).astype(np.float32)
            write_fbin(docs, x)
        if not os.path.exists(queries):
            write_fbin(queries, dense_rows(SEED + 1000 + p, n_queries, p))
    return docs, queries


# ---------------------------------------------------------------- engines

def sparsedb_exe():
    """The repository's release build, or $SPARSEDB_EXE (a copy, so that rebuilding during a run changes nothing)."""
    return os.environ.get("SPARSEDB_EXE") or os.path.join(REPO, ".build", "release", "sparsedb")


def ingest(work, name, docs, index=None):
    kind, p, n, size = parse(name)
    db = os.path.join(work, "db", name + ("-" + index if index else ""))
    if os.path.exists(os.path.join(db, "data.mdb")):
        return db, None
    cmd = [sparsedb_exe(), "ingest", "--db", db, "--collection", "c", "--vectors", docs, "--batch-size", "10000", "--quiet"]
    if kind == "csr":
        cmd += ["--kind", "csr", "--dims", str(DIMS), "--max-active-dims", str(p), "--index", index]
    else:
        cmd += ["--kind", "dense", "--metric", "dot"] + (["--precision", "f16"] if is_half(name) else [])
    log(" ".join(cmd))
    t0 = time.time()
    subprocess.run(cmd, check=True)
    return db, time.time() - t0


def run_sparsedb(db, queries, threads, cpus, repeat, cache_mb, run_file, algorithm="maxscore", batch=1):
    cmd = ["taskset", "-c", cpus, sparsedb_exe(), "bench", "--db", db, "--collection", "c", "--query-vectors", queries, "--k", str(K),
           "--threads", str(threads), "--repeat", str(repeat), "--algorithm", algorithm, "--flat-cache-mb", str(cache_mb)]
    if batch > 1:
        cmd += ["--batch", str(batch)]
    if run_file:
        cmd += ["--run", run_file]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    r = json.loads(out)
    res = {k: r[k] for k in ("mean_ms", "p50_ms", "p99_ms", "cpu_mean_ms", "qps", "wall_s", "peak_rss_bytes")}
    res["load"] = r["load_average_1m"]
    res["cmd"] = " ".join(cmd)
    hits = None
    if run_file:
        hits = [[int(h[0]) for h in json.loads(line)["hits"]] for line in open(run_file)]
    return res, hits


def top_k(scores):
    part = np.argpartition(-scores, K)[:K]
    return part[np.argsort(-scores[part], kind="stable")]


class PyEngine:
    def __init__(self, name, search, n_queries=None):
        self.name = name
        self.search = search  # query index -> row ids, best first
        self.n_queries = n_queries  # run only the first n queries (faiss on densified CSR rows)

    def run(self, n_queries, threads, cpus, repeat):
        lat, cpu = [], []

        def one(i):
            c0, t0 = time.thread_time(), time.perf_counter()
            ids = self.search(i)
            lat.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
            return ids

        n_queries = min(n_queries, self.n_queries or n_queries)
        os.sched_setaffinity(0, cpus)
        l0 = loadavg()
        for i in range(min(n_queries, 20)):  # warm-up
            self.search(i)
        order = [i % n_queries for i in range(n_queries * repeat)]
        t0 = time.perf_counter()
        if threads == 1:
            hits = [one(i) for i in order]
        else:
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                hits = list(pool.map(one, order))
        wall = time.perf_counter() - t0
        os.sched_setaffinity(0, {0, 1})
        lat = np.array(lat)
        res = {"mean_ms": float(lat.mean()), "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
               "cpu_mean_ms": float(np.mean(cpu)), "qps": len(order) / wall, "wall_s": wall, "load": {"start": l0, "end": loadavg()}}
        return res, [list(map(int, h)) for h in hits[-n_queries:]]


def run_py_batch(search_batch, n_queries, batch, cpu):
    """Batches of `batch` queries, one thread pinned to `cpu`: per-query CPU and wall time
    (each batch's divided by its size) and queries per second. search_batch(lo, hi) -> the row
    ids of queries lo..<hi, best first."""
    os.sched_setaffinity(0, {cpu})
    search_batch(0, min(batch, n_queries))  # warm-up
    hits, cpu_ms, wall_ms = [], [], []
    t_start = time.perf_counter()
    for lo in range(0, n_queries, batch):
        hi = min(n_queries, lo + batch)
        c0, t0 = time.thread_time(), time.perf_counter()
        hits += [list(map(int, h)) for h in search_batch(lo, hi)]
        cpu_ms += [(time.thread_time() - c0) * 1e3 / (hi - lo)] * (hi - lo)
        wall_ms += [(time.perf_counter() - t0) * 1e3 / (hi - lo)] * (hi - lo)
    wall = time.perf_counter() - t_start
    os.sched_setaffinity(0, {0, 1})
    return {"mean_ms": float(np.mean(wall_ms)), "cpu_mean_ms": float(np.mean(cpu_ms)), "qps": n_queries / wall, "load": loadavg()}, hits


def bandwidth(cpu):
    exe = os.path.join(os.environ.get("FLAT_WORK", "/tmp"), "membw")
    subprocess.run(["cc", "-O3", "-march=native", "-pthread", "-o", exe, os.path.join(HERE, "membw.c")], check=True)
    one = json.loads(subprocess.run(["taskset", "-c", str(cpu), exe, "1", "1024", "5"], check=True, capture_output=True, text=True).stdout)
    two = json.loads(subprocess.run(["taskset", "-c", "0,1", exe, "2", "1024", "5"], check=True, capture_output=True, text=True).stdout)
    return {"one": one, "two": two, "load": loadavg()}


# ---------------------------------------------------------------- a configuration

def scan_bytes(name):
    kind, p, n, _ = parse(name)
    return n * (6 * p + 4) if kind == "csr" else n * (2 * p + (8 if is_half(name) else 12))


def oracle(X64_products, n_queries):
    """Exact top-10 and 10th score of each query: X64_products(i) -> float64 scores."""
    tops, kth = [], []
    for i in range(n_queries):
        s = X64_products(i)
        order = np.lexsort((np.arange(len(s)), -s))[:K]
        tops.append((order, s))
        kth.append(s[order[-1]])
    return tops, kth


def agreement(hits, tops, kth):
    good, exact_order = 0, 0
    for h, (order, s), t in zip(hits, tops, kth):
        good += sum(1 for r in h[:K] if s[r] >= t)
        exact_order += int(list(h[:K]) == list(order))
    return good / (K * len(hits)), exact_order / len(hits)


def run_config(args, name):
    kind, p, n, size = parse(name)
    docs, queries = data_files(args.work, name, args.queries)
    result = {"config": name, "rows": n, "scan_bytes": scan_bytes(name), "ingest_s": {}}
    dbs = {}
    if kind == "csr":
        for index in args.csr_indexes.split(","):
            dbs["sparsedb" if index == "flat" else "sparsedb-inv"], t = ingest(args.work, name, docs, index)
            if t:
                result["ingest_s"][index] = t
    else:
        dbs["sparsedb"], t = ingest(args.work, name, docs)
        if t:
            result["ingest_s"]["flat"] = t
    log("loading %s for the Python engines" % name)
    if kind == "csr":
        X = read_csr(docs)
        Qs = read_csr(queries)
        Q = np.asarray(Qs.todense(), np.float32)
        X64 = X.astype(np.float64)
        tops, kth = oracle(lambda i: X64 @ Q[i].astype(np.float64), len(Q))
        del X64
        py = [PyEngine("scipy", lambda i: top_k(X @ Q[i]))]
        dense_gb = n * DIMS * 4 / 1e9
    else:
        X = read_fbin(docs)
        Q = read_fbin(queries)
        X64 = X.astype(np.float64)
        tops, kth = oracle(lambda i: X64 @ Q[i].astype(np.float64), len(Q))
        del X64
        py = [PyEngine("numpy", lambda i: top_k(X @ Q[i]))]
        dense_gb = n * p * 4 / 1e9
    if dense_gb <= args.faiss_max_gb:
        import faiss
        faiss.omp_set_num_threads(1)
        index = faiss.IndexFlatIP(Q.shape[1])
        if kind == "csr":
            for b in range(0, n, 50_000):
                index.add(np.asarray(X[b:b + 50_000].todense(), np.float32))
        else:
            index.add(X)
        py.append(PyEngine("faiss", lambda i: index.search(Q[i:i + 1], K)[1][0], args.faiss_queries if kind == "csr" else None))
    else:
        result["faiss_skipped"] = "%.1f GB of dense rows > --faiss-max-gb %.1f" % (dense_gb, args.faiss_max_gb)
    if is_half(name) and dense_gb / 2 <= args.faiss_max_gb:  # its own index: 2 bytes a value
        import faiss
        faiss.omp_set_num_threads(1)
        index16 = faiss.IndexScalarQuantizer(Q.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        index16.train(X[:1000])
        index16.add(X)
        py.append(PyEngine("faiss-fp16", lambda i: index16.search(Q[i:i + 1], K)[1][0]))
    nq = len(Q)
    cache_mb = max(1024, int(result["scan_bytes"] * 1.3 / 2**20) + 256)
    rounds = []
    for rnd in range(args.rounds):
        log("%s round %d (load %.1f)" % (name, rnd + 1, loadavg()))
        this = {}
        for eng, db in dbs.items():
            run_file = os.path.join(args.work, "run-%s-%s.jsonl" % (name, eng))
            one, hits = run_sparsedb(db, queries, 1, str(args.cpu), args.repeat, cache_mb, run_file)
            two, _ = run_sparsedb(db, queries, 2, "0,1", args.repeat, cache_mb, None)
            rec, order = agreement(hits, tops, kth)
            this[eng] = {"one": one, "two": two, "recall": rec, "oracle_order": order}
        for e in py:
            one, hits = e.run(nq, 1, {args.cpu}, args.repeat)
            two, _ = e.run(nq, 2, {0, 1}, args.repeat)
            rec, order = agreement(hits, tops[:len(hits)], kth[:len(hits)])
            this[e.name] = {"queries": len(hits), "one": one, "two": two, "recall": rec, "oracle_order": order}
        if kind == "dense" and args.batch > 1:
            # Batches of queries: SparseDB's sgemm path against numpy's (X @ Qᵀ) and faiss's batch search.
            B = args.batch
            one, hits = run_sparsedb(dbs["sparsedb"], queries, 1, str(args.cpu), args.repeat, cache_mb,
                                     os.path.join(args.work, "run-%s-sparsedb-batch.jsonl" % name), batch=B)
            rec, order = agreement(hits, tops, kth)
            this["sparsedb-batch"] = {"one": one, "recall": rec, "oracle_order": order}

            def numpy_batch(lo, hi):
                S = X @ Q[lo:hi].T
                return [top_k(S[:, j]) for j in range(hi - lo)]
            batches = [("numpy-batch", numpy_batch)]
            if "faiss" in [e.name for e in py]:
                batches.append(("faiss-batch", lambda lo, hi: index.search(Q[lo:hi], K)[1]))
            if "faiss-fp16" in [e.name for e in py]:
                batches.append(("faiss-fp16-batch", lambda lo, hi: index16.search(Q[lo:hi], K)[1]))
            for eng, fn in batches:
                one, hits = run_py_batch(fn, nq, B, args.cpu)
                rec, order = agreement(hits, tops, kth)
                this[eng] = {"one": one, "recall": rec, "oracle_order": order}
        for eng, r in this.items():
            log("  %-13s 1t mean %8.3f ms (cpu %8.3f)  2t %8.1f q/s  recall %.4f" % (
                eng, r["one"]["mean_ms"], r["one"]["cpu_mean_ms"], r.get("two", {}).get("qps", float("nan")), r["recall"]))
        rounds.append(this)
    result["rounds"] = rounds
    result["queries"] = nq
    result["batch"] = args.batch if kind == "dense" else 0
    result["repeat"] = args.repeat
    return result


# ---------------------------------------------------------------- table

def best(rounds, eng):
    rs = [r[eng] for r in rounds if eng in r]
    one = dict(min((r["one"] for r in rs), key=lambda x: x["mean_ms"]))
    one["cpu_mean_ms"] = min(r["one"]["cpu_mean_ms"] for r in rs)  # CPU time: the lower round too
    two = max((r["two"] for r in rs if "two" in r), key=lambda x: x["qps"], default=None)
    return one, two, min(r["recall"] for r in rs), min(r["oracle_order"] for r in rs)


def table(doc, extra_bandwidth=()):
    # The highest bandwidth measured (the tightest bound): the load of a shared machine only lowers it.
    runs = [doc["bandwidth"]] + list(extra_bandwidth)
    bw1 = max(r["one"]["gb_per_cpu_s"] for r in runs)
    bw1w = max(r["one"]["gb_per_s"] for r in runs)
    bw2 = max(r["two"]["gb_per_cpu_s"] for r in runs)
    bw2w = max(r["two"]["gb_per_s"] for r in runs)
    lines = []
    lines.append("| config | MB scanned | bound 1 core (ms) | SparseDB flat ms: mean / p50 / p99 (cpu) | SparseDB inverted ms | numpy/scipy ms | faiss ms | faiss fp16 ms | SparseDB ÷ bound (cpu) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    lines2 = ["| config | SparseDB flat q/s | inverted q/s | numpy/scipy q/s | faiss q/s | faiss fp16 q/s | bound q/s (2 cores) | top-10 vs oracle: SparseDB flat / inv / numpy-scipy / faiss / faiss fp16 |",
              "|---|---|---|---|---|---|---|---|"]
    for name in sorted(doc["configs"], key=lambda c: (c.split("-")[0], -parse(c)[1] if c.startswith("dense") else parse(c)[1], is_half(c), parse(c)[2])):
        r = doc["configs"][name]
        mb = r["scan_bytes"] / 1e6
        bound = r["scan_bytes"] / (bw1 * 1e9) * 1e3
        cells, qps, rec = {}, {}, {}
        for eng in ("sparsedb", "sparsedb-inv", "scipy", "numpy", "faiss", "faiss-fp16"):
            if any(eng in x for x in r["rounds"]):
                one, two, recall, order = best(r["rounds"], eng)
                cells[eng] = "%.2f / %.2f / %.2f (%.2f)" % (one["mean_ms"], one["p50_ms"], one["p99_ms"], one["cpu_mean_ms"])
                if is_half(name) and eng in ("numpy", "faiss"):
                    cells[eng] += " [f32]"  # reads the same values as 4 bytes each
                qps[eng] = "%.0f" % two["qps"]
                rec[eng] = "%.3f" % recall + ("" if not eng.startswith("sparsedb") else (" (order %.2f)" % order))
        s1, _, _, _ = best(r["rounds"], "sparsedb")
        ratio = "%.2f (%.2f)" % (s1["mean_ms"] / bound, s1["cpu_mean_ms"] / bound)
        py = "scipy" if "scipy" in cells else "numpy"
        lines.append("| %s | %.1f | %.2f | %s | %s | %s | %s | %s | %s |" % (
            name, mb, bound, cells["sparsedb"], cells.get("sparsedb-inv", "—"), cells[py], cells.get("faiss", "— (%s)" % r.get("faiss_skipped", "")),
            cells.get("faiss-fp16", "—"), ratio))
        lines2.append("| %s | %s | %s | %s | %s | %s | %.0f | %s / %s / %s / %s / %s |" % (
            name, qps["sparsedb"], qps.get("sparsedb-inv", "—"), qps[py], qps.get("faiss", "—"), qps.get("faiss-fp16", "—"), bw2 * 1e9 / r["scan_bytes"],
            rec["sparsedb"], rec.get("sparsedb-inv", "—"), rec[py], rec.get("faiss", "—"), rec.get("faiss-fp16", "—")))
    lines3 = ["| config | batch | SparseDB ms/query (cpu) | numpy ms/query (cpu) | faiss ms/query (cpu) | faiss fp16 ms/query (cpu) | SparseDB q/s | numpy q/s | faiss q/s | faiss fp16 q/s | top-10 vs oracle: SparseDB / numpy / faiss / faiss fp16 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(doc["configs"]):
        r = doc["configs"][name]
        if not any("sparsedb-batch" in x for x in r["rounds"]):
            continue
        cells = {}
        for eng in ("sparsedb-batch", "numpy-batch", "faiss-batch", "faiss-fp16-batch"):
            if any(eng in x for x in r["rounds"]):
                one, _, recall, _ = best(r["rounds"], eng)
                cells[eng] = ("%.3f (%.3f)" % (one["mean_ms"], one["cpu_mean_ms"]), "%.0f" % one["qps"], "%.3f" % recall)
        dash = ("—", "—", "—")
        lines3.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s |" % (
            name, r.get("batch", 0), cells["sparsedb-batch"][0], cells.get("numpy-batch", dash)[0], cells.get("faiss-batch", dash)[0],
            cells.get("faiss-fp16-batch", dash)[0], cells["sparsedb-batch"][1], cells.get("numpy-batch", dash)[1], cells.get("faiss-batch", dash)[1],
            cells.get("faiss-fp16-batch", dash)[1],
            cells["sparsedb-batch"][2], cells.get("numpy-batch", dash)[2], cells.get("faiss-batch", dash)[2], cells.get("faiss-fp16-batch", dash)[2]))
    if len(lines3) > 2:
        lines2 += ["", "Batches of queries (one thread; per-query time = the batch's time ÷ its size; q/s of the whole run):", ""] + lines3
    head = ("Bandwidth (best of %d measurements): 1 core %.1f GB/s (thread CPU time; %.1f by wall), 2 cores %.1f GB/s (CPU time; %.1f by wall)." % (
        len(runs), bw1, bw1w, bw2, bw2w))
    return head + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(lines2) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/work/scale/flat")
    ap.add_argument("--configs", default="")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--faiss-max-gb", type=float, default=2.0)
    ap.add_argument("--faiss-queries", type=int, default=20, help="CSR configurations: faiss runs only the first N queries")
    ap.add_argument("--batch", type=int, default=64, help="dense configurations: also measure batches of N queries (0 or 1: skip)")
    ap.add_argument("--csr-indexes", default="flat,inverted", help="CSR configurations: which SparseDB indexes to build and measure")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--skip-bandwidth", action="store_true")
    ap.add_argument("--bandwidth-only", action="store_true", help="measure the bandwidth again into WORK/bandwidth.json (the table uses the best)")
    args = ap.parse_args()
    os.environ["FLAT_WORK"] = args.work
    os.makedirs(args.work, exist_ok=True)
    out = os.path.join(args.work, "flat.json")
    doc = json.load(open(out)) if os.path.exists(out) else {"configs": {}}
    bw_file = os.path.join(args.work, "bandwidth.json")
    extra = json.load(open(bw_file)) if os.path.exists(bw_file) else []
    if args.bandwidth_only:
        extra.append(bandwidth(args.cpu))
        log("bandwidth %s" % json.dumps(extra[-1]))
        json.dump(extra, open(bw_file, "w"), indent=1)
        return
    if not args.table:
        names = args.configs.split(",") if args.configs != "all" else [
            "csr-k%d-%s" % (k, s) for s in SIZES for k in (16, 64, 256)] + [
            "dense-d%d%s-%s" % (d, h, s) for s in SIZES for d in (1024, 256, 64) for h in ("", "h")]
        if not args.skip_bandwidth or "bandwidth" not in doc:
            doc["bandwidth"] = bandwidth(args.cpu)
            log("bandwidth %s" % json.dumps(doc["bandwidth"]))
        for name in filter(None, names):
            doc["configs"][name] = run_config(args, name)
            json.dump(doc, open(out + ".partial", "w"), indent=1)
            os.rename(out + ".partial", out)
    md = table(doc, extra)
    open(os.path.join(args.work, "flat.md"), "w").write(md)
    print(md)


if __name__ == "__main__":
    main()
