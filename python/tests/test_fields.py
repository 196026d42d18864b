"""Every field kind, attributes, filters and hybrid search through Python, against numpy brute force.

One collection holds a sparse field, two dense fields (dot f32, cosine f16), and two CSR fields
(flat, inverted), with keyword / integer / float / bool attributes; it is written in several
transactions with replacements and deletes. Each search is compared with brute force over the
live documents the filter admits (the filter evaluated here, independently of the engine).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse

import sparsedb
from conftest import ALGORITHMS, random_corpus

N = 1500
SPARSE_DIMS = 800
DENSE_DIMS = 24
CSR_DIMS = 512
CSR_K = 8
LANGS = ["en", "de", "fr", "it"]


def random_codes(rng, n, dims, k):
    """k-sparse non-negative codes (CSR embeddings)."""
    rows = np.repeat(np.arange(n), k)
    cols = np.concatenate([rng.choice(dims, size=k, replace=False) for _ in range(n)])
    vals = rng.gamma(2.0, 1.0, size=n * k).astype(np.float32)
    m = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, dims))
    m.sort_indices()
    return m


def random_attributes(rng, n):
    out = []
    for i in range(n):
        a = {}
        r = rng.random()
        if r < 0.6:
            a["lang"] = LANGS[rng.integers(len(LANGS))]
        elif r < 0.85:
            a["lang"] = sorted(set(rng.choice(LANGS, size=2).tolist()))
        if rng.random() < 0.9:
            a["year"] = int(rng.integers(1990, 2021))
        if rng.random() < 0.8:
            a["rating"] = float(np.round(rng.normal(3.0, 1.0), 3))
        if rng.random() < 0.7:
            a["draft"] = bool(rng.random() < 0.3)
        out.append(a)
    return out


# -- an independent filter evaluator (the CLI's --filter semantics) -------------------------------


def _eq(value, wanted):
    if value is None:
        return False
    if isinstance(value, list):
        return wanted in value
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    return value == wanted


def matches(flt, attrs) -> bool:
    for key, operand in flt.items():
        if key == "$and":
            ok = all(matches(f, attrs) for f in operand)
        elif key == "$or":
            ok = any(matches(f, attrs) for f in operand)
        elif key == "$not":
            ok = not matches(operand, attrs)
        else:
            v = attrs.get(key)
            if isinstance(operand, dict):
                ok = True
                for op, x in operand.items():
                    if op == "in":
                        ok &= any(_eq(v, y) for y in x)
                    elif op == "eq":
                        ok &= _eq(v, x)
                    else:
                        if v is None or isinstance(v, (list, str, bool)):
                            ok = False
                        else:
                            ok &= {"gt": v > x, "gte": v >= x, "lt": v < x, "lte": v <= x}[op]
            else:
                ok = _eq(v, operand)
        if not ok:
            return False
    return True


FILTERS = [
    {"lang": "en"},                                   # keyword equality (lists: membership)
    {"lang": {"eq": "de"}},
    {"lang": {"in": ["fr", "it"]}},
    {"year": 2005},                                   # integer equality
    {"year": {"in": [1990, 2000, 2010, 2020]}},
    {"year": {"gte": 2000}},
    {"year": {"gt": 2000, "lte": 2010}},
    {"year": {"lt": 1995}},
    {"rating": {"gte": 3.5}},                         # float range
    {"rating": {"gt": 2.0, "lt": 3.0}},
    {"draft": False},                                 # bool
    {"draft": True, "lang": "en"},                    # several keys: AND
    {"$and": [{"lang": "en"}, {"year": {"gte": 2010}}]},
    {"$or": [{"lang": "it"}, {"draft": True}]},
    {"$not": {"lang": "en"}},                         # matches documents without lang too
    {"$not": {"$or": [{"year": {"lt": 2015}}, {"draft": True}]}},
    {"lang": "xx"},                                   # matches nothing
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = np.random.default_rng(2024)
    sparse = random_corpus(rng, N, SPARSE_DIMS, 20)
    dense = rng.normal(size=(N, DENSE_DIMS)).astype(np.float32)
    dense_cos = rng.normal(size=(N, DENSE_DIMS)).astype(np.float32)
    codes = random_codes(rng, N, CSR_DIMS, CSR_K)
    codes_inv = random_codes(rng, N, CSR_DIMS * 8, CSR_K)
    attrs = random_attributes(rng, N)
    ids = [f"doc-{i}" for i in range(N)]
    db = sparsedb.Database(tmp_path_factory.mktemp("fields") / "db")
    c = db.create_collection(
        "mixed",
        fields=[
            sparsedb.SparseField("splade", SPARSE_DIMS),
            sparsedb.DenseField("emb", DENSE_DIMS),
            sparsedb.DenseField("emb_cos", DENSE_DIMS, metric="cosine", precision="f16"),
            sparsedb.CSRField("code", CSR_DIMS, active_dimensions=CSR_K, index="flat"),
            sparsedb.CSRField("code_inv", CSR_DIMS * 8, active_dimensions=CSR_K, index="inverted"),
        ],
        attributes={"lang": "keyword", "year": "integer", "rating": float, "draft": bool},
    )

    def write(lo, hi, columns=False):
        part = attrs[lo:hi]
        if columns:  # a dict of columns, None where a document has no value
            part = {name: [a.get(name) for a in part] for name in ("lang", "year", "rating", "draft")}
        c.upsert(
            ids[lo:hi],
            {"splade": sparse[lo:hi], "emb": dense[lo:hi], "emb_cos": dense_cos[lo:hi], "code": codes[lo:hi], "code_inv": codes_inv[lo:hi]},
            payloads=[{"n": i} for i in range(lo, hi)],
            attributes=part,
        )

    for lo in range(0, N, 400):
        write(lo, min(N, lo + 400), columns=lo % 800 == 0)
    # Replace some documents (new vectors and attributes), delete others.
    rep = slice(200, 260)
    sparse = sparse.tolil()
    sparse[rep] = random_corpus(rng, 60, SPARSE_DIMS, 20)
    sparse = sparse.tocsr()
    dense[rep] = rng.normal(size=(60, DENSE_DIMS))
    attrs[rep] = random_attributes(rng, 60)
    write(200, 260)
    deleted = set(ids[::13])
    assert c.delete(sorted(deleted)) == len(deleted)
    live = np.array([i not in deleted for i in ids])
    # The cosine f16 field's stored rows (normalised, then rounded to half precision) are the
    # oracle's rows for that field: its scores are exact for the stored values.
    stored = c.get([ids[i] for i in range(N)])
    cos_rows = np.array([d.vectors["emb_cos"] if d is not None else np.zeros(DENSE_DIMS, np.float32) for d in stored])
    world = dict(
        c=c, ids=ids, live=live, attrs=attrs, rng=rng,
        data={"splade": sparse, "emb": dense, "emb_cos": cos_rows, "code": codes, "code_inv": codes_inv},
    )
    yield world
    db.close()


def queries_for(world, field, n=6, seed=0):
    rng = np.random.default_rng(seed)
    if field == "splade":
        return random_corpus(rng, n, SPARSE_DIMS, 5)
    if field in ("emb", "emb_cos"):
        return rng.normal(size=(n, DENSE_DIMS)).astype(np.float32)
    return random_codes(rng, n, CSR_DIMS * (8 if field == "code_inv" else 1), CSR_K)


def brute_scores(world, field, queries):
    """Scores (queries × documents), float64."""
    docs = world["data"][field]
    q = queries
    if field == "emb_cos":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if scipy.sparse.issparse(docs):
        return (q.astype(np.float64) @ docs.astype(np.float64).T).toarray()
    return np.asarray(q, dtype=np.float64) @ docs.astype(np.float64).T


def check(hits, scores_row, admitted, k, positive_only, tol, context):
    """The hits are a correct top-k of the admitted documents: right scores, best first, all
    admitted, and nothing clearly better left out (documents tied within tol may be any)."""
    candidates = admitted & (scores_row > 0 if positive_only else True)
    order = np.argsort(-scores_row[candidates], kind="stable")
    expected = scores_row[candidates][order]
    want = min(k, len(expected))
    assert len(hits) == want, f"{context}: {len(hits)} hits, expected {want}"
    for i, h in enumerate(hits):
        j = int(h.id.split("-")[1])
        assert admitted[j], f"{context}: hit {h.id} is not admitted by the filter"
        assert abs(h.score - scores_row[j]) <= tol * max(1.0, abs(scores_row[j])), f"{context}: score of {h.id}: {h.score} vs {scores_row[j]}"
        assert abs(h.score - expected[i]) <= tol * max(1.0, abs(expected[i])), f"{context}: rank {i}: {h.score} vs {expected[i]}"
    if hits:
        kth = hits[-1].score
        got = {h.id for h in hits}
        for j in np.nonzero(candidates & (scores_row > kth + tol * max(1.0, abs(kth))))[0]:
            assert world_id(j) in got, f"{context}: missing doc-{j} ({scores_row[j]} > {kth})"


def world_id(j):
    return f"doc-{j}"


TOLERANCE = {"splade": 1e-9, "emb": 2e-5, "emb_cos": 2e-3, "code": 2e-5, "code_inv": 1e-9}


def test_schema_is_reported(world):
    c = world["c"]
    assert list(c.fields) == ["splade", "emb", "emb_cos", "code", "code_inv"]
    assert c.fields["emb_cos"] == sparsedb.DenseField("emb_cos", DENSE_DIMS, metric="cosine", precision="f16")
    assert c.fields["code"].index == "flat" and c.fields["code_inv"].index == "inverted"
    assert c.fields["code"].active_dimensions == CSR_K
    assert c.attributes == {"lang": "keyword", "year": "integer", "rating": "float", "draft": "bool"}
    stats = c.statistics()
    assert stats["attributes"] == c.attributes
    assert stats["documents"] == int(world["live"].sum())


@pytest.mark.parametrize("field", ["splade", "emb", "emb_cos", "code", "code_inv"])
def test_every_kind_equals_brute_force(world, field):
    c, live = world["c"], world["live"]
    queries = queries_for(world, field)
    scores = brute_scores(world, field, queries)
    positive_only = field not in ("emb", "emb_cos")
    algorithms = ALGORITHMS if field in ("splade", "code_inv") else ["maxscore"]
    for algorithm in algorithms:
        for k in (1, 10, 50):
            results = c.search(queries, k=k, field=field, algorithm=algorithm)
            for q, hits in enumerate(results):
                check(hits, scores[q], live, k, positive_only, TOLERANCE[field], f"{field} {algorithm} k={k} query {q}")
    # One query: a 1-D array (dense) or a dict (sparse) gives a flat list.
    one = queries[0] if not scipy.sparse.issparse(queries) else dict(zip(queries[0].indices.tolist(), queries[0].data.tolist()))
    assert c.search(one, k=10, field=field) == c.search(queries[:1], k=10, field=field)[0]


@pytest.mark.parametrize("field", ["splade", "emb", "emb_cos", "code", "code_inv"])
def test_filtered_search_equals_brute_force_over_the_matching_rows(world, field):
    c, live, attrs = world["c"], world["live"], world["attrs"]
    queries = queries_for(world, field, n=4, seed=1)
    scores = brute_scores(world, field, queries)
    positive_only = field not in ("emb", "emb_cos")
    algorithms = ALGORITHMS if field in ("splade", "code_inv") else ["maxscore"]
    for flt in FILTERS:
        admitted = live & np.array([matches(flt, a) for a in attrs])
        for algorithm in algorithms:
            for k in (3, 25):
                as_json = json.dumps(flt) if k == 3 else flt  # a dict or a JSON string
                results = c.search(queries, k=k, field=field, algorithm=algorithm, filter=as_json)
                for q, hits in enumerate(results):
                    check(hits, scores[q], admitted, k, positive_only, TOLERANCE[field], f"{field} {flt} {algorithm} k={k} q{q}")


def test_filtered_search_after_compaction_and_reopen(world, tmp_path):
    c = world["c"]
    flt = {"$or": [{"lang": "en"}, {"year": {"gte": 2015}}]}
    q = queries_for(world, "splade", n=3, seed=5)
    before = c.search(q, k=20, field="splade", algorithm="bmw", filter=flt)
    c.compact()
    assert c.search(q, k=20, field="splade", algorithm="bmw", filter=flt) == before
    target = tmp_path / "copy"
    c.database.write_compacted_copy(target)
    with sparsedb.Database(target, read_only=True) as copy:
        assert copy["mixed"].search(q, k=20, field="splade", algorithm="bmw", filter=flt) == before


def test_get_returns_every_field_and_the_attributes(world):
    c, attrs, data = world["c"], world["attrs"], world["data"]
    i = 201  # a replaced document
    doc = c.get(f"doc-{i}")
    assert doc.id == f"doc-{i}" and doc.payload == {"n": i}
    assert doc.attributes == stored_form(attrs[i])
    assert doc.vector is None  # several fields, none named "vector"
    assert set(doc.vectors) == {"splade", "emb", "emb_cos", "code", "code_inv"}
    row = data["splade"][i]
    assert doc.vectors["splade"] == pytest.approx(dict(zip(row.indices.tolist(), row.data.tolist())))
    assert np.array_equal(doc.vectors["emb"], data["emb"][i])
    assert doc.vectors["emb"].dtype == np.float32
    assert abs(np.linalg.norm(doc.vectors["emb_cos"]) - 1) < 2e-3
    assert c.get(f"doc-{i}", field="emb").vector is not None
    assert np.array_equal(c.get(f"doc-{i}", field="emb").vector, data["emb"][i])
    assert c.get("doc-0") is None  # deleted (every 13th)
    for d, a in zip(c.get([f"doc-{j}" for j in range(1, 40)]), attrs[1:40]):
        if d is not None:
            assert d.attributes == stored_form(a)
            assert all(type(v) is float for n, v in d.attributes.items() if n == "rating")


def stored_form(a):
    """Attribute values as read back: as given (a keyword list of one stays a list)."""
    return dict(a)


def snapshot(c):
    q = {1: 1.0, 2: 0.5, 7: 2.0}
    return (
        len(c),
        c.get([f"doc-{j}" for j in range(0, 60)] + ["new-1", "new-2"]),
        c.search(q, k=20, field="splade"),
        c.search(q, k=20, field="splade", filter={"lang": "en"}),
        c.statistics(),
    )


def _docs_equal(a, b):
    if a is None or b is None:
        return a is b
    if (a.id, a.payload, a.attributes) != (b.id, b.payload, b.attributes) or set(a.vectors) != set(b.vectors):
        return False
    return all(
        np.array_equal(a.vectors[f], b.vectors[f]) if isinstance(a.vectors[f], np.ndarray) else a.vectors[f] == b.vectors[f]
        for f in a.vectors
    )


def assert_unchanged(before, after):
    assert before[0] == after[0]
    assert all(_docs_equal(x, y) for x, y in zip(before[1], after[1]))
    assert before[2:] == after[2:]


BAD_ATTRIBUTES = {
    "keyword given a number": ([{"lang": 3}], "attribute 'lang' is keyword"),
    "keyword list with a number": ([{"lang": ["en", 2]}], "attribute 'lang' is keyword"),
    "integer given a fraction": ([{"year": 2000.5}], "attribute 'year' is integer"),
    "integer given a string": ([{"year": "2000"}], "attribute 'year' is integer"),
    "integer given a bool": ([{"year": True}], "attribute 'year' is integer"),
    "integer beyond 64 bits": ([{"year": 2**70}], "attribute 'year' is integer"),
    "integer just beyond Int64": ([{"year": 2**63}], "attribute 'year' is integer"),
    "integer below Int64": ([{"year": -2**63 - 1}], "attribute 'year' is integer"),
    "unsigned 64-bit maximum": ([{"year": 2**64 - 1}], "attribute 'year' is integer"),
    "float given a string": ([{"rating": "high"}], "attribute 'rating' is float"),
    "float NaN": ([{"rating": math.nan}], "finite"),
    "bool given an int": ([{"draft": 1}], "attribute 'draft' is bool"),
    "undeclared attribute": ([{"colour": "red"}], "declares no attribute 'colour'"),
    "not a dict": (["lang=en"], "expected a dict"),
    "count mismatch": ([{"lang": "en"}, {"lang": "de"}, {"lang": "fr"}], "3 attribute dicts for 2"),
    "column too short": ({"lang": ["en"]}, "column 'lang' has 1 values for 2"),
    "unserializable": ([{"lang": object()}], "attributes"),
    "second document bad": ([{"lang": "en"}, {"year": "x"}], "document 'new-2'"),
}


@pytest.mark.parametrize("case", list(BAD_ATTRIBUTES))
def test_bad_attributes_raise_and_write_nothing(world, case):
    c = world["c"]
    before = snapshot(c)
    attributes, words = BAD_ATTRIBUTES[case]
    if len(attributes) == 1 and isinstance(attributes, list):
        attributes = attributes + [None]
    with pytest.raises(sparsedb.InvalidInputError) as info:
        c.upsert(
            ["new-1", "new-2"],
            {"splade": [{1: 1.0}, {2: 1.0}], "emb": np.ones((2, DENSE_DIMS), np.float32)},
            attributes=attributes,
        )
    assert words in str(info.value), str(info.value)
    assert_unchanged(before, snapshot(c))


BAD_FILTERS = {
    "not JSON": ("{lang: en", "not valid JSON"),
    "not an object": ("[1, 2]", "must be a JSON object"),
    "empty object": ({}, "empty object"),
    "undeclared attribute": ({"colour": "red"}, "does not declare"),
    "keyword compared with a number": ({"lang": 3}, "attribute 'lang' is keyword"),
    "integer compared with a string": ({"year": "2000"}, "attribute 'year' is integer"),
    "range on a keyword": ({"lang": {"gte": 3}}, "need a number attribute"),
    "range bound a string": ({"year": {"gte": "2000"}}, "a range bound must be a number"),
    "unknown operator": ({"year": {"near": 2000}}, "unknown operator 'near'"),
    "unknown $ operator": ({"$xor": [{"lang": "en"}]}, "unknown operator '$xor'"),
    "$or not a list": ({"$or": {"lang": "en"}}, "must be a non-empty array"),
    "in not a list": ({"lang": {"in": "en"}}, "must be an array"),
    "a Python list": ([{"lang": "en"}], "filter must be a dict"),
    "NaN bound": ({"rating": {"gt": math.nan}}, "JSON"),
}


@pytest.mark.parametrize("case", list(BAD_FILTERS))
@pytest.mark.parametrize("field", ["splade", "emb"])
def test_bad_filters_raise_and_change_nothing(world, case, field):
    c = world["c"]
    before = snapshot(c)
    flt, words = BAD_FILTERS[case]
    q = queries_for(world, field, n=2)
    with pytest.raises(sparsedb.InvalidInputError) as info:
        c.search(q, k=5, field=field, filter=flt)
    assert words in str(info.value), str(info.value)
    with pytest.raises(sparsedb.InvalidInputError):
        c.search_hybrid({"splade": queries_for(world, "splade", n=2), "emb": queries_for(world, "emb", n=2)}, k=5, filter=flt)
    assert_unchanged(before, snapshot(c))


def rrf_expected(world, fields, queries, admitted, depth, q):
    """RRF over each field's exact top-depth among the admitted documents (brute force)."""
    fused = {}
    for f in fields:
        s = brute_scores(world, f, queries[f])[q]
        cand = np.nonzero(admitted & (s > 0 if f not in ("emb", "emb_cos") else True))[0]
        ranked = cand[np.argsort(-s[cand], kind="stable")][:depth]
        for rank, j in enumerate(ranked):
            fused[int(j)] = fused.get(int(j), 0.0) + 1.0 / (60 + rank + 1)
    return fused


