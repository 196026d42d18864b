"""The README's second example: a collection with a sparse, a dense and a CSR field and payload
attributes; search of each kind, filters, hybrid search, get, a refused write.

    python python/examples/fields.py [MODELS_FOLDER]

MODELS_FOLDER holds splade-tiny and all-MiniLM-L6-v2 (default: the model cache,
~/.local/share/sparsedb/models). Both models run natively (Swift + OpenBLAS, no PyTorch).
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

import sparsedb

models = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".local/share/sparsedb/models"
splade = sparsedb.Encoder(models / "splade-tiny")  # sparse: scipy CSR rows over 30522 dimensions
minilm = sparsedb.Encoder(models / "all-MiniLM-L6-v2")  # dense: float32 rows of 384

articles = {
    "paris": ("Paris is the capital and largest city of France.", {"lang": "en", "year": 2019, "tags": ["geo", "europe"]}),
    "berlin": ("Berlin ist die Hauptstadt von Deutschland.", {"lang": "de", "year": 2021, "tags": ["geo", "europe"]}),
    "rome": ("Rome is the capital of Italy.", {"lang": "en", "year": 1999, "tags": ["geo", "europe"]}),
    "solar": ("Solar panels convert sunlight into electricity.", {"lang": "en", "year": 2008, "tags": "energy"}),
    "bread": ("Bread is baked from flour, water and yeast.", {"lang": "en", "year": 2015, "draft": True}),
}
ids = list(articles)
texts = [t for t, _ in articles.values()]


def csr_codes(dense: np.ndarray, k: int = 32) -> np.ndarray:
    """Stand-in for a CSR (sparse autoencoder) model: the k largest of ReLU(x R), a fixed random
    projection to 4096 dimensions. Any (rows, 4096) array or scipy matrix with <= k non-zeros per
    row will do."""
    r = np.random.default_rng(0).normal(size=(dense.shape[1], 4096)).astype(np.float32)
    z = np.maximum(dense @ r, 0)
    z[z < np.sort(z, axis=1)[:, -k:-k + 1]] = 0
    return z


with tempfile.TemporaryDirectory() as tmp, sparsedb.Database(Path(tmp) / "my.sdb") as db:
    docs = db.create_collection(
        "articles",
        fields=[
            sparsedb.SparseField("splade", splade.dimensions),
            sparsedb.DenseField("minilm", minilm.dimensions, metric="cosine", precision="f16"),
            sparsedb.CSRField("code", 4096, active_dimensions=32, index="flat"),
        ],
        attributes={"lang": "keyword", "year": "integer", "tags": "keyword", "draft": "bool"},
    )
    embeddings = minilm.encode_documents(texts)
    docs.upsert(  # one transaction: every field, payload and attribute of every document
        ids,
        {"splade": splade.encode_documents(texts), "minilm": embeddings, "code": csr_codes(embeddings)},
        payloads=[{"text": t} for t in texts],
        attributes=[a for _, a in articles.values()],
    )

    question = "What is the capital of France?"
    q_sparse = splade.encode_queries([question])  # a batch of one: (1, 30522)
    q_dense = minilm.encode_queries([question])[0]  # one query: a 1-D array
    print("sparse:", [h.id for h in docs.search(q_sparse, k=2, field="splade")[0]])
    print("dense:", [h.id for h in docs.search(q_dense, k=2, field="minilm")])
    print("csr:", [h.id for h in docs.search(csr_codes(q_dense[None, :])[0], k=2, field="code")])

    # Filters: the exact top-k among the documents they admit (the CLI's --filter JSON).
    print("en, 2000 or later:", [h.id for h in docs.search(q_dense, k=3, field="minilm", filter={"lang": "en", "year": {"gte": 2000}})])
    print("tagged energy:", [h.id for h in docs.search(q_dense, k=3, field="minilm", filter={"tags": "energy"})])
    print("not a draft, before 2010 or German:", [
        h.id for h in docs.search(q_dense, k=5, field="minilm", filter={"$not": {"draft": True}, "$or": [{"year": {"lt": 2010}}, {"lang": "de"}]})
    ])

    # Hybrid: each field's exact ranking among the filtered documents, fused (RRF by default).
    for hit in docs.search_hybrid({"splade": q_sparse[0], "minilm": q_dense}, k=3, filter={"tags": "geo"}):
        print(f"hybrid: {hit.id} {hit.score:.4f} splade={hit.field_scores['splade']:.2f} minilm={hit.field_scores['minilm']:.2f}")

    berlin = docs.get("berlin")
    print("get:", berlin.attributes, sorted(berlin.vectors), berlin.payload["text"])
    try:
        docs.upsert(["new"], {"minilm": embeddings[:1]}, attributes=[{"year": "2020"}])
    except sparsedb.InvalidInputError as e:
        print("refused:", e, "| documents:", len(docs))
