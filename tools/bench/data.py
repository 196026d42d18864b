"""Vectors for the benchmark harness: loading and slicing big-ann `.csr` files (and vector JSONL),
the exact float top-k by brute force, and the tie-aware recall@k.

Exact scores are float64 sums of float64(query weight) * float64(document weight) over the
float32 weights both files hold, i.e. the dot product of the float vectors. A returned document is
a hit when its exact score reaches the exact k-th score (minus a 1e-6 relative tolerance for
summation order), so documents tied at the cut-off all count; when fewer than k documents score
above zero, the positive ones are the whole answer.
"""
import hashlib, json, os, sys, time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scale"))
from jsonl_to_csr import read_csr, read_jsonl, write_csr  # noqa: E402

DIMS = 30522
TIE_TOLERANCE = 1e-6


class Vectors:
    """CSR rows with string ids: indptr (int64), indices (int32), data (float32), cols."""

    def __init__(self, ids, indptr, indices, data, cols=DIMS):
        self.ids, self.indptr, self.indices, self.data, self.cols = ids, indptr, indices, data, cols

    def __len__(self):
        return len(self.ids)

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def row(self, r):
        a, b = int(self.indptr[r]), int(self.indptr[r + 1])
        return self.indices[a:b], self.data[a:b]


def read_ids(path, rows):
    ids_path = path + ".ids"
    if os.path.exists(ids_path):
        with open(ids_path, encoding="utf-8") as f:
            ids = f.read().split("\n")
        if ids and ids[-1] == "":
            ids.pop()
        if len(ids) != rows:
            raise ValueError("%s: %d ids for %d rows" % (ids_path, len(ids), rows))
        return ids
    return [str(i) for i in range(rows)]


def load(path, limit=None):
    """A .csr (+ .ids) or vector JSONL file; the first `limit` rows when given (memory-mapped
    .csr arrays are copied only for the rows kept)."""
    if path.endswith(".csr"):
        indptr, indices, data, cols = read_csr(path)
        rows = len(indptr) - 1
        ids = read_ids(path, rows)
        n = rows if limit is None else min(limit, rows)
        end = int(indptr[n])
        return Vectors(ids[:n], np.array(indptr[:n + 1]), np.array(indices[:end]), np.array(data[:end]), cols)
    ids, indptr, indices, data = read_jsonl(path)
    n = len(ids) if limit is None else min(limit, len(ids))
    end = int(indptr[n])
    return Vectors(ids[:n], indptr[:n + 1], indices[:end], data[:end], DIMS)


def save(v, path):
    """Writes `v` as path (.csr) and path.ids."""
    write_csr(path, v.indptr, v.indices, v.data, v.cols)
    with open(path + ".ids.partial", "w", encoding="utf-8") as f:
        f.write("".join(i + "\n" for i in v.ids))
    os.replace(path + ".ids.partial", path + ".ids")


def fingerprint(*paths_and_values):
    h = hashlib.sha256()
    for x in paths_and_values:
        if isinstance(x, str) and os.path.exists(x):
            st = os.stat(x)
            h.update(("%s:%d:%d" % (os.path.abspath(x), st.st_size, int(st.st_mtime))).encode())
        else:
            h.update(repr(x).encode())
    return h.hexdigest()[:16]


