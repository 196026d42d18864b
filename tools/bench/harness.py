#!/usr/bin/env python3
"""The benchmark harness: SparseDB, PISA and Seismic on the same vectors and the same queries,
one table and one latency/recall plot.

    tools/bench/harness.py --quick                         # scifact reference vectors, < 3 min; fails loudly
    tools/bench/harness.py --docs /work/scale/grown/grown-1M.csr --queries /work/scale/vectors/queries.csr \\
        --work /work/scale/bench/1M --out /work/scale/bench/1M/out [--engines sparsedb,pisa,seismic] [--reuse]

What it does:
- builds SparseDB (`swift build -c release`, unless --no-swift-build) and loads the documents
  (a big-ann `.csr` file with its `.ids`, or vector JSONL; --n-docs keeps the first N) and the
  queries (--n-queries keeps the first N);
- computes the exact float top-k of every query by brute force (numpy, float64; cached in the
  work directory);
- per engine, builds the index (SparseDB: `sparsedb ingest --vectors docs.csr`, which compacts
  at the end, then `sparsedb compact --into` a new file, the one queried and measured; PISA: quantized block_simdbp index with block-max data; Seismic: one index per
  configuration) and runs the queries in a separate process pinned to one core
  (`taskset -c CPU`, default 1): one warm-up pass, then one measured pass, one query at a time
  (SparseDB: `sparsedb bench`; PISA and Seismic: tools/bench/engine_*.py);
- measures recall@10 of every run against the exact top-10 (a returned document whose exact
  score reaches the 10th exact score is a hit, so ties at the cut-off count), index bytes on disk
  (every file of the index directory), build time and peak resident memory (GNU time's %M of
  the build and of the search process), and the 1-minute load average around every run;
- writes OUT/results.json, OUT/results.md (one table) and OUT/latency_recall.png.

--quick: the 5,183 scifact reference vectors and their 300 queries from ../shared (or 20,000
documents of --docs when given), a few settings per engine. It fails (exit 1) when any SparseDB
exact algorithm's recall@10 is not exactly 1.0, when the numpy PISA inverter does not produce
byte-identical files to pyterrier-pisa's toks_indexer, or when any engine fails. PISA's
quantized scores give it a recall a little under 1.0: reported, not checked.
"""
import argparse, datetime, json, os, platform, shlex, shutil, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import plot as P  # noqa: E402

SHARED = os.path.abspath(os.path.join(REPO, "..", "shared"))
QUICK_DOCS = os.path.join(SHARED, "reference", "splade-tiny", "scifact", "doc_vectors.jsonl")
QUICK_QUERIES = os.path.join(SHARED, "reference", "splade-tiny", "scifact", "query_vectors.jsonl")

# SparseDB settings: algorithm, heap factor, query-term cut (None = all terms), threads.
SPARSEDB_FULL = [
    dict(algorithm="exhaustive"), dict(algorithm="maxscore"), dict(algorithm="wand"), dict(algorithm="bmw"),
    dict(algorithm="maxscore", heap_factor=1.1), dict(algorithm="maxscore", heap_factor=1.2), dict(algorithm="maxscore", heap_factor=1.5),
    dict(algorithm="maxscore", heap_factor=2.0),
    dict(algorithm="bmw", heap_factor=1.2), dict(algorithm="bmw", heap_factor=1.5), dict(algorithm="bmw", heap_factor=2.0),
    dict(algorithm="maxscore", max_query_terms=10, candidates=50), dict(algorithm="maxscore", max_query_terms=15, candidates=50),
    dict(algorithm="maxscore", max_query_terms=20, candidates=50), dict(algorithm="maxscore", max_query_terms=20, candidates=100),
    dict(algorithm="maxscore", max_query_terms=10),
    dict(algorithm="maxscore", max_query_terms=4, candidates=20, postings_per_term=2000),
    dict(algorithm="maxscore", max_query_terms=6, candidates=20, postings_per_term=2000),
    dict(algorithm="maxscore", threads=2), dict(algorithm="maxscore", cold=True),
]
SPARSEDB_QUICK = [
    dict(algorithm="exhaustive"), dict(algorithm="maxscore"), dict(algorithm="wand"), dict(algorithm="bmw"),
    dict(algorithm="maxscore", heap_factor=1.5), dict(algorithm="maxscore", max_query_terms=10, candidates=50),
    dict(algorithm="maxscore", candidates=300, postings_per_term=300),
]
PISA_ALGORITHMS = ["maxscore", "block_max_maxscore", "block_max_wand"]
# Seismic: build configurations (its knobs; n_postings = postings kept per list on average) and
# the search settings run on each.
SEISMIC_FULL_BUILDS = [dict(n_postings=n, centroid_fraction=0.1, summary_energy=0.4, max_fraction=1.5, doc_cut=15) for n in (1000, 3000, 6000)]
SEISMIC_FULL_SEARCHES = [dict(query_cut=5, heap_factor=0.9), dict(query_cut=10, heap_factor=0.9), dict(query_cut=10, heap_factor=0.8),
                         dict(query_cut=20, heap_factor=0.7)]
