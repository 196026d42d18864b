#!/usr/bin/env python3
"""Grows encoded real documents to N documents (1 M, 5 M, ...) with synthetic documents whose
posting-list shapes stay realistic, deterministically.

    tools/scale/grow.py --real /work/scale/vectors/real.jsonl --n 5000000 \
        --out-csr /work/scale/vectors/grown-5M.csr [--out-jsonl /work/scale/vectors/grown-5M.jsonl]

Output rows: the real documents first, unchanged and in their order, then the synthetic ones,
"syn:<i>". Synthetic document i depends only on (--seed, i // --batch, the real part and the
options), so the first 1 M rows of a 5 M corpus are the 1 M corpus: `head -n 1000000` of the
5 M JSONL, or --n 1000000, give the same bytes.

How a synthetic document is made (the recipe, in the order applied):

1. Parents. A is a uniformly random real document. With probability --p-third (default 0.35) there
   are three parents, else two. Each further parent is, with probability --p-neighbour (default
   0.7), a *neighbour*: a random document from the posting list of one of the previous parent's
   --top-terms (default 3) highest-weighted terms, so the mixture stays on one topic and term
   co-occurrence stays that of real text; otherwise it is another uniformly random document.
2. Weights. The union of the parents' terms, each weighted by the maximum of its parents' weights:
   SPLADE pools each dimension with a max over the tokens of the text, so max() is what the model
   would give (approximately) for the parents' texts concatenated.
3. Length. The synthetic document has as many active dimensions as its first parent A (so the
   length histogram is the real one: A is uniform); --length random draws the length of another
   random real document instead (then capped by the union's size).
4. Trimming. Terms that two or three parents share are kept first (the parents agree on them;
   frequent terms keep their real document frequency), the rest of the L slots are a uniform
   sample of the other terms (Gumbel top-k; --temperature T > 0 weights the draw by
   weight^(1/T) instead, which shifts the weight histogram upward: measured, worse).

Nothing else is invented: every (term, weight) comes from a real document. tools/scale/
distributions.py compares the term document-frequency curve, the length and weight histograms and
term co-occurrence of the real part with the grown corpus.
"""
import argparse, json, os, sys, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl_to_csr import CsrAppender, read_csr, read_jsonl  # noqa: E402


def load_real(path, dims):
    if path.endswith(".csr"):
        indptr, indices, data, cols = read_csr(path, mmap=False)
        ids_path = path + ".ids"
        ids = open(ids_path).read().split("\n")[:-1] if os.path.exists(ids_path) else ["real:%d" % i for i in range(len(indptr) - 1)]
        return ids, np.array(indptr), np.array(indices), np.array(data)
    return read_jsonl(path, dims)