class GroundTruth:
    """Per query: the exact top-k rows and scores, the k-th score, and how many documents score
    above zero. Computed term by term over a column-major copy of the documents (only the
    postings a query touches), float64."""

    def __init__(self, kth, positives, top_rows, top_scores, k):
        self.kth, self.positives, self.top_rows, self.top_scores, self.k = kth, positives, top_rows, top_scores, k

    @staticmethod
    def compute(docs, queries, k, log=print):
        from scipy import sparse
        t0 = time.perf_counter()
        D = sparse.csr_matrix((docs.data, docs.indices, docs.indptr), shape=(len(docs), max(docs.cols, DIMS)))
        C = D.tocsc()
        C.sort_indices()
        log("ground truth: column-major copy in %.1f s" % (time.perf_counter() - t0))
        n = len(docs)
        scores = np.zeros(n, np.float64)
        kth = np.zeros(len(queries), np.float64)
        positives = np.zeros(len(queries), np.int64)
        top_rows = np.full((len(queries), k), -1, np.int64)
        top_scores = np.zeros((len(queries), k), np.float64)
        t1 = time.perf_counter()
        for qi in range(len(queries)):
            dims, weights = queries.row(qi)
            touched = False
            for d, w in zip(dims, weights):
                if w == 0 or d >= C.shape[1]:
                    continue
                a, b = C.indptr[d], C.indptr[d + 1]
                if a == b:
                    continue
                # A column holds a row at most once, so the fancy-indexed += adds every posting.
                scores[C.indices[a:b]] += float(w) * C.data[a:b].astype(np.float64)
                touched = True
            if touched:
                cand = np.flatnonzero(scores)
                s = scores[cand]
                pos = s > 0
                positives[qi] = int(pos.sum())
                m = min(k, len(cand))
                part = np.argpartition(-s, m - 1)[:m]
                order = part[np.lexsort((cand[part], -s[part]))]
                top_rows[qi, :m] = cand[order]
                top_scores[qi, :m] = s[order]
                kth[qi] = s[order[-1]] if len(cand) >= k else 0.0
                scores[cand] = 0.0
            if qi % 200 == 199:
                log("ground truth: %d/%d queries (%.1f s)" % (qi + 1, len(queries), time.perf_counter() - t1))
        log("ground truth: %d queries in %.1f s" % (len(queries), time.perf_counter() - t1))
        return GroundTruth(kth, positives, top_rows, top_scores, k)

    def save(self, path):
        np.savez(path + ".partial.npz", kth=self.kth, positives=self.positives, top_rows=self.top_rows, top_scores=self.top_scores, k=self.k)
        os.replace(path + ".partial.npz", path)

    @staticmethod
    def load(path):
        z = np.load(path)
        return GroundTruth(z["kth"], z["positives"], z["top_rows"], z["top_scores"], int(z["k"]))


class Recall:
    """Tie-aware recall@k of runs (lists of returned document ids per query)."""

    def __init__(self, docs, queries, gt):
        self.docs, self.queries, self.gt = docs, queries, gt
        self.row_of = {d: r for r, d in enumerate(docs.ids)}
        self.qdense = {}

    def exact(self, qi, row):
        q = self.qdense.get(qi)
        if q is None:
            dims, w = self.queries.row(qi)
            q = self.qdense[qi] = dict(zip(dims.tolist(), w.astype(np.float64).tolist()))
        dims, w = self.docs.row(row)
        return sum(q.get(d, 0.0) * float(x) for d, x in zip(dims.tolist(), w.tolist()))

    def query(self, qi, returned):
        k = self.gt.k
        want = min(k, int(self.gt.positives[qi]))
        if want == 0:
            return 1.0
        kth = self.gt.kth[qi] if self.gt.positives[qi] >= k else 0.0
        floor = kth - TIE_TOLERANCE * max(1.0, abs(kth))
        hits = 0
        for d in dict.fromkeys(returned[:k]):
            r = self.row_of.get(d)
            if r is None:
                continue
            s = self.exact(qi, r)
            if s > 0 and s >= floor:
                hits += 1
        return min(hits, want) / want

    def mean(self, runs):
        """runs: list (per query, in query order) of returned ids."""
        per = [self.query(qi, r) for qi, r in enumerate(runs)]
        return float(np.mean(per)) if per else 0.0, per


def read_run(path, query_ids):
    """A run file of JSON lines {"query_id", "hits": [[id, score], ...]} (or "ids": [...]) -> list
    of id lists in `query_ids` order."""
    by = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line)
            hits = o.get("hits")
            ids = [h[0] if isinstance(h, list) else h for h in hits] if hits is not None else o["ids"]
            by[o["query_id"]] = ids
    missing = [q for q in query_ids if q not in by]
    if missing:
        raise ValueError("%s: no results for %d queries (first %r)" % (path, len(missing), missing[0]))
    return [by[q] for q in query_ids]


def write_run(path, query_ids, runs, scores=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, (q, ids) in enumerate(zip(query_ids, runs)):
            hits = [[d, float(s)] for d, s in zip(ids, scores[i])] if scores is not None else [[d, None] for d in ids]
            f.write(json.dumps({"query_id": q, "hits": hits}) + "\n")


def latency_summary(ms, prefix=""):
    """Mean, nearest-rank percentiles and max, as SparseDB's LatencySummary computes them."""
    xs = sorted(ms)
    n = len(xs)
    if n == 0:
        return {prefix + k: 0.0 for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")}

    def rank(p):
        return xs[max(0, min(n - 1, int(np.ceil(p / 100.0 * n)) - 1))]

    out = {"mean_ms": float(np.mean(xs)), "p50_ms": rank(50), "p90_ms": rank(90), "p99_ms": rank(99), "max_ms": xs[-1]}
    return {prefix + k: v for k, v in out.items()}
