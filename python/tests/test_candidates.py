"""Approximate search with candidates (max_query_terms + candidates, sdb_search_options.candidates
since ABI 5) equals a brute-force oracle on the SciFact reference vectors, through every path
that carries the options block: the one-query path (C fast path and pure Python), batches
(sdb_collection_search_matrix), hybrid search and text search; bad values are refused in each."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sparsedb
from conftest import DATA, MODELS, load_vectors, reference

K = 10
# (max_query_terms, candidates): candidates None = k; a query shorter than N terms is exact.
SETTINGS = [(3, None), (3, 10), (3, 50), (5, 200), (8, 30), (1, 1000)]


@pytest.fixture(scope="module")
def scifact(tmp_path_factory):
    folder = reference("scifact")
    doc_ids, docs = load_vectors(folder / "doc_vectors.jsonl")
    _, queries = load_vectors(folder / "query_vectors.jsonl")
    queries = queries[:60]
    path = tmp_path_factory.mktemp("scifact") / "db"
    db = sparsedb.Database(path)
    c = db.create_collection("scifact", dimensions=30522)
    for start in range(0, len(doc_ids), 1000):  # several transactions: lists of several blocks
        c.upsert(doc_ids[start : start + 1000], docs[start : start + 1000])
    yield c, doc_ids, docs.astype(np.float64).tocsc(), queries, path
    db.close()


def oracle(docs, doc_ids, query, max_terms: int, candidates: int, k: int):
    """The pruned search with rescoring, by brute force: the query's `max_terms` largest weights
    (ties: the smaller dimension), every document scored exactly by them, the best `candidates`
    with a positive score (ties: insertion order), those rescored with the whole query, the top
    k (ties: insertion order). Returns [(id, score)]."""
    dims, weights = query.indices, query.data.astype(np.float64)
    order = sorted(range(len(dims)), key=lambda i: (-weights[i], dims[i]))
    kept = order[:max_terms]
    pruned = docs[:, dims[kept]] @ weights[kept]
    found = np.nonzero(pruned > 0)[0]
    chosen = found[np.lexsort((found, -pruned[found]))][:candidates]
    whole = docs[chosen][:, dims] @ weights
    best = np.lexsort((chosen, -whole))[:k]
    return [(doc_ids[chosen[i]], float(whole[i])) for i in best]


def assert_same(hits, expected, context: str):
    assert [h.id for h in hits] == [e[0] for e in expected], context
    for h, (_, score) in zip(hits, expected):
        assert h.score == pytest.approx(score, rel=1e-6), context


def as_dict(row) -> dict:
    return {int(d): float(w) for d, w in zip(row.indices, row.data)}


def test_the_oracle_is_not_the_exact_search(scifact):
    """The settings tell candidates apart on this data: few candidates lose documents that more
    find (else the tests below would not show that candidates reaches the engine)."""
    c, doc_ids, docs, queries, _ = scifact
    q = queries[0]
    exact = oracle(docs, doc_ids, q, q.nnz, 1 << 20, K)
    assert any(oracle(docs, doc_ids, queries[i], 3, K, K) != oracle(docs, doc_ids, queries[i], 3, 200, K) for i in range(queries.shape[0]))
    assert [h.id for h in c.search(as_dict(q), k=K)] == [e[0] for e in exact]


@pytest.mark.parametrize("max_terms, candidates", SETTINGS)
def test_one_dict_query_equals_the_oracle(scifact, one_query_path, max_terms, candidates):
    c, doc_ids, docs, queries, _ = scifact
    for i in range(queries.shape[0]):
        q = queries[i]
        expected = oracle(docs, doc_ids, q, max_terms, candidates or K, K)
        for algorithm in ("maxscore", "bmw"):
            hits = c.search(as_dict(q), k=K, algorithm=algorithm, max_query_terms=max_terms, candidates=candidates)
            assert_same(hits, expected, f"{one_query_path} query {i} {algorithm} N={max_terms} C={candidates}")


@pytest.mark.parametrize("max_terms, candidates", SETTINGS)
def test_batch_equals_the_oracle(scifact, max_terms, candidates):
    c, doc_ids, docs, queries, _ = scifact
    results = c.search(queries, k=K, max_query_terms=max_terms, candidates=candidates, threads=2)
    arrays = c.search(queries, k=K, max_query_terms=max_terms, candidates=candidates, return_arrays=True)
    for i, hits in enumerate(results):
        expected = oracle(docs, doc_ids, queries[i], max_terms, candidates or K, K)
        assert_same(hits, expected, f"batch query {i} N={max_terms} C={candidates}")
        assert list(arrays.ids[i, : len(hits)]) == [h.id for h in hits]


def test_hybrid_field_rankings_rescore_the_candidates(scifact):
    """One sparse field, depth = k: RRF keeps the field's order, and the field's ranking is the
    oracle's top-depth of max(depth, candidates) candidates, with exact field scores."""
    c, doc_ids, docs, queries, _ = scifact
    for candidates in (None, 10, 100):
        results = c.search_hybrid({"vector": queries}, k=K, depth=K, max_query_terms=3, candidates=candidates)
        for i, hits in enumerate(results):
            expected = oracle(docs, doc_ids, queries[i], 3, candidates or K, K)
            assert [h.id for h in hits] == [e[0] for e in expected], f"hybrid query {i} C={candidates}"
            for h, (_, score) in zip(hits, expected):
                assert h.field_scores["vector"] == pytest.approx(score, rel=1e-6)


