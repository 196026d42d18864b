"""The README's example: encode with sentence-transformers and with SparseDB's own encoder, ingest,
search, delete.

    python python/examples/quickstart.py [MODEL_FOLDER]

MODEL_FOLDER defaults to splade-tiny in the model cache (tools/fetch-model.sh puts it there); any
sentence-transformers SPLADE folder works, e.g. one downloaded with `huggingface-cli download`.
"""
import sys
import tempfile
from pathlib import Path

import sparsedb

model_path = sys.argv[1] if len(sys.argv) > 1 else str(Path.home() / ".local/share/sparsedb/models/splade-tiny")
texts = {
    "paris": "Paris is the capital and largest city of France.",
    "solar": "Solar panels convert sunlight into electricity.",
    "bread": "Bread is baked from flour, water and yeast.",
    "rome": "Rome is the capital of Italy.",
}

with tempfile.TemporaryDirectory() as tmp, sparsedb.Database(Path(tmp) / "my.sdb") as db:
    # 1. Vectors from sentence-transformers go in as they come out (torch sparse tensors).
    try:
        from sentence_transformers import SparseEncoder
    except ImportError:
        SparseEncoder = None
    if SparseEncoder is not None:
        model = SparseEncoder(model_path, device="cpu")
        docs = db.create_collection("st-docs", dimensions=30522)
        vectors = model.encode_document(list(texts.values()), convert_to_sparse_tensor=True)
        docs.upsert(list(texts), vectors, payloads=[{"text": t} for t in texts.values()])
        query = model.encode_query("what is the capital of france?", convert_to_sparse_tensor=True)
        for hit in docs.search(query, k=2):
            print(f"sentence-transformers: {hit.id} {hit.score:.3f} {hit.payload['text']}")

    # 2. Or let SparseDB encode natively (Swift + OpenBLAS, no PyTorch), same model folder.
    encoder = sparsedb.Encoder(model_path)
    articles = db.create_collection("articles", dimensions=encoder.dimensions)
    articles.ingest(list(texts), list(texts.values()), encoder=encoder, payloads=[{"text": t} for t in texts.values()])
    for hit in articles.search_text("what is the capital of france?", k=2):  # the recorded encoder
        print(f"native: {hit.id} {hit.score:.3f} {hit.payload['text']}")

    # Batches: one call for many queries, as numpy arrays.
    queries = encoder.encode_queries(["capital of france", "how do solar panels work"])  # scipy CSR
    ids, scores = articles.search(queries, k=1, algorithm="bmw", return_arrays=True)
    print("batch:", ids[:, 0].tolist(), scores[:, 0].round(3).tolist())

    # Delete, get, count; bad input raises sparsedb.Error subclasses and changes nothing.
    articles.delete(["paris"])
    print("after delete:", [h.id for h in articles.search_text("capital of france", k=2)], len(articles))
    print("get:", articles.get("solar").payload)
    try:
        articles.upsert(["bad"], [{2054: float("nan")}])
    except sparsedb.InvalidInputError as e:
        print("refused:", e)
