#!/usr/bin/env python3
"""Compares the real encoded documents with a grown corpus (tools/scale/grow.py): the term
document-frequency curve (rank-frequency, as a fraction of the documents), the active-dimension
(vector length) histogram, the weight histogram, per-term weight statistics (max and mean weight
of each posting list: what block-max and MaxScore bounds see) and term co-occurrence (lift of the
pairs of frequent terms). Writes a PNG (matplotlib) and a text table.

    tools/scale/distributions.py --real real.csr --grown grown-1M.csr --out /work/scale/dist/grown-1M

The grown corpus's rows past the real part's count are its synthetic part; it is shown on its own
too. Inputs are .csr files (tools/scale/jsonl_to_csr.py) or vector JSONL.
"""
import argparse, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl_to_csr import read_csr, read_jsonl  # noqa: E402


def load(path, dims):
    if path.endswith(".csr"):
        indptr, indices, data, _ = read_csr(path)
        return np.asarray(indptr), indices, data
    _, indptr, indices, data = read_jsonl(path, dims)
    return indptr, indices, data


class Part:
    def __init__(self, name, indptr, indices, data, dims, rng, cooc_rows):
        self.name = name
        s, e = int(indptr[0]), int(indptr[-1])
        self.indptr = np.asarray(indptr, np.int64) - s
        self.n = len(self.indptr) - 1
        ix = np.asarray(indices[s:e])
        w = np.asarray(data[s:e])
        self.lengths = np.diff(self.indptr)
        self.df = np.bincount(ix, minlength=dims)
        self.wmax = np.zeros(dims, np.float32)
        np.maximum.at(self.wmax, ix, w) if len(ix) < 50_000_000 else self._chunked_max(ix, w)
        self.wsum = np.bincount(ix, weights=w, minlength=dims)
        self.weights_sample = w[rng.integers(0, len(w), min(len(w), 5_000_000))]
        self.wq = np.quantile(self.weights_sample, [0.1, 0.5, 0.9, 0.99])
        self.wmean = float(w.mean(dtype=np.float64))
        rows = np.sort(rng.choice(self.n, min(self.n, cooc_rows), replace=False))
        self.sample_rows = rows
        self._ix, self._w = ix, w

    def _chunked_max(self, ix, w):
        step = 20_000_000
        for s in range(0, len(ix), step):
            order = np.argsort(ix[s:s + step], kind="stable")
            a, b = ix[s:s + step][order], w[s:s + step][order]
            starts = np.r_[0, np.nonzero(np.diff(a))[0] + 1]
            np.maximum.at(self.wmax, a[starts], np.maximum.reduceat(b, starts))

    def cooc(self, terms):
        """Co-occurrence counts (binary) among `terms` over the sampled rows."""
        from scipy import sparse
        col = np.full(len(self.df), -1, np.int64)
        col[terms] = np.arange(len(terms))
        lens = self.lengths[self.sample_rows]
        starts = self.indptr[self.sample_rows]
        pos = np.repeat(starts, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
        c = col[np.asarray(self._ix)[pos]]
        r = np.repeat(np.arange(len(lens)), lens)
        keep = c >= 0
        X = sparse.csr_matrix((np.ones(keep.sum(), np.float32), (r[keep], c[keep])), shape=(len(lens), len(terms)))
        C = (X.T @ X).toarray()
        return C, len(lens)


def ks(a, b):
    a, b = np.sort(a), np.sort(b)
    grid = np.unique(np.r_[a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--grown", required=True)
    ap.add_argument("--out", required=True, help="prefix: writes PREFIX.png and PREFIX.txt")
    ap.add_argument("--dims", type=int, default=30522)
    ap.add_argument("--cooc-terms", type=int, default=300, help="the most frequent real terms (after the top 20) for co-occurrence")
    ap.add_argument("--cooc-rows", type=int, default=200_000)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    ri, rx, rd = load(args.real, args.dims)
    gi, gx, gd = load(args.grown, args.dims)
    n_real = len(ri) - 1
    parts = [Part("real", ri, rx, rd, args.dims, rng, args.cooc_rows),
             Part("grown", gi, gx, gd, args.dims, rng, args.cooc_rows)]
    if len(gi) - 1 > n_real:
        parts.append(Part("synthetic", gi[n_real:], gx, gd, args.dims, rng, args.cooc_rows))
    real = parts[0]

    lines = []
    out = lines.append
    out("%-10s %10s %12s %8s %7s %7s %7s %7s %7s | %7s %7s %7s %7s %7s | %8s" % (
        "part", "docs", "postings", "terms", "len_p10", "len_p50", "len_p90", "len_p99", "len_avg",
        "w_p10", "w_p50", "w_p90", "w_p99", "w_avg", "KS len/w"))
    for p in parts:
        lq = np.quantile(p.lengths, [0.1, 0.5, 0.9, 0.99])
        k = "" if p is real else "%.3f/%.3f" % (ks(real.lengths, p.lengths), ks(real.weights_sample[:1_000_000], p.weights_sample[:1_000_000]))
        out("%-10s %10d %12d %8d %7.0f %7.0f %7.0f %7.0f %7.1f | %7.3f %7.3f %7.3f %7.3f %7.3f | %8s" % (
            p.name, p.n, int(p.lengths.sum()), int((p.df > 0).sum()), *lq, p.lengths.mean(), *p.wq, p.wmean, k))
    out("")
    out("document frequency as a fraction of the documents, at rank:")
    ranks = [1, 10, 100, 1000, 3000, 10000, 20000]
    out("%-10s " % "part" + " ".join("%10s" % ("r=%d" % r) for r in ranks))
    for p in parts:
        f = np.sort(p.df)[::-1] / p.n
        out("%-10s " % p.name + " ".join("%10.2e" % (f[r - 1] if r <= len(f) else 0) for r in ranks))
    out("")
    # Per-term agreement with the real part (terms with df >= 20 in the real part).
    terms = np.nonzero(real.df >= 20)[0]

    def spearman(a, b):
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        return float(np.corrcoef(ra, rb)[0, 1])
    out("per-term agreement with the real part (%d terms with real df >= 20): Spearman of" % len(terms))
    for p in parts[1:]:
        out("  %-10s df %.4f   max weight %.4f   mean weight %.4f   | median |log(df_frac/df_frac_real)| %.3f" % (
            p.name, spearman(real.df[terms], p.df[terms]), spearman(real.wmax[terms], p.wmax[terms]),
            spearman(real.wsum[terms] / real.df[terms], p.wsum[terms] / np.maximum(p.df[terms], 1)),
            float(np.median(np.abs(np.log((p.df[terms] / p.n + 1e-12) / (real.df[terms] / real.n)))))))
    out("")
    # Co-occurrence: lift = P(a,b) / (P(a) P(b)) among frequent terms (skipping the 20 most frequent).
    top = np.argsort(-real.df)[20:20 + args.cooc_terms]
    lifts = {}
    for p in parts:
        C, m = p.cooc(top)
        P = np.diag(C) / m
        iu = np.triu_indices(len(top), 1)
        joint = C[iu] / m
        lifts[p.name] = (joint, P[iu[0]] * P[iu[1]], C[iu])
    rj, rind, rc = lifts["real"]
    out("co-occurrence of %d frequent terms (%d pairs; sampled rows %d): pairs with >= 20 co-occurrences in both" % (
        len(top), len(rj), min(args.cooc_rows, real.n)))
    for p in parts[1:]:
        pj, pind, pc = lifts[p.name]
        ok = (rc >= 20) & (pc >= 20)
        lr, lp = np.log(rj[ok] / rind[ok]), np.log(pj[ok] / pind[ok])
        out("  %-10s Pearson of log lift %.3f over %d pairs; median log lift real %.3f vs %.3f" % (
            p.name, float(np.corrcoef(lr, lp)[0, 1]), int(ok.sum()), float(np.median(lr)), float(np.median(lp))))
    text = "\n".join(lines)
    print(text)
    with open(args.out + ".txt", "w") as f:
        f.write(text + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 2, figsize=(12, 9))
    colors = {"real": "C0", "grown": "C1", "synthetic": "C2"}
    for p in parts:
        f = np.sort(p.df)[::-1]
        f = f[f > 0] / p.n
        ax[0, 0].loglog(np.arange(1, len(f) + 1), f, label="%s (%d docs)" % (p.name, p.n), color=colors[p.name])
        ax[0, 1].hist(p.lengths, bins=np.arange(0, max(400, int(np.quantile(p.lengths, 0.999))) + 5, 5), density=True, histtype="step", label=p.name, color=colors[p.name])
        ax[1, 0].hist(p.weights_sample, bins=200, density=True, histtype="step", label=p.name, color=colors[p.name])
    ax[0, 0].set(title="term document frequency (rank-frequency)", xlabel="rank", ylabel="df / documents")
    ax[0, 1].set(title="active dimensions per document", xlabel="length", ylabel="density")
    ax[1, 0].set(title="posting weights", xlabel="weight", ylabel="density", yscale="log")
    for p in parts[1:]:
        pj, pind, pc = lifts[p.name]
        ok = (rc >= 20) & (pc >= 20)
        ax[1, 1].scatter(np.log(rj[ok] / rind[ok]), np.log(pj[ok] / pind[ok]), s=2, alpha=0.3, label=p.name, color=colors[p.name])
    lim = ax[1, 1].get_xlim()
    ax[1, 1].plot(lim, lim, "k--", lw=0.8)
    ax[1, 1].set(title="co-occurrence of frequent terms: log lift", xlabel="real", ylabel="grown / synthetic")
    for a in ax.flat:
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=110)
    print("wrote %s.png and %s.txt" % (args.out, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
