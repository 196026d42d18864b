"""Text: the native encoder against the reference vectors, sentence-transformers' SparseEncoder
output going in unchanged, ingest and text search with the recorded encoder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse

import sparsedb
from conftest import DATA, MODELS, assert_top_k, brute_force, load_vectors, reference

SPLADE_TINY = MODELS / "splade-tiny"
TEXTS = {
    "paris": "Paris is the capital and largest city of France.",
    "solar": "Solar panels convert sunlight into electricity.",
    "bread": "Bread is baked from flour, water and yeast.",
    "rome": "Rome was the capital of the Roman Empire.",
    "wing": "The wing of the aircraft was tested in a supersonic wind tunnel.",
}


@pytest.fixture(scope="module")
def encoder():
    if not SPLADE_TINY.is_dir():
        pytest.fail(f"the default model is missing at {SPLADE_TINY}: run tools/fetch-model.sh")
    return sparsedb.Encoder("default")


def test_encoder_metadata(encoder):
    assert encoder.name == "splade-tiny"
    assert encoder.kind == "splade"
    assert encoder.dimensions == 30522
    assert "splade-tiny" in repr(encoder)


def test_default_encoder_reproduces_reference_query_vectors(encoder):
    ids, expected = load_vectors(reference("cranfield") / "query_vectors.jsonl")
    texts = {}
    with open(DATA / "cranfield" / "queries.jsonl") as f:
        for line in f:
            o = json.loads(line)
            texts[o["_id"]] = o["text"]
    got = encoder.encode_queries([texts[i] for i in ids])
    assert isinstance(got, scipy.sparse.csr_matrix)
    assert got.shape == expected.shape == (len(ids), 30522)
    diff = abs(got.astype(np.float64) - expected.astype(np.float64))
    assert diff.max() <= 2e-3, f"largest difference {diff.max()}"
    # The same active dimensions (a weight near zero may flip across the threshold).
    for i in range(len(ids)):
        a, b = set(got[i].indices), set(expected[i].indices)
        assert len(a ^ b) <= 2, ids[i]


def test_encode_single_text_and_max_active_dims(encoder):
    one = encoder.encode_documents(TEXTS["paris"])
    assert one.shape == (1, 30522) and one.nnz > 10
    top = encoder.encode_documents(TEXTS["paris"], max_active_dims=5)
    assert top.nnz == 5
    largest = np.sort(one.data)[-5:]
    assert np.allclose(np.sort(top.data), largest)


def test_sentence_transformers_vectors_go_in_unchanged_and_are_found(db):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    torch = pytest.importorskip("torch")
    if not SPLADE_TINY.is_dir():
        pytest.fail(f"the default model is missing at {SPLADE_TINY}: run tools/fetch-model.sh")
    model = st.SparseEncoder(str(SPLADE_TINY), device="cpu")
    ids = list(TEXTS)
    docs = model.encode_document(list(TEXTS.values()), convert_to_sparse_tensor=True)
    assert docs.is_sparse
    c = db.create_collection("st", dimensions=30522)
    c.upsert(ids, docs, payloads=[{"text": t} for t in TEXTS.values()])
    # Unchanged: every stored vector is exactly the tensor's row.
    dense = docs.to_dense().numpy()
    for i, doc_id in enumerate(ids):
        stored = c.get(doc_id)
        expected = {int(d): float(dense[i, d]) for d in np.nonzero(dense[i])[0]}
        assert stored.vector == expected
        assert stored.payload == {"text": TEXTS[doc_id]}
    # Found: query tensors (a batch, and a single 1-D one) give brute force's ranking.
    queries = ["what is the capital of france", "how do solar panels work", "wind tunnel aircraft test"]
    q = model.encode_query(queries, convert_to_sparse_tensor=True)
    expected = brute_force(
        scipy.sparse.csr_matrix(dense), ids, scipy.sparse.csr_matrix(q.to_dense().numpy())
    )
    results = c.search(q, k=3)
    for hits, exp in zip(results, expected):
        assert_top_k(hits, exp, 3)
    assert [h.id for h in results[0]][0] == "paris"
    assert [h.id for h in results[1]][0] == "solar"
    assert [h.id for h in results[2]][0] == "wing"
    single = c.search(model.encode_query(queries[0], convert_to_sparse_tensor=True), k=3)
    assert single == results[0]
    assert single[0].payload == {"text": TEXTS["paris"]}
    # The native encoder gives the same vectors (float32 rounding aside).
    native = sparsedb.Encoder(str(SPLADE_TINY)).encode_documents(list(TEXTS.values()))
    assert abs(native - scipy.sparse.csr_matrix(dense)).max() < 2e-3


def test_ingest_and_search_text_with_the_recorded_encoder(db, encoder):
    c = db.create_collection("articles", dimensions=30522)
    with pytest.raises(sparsedb.InvalidInputError):  # no encoder recorded yet, none given
        c.search_text("capital of france")
    progress = c.ingest(list(TEXTS), list(TEXTS.values()), encoder=encoder, payloads=[{"n": i} for i in range(5)])
    assert progress["committed"] == 5 and progress["skipped"] == 0
    assert c.encoder_info()["name"] == "splade-tiny"
    hits = c.search_text("what is the capital of france", k=2)
    assert hits[0].id == "paris" and hits[0].payload == {"n": 0}
    # The same as encoding the query and searching the vector.
    q = encoder.encode_queries(["what is the capital of france"])
    assert c.search(q, k=2)[0] == hits
    batch = c.search_text(["capital of france", "solar electricity"], k=1)
    assert [r[0].id for r in batch] == ["paris", "solar"]
    # Ingesting the same ids again skips them (resume), unless replace.
    assert c.ingest(["paris"], ["something else entirely"], encoder=encoder)["skipped"] == 1
    assert c.ingest(["paris"], ["Bread and yeast."], encoder=encoder, replace=True)["committed"] == 1
    assert c.search_text("what is the capital of france", k=1)[0].id == "rome"
    # Another collection's recorded encoder by default; an empty query is refused.
    with pytest.raises(sparsedb.InvalidInputError):
        c.search_text("   ")


def test_model_mismatch_and_missing_model(db, tmp_path, encoder):
    with pytest.raises(sparsedb.ModelError):
        sparsedb.Encoder(tmp_path / "no-such-model")
    c = db.create_collection("mm", dimensions=30522)
    c.ingest(["a"], ["hello world"], encoder=encoder)
    minilm = MODELS / "all-MiniLM-L6-v2"
    if minilm.is_dir():
        dense = sparsedb.Encoder(minilm)
        with pytest.raises(sparsedb.Error):
            c.ingest(["b"], ["x"], encoder=dense)


MINILM = MODELS / "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm():
    if not MINILM.is_dir():
        pytest.skip(f"no dense model at {MINILM}")
    return sparsedb.Encoder(MINILM)


def test_dense_encoder_matches_sentence_transformers(minilm):
    assert minilm.kind == "dense" and not minilm.sparse and minilm.dimensions == 384
    texts = list(TEXTS.values())
    rows = minilm.encode_documents(texts)
    assert isinstance(rows, np.ndarray) and rows.shape == (len(texts), 384) and rows.dtype == np.float32
    assert minilm.encode_queries(texts[:2], truncate_dim=64).shape == (2, 64)
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(MINILM), device="cpu")
    assert np.abs(model.encode(texts) - rows).max() < 1e-5


def test_ingest_several_fields_with_attributes_and_filtered_text_search(db, encoder, minilm):
    c = db.create_collection(
        "hybrid", fields=[sparsedb.SparseField("splade", 30522), sparsedb.DenseField("minilm", 384, metric="cosine")],
        attributes={"topic": "keyword", "year": "integer"},
    )
    ids = list(TEXTS)
    topics = {"paris": "geo", "solar": "energy", "bread": "food", "rome": "geo", "wing": "aero"}
    progress = c.ingest(
        ids, list(TEXTS.values()), encoder={"splade": encoder, "minilm": minilm},
        attributes={"topic": [topics[i] for i in ids], "year": [2000 + n for n in range(len(ids))]},
    )
    assert progress["committed"] == len(ids)
    doc = c.get("rome")
    assert set(doc.vectors) == {"splade", "minilm"} and doc.attributes == {"topic": "geo", "year": 2003}
    assert c.encoder_info("minilm")["name"] == "all-MiniLM-L6-v2"
    # Text search on either field uses that field's recorded encoder.
    assert c.search_text("the capital of France", field="minilm", k=1)[0].id == "paris"
    assert c.search_text("the capital of France", field="splade", k=1)[0].id == "paris"
    # Filtered: only geo documents from 2003 on, on both fields and fused.
    for f in ("splade", "minilm"):
        hits = c.search_text("the capital of France", field=f, k=5, filter={"topic": "geo", "year": {"gte": 2003}})
        assert [h.id for h in hits] == ["rome"]
    fused = c.search_hybrid(
        {"splade": encoder.encode_queries("capital city"), "minilm": minilm.encode_queries("capital city")}, k=5,
        filter={"topic": "geo"})[0]
    assert {h.id for h in fused} == {"paris", "rome"}
    with pytest.raises(sparsedb.ModelMismatchError):
        c.search_text("capital", field="minilm", encoder=encoder, filter={"topic": "geo"})
    with pytest.raises(sparsedb.InvalidInputError, match="attribute 'year' is integer"):
        c.ingest(["x"], ["text"], encoder={"splade": None}, attributes=[{"year": "soon"}])
    assert len(c) == len(ids)