@pytest.mark.parametrize("flt", [None, {"lang": "en"}, {"year": {"gte": 2010}}, {"$not": {"draft": True}}])
def test_hybrid_returns_only_filtered_hits_with_rrf_scores(world, flt):
    c, live, attrs = world["c"], world["live"], world["attrs"]
    fields = ["splade", "emb"]
    queries = {f: queries_for(world, f, n=3, seed=9) for f in fields}
    admitted = live & np.array([flt is None or matches(flt, a) for a in attrs])
    depth = 40
    results = c.search_hybrid(queries, k=15, depth=depth, filter=flt)
    assert len(results) == 3
    for q, hits in enumerate(results):
        expected = rrf_expected(world, fields, queries, admitted, depth, q)
        ranked = sorted(expected.values(), reverse=True)
        assert len(hits) == min(15, len(expected))
        for i, h in enumerate(hits):
            j = int(h.id.split("-")[1])
            assert admitted[j], f"{flt}: hit {h.id} is not admitted"
            assert abs(h.score - ranked[i]) < 1e-9
            assert set(h.field_scores) == set(fields)
            for f in fields:
                s = brute_scores(world, f, queries[f][q : q + 1])[0][j]
                assert abs(h.field_scores[f] - s) <= TOLERANCE[f] * max(1.0, abs(s))
            assert h.payload == {"n": j}


