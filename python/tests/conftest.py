"""Shared fixtures: temporary databases, the reference data in ../shared, a brute-force oracle."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import scipy.sparse

import sparsedb

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SPARSEDB_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference" / "splade-tiny"
DATA = SHARED / "data"
MODELS = Path(os.environ.get("SPARSEDB_HOME", Path.home() / ".local" / "share" / "sparsedb")) / "models"
ALGORITHMS = ["exhaustive", "maxscore", "wand", "bmw"]


@pytest.fixture(params=["c", "python"])
def one_query_path(request, monkeypatch):
    """The one-query path in C (sparsedb._fastpath, when it was built) and in Python (what
    SPARSEDB_PURE_PYTHON=1 leaves: no fast_search)."""
    if request.param == "c" and sparsedb.database.fast_search is None:
        pytest.skip("sparsedb._fastpath is not built (or SPARSEDB_PURE_PYTHON=1)")
    if request.param == "python":
        monkeypatch.setattr(sparsedb.database, "fast_search", None)
    return request.param


@pytest.fixture
def db(tmp_path):
    database = sparsedb.Database(tmp_path / "db")
    yield database
    database.close()


def load_vectors(path: Path, dimensions: int = 30522) -> Tuple[List[str], scipy.sparse.csr_matrix]:
    """A reference vector file ({"_id", "vector": {"dim": weight}} lines) as ids and a CSR matrix."""
    ids, indptr, indices, values = [], [0], [], []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            ids.append(o["_id"])
            for d, w in o["vector"].items():
                indices.append(int(d))
                values.append(w)
            indptr.append(len(indices))
    m = scipy.sparse.csr_matrix(
        (np.array(values, dtype=np.float32), np.array(indices, dtype=np.int32), np.array(indptr)),
        shape=(len(ids), dimensions),
    )
    m.sort_indices()
    return ids, m


def reference(name: str):
    folder = REFERENCE / name
    if not folder.is_dir():
        pytest.fail(f"reference vectors missing: {folder} (set SPARSEDB_SHARED to the shared folder)")
    return folder


def brute_force(docs: scipy.sparse.csr_matrix, doc_ids: Sequence[str], queries: scipy.sparse.csr_matrix, live=None):
    """Per query, every document with a positive score: {id: score}, scores summed in float64."""
    d = docs.astype(np.float64)
    q = queries.astype(np.float64)
    s = (q @ d.T).toarray()
    out: List[Dict[str, float]] = []
    for row in s:
        hits = {}
        for j in np.nonzero(row > 0)[0]:
            if live is None or doc_ids[j] in live:
                hits[doc_ids[j]] = float(row[j])
        out.append(hits)
    return out


def assert_top_k(hits, expected: Dict[str, float], k: int, context: str = ""):
    """The hits are a correct top-k of `expected` (all positive-score documents with their exact
    scores): the right scores, best first, and every document strictly above the k-th score
    present; documents tied with the k-th may be any of them."""
    tol = 1e-9
    ranked = sorted(expected.values(), reverse=True)
    assert len(hits) == min(k, len(ranked)), f"{context}: {len(hits)} hits, expected {min(k, len(ranked))}"
    for i, h in enumerate(hits):
        assert h.id in expected, f"{context}: hit {h.id} has no positive score"
        assert abs(h.score - expected[h.id]) <= tol * max(1.0, abs(expected[h.id])), f"{context}: score of {h.id}"
        assert abs(h.score - ranked[i]) <= tol * max(1.0, ranked[i]), f"{context}: rank {i} score {h.score} vs {ranked[i]}"
    if hits:
        kth = hits[-1].score
        must = {d for d, s in expected.items() if s > kth + tol * max(1.0, kth)}
        assert must <= {h.id for h in hits}, f"{context}: missing {must - {h.id for h in hits}}"


def random_corpus(rng: np.random.Generator, n: int, dims: int, per_doc: int) -> scipy.sparse.csr_matrix:
    """Documents with a Zipf-like term distribution, so that some lists span many blocks."""
    p = 1.0 / np.arange(1, dims + 1) ** 0.8
    p /= p.sum()
    lengths = rng.integers(1, per_doc * 2, size=n)
    rows = np.repeat(np.arange(n), lengths)
    cols = rng.choice(dims, size=int(lengths.sum()), p=p)
    weights = rng.gamma(1.0, 1.0, size=len(cols)).astype(np.float32)
    m = scipy.sparse.csr_matrix((weights, (rows, cols)), shape=(n, dims))  # repeats summed
    m.sum_duplicates()
    m.sort_indices()
    return m