class Grower:
    def __init__(self, indptr, indices, data, dims, args):
        self.indptr, self.indices, self.data, self.dims, self.a = indptr, indices, data, dims, args
        self.n = len(indptr) - 1
        self.lengths = np.diff(indptr)
        # Posting lists (CSC) for neighbour sampling.
        rows = np.repeat(np.arange(self.n, dtype=np.int64), self.lengths)
        order = np.argsort(indices, kind="stable")
        self.post_docs = rows[order].astype(np.int64)
        self.post_ptr = np.zeros(dims + 1, np.int64)
        np.cumsum(np.bincount(indices, minlength=dims), out=self.post_ptr[1:])
        # Each document's top-k terms by weight (padded with its best term).
        k = args.top_terms
        order = np.lexsort((-data, rows))  # by row, weight descending
        rank = np.arange(len(order)) - np.repeat(indptr[:-1], self.lengths)
        self.top = np.full((self.n, k), -1, np.int64)
        keep = rank < k
        self.top[rows[order][keep], rank[keep]] = indices[order][keep]
        first = self.top[:, 0]
        for j in range(1, k):
            col = self.top[:, j]
            col[col < 0] = first[col < 0]

    def neighbour(self, rng, parent):
        """A random document sharing one of parent's top terms (uniform over that posting list)."""
        j = rng.integers(0, self.top.shape[1], len(parent))
        term = self.top[parent, j]
        ok = term >= 0
        start, stop = self.post_ptr[np.maximum(term, 0)], self.post_ptr[np.maximum(term, 0) + 1]
        pick = start + (rng.random(len(parent)) * np.maximum(stop - start, 1)).astype(np.int64)
        out = np.where(ok & (stop > start), self.post_docs[np.minimum(pick, len(self.post_docs) - 1)], rng.integers(0, self.n, len(parent)))
        return out

    def batch(self, seed, batch_index, count):
        a, n = self.a, self.n
        rng = np.random.default_rng([seed, batch_index])
        p1 = rng.integers(0, n, count)
        parents = [p1]
        n_par = np.where(rng.random(count) < a.p_third, 3, 2)
        prev = p1
        for _ in range(2):
            nb = self.neighbour(rng, prev)
            rnd = rng.integers(0, n, count)
            nxt = np.where(rng.random(count) < a.p_neighbour, nb, rnd)
            parents.append(nxt)
            prev = nxt
        other = rng.integers(0, n, count)
        target = self.lengths[p1] if a.length == "parent" else self.lengths[other]
        gumbel_seed = rng.integers(0, 2**63)
        # Gather (synthetic row, term, weight) of every parent (the third only where n_par == 3).
        rows_l, src_l = [], []
        for pi, par in enumerate(parents):
            sel = np.arange(count) if pi < 2 else np.nonzero(n_par == 3)[0]
            par = par[sel]
            lens = self.lengths[par]
            starts = self.indptr[par]
            tot = int(lens.sum())
            rows = np.repeat(sel, lens)
            off = np.arange(tot) - np.repeat(np.cumsum(lens) - lens, lens)
            pos = np.repeat(starts, lens) + off
            rows_l.append(rows); src_l.append(pos)
        rows = np.concatenate(rows_l).astype(np.int64)
        src = np.concatenate(src_l)  # the real posting each entry comes from
        terms = self.indices[src].astype(np.int64)
        w = self.data[src]
        # Union with max weight: sort by (row, term, -weight), keep the first of each (row, term).
        # One uint64 key (row * dims + term in the high 32 bits, the inverted float bits of the
        # weight below: positive floats order as their bits) instead of a slower lexsort.
        assert count * self.dims < 2**32, "--batch too large for the packed sort keys"
        cell = rows.astype(np.uint64) * np.uint64(self.dims) + terms.astype(np.uint64)
        key = (cell << np.uint64(32)) | (np.uint64(0xFFFFFFFF) - w.view(np.uint32).astype(np.uint64))
        order = np.argsort(key, kind="stable")
        rows, terms, w, src, cell = rows[order], terms[order], w[order], src[order], cell[order]
        first = np.ones(len(rows), bool)
        first[1:] = cell[1:] != cell[:-1]
        starts = np.nonzero(first)[0]
        shared = np.diff(np.r_[starts, len(rows)]) >= 2  # the term is in two or three parents
        rows, terms, w, src = rows[first], terms[first], w[first], src[first]
        # Which terms fill the row's L slots: shared terms first (--shared-first), then a uniform
        # random order (Gumbel top-k with weight^(1/T) when --temperature T > 0).
        rnd = np.random.default_rng(gumbel_seed)
        if a.temperature > 0:
            keys = rnd.gumbel(size=len(w)) + np.log(np.maximum(w, 1e-30)) / a.temperature + (1e6 * shared if a.shared_first else 0)
            order = np.lexsort((-keys, rows))
        else:
            later = (~shared if a.shared_first else np.ones(len(w), bool)).astype(np.uint64)
            key = (rows.astype(np.uint64) << np.uint64(32)) | (later << np.uint64(31)) | rnd.integers(0, 2**31, len(w)).astype(np.uint64)
            order = np.argsort(key, kind="stable")
        rows, terms, w, src = rows[order], terms[order], w[order], src[order]
        counts = np.bincount(rows, minlength=count)
        starts = np.cumsum(counts) - counts
        rank = np.arange(len(rows)) - np.repeat(starts, counts)
        keep = rank < target[rows]
        rows, terms, w, src = rows[keep], terms[keep], w[keep], src[keep]
        order = np.argsort(rows.astype(np.uint64) * np.uint64(self.dims) + terms.astype(np.uint64), kind="stable")
        rows, terms, w, src = rows[order], terms[order], w[order], src[order]
        indptr = np.zeros(count + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=count), out=indptr[1:])
        return indptr, terms.astype(np.int32), w.astype(np.float32), np.stack([p1, parents[1], np.where(n_par == 3, parents[2], -1)], 1), src


