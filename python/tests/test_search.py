"""Search through Python equals brute force (numpy), on random data and on the reference vectors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

import sparsedb
from conftest import ALGORITHMS, assert_top_k, brute_force, load_vectors, random_corpus, reference


@pytest.fixture(scope="module")
def random_collection(tmp_path_factory):
    rng = np.random.default_rng(7)
    docs = random_corpus(rng, 3000, 2000, 25)
    ids = [f"doc-{i}" for i in range(docs.shape[0])]
    db = sparsedb.Database(tmp_path_factory.mktemp("random") / "db")
    c = db.create_collection("random", dimensions=2000)
    # Several transactions, so that lists have several (partial) blocks; then replace and delete.
    for start in range(0, 3000, 700):
        c.upsert(ids[start : start + 700], docs[start : start + 700])
    replaced = random_corpus(rng, 100, 2000, 25)
    docs = docs.tolil()
    docs[1000:1100] = replaced
    docs = docs.tocsr()
    c.upsert(ids[1000:1100], replaced)
    deleted = set(ids[::17])
    assert c.delete(sorted(deleted)) == len(deleted)
    queries = random_corpus(rng, 40, 2000, 6)
    yield c, docs, ids, set(ids) - deleted, queries
    db.close()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("k", [1, 10, 100])
def test_random_equals_brute_force(random_collection, algorithm, k):
    c, docs, ids, live, queries = random_collection
    assert len(c) == len(live)
    expected = brute_force(docs, ids, queries, live)
    results = c.search(queries, k=k, algorithm=algorithm)
    assert len(results) == queries.shape[0]
    for q, (hits, exp) in enumerate(zip(results, expected)):
        assert_top_k(hits, exp, k, f"{algorithm} k={k} query {q}")


def test_random_after_compaction(random_collection):
    c, docs, ids, live, queries = random_collection
    before = c.search(queries, k=10, algorithm="bmw")
    c.compact()
    after = c.search(queries, k=10, algorithm="bmw")
    expected = brute_force(docs, ids, queries, live)
    for q, (hits, exp) in enumerate(zip(after, expected)):
        assert_top_k(hits, exp, 10, f"after compaction, query {q}")
    assert [[h.id for h in r] for r in before] == [[h.id for h in r] for r in after]


def test_input_types_give_the_same_hits(random_collection):
    c, docs, ids, live, queries = random_collection
    torch = pytest.importorskip("torch")
    base = c.search(queries, k=10)
    as_dicts = [dict(zip(queries[i].indices.tolist(), queries[i].data.tolist())) for i in range(queries.shape[0])]
    # Entries in reverse order: not coalesced (the binding coalesces).
    q = queries.tocoo()
    coo = torch.sparse_coo_tensor(np.vstack([q.row[::-1], q.col[::-1]]), q.data[::-1].copy(), q.shape, check_invariants=True)
    assert not coo.is_coalesced()
    variants = {
        "dicts": c.search(as_dicts, k=10),
        "coo matrix": c.search(queries.tocoo(), k=10),
        "dense numpy": c.search(queries.toarray(), k=10),
        "torch coo": c.search(torch.tensor(queries.toarray()).to_sparse(), k=10),
        "torch csr": c.search(torch.tensor(queries.toarray()).to_sparse_csr(), k=10),
        "torch dense": c.search(torch.tensor(queries.toarray()), k=10),
        "torch coo uncoalesced": c.search(coo, k=10),
    }
    for name, result in variants.items():
        assert [[(h.id, h.score) for h in r] for r in result] == [[(h.id, h.score) for h in r] for r in base], name
    # One query: a dict, a 1-D tensor, a 1-D array give a flat list of hits.
    single = c.search(as_dicts[0], k=10)
    assert single == base[0]
    assert c.search(torch.tensor(queries[0].toarray()[0]).to_sparse(), k=10) == base[0]
    assert c.search(queries[0].toarray()[0], k=10) == base[0]


def test_return_arrays(random_collection):
    c, docs, ids, live, queries = random_collection
    hits = c.search(queries, k=10)
    arrays = c.search(queries, k=10, return_arrays=True)
    assert arrays.ids.shape == arrays.scores.shape == (queries.shape[0], max(len(h) for h in hits))
    for q, row in enumerate(hits):
        assert list(arrays.ids[q, : len(row)]) == [h.id for h in row]
        assert np.array_equal(arrays.scores[q, : len(row)], [h.score for h in row])
        assert all(x is None for x in arrays.ids[q, len(row) :])
        assert np.all(arrays.scores[q, len(row) :] == -np.inf)


def test_threads_argument_gives_the_same_hits(random_collection):
    c, docs, ids, live, queries = random_collection
    one = c.search(queries, k=10, threads=1)
    assert c.search(queries, k=10, threads=0) == one
    assert c.search(queries, k=10, threads=3) == one


def test_approximate_options(random_collection):
    c, docs, ids, live, queries = random_collection
    exact = c.search(queries, k=10)
    approx = c.search(queries, k=10, max_query_terms=2, heap_factor=1.3)
    assert len(approx) == len(exact)
    for a in approx:
        assert [h.score for h in a] == sorted((h.score for h in a), reverse=True)
    assert c.search(queries, k=10, heap_factor=1.0) == exact


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory):
    folder = reference("cranfield")
    doc_ids, docs = load_vectors(folder / "doc_vectors.jsonl")
    query_ids, queries = load_vectors(folder / "query_vectors.jsonl")
    db = sparsedb.Database(tmp_path_factory.mktemp("cranfield") / "db")
    c = db.create_collection("cranfield", dimensions=30522)
    for start in range(0, len(doc_ids), 500):
        c.upsert(doc_ids[start : start + 500], docs[start : start + 500])
    yield c, doc_ids, docs, query_ids, queries
    db.close()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cranfield_reference_vectors_equal_brute_force(cranfield, algorithm):
    c, doc_ids, docs, query_ids, queries = cranfield
    assert len(c) == len(doc_ids) == 1400
    expected = brute_force(docs, doc_ids, queries)
    results = c.search(queries, k=100, algorithm=algorithm)
    for qid, hits, exp in zip(query_ids, results, expected):
        assert_top_k(hits, exp, 100, f"cranfield {algorithm} query {qid}")


def test_cranfield_matches_the_reference_run(cranfield):
    """The reference run (top-100 of the reference implementation) up to ties."""
    c, doc_ids, docs, query_ids, queries = cranfield
    run = {}
    with open(reference("cranfield") / "run.trec") as f:
        for line in f:
            qid, _, did, rank, score, _ = line.split()
            run.setdefault(qid, []).append((did, float(score)))
    results = c.search(queries, k=100, return_arrays=True)
    for i, qid in enumerate(query_ids):
        ref = run.get(qid, [])
        got = [s for s in results.scores[i] if s != -np.inf]
        assert len(got) == len(ref)
        assert np.allclose(got, [s for _, s in ref], atol=2e-5), qid


def test_one_dict_query_equals_the_batch_path(tmp_path, one_query_path):
    """A single {dim: weight} query takes sdb_collection_search_call (hits written into a buffer);
    its hits equal the batch path's for every id and payload form, filters and options, and hits
    too large for the buffer come back through a result object."""
    rng = np.random.default_rng(3)
    docs = random_corpus(rng, 400, 300, 12)
    ids = [f"doc-{i}" for i in range(400)]
    ids[5], ids[6], ids[7] = "nul\0inside", "ünïcödé-✓", "x" * 500
    payloads = [{"n": i} if i % 4 == 0 else (f"text {i}" if i % 4 == 1 else (b"\xff\xfe" if i % 4 == 2 else None)) for i in range(400)]
    payloads[9] = {"big": "y" * 70_000}  # more than the 64 KiB result buffer
    with sparsedb.Database(tmp_path / "db") as db:
        c = db.create_collection("c", dimensions=300, attributes={"n": "integer"})
        c.upsert(ids, docs, payloads=payloads, attributes=[{"n": i} for i in range(400)])
        queries = random_corpus(rng, 30, 300, 8)
        dicts = [dict(zip(queries[i].indices.tolist(), queries[i].data.tolist())) for i in range(30)]
        dicts.append({int(d): 1.0 for d in docs[9].indices} | {int(d): 1.0 for d in docs[5].indices})  # finds 9 and 5
        for options in ({}, {"k": 1}, {"k": 100, "algorithm": "bmw"}, {"with_payload": False},
                        {"filter": {"n": {"lt": 200}}}, {"filter": '{"n": {"gte": 100}}', "algorithm": "wand"},
                        {"max_query_terms": 3, "heap_factor": 1.2}):
            batch = c.search(dicts, **options)
            assert [c.search(d, **options) for d in dicts] == batch, options
        hits = c.search(dicts[-1], k=400)
        found = {h.id: h.payload for h in hits}
        assert found["nul\0inside"] == payloads[5] and found["doc-9"] == payloads[9]
        assert c.search(dicts[-1], k=400) == hits  # the buffer grew for the large payload: same hits
        # Keys and values that do not pack as uint32 / float take the general path and its checks.
        assert c.search({str(k): v for k, v in dicts[0].items()}) == c.search(dicts[0])
        assert c.search({np.int64(k): np.float32(v) for k, v in dicts[0].items()}) == c.search(dicts[0])
        assert c.search({True: 1.0, 2: 1}) == c.search({1: 1.0, 2: 1.0})  # as struct packs them: bool and int are ints, an int weight a float
        for bad, message in (({-1: 1.0}, "negative|out of range"), ({1.5: 1.0}, "not an integer"), ({1: "x"}, "real numbers"),
                             ({1: float("nan")}, "NaN"), ({1: 1e39}, "inf|too large"), ({2**32: 1.0}, "out of range|2\\^32")):
            with pytest.raises(sparsedb.InvalidInputError, match=message):
                c.search(bad)


def test_one_dict_query_with_options_changing_on_every_call(tmp_path, one_query_path):
    """The one-query path keeps the options it last packed per thread and rewrites them when they
    change: calls that alternate k, algorithm, payloads, approximate options, fields and
    collections, with queries long enough to grow the request buffer, from the importing thread
    and from another one, all equal brute force (or, for the approximate options, the batch
    path)."""
    import threading

    rng = np.random.default_rng(11)
    dims = 3000
    docs = random_corpus(rng, 600, dims, 40)
    other = random_corpus(rng, 300, dims, 40)
    ids = [f"d{i}" for i in range(600)]
    other_ids = [f"o{i}" for i in range(300)]
    # Queries of 1 to 1,500 entries: more than the 256 the request buffer starts with.
    lengths = [1, 7, 300, 40, 1500, 3, 700]
    queries = []
    for n in lengths:
        chosen = rng.choice(dims, size=n, replace=False)
        queries.append({int(d): float(w) for d, w in zip(chosen, rng.gamma(1.0, 1.0, size=n).astype(np.float32))})
    q_matrix = scipy.sparse.vstack([
        scipy.sparse.csr_matrix((list(q.values()), ([0] * len(q), list(q.keys()))), shape=(1, dims)) for q in queries
    ]).tocsr()
    with sparsedb.Database(tmp_path / "db") as db:
        a = db.create_collection("a", dimensions=dims)
        a.upsert(ids, docs, payloads=[{"i": i} for i in range(600)])
        b = db.create_collection("b", fields=[sparsedb.SparseField("s", dimensions=dims), sparsedb.SparseField("t", dimensions=dims)])
        b.upsert(other_ids, {"s": other, "t": docs[:300]})
        expected_a = brute_force(docs, ids, q_matrix)
        expected_s = brute_force(other, other_ids, q_matrix)
        expected_t = brute_force(docs[:300], other_ids, q_matrix)
        # (collection, options, brute force, whether hits carry their payload {"i": n})
        calls = [
            (a, {"k": 10}, expected_a, True), (a, {"k": 3, "algorithm": "bmw", "with_payload": False}, expected_a, False),
            (b, {"k": 25, "field": "s", "algorithm": "wand"}, expected_s, False), (a, {"k": 1, "algorithm": "exhaustive"}, expected_a, True),
            (b, {"k": 7, "field": "t"}, expected_t, False), (a, {"k": 50, "heap_factor": 1.0, "threads": 1}, expected_a, True),
        ]

        def run(results):
            for round_ in range(2):
                for i, q in enumerate(queries):
                    c, options, expected, with_payloads = calls[(i + round_) % len(calls)]
                    results.append((c.search(q, **options), expected[i], options, with_payloads, i))
                    # An approximate search in between, with its own options: as the batch path answers it.
                    approx = {"k": 5, "max_query_terms": 2, "heap_factor": 1.5, "field": options.get("field")}
                    assert c.search(q, **approx) == c.search([q], **approx)[0]

        def grow(results):
            # Longer and longer queries with the same options, in a new thread (whose buffers start
            # small): the buffer grows between two calls whose options are the same.
            for i in sorted(range(len(queries)), key=lambda i: len(queries[i])):
                results.append((a.search(queries[i], k=10), expected_a[i], {"k": 10}, True, i))

        here, there, growing = [], [], []
        run(here)
        for target, results in ((run, there), (grow, growing)):
            worker = threading.Thread(target=target, args=(results,))
            worker.start()
            worker.join()
        assert len(there) == len(here) == 2 * len(queries) and len(growing) == len(queries)
        for hits, expected, options, with_payloads, i in here + there + growing:
            assert_top_k(hits, expected, options["k"], f"query {i} ({len(queries[i])} entries) {options}")
            assert [h.payload for h in hits] == [{"i": int(h.id[1:])} if with_payloads else None for h in hits]


def test_one_dict_query_whose_keys_change_the_dict(tmp_path, one_query_path):
    """Keys whose __index__ deletes entries of the very dict being searched: no crash, and the
    search answers the dict as it is after the conversion (the general path's answer)."""

    class Shrinking:
        def __init__(self, value):
            self.value = value

        def __index__(self):
            victim.pop(7, None)
            return self.value

        def __hash__(self):
            return hash(self.value)

        def __eq__(self, other):
            return self.value == other

    with sparsedb.Database(tmp_path / "db") as db:
        c = db.create_collection("c", dimensions=10)
        c.upsert(["a", "b"], [{1: 1.0, 7: 2.0}, {2: 1.0}])
        victim = {Shrinking(1): 1.0, 7: 1.0, Shrinking(2): 0.5}
        hits = c.search(victim)
        assert 7 not in victim
        assert hits == c.search({1: 1.0, 2: 0.5})