def test_text_search_with_candidates(scifact):
    """search_text encodes the texts and carries candidates to the engine: the oracle on the
    encoded queries."""
    c, doc_ids, docs, _, _ = scifact
    if not (MODELS / "splade-tiny").is_dir():
        pytest.fail(f"the default model is missing at {MODELS / 'splade-tiny'}: run tools/fetch-model.sh")
    encoder = sparsedb.Encoder("default")
    with open(DATA / "scifact" / "queries.jsonl") as f:
        texts = [json.loads(line)["text"] for line in f][:20]
    vectors = encoder.encode_queries(texts)
    for candidates in (None, 100):
        batch = c.search_text(texts, k=K, max_query_terms=3, candidates=candidates, encoder=encoder)
        one = c.search_text(texts[0], k=K, max_query_terms=3, candidates=candidates, encoder=encoder)
        # Encoded alone, a text's weights may differ from its batch's in the last bits.
        assert_same(one, oracle(docs, doc_ids, encoder.encode_queries(texts[0])[0], 3, candidates or K, K), f"one text C={candidates}")
        for i, hits in enumerate(batch):
            assert_same(hits, oracle(docs, doc_ids, vectors[i], 3, candidates or K, K), f"text {i} C={candidates}")
    with pytest.raises(sparsedb.InvalidInputError, match=r"candidates must be between k \(10\) and 2\^20, got 5"):
        c.search_text(texts[0], k=K, max_query_terms=3, candidates=5, encoder=encoder)


def test_candidates_without_max_query_terms_is_checked_and_exact(scifact, one_query_path):
    """As the Swift API: the value is checked, and the search stays exact."""
    c, doc_ids, docs, queries, _ = scifact
    q = as_dict(queries[1])
    exact = c.search(q, k=K)
    assert c.search(q, k=K, candidates=100) == exact
    assert c.search(queries[1:3], k=K, candidates=100)[0] == exact
    with pytest.raises(sparsedb.InvalidInputError, match=r"candidates must be between k \(10\) and 2\^20, got 9"):
        c.search(q, k=K, candidates=9)


BAD = [
    (9, r"candidates must be between k \(10\) and 2\^20, got 9"),
    (0, r"candidates must be between k \(10\) and 2\^20, got 0"),
    (-5, r"candidates must be between k \(10\) and 2\^20, got -5"),
    ((1 << 20) + 1, r"candidates must be between k \(10\) and 2\^20, got 1048577"),
    (1 << 32, r"candidates must be between k \(10\) and 2\^20, got 4294967296"),
    (20.0, r"candidates must be an integer from k to 2\^20, or None, got 20.0"),
    ("20", r"candidates must be an integer from k to 2\^20, or None, got '20'"),
    (True, r"candidates must be an integer from k to 2\^20, or None, got True"),
]


@pytest.mark.parametrize("bad, message", BAD, ids=[repr(b) for b, _ in BAD])
def test_bad_candidates_raise_invalid_input(scifact, one_query_path, bad, message):
    c, _, _, queries, _ = scifact
    q = as_dict(queries[0])
    calls = {
        "one query": lambda: c.search(q, k=K, max_query_terms=3, candidates=bad),
        "one query without max_query_terms": lambda: c.search(q, k=K, candidates=bad),
        "batch": lambda: c.search(queries[:3], k=K, max_query_terms=3, candidates=bad),
        "hybrid": lambda: c.search_hybrid({"vector": queries[:2]}, k=K, max_query_terms=3, candidates=bad),
    }
    for name, run in calls.items():
        with pytest.raises(sparsedb.InvalidInputError, match=message):
            run()
    # The request buffer was not left half written: the next search answers as before.
    assert c.search(q, k=K, max_query_terms=3, candidates=50) == c.search(queries[:1], k=K, max_query_terms=3, candidates=50)[0]


def test_pure_python_process_equals_the_fast_path(scifact):
    """SPARSEDB_PURE_PYTHON=1 in a fresh process (no _fastpath loaded) gives the same hits."""
    c, doc_ids, docs, queries, path = scifact
    script = (
        "import json, sys, sparsedb, sparsedb.database as d\n"
        "assert d.fast_search is None\n"
        "c = sparsedb.Database(sys.argv[1], read_only=True).collection('scifact')\n"
        "qs = json.loads(sys.stdin.read())\n"
        "out = [[(h.id, h.score) for h in c.search({int(k): v for k, v in q.items()}, k=10, max_query_terms=3, candidates=50)] for q in qs]\n"
        "try:\n"
        "    c.search({1: 1.0}, k=10, max_query_terms=3, candidates=9)\n"
        "except sparsedb.InvalidInputError as e:\n"
        "    out.append(str(e))\n"
        "print(json.dumps(out))\n"
    )
    qs = [as_dict(queries[i]) for i in range(10)]
    env = dict(os.environ, SPARSEDB_PURE_PYTHON="1")
    run = subprocess.run([sys.executable, "-c", script, str(path)], input=json.dumps(qs), capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got[-1] == "candidates must be between k (10) and 2^20, got 9"
    for i, q in enumerate(qs):
        expected = oracle(docs, doc_ids, queries[i], 3, 50, K)
        assert [h[0] for h in got[i]] == [e[0] for e in expected]
        assert [tuple(h) for h in got[i]] == [(h.id, h.score) for h in c.search(q, k=K, max_query_terms=3, candidates=50)]