def pair_strings(indices, data, chunk=1_000_000):
    """'"dim":weight' for every posting, as a numpy object array (weights as the shortest text
    that reads back as the same float32, as the encoder writes them)."""
    out = np.empty(len(indices), dtype=object)
    for s in range(0, len(indices), chunk):
        e = min(s + chunk, len(indices))
        out[s:e] = np.char.add(np.char.add('"', indices[s:e].astype(str)), np.char.add('":', np.asarray(data[s:e], np.float32).astype(str))).tolist()
    return out


def write_jsonl_pairs(f, ids, indptr, pairs):
    pairs = pairs[:indptr[len(ids)]].tolist()
    lines = []
    for r, _id in enumerate(ids):
        lines.append('{"_id":%s,"vector":{%s}}\n' % (json.dumps(_id), ",".join(pairs[indptr[r]:indptr[r + 1]])))
        if len(lines) == 10000:
            f.write("".join(lines)); lines = []
    f.write("".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", required=True, help="real vectors: JSONL, or .csr with a .csr.ids file")
    ap.add_argument("--n", type=int, required=True, help="total documents (real + synthetic)")
    ap.add_argument("--out-csr")
    ap.add_argument("--out-jsonl")
    ap.add_argument("--out-parents", help=".npy of the synthetic rows' parents (real row numbers, -1 = none)")
    ap.add_argument("--dims", type=int, default=30522)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=100_000, help="synthetic rows per seeded batch (changing it changes the rows)")
    ap.add_argument("--p-third", type=float, default=0.35)
    ap.add_argument("--p-neighbour", type=float, default=0.7)
    ap.add_argument("--top-terms", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=0.0, help="0: the non-shared terms kept are a uniform sample; T > 0: weight^(1/T)-proportional")
    ap.add_argument("--length", choices=["parent", "random"], default="parent", help="target length: the first parent's, or a random real document's")
    ap.add_argument("--shared-first", type=int, default=1, help="1: terms of two or more parents are kept before the others")
    args = ap.parse_args()
    t0 = time.time()
    ids, indptr, indices, data = load_real(args.real, args.dims)
    n_real = len(ids)
    print("real: %d documents, %d postings (%.1f s)" % (n_real, len(indices), time.time() - t0), file=sys.stderr, flush=True)
    g = Grower(indptr, indices, data, args.dims, args)
    csr = CsrAppender(args.out_csr, args.dims) if args.out_csr else None
    js = open(args.out_jsonl + ".partial", "w", encoding="utf-8") if args.out_jsonl else None
    parents = []
    # The real part, then the synthetic batches.
    if csr:
        csr.append(indptr, indices, data)
        with open(args.out_csr + ".ids", "w") as f:
            f.write("".join(i + "\n" for i in ids[:args.n]))
    if js:
        t1 = time.time()
        pairs = pair_strings(indices, data)  # synthetic rows reuse these strings: every posting is a real one
        print("formatted %d real postings (%.0f s)" % (len(pairs), time.time() - t1), file=sys.stderr, flush=True)
        m = min(n_real, args.n)
        write_jsonl_pairs(js, ids[:m], indptr, pairs)
    remaining = max(0, args.n - n_real)
    b, done, total_nnz = 0, 0, int(indptr[-1])
    while done < remaining:
        count = min(args.batch, remaining - done)
        # A batch is always generated whole (args.batch rows) so a shorter run is a prefix.
        ip, ix, dt, par, src = g.batch(args.seed, b, args.batch)
        ip, ix, dt, par, src = ip[:count + 1], ix[:ip[count]], dt[:ip[count]], par[:count], src[:ip[count]]
        syn_ids = ["syn:%d" % (b * args.batch + i) for i in range(count)]
        if csr:
            csr.append(ip, ix, dt)
            with open(args.out_csr + ".ids", "a") as f:
                f.write("".join(i + "\n" for i in syn_ids))
        if js:
            write_jsonl_pairs(js, syn_ids, ip, pairs[src])
        parents.append(par)
        done += count
        total_nnz += int(ip[-1])
        b += 1
        print("synthetic %d / %d (%.0f s, mean length %.1f)" % (done, remaining, time.time() - t0, ip[-1] / count), file=sys.stderr, flush=True)
    if csr:
        if args.n < n_real:
            raise SystemExit("--n smaller than the real part: use head on the JSONL instead")
        csr.close()
    if js:
        js.close()
        os.replace(args.out_jsonl + ".partial", args.out_jsonl)
    if args.out_parents and parents:
        np.save(args.out_parents, np.concatenate(parents))
    print("done: %d documents (%d real, %d synthetic), %d postings, %.0f s" %
          (n_real + remaining, n_real, remaining, total_nnz, time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