SEISMIC_QUICK_BUILDS = [dict(n_postings=150, centroid_fraction=0.1, summary_energy=0.4, max_fraction=1.5, doc_cut=15)]
SEISMIC_QUICK_SEARCHES = [dict(query_cut=5, heap_factor=0.9), dict(query_cut=20, heap_factor=0.8)]


def log(msg):
    print("[harness %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def loadavg():
    return round(os.getloadavg()[0], 2)


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


class Failure(Exception):
    pass


def run(cmd, cpu=None, stdout_path=None, log_path=None, env=None, nice=None):
    """Runs cmd (pinned to `cpu` with taskset when given); returns (wall s, peak RSS bytes of
    the child, stdout text). Raises Failure on a non-zero exit."""
    full = list(cmd)
    if cpu is not None:
        full = ["taskset", "-c", str(cpu)] + full
    # Peak RSS through GNU time: a child forked from this (large) Python process would report
    # this process's resident size as its own maximum (Linux keeps the pre-exec high-water mark
    # in ru_maxrss), so the measured program is forked from the small `time` process instead.
    rss_file = None
    if os.path.exists("/usr/bin/time"):
        rss_file = (stdout_path or os.path.join("/tmp", "harness-%d" % os.getpid())) + ".maxrss"
        full = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + full
    if nice:
        full = ["nice", "-n", str(nice)] + full
    log("$ " + " ".join(shlex.quote(c) for c in full))
    out = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
    err = open(log_path, "a") if log_path else None
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=out, stderr=err, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out.close()
    if err:
        err.close()
    if p.returncode != 0:
        tail = ""
        if log_path and os.path.exists(log_path):
            with open(log_path, errors="replace") as f:
                tail = f.read()[-2000:]
        raise Failure("exit %d: %s\n%s" % (p.returncode, " ".join(full), tail))
    text = open(stdout_path).read() if stdout_path else ""
    peak = ru.ru_maxrss * 1024
    if rss_file:
        with open(rss_file) as f:
            peak = int(f.read().strip().splitlines()[-1]) * 1024
        os.remove(rss_file)
    return wall, peak, text


class Harness:
    def __init__(self, args):
        self.args = args
        self.rows = []
        self.failures = []
        self.work = os.path.abspath(args.work)
        self.out = os.path.abspath(args.out)
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(self.out, exist_ok=True)
        self.logfile = os.path.join(self.out, "harness.log")
        self.cpu = None if args.cpu == "none" else args.cpu
        previous = os.path.join(self.out, "results.json")
        if args.reuse and os.path.exists(previous):
            # Keep the rows of engines this run does not measure (one table over several runs).
            with open(previous) as f:
                old = json.load(f)
            self.rows = [r for r in old.get("rows", []) if r["engine"] not in args.engines]
            self.earlier = old.get("meta", {}).get("runs", [])
        else:
            self.earlier = []
        self.meta = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "command": " ".join(shlex.quote(a) for a in sys.argv),
                     "k": args.k, "cpu": self.cpu, "machine": machine(), "load_average_1m_start": loadavg(), "git": git_head()}
        self.meta["runs"] = self.earlier + [{"command": self.meta["command"], "started": self.meta["started"], "engines": args.engines,
                                             "load_average_1m_start": self.meta["load_average_1m_start"]}]

    # MARK: data

    def prepare(self):
        a = self.args
        t0 = time.perf_counter()
        docs = D.load(a.docs, a.n_docs)
        queries = D.load(a.queries, a.n_queries)
        if len(docs) == 0 or len(queries) == 0:
            raise Failure("no documents or no queries")
        datadir = os.path.join(self.work, "data")
        os.makedirs(datadir, exist_ok=True)
        self.docs_csr = os.path.join(datadir, "docs.csr")
        self.queries_csr = os.path.join(datadir, "queries.csr")
        key = D.fingerprint(a.docs, a.n_docs, a.queries, a.n_queries, a.k)
        stamp = os.path.join(datadir, "fingerprint")
        fresh = not (os.path.exists(stamp) and open(stamp).read() == key and os.path.exists(self.docs_csr) and os.path.exists(self.queries_csr))
        if fresh:
            log("writing %d documents and %d queries to %s" % (len(docs), len(queries), datadir))
            for src, v, dst in ((a.docs, docs, self.docs_csr), (a.queries, queries, self.queries_csr)):
                for f in (dst, dst + ".ids"):
                    if os.path.lexists(f):
                        os.remove(f)
                if src.endswith(".csr") and os.path.exists(src + ".ids") and len(v) == len(D.read_ids(src, D.read_csr(src)[0].shape[0] - 1)):
                    os.symlink(os.path.abspath(src), dst)  # the whole file: no copy
                    os.symlink(os.path.abspath(src) + ".ids", dst + ".ids")
                else:
                    D.save(v, dst)
            gt = D.GroundTruth.compute(docs, queries, a.k, log=log)
            gt.save(os.path.join(datadir, "ground_truth.npz"))
            with open(stamp, "w") as f:
                f.write(key)
            for engine in ("sparsedb", "pisa", "seismic"):  # built from other data
                shutil.rmtree(os.path.join(self.work, engine), ignore_errors=True)
        gt = D.GroundTruth.load(os.path.join(datadir, "ground_truth.npz"))
        self.docs, self.queries, self.gt = docs, queries, gt
        self.recall = D.Recall(docs, queries, gt)
        self.meta.update(corpus=a.corpus_name or os.path.basename(a.docs), documents=len(docs), postings=docs.nnz, queries=len(queries),
                         mean_query_terms=round(queries.nnz / len(queries), 1), docs_file=a.docs, queries_file=a.queries)
        log("data ready in %.1f s: %d documents, %d postings, %d queries" % (time.perf_counter() - t0, len(docs), docs.nnz, len(queries)))

    def add(self, row, run_path):
        runs = D.read_run(run_path, self.queries.ids)
        row["recall_at_10"], per = self.recall.mean(runs)
        row["queries_below_full_recall"] = sum(1 for x in per if x < 1.0)
        self.rows.append(row)
        log("%-9s %-28s mean %.3f ms  p50 %.3f  p99 %.3f  qps %.1f  recall@10 %.4f" % (
            row["engine"], row["setting"], row["mean_ms"], row["p50_ms"], row["p99_ms"], row["qps"], row["recall_at_10"]))
        self.save()

    def save(self):
        self.meta["load_average_1m_end"] = loadavg()
        results = {"meta": self.meta, "rows": self.rows, "failures": self.failures}
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(self.out, "results.md"), "w") as f:
            f.write(markdown(results))

    # MARK: SparseDB

    def sparsedb(self):
        a = self.args
        # SPARSEDB_BIN: a copy of the binary, so that rebuilding the checkout during a long run does not change it.
        exe = os.environ.get("SPARSEDB_BIN") or os.path.join(REPO, ".build", "release", "sparsedb")
        if not a.no_swift_build:
            log("building SparseDB (release)")
            run(["swift", "build", "-c", "release", "--product", "sparsedb"], log_path=self.logfile, env=dict(os.environ))
        base = os.path.join(self.work, "sparsedb")
        db = os.path.join(base, "db")
        compacted = os.path.join(base, "db-compact")
        build_json = os.path.join(base, "build.json")
        if not (a.reuse and os.path.exists(build_json)):
            shutil.rmtree(base, ignore_errors=True)
            os.makedirs(base)
            load0 = loadavg()
            wall, rss, _ = run([exe, "ingest", "--db", db, "--collection", "bench", "--vectors", self.docs_csr, "--batch-size", str(a.batch_size),
                                "--dimensions", str(self.docs.cols), "--quiet"], cpu=self.cpu, log_path=self.logfile,
                               stdout_path=os.path.join(base, "ingest.out"))
            ingested_bytes = dir_bytes(db)
            # Then the file a user serves from: `compact --into` (the lists re-packed into full
            # blocks, every table rewritten in key order into a new file); queries run on it.
            compact_wall, compact_rss, _ = run([exe, "compact", "--db", db, "--into", compacted], cpu=self.cpu, log_path=self.logfile)
            _, _, stats = run([exe, "stats", "--db", compacted], stdout_path=os.path.join(base, "stats.json"))
            st = json.loads(stats)
            field = st["collections"][0]["fields"][0]
            b = {"build_s": wall + compact_wall, "ingest_s": wall, "compact_s": compact_wall, "build_peak_rss_bytes": max(rss or 0, compact_rss or 0),
                 "ingested_bytes": ingested_bytes, "index_bytes": dir_bytes(compacted), "posting_bytes": field["postingBytes"],
                 "forward_bytes": field["forwardBytes"], "data_mdb_bytes": st["bytesOnDisk"], "bytes_used": st["bytesUsed"],
                 "format_version": st["formatVersion"], "load_average_1m": [load0, loadavg()], "batch_size": a.batch_size}
            with open(build_json, "w") as f:
                json.dump(b, f, indent=1)
        b = json.load(open(build_json))
        if "compact_s" not in b:
            compacted = db  # a build of an earlier harness: queried as ingested
        log("sparsedb index: %.1f s, %.1f MB on disk (%.2f bytes/posting)" % (b["build_s"], b["index_bytes"] / 1e6, b["index_bytes"] / self.docs.nnz))
        if a.build_only:
            return
        for s in (SPARSEDB_QUICK if a.quick else SPARSEDB_FULL if not a.sparsedb_settings else json.loads(a.sparsedb_settings)):
            algo = s["algorithm"]
            hf = s.get("heap_factor")
            mqt = s.get("max_query_terms")
            cand = s.get("candidates")
            ppt = s.get("postings_per_term")
            threads = s.get("threads", 1)
            cold = s.get("cold", False)
            label = algo + ("" if hf is None else " hf=%g" % hf) + ("" if mqt is None else " q=%d" % mqt) + ("" if cand is None else " c=%d" % cand) \
                + ("" if ppt is None else " lists=%d" % ppt) \
                + ("" if threads == 1 else " %d threads" % threads) \
                + (" cold" if cold else "") + ("" if s.get("cache_mb") is None else " cache=%dMiB" % s["cache_mb"])
            tag = label.replace(" ", "_").replace("=", "")
            runf = os.path.join(base, "run-%s.jsonl" % tag)
            cmd = [exe, "bench", "--db", compacted, "--collection", "bench", "--query-vectors", self.queries_csr, "--algorithm", algo, "--k", str(a.k),
                   "--run", runf, "--threads", str(threads)]
            if hf is not None:
                cmd += ["--heap-factor", str(hf)]
            if mqt is not None:
                cmd += ["--max-query-terms", str(mqt)]
            if cand is not None:
                cmd += ["--candidates", str(cand)]
            if ppt is not None:
                cmd += ["--postings-per-term", str(ppt)]
            if hf is not None or mqt is not None or ppt is not None:
                cmd += ["--no-recall"]  # recall is computed here, against the ground truth
            if cold:
                cmd += ["--cold"]
            if s.get("cache_mb") is not None:
                cmd += ["--cache-mb", str(s["cache_mb"])]
            try:
                # Two threads cannot be pinned to one core: they get the machine's cores.
                _, rss, text = run(cmd, cpu=self.cpu if threads == 1 else None, stdout_path=os.path.join(base, "bench-%s.json" % tag),
                                   log_path=self.logfile)
            except Failure as e:
                self.fail("sparsedb " + label, e)
                continue
            r = json.loads(text)
            st = r["statistics"]["mean_per_query"]
            row = {"engine": "sparsedb", "setting": label, "algorithm": algo, "exact": r["exact"], "threads": threads, "cold": cold,
                   "params": {"heap_factor": hf, "max_query_terms": mqt, "candidates": cand, "postings_per_term": ppt},
                   "mean_ms": r["mean_ms"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "max_ms": r["max_ms"], "qps": r["qps"], **cpu_fields(r),
                   "index_bytes": b["index_bytes"], "build_s": b["build_s"], "build_peak_rss_bytes": b["build_peak_rss_bytes"],
                   "search_peak_rss_bytes": rss, "load_average_1m": [r["load_average_1m"]["start"], r["load_average_1m"]["end"]],
                   "per_query": {k2: round(v, 1) for k2, v in st.items()}}
            self.add(row, runf)

    # MARK: PISA

    def pisa(self):
        a = self.args
        base = os.path.join(self.work, "pisa")
        index = os.path.join(base, "index")
        build_json = os.path.join(base, "build.json")
        script = os.path.join(HERE, "engine_pisa.py")
        if not (a.reuse and os.path.exists(build_json)):
            shutil.rmtree(base, ignore_errors=True)
            os.makedirs(base)
            load0 = loadavg()
            _, rss, _ = run([sys.executable, script, "build", "--docs", self.docs_csr, "--index", index, "--inverter", a.pisa_inverter,
                             "--out", build_json], cpu=self.cpu, log_path=self.logfile)
            b = json.load(open(build_json))
            b.update(build_peak_rss_bytes=rss, load_average_1m=[load0, loadavg()])
            with open(build_json, "w") as f:
                json.dump(b, f, indent=1)
            if a.quick:
                self.check_pisa_inverter(script, index, base)
        b = json.load(open(build_json))
        log("pisa index: %.1f s (%s inverter), %.1f MB on disk" % (b["build_s"], b["inverter"], b["index_bytes"] / 1e6))
        if a.build_only:
            return
        for algo in (a.pisa_algorithms.split(",") if a.pisa_algorithms else PISA_ALGORITHMS):
            runf = os.path.join(base, "run-%s.jsonl" % algo)
            outf = os.path.join(base, "search-%s.json" % algo)
            try:
                _, rss, _ = run([sys.executable, script, "search", "--index", index, "--queries", self.queries_csr, "--algorithm", algo,
                                 "--k", str(a.k), "--run", runf, "--out", outf], cpu=self.cpu, log_path=self.logfile)
            except Failure as e:
                self.fail("pisa " + algo, e)
                continue
            r = json.load(open(outf))
            row = {"engine": "pisa", "setting": algo, "algorithm": algo, "exact": True, "threads": 1, "params": {"scorer": "quantized"},
                   "mean_ms": r["mean_ms"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "max_ms": r["max_ms"], "qps": r["qps"], **cpu_fields(r),
                   "index_bytes": b["index_bytes"], "index_bytes_query_files": b["index_bytes_query_files"], "build_s": b["build_s"],
                   "build_peak_rss_bytes": b["build_peak_rss_bytes"], "search_peak_rss_bytes": rss,
                   "load_average_1m": [r["load_average_1m"]["start"], r["load_average_1m"]["end"]]}
            self.add(row, runf)

    def check_pisa_inverter(self, script, index, base):
        """Quick mode: toks_indexer and the numpy inverter write the same bytes."""
        other = os.path.join(base, "index-toks")
        run([sys.executable, script, "build", "--docs", self.docs_csr, "--index", other, "--inverter", "toks" if self.args.pisa_inverter == "numpy" else "numpy",
             "--out", os.path.join(base, "build-toks.json")], log_path=self.logfile)
        names = ["inv.docs", "inv.freqs", "inv.sizes", "fwd.documents", "fwd.terms", "fwd.doclex", "fwd.termlex"]
        for n in names + [f for f in os.listdir(index) if "quantized" in f]:
            x, y = os.path.join(index, n), os.path.join(other, n)
            if not (os.path.exists(x) and os.path.exists(y) and open(x, "rb").read() == open(y, "rb").read()):
                raise Failure("PISA inverters disagree on %s" % n)
        log("pisa: numpy inverter and toks_indexer wrote identical files")
        shutil.rmtree(other)

    # MARK: Seismic

    def seismic(self):
        a = self.args
        base = os.path.join(self.work, "seismic")
        os.makedirs(base, exist_ok=True)
        script = os.path.join(HERE, "engine_seismic.py")
        builds = json.loads(a.seismic_builds) if a.seismic_builds else SEISMIC_QUICK_BUILDS if a.quick else SEISMIC_FULL_BUILDS
        searches = json.loads(a.seismic_searches) if a.seismic_searches else SEISMIC_QUICK_SEARCHES if a.quick else SEISMIC_FULL_SEARCHES
        for bi, cfg in enumerate(builds):
            tag = "np%d-cf%g-se%g" % (cfg["n_postings"], cfg.get("centroid_fraction", 0.1), cfg.get("summary_energy", 0.4))
            prefix = os.path.join(base, tag)
            build_json = prefix + ".build.json"
            if not (a.reuse and os.path.exists(build_json) and os.path.exists(prefix + ".index.seismic")):
                load0 = loadavg()
                try:
                    _, rss, _ = run([sys.executable, script, "build", "--docs", self.docs_csr, "--index", prefix, "--config", json.dumps(cfg),
                                     "--threads", str(a.seismic_build_threads), "--out", build_json],
                                    cpu=self.cpu if a.seismic_build_threads == 1 else None, log_path=self.logfile)
                except Failure as e:
                    self.fail("seismic build " + tag, e)
                    continue
                b = json.load(open(build_json))
                b.update(build_peak_rss_bytes=rss, load_average_1m=[load0, loadavg()])
                with open(build_json, "w") as f:
                    json.dump(b, f, indent=1)
            b = json.load(open(build_json))
            log("seismic index %s: %.1f s, %.1f MB" % (tag, b["build_s"], b["index_bytes"] / 1e6))
            if a.build_only:
                continue
            outf = prefix + ".search.json"
            try:
                _, rss, _ = run([sys.executable, script, "search", "--index", prefix, "--queries", self.queries_csr, "--settings", json.dumps(searches),
                                 "--k", str(a.k), "--run-prefix", prefix + ".run", "--out", outf], cpu=self.cpu, log_path=self.logfile)
            except Failure as e:
                self.fail("seismic search " + tag, e)
                continue
            r = json.load(open(outf))
            for s in r["settings"]:
                st = s["setting"]
                label = "np=%d qc=%d hf=%g%s" % (cfg["n_postings"], st["query_cut"], st["heap_factor"], "" if st.get("sorted", True) else " unsorted")
                row = {"engine": "seismic", "setting": label, "algorithm": "seismic", "exact": False, "threads": 1, "params": dict(cfg, **st),
                       "mean_ms": s["mean_ms"], "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "max_ms": s["max_ms"], "qps": s["qps"], **cpu_fields(s),
                       "index_bytes": b["index_bytes"], "build_s": b["build_s"], "build_threads": b["threads"],
                       "build_peak_rss_bytes": b["build_peak_rss_bytes"], "search_peak_rss_bytes": rss,
                       "load_average_1m": [s["load_average_1m"]["start"], s["load_average_1m"]["end"]]}
                self.add(row, s["run"])

    def fail(self, what, e):
        log("FAILED: %s: %s" % (what, e))
        self.failures.append({"what": what, "error": str(e)[-3000:]})
        self.save()

    # MARK: checks

    def check_quick(self):
        problems = [f["what"] + ": " + f["error"].splitlines()[0] for f in self.failures]
        for engine in self.args.engines:
            if not any(r["engine"] == engine for r in self.rows):
                problems.append("%s produced no results" % engine)
        for r in self.rows:
            if r["engine"] == "sparsedb" and r["exact"] and r["recall_at_10"] != 1.0:
                problems.append("SparseDB exact %s: recall@10 %.6f, not 1.0 (%d queries below 1.0)" % (
                    r["setting"], r["recall_at_10"], r["queries_below_full_recall"]))
        return problems


def cpu_fields(r):
    return {k: r[k] for k in ("cpu_mean_ms", "cpu_p50_ms", "cpu_p99_ms", "cpu_max_ms") if k in r}


def markdown(results):
    meta, rows = results["meta"], results["rows"]
    mb = lambda x: "%.1f" % (x / 1e6) if x else "—"  # noqa: E731
    out = ["# %s: %s documents (%s postings), %s queries (%s terms on average), k = %s" % (
        meta.get("corpus", ""), meta.get("documents"), meta.get("postings"), meta.get("queries"), meta.get("mean_query_terms"), meta.get("k")), "",
        "Machine: %s. Searches pinned to CPU %s, one query at a time after a warm-up pass (warm caches). 1-minute load average %s at the start, %s at the end." % (
            meta["machine"].get("summary", ""), meta.get("cpu"), meta.get("load_average_1m_start"), meta.get("load_average_1m_end")), "",
        "Latency: wall clock per query (mean / p50 / p99), and the searching thread's CPU time per query (mean / p99), which leaves out the time a busy machine kept the query waiting for a core.", "",
        "| engine | setting | exact | mean ms | p50 ms | p99 ms | CPU mean / p99 ms | QPS | recall@10 | index MB (all files) | build s | peak RSS build / search MB | load (start–end) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = "%.3f / %.3f" % (r["cpu_mean_ms"], r["cpu_p99_ms"]) if "cpu_mean_ms" in r else "—"
        out.append("| %s | %s | %s | %.3f | %.3f | %.3f | %s | %.1f | %.4f | %s | %.1f | %s / %s | %s–%s |" % (
            r["engine"], r["setting"], "yes" if r["exact"] else "no", r["mean_ms"], r["p50_ms"], r["p99_ms"], cpu, r["qps"], r["recall_at_10"],
            mb(r["index_bytes"]), r["build_s"], mb(r.get("build_peak_rss_bytes")), mb(r.get("search_peak_rss_bytes")),
            round(r["load_average_1m"][0], 1), round(r["load_average_1m"][1], 1)))
    sdb = [r for r in rows if r["engine"] == "sparsedb" and r.get("per_query")]
    if sdb:
        out += ["", "SparseDB per query (means): terms, postings decoded, blocks decoded / skipped / decompressed, documents scored, candidates rescored.", "",
                "| setting | terms | postings decoded | blocks decoded | blocks skipped | blocks decompressed | documents scored | candidates rescored |",
                "|---|---|---|---|---|---|---|---|"]
        for r in sdb:
            p = r["per_query"]
            out.append("| %s | %.1f | %.0f | %.0f | %.0f | %.1f | %.0f | %.1f |" % (
                r["setting"], p["terms"], p["postings_decoded"], p["blocks_decoded"], p["blocks_skipped"], p["blocks_decompressed"],
                p["documents_scored"], p["candidates_rescored"]))
    if results.get("failures"):
        out += ["", "Failures:", ""] + ["- %s: %s" % (f["what"], f["error"].splitlines()[0] if f["error"] else "") for f in results["failures"]]
    return "\n".join(out) + "\n"


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"summary": "%d cores (%s), %.0f GiB, %s" % (os.cpu_count(), model, mem / 2 ** 30, platform.platform()), "cpus": os.cpu_count(),
            "model": model, "memory_bytes": mem, "python": platform.python_version(), "versions": versions()}


def versions():
    out = {}
    try:
        from importlib.metadata import version
        for p in ("pyterrier-pisa", "pyseismic-lsr", "numpy", "scipy"):
            try:
                out[p] = version(p)
            except Exception:  # noqa: BLE001
                pass
    except ImportError:
        pass
    return out


def git_head():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small corpus, few settings, checks (see above)")
    ap.add_argument("--docs", help=".csr (+ .ids) or vector JSONL")
    ap.add_argument("--queries", help=".csr (+ .ids) or vector JSONL")
    ap.add_argument("--n-docs", type=int, help="keep the first N documents")
    ap.add_argument("--n-queries", type=int, help="keep the first N queries")
    ap.add_argument("--corpus-name")
    ap.add_argument("--work", help="index and data directory (default: a temporary one in quick mode)")
    ap.add_argument("--out", help="results directory (default: WORK/out)")
    ap.add_argument("--engines", default="sparsedb,pisa,seismic")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cpu", default="1", help="core for builds and searches (taskset -c), or 'none'")
    ap.add_argument("--reuse", action="store_true", help="reuse indexes already built in WORK")
    ap.add_argument("--build-only", action="store_true", help="build the indexes, run no queries (then --reuse)")
    ap.add_argument("--no-swift-build", action="store_true")
    ap.add_argument("--batch-size", type=int, default=100000, help="SparseDB ingest batch (documents per transaction)")
    ap.add_argument("--sparsedb-settings", help="JSON list of {algorithm, heap_factor, max_query_terms, candidates, postings_per_term, threads, cold, cache_mb}")
    ap.add_argument("--pisa-algorithms", help="comma-separated subset of %s" % ",".join(PISA_ALGORITHMS))
    ap.add_argument("--pisa-inverter", choices=["numpy", "toks"], default="numpy")
    ap.add_argument("--seismic-builds", help="JSON list of build configurations")
    ap.add_argument("--seismic-searches", help="JSON list of {query_cut, heap_factor[, sorted]}")
    ap.add_argument("--seismic-build-threads", type=int, default=1)
    args = ap.parse_args()
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    temporary = None
    if args.quick:
        if args.docs:
            args.n_docs = args.n_docs or 20000
            args.queries = args.queries or "/work/scale/vectors/queries.csr"
            args.n_queries = args.n_queries or 300
        else:
            args.docs, args.queries = QUICK_DOCS, QUICK_QUERIES
            args.corpus_name = args.corpus_name or "scifact (splade-tiny reference vectors)"
        if not args.work:
            import tempfile
            temporary = args.work = tempfile.mkdtemp(prefix="sparsedb-harness-")
    if not args.docs or not args.queries or not args.work:
        ap.error("give --docs, --queries and --work (or --quick)")
    args.out = args.out or os.path.join(args.work, "out")
    h = Harness(args)
    t0 = time.perf_counter()
    problems = []
    try:
        h.prepare()
        for engine in args.engines:
            try:
                getattr(h, engine)()
            except Failure as e:
                h.fail(engine, e)
        h.meta["wall_s"] = round(time.perf_counter() - t0, 1)
        h.meta["load_average_1m"] = "%s–%s" % (h.meta["load_average_1m_start"], loadavg())
        h.save()
        P.plot({"meta": h.meta, "rows": h.rows}, os.path.join(h.out, "latency_recall.png"))
        print(markdown({"meta": h.meta, "rows": h.rows, "failures": h.failures}))
        problems = h.check_quick() if args.quick else [f["what"] for f in h.failures]
    finally:
        if temporary and not problems:
            shutil.rmtree(temporary, ignore_errors=True)
    log("done in %.0f s; results in %s" % (time.perf_counter() - t0, h.out))
    if problems:
        for p in problems:
            print("HARNESS FAILURE: " + p, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