def test_hybrid_weighted_and_options(world):
    c, live, attrs = world["c"], world["live"], world["attrs"]
    flt = {"lang": {"in": ["de", "fr"]}}
    admitted = live & np.array([matches(flt, a) for a in attrs])
    sq = queries_for(world, "splade", n=1, seed=3)
    dq = queries_for(world, "emb_cos", n=1, seed=3)[0]
    hits = c.search_hybrid({"splade": sq[0:1], "emb_cos": dq[None, :]}, k=10, fusion="weighted", weights={"splade": 0.8}, filter=flt)[0]
    assert hits and all(admitted[int(h.id.split("-")[1])] for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # One query per field (a dict and a 1-D array): a flat list of hits.
    single = c.search_hybrid(
        {"splade": dict(zip(sq[0].indices.tolist(), sq[0].data.tolist())), "emb_cos": dq}, k=10, fusion="weighted",
        weights={"splade": 0.8}, filter=flt)
    assert [(h.id, h.score) for h in single] == [(h.id, h.score) for h in hits]
    arrays = c.search_hybrid({"splade": sq, "emb_cos": dq[None, :]}, k=10, return_arrays=True)
    assert arrays.ids.shape[0] == 1
    with pytest.raises(sparsedb.InvalidInputError, match="not searched"):
        c.search_hybrid({"splade": sq}, weights={"emb": 1.0})
    with pytest.raises(sparsedb.InvalidInputError, match="fusion must be"):
        c.search_hybrid({"splade": sq}, fusion="borda")
    with pytest.raises(sparsedb.InvalidInputError, match="same number"):
        c.search_hybrid({"splade": sq, "emb": queries_for(world, "emb", n=2)})
    with pytest.raises(sparsedb.InvalidInputError, match="no field"):
        c.search_hybrid({"nope": sq})


def test_dense_options_and_errors(world):
    c = world["c"]
    q = queries_for(world, "emb", n=2, seed=4)
    # Matryoshka truncation: the first 8 dimensions.
    scores = np.asarray(q[:, :8], np.float64) @ world["data"]["emb"][:, :8].astype(np.float64).T
    for i, hits in enumerate(c.search(q, k=5, field="emb", truncate_dim=8)):
        check(hits, scores[i], world["live"], 5, False, 2e-5, f"truncate_dim query {i}")
    with pytest.raises(sparsedb.InvalidInputError, match="takes queries of 24"):
        c.search(np.ones(5, np.float32), field="emb")
    with pytest.raises(sparsedb.InvalidInputError):
        c.search(np.array([np.nan] * DENSE_DIMS), field="emb")
    with pytest.raises(sparsedb.InvalidInputError, match="1 or 2 dimensions"):
        c.search(np.ones((1, 2, DENSE_DIMS)), field="emb")
    with pytest.raises(sparsedb.InvalidInputError, match="a dense field takes float arrays"):
        c.search({1: 1.0}, field="emb")
    before = snapshot(c)
    with pytest.raises(sparsedb.InvalidInputError, match="takes 24 values"):
        c.upsert(["new-1"], np.ones((1, 5), np.float32), field="emb")
    with pytest.raises(sparsedb.InvalidInputError, match="a dense field takes float arrays"):
        c.upsert(["new-1"], [{1: 1.0}], field="emb_cos")
    with pytest.raises(sparsedb.InvalidInputError, match="zero vector"):
        c.upsert(["new-1"], np.zeros((1, DENSE_DIMS), np.float32), field="emb_cos")
    with pytest.raises(sparsedb.InvalidInputError, match="CSR|active|more than"):
        c.upsert(["new-1"], [{d: 1.0 for d in range(CSR_K + 1)}], field="code")
    assert_unchanged(before, snapshot(c))


def test_a_keyword_list_of_one_reads_back_as_a_list(db):
    # A list is stored with its own tag (format-spec §5, tag 4), so a list of one stays a list.
    c = db.create_collection("kw", dimensions=10, attributes={"tags": "keyword"})
    c.upsert(["one", "list", "single"], [{1: 1.0}] * 3, attributes=[{"tags": ["x"]}, {"tags": ["x", "y"]}, {"tags": "x"}])
    assert c.get("list").attributes == {"tags": ["x", "y"]}
    assert c.get("single").attributes == {"tags": "x"}
    assert c.get("one").attributes == {"tags": ["x"]}
    # And every shape is found by the keyword it holds.
    assert {h.id for h in c.search({1: 1.0}, k=10, filter={"tags": "x"})} == {"one", "list", "single"}
    assert {h.id for h in c.search({1: 1.0}, k=10, filter={"tags": "y"})} == {"list"}


def test_upsert_forms(db):
    c = db.create_collection(
        "forms", fields=[sparsedb.SparseField("s", 50), sparsedb.DenseField("d", 3)], attributes={"tag": str, "n": int})
    # One id: a 1-D vector and a dict of attribute values.
    c.upsert("one", np.array([1, 2, 3]), payloads={"p": 1}, attributes={"tag": "x", "n": 5}, field="d")
    doc = c.get("one")
    assert doc.attributes == {"tag": "x", "n": 5} and doc.payload == {"p": 1}
    assert list(doc.vectors) == ["d"] and np.array_equal(doc.vectors["d"], [1, 2, 3])
    # Lists with None: those documents get no vector in that field.
    c.upsert(["a", "b"], {"s": [{1: 1.0}, None], "d": [None, [0.0, 1.0, 0.0]]}, attributes={"tag": ["t", None], "n": np.array([1, 2])})
    a, b = c.get(["a", "b"])
    assert list(a.vectors) == ["s"] and list(b.vectors) == ["d"]
    assert a.attributes == {"tag": "t", "n": 1} and b.attributes == {"n": 2}
    # A keyword list; numpy scalars.
    c.upsert(["c"], {"s": [{2: 1.0}]}, attributes=[{"tag": ["x", "y"], "n": np.int64(7)}])
    assert c.get("c").attributes == {"tag": ["x", "y"], "n": 7}
    assert [h.id for h in c.search({1: 1.0, 2: 1.0}, field="s", filter={"tag": "y"})] == ["c"]
    assert [h.id for h in c.search([0, 1, 0], field="d", filter={"n": {"lte": 2}})] == ["b"]
    # Replacing a document replaces its attributes.
    c.upsert(["c"], {"s": [{2: 1.0}]})
    assert c.get("c").attributes == {}
    assert c.search({2: 1.0}, field="s", filter={"tag": "y"}) == []
    # The old forms still work.
    old = db.create_collection("old", dimensions=10)
    old.upsert(["x"], [{1: 1.0}])
    assert old.get("x").vector == {1: 1.0}
    multi = db.create_collection("multi", fields={"title": 10, "body": 10})
    multi.upsert(["x"], fields={"title": [{1: 1.0}], "body": [{2: 1.0}]})
    assert multi.get("x").vectors == {"title": {1: 1.0}, "body": {2: 1.0}}


def test_schema_errors(db):
    with pytest.raises(sparsedb.InvalidInputError, match="metric"):
        sparsedb.DenseField("e", 8, metric="l2")
    with pytest.raises(sparsedb.InvalidInputError, match="active_dimensions"):
        sparsedb.CSRField("c", 64, active_dimensions=300)
    with pytest.raises(sparsedb.InvalidInputError, match="precision"):
        sparsedb.DenseField("e", 8, precision="f8")
    with pytest.raises(sparsedb.InvalidInputError, match="type must be"):
        db.create_collection("x", attributes={"a": "date"})
    with pytest.raises(sparsedb.InvalidInputError, match="used twice"):
        db.create_collection("x", fields=[sparsedb.SparseField("s", 8), sparsedb.DenseField("s", 8)])
    with pytest.raises(sparsedb.InvalidInputError, match="65,536"):
        db.create_collection("x", fields=[sparsedb.DenseField("e", 70000)])
    assert db.collections() == []
    c = db.create_collection("x", fields=[sparsedb.DenseField("e", 8, precision=np.float16)], attributes={"a": "keyword"})
    assert db.create_collection("x", fields=[sparsedb.DenseField("e", 8, precision="f16")], attributes={"a": str}, exist_ok=True).fields == c.fields
    with pytest.raises(sparsedb.InvalidInputError, match="another schema"):
        db.create_collection("x", fields=[sparsedb.DenseField("e", 8)], exist_ok=True)


def test_a_repeated_filter_is_encoded_once_but_compared_strictly(world):
    c, live, attrs = world["c"], world["live"], world["attrs"]
    q = {1: 1.0, 2: 1.0, 3: 1.0, 5: 1.0, 8: 1.0}
    flt = {"draft": True}
    first = c.search(q, k=50, field="splade", filter=flt)
    assert first and all(attrs[int(h.id.split("-")[1])].get("draft") is True for h in first)
    assert c.search(q, k=50, field="splade", filter=flt) == first
    with pytest.raises(sparsedb.InvalidInputError, match="attribute 'draft' is bool"):
        c.search(q, k=50, field="splade", filter={"draft": 1})  # equal in Python, not in JSON
    flt["draft"] = False  # the same dict, changed
    second = c.search(q, k=50, field="splade", filter=flt)
    assert second and all(attrs[int(h.id.split("-")[1])].get("draft") is False for h in second)
    assert c.search(q, k=50, field="splade", filter={"year": 2005.0}) == c.search(q, k=50, field="splade", filter={"year": 2005})
