#!/usr/bin/env python3
"""Builds tiny random models of each encoder family in the sentence-transformers folder layout
and records sentence-transformers' outputs for them, as test fixtures for the Swift encoders.

Run by hand (not by CI), with torch, transformers and sentence-transformers from PyPI:

    pip install torch sentence-transformers
    tools/make_fixtures.py [--vocab ~/.local/share/sparsedb/models/splade-tiny/tokenizer.json]

Writes Tests/Fixtures/<family>/ (the model folder) and Tests/Fixtures/<family>.expected.json
({"texts": [...], "query": [...], "document": [...]}; sparse outputs as {"dim": weight}).
The vocabulary is a 1,000-token subset of the BERT uncased vocabulary, so the models stay small
while the tokenizer pipeline is the real one.

No weight file is committed: every tensor is filled from a seeded SplitMix64 stream, and each
`model.safetensors` is replaced by `model.safetensors.recipe.json` (name, dtype, shape, seed,
mean, scale). The Swift tests regenerate the identical float32 values (the same generator) and
write the safetensors file into a temporary copy of the folder before loading it.
"""
import argparse, json, os, shutil, sys, zlib

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast, DistilBertConfig, DistilBertForMaskedLM

from sentence_transformers import SentenceTransformer, SparseEncoder
from sentence_transformers.sparse_encoder.models import MLMTransformer, SparseAutoEncoder, SparseStaticEmbedding, SpladePooling
from sentence_transformers.models import Pooling, Router, StaticEmbedding, Transformer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")

TEXTS = [
    "The capital of France is Paris.",
    "How do solar panels generate electricity?",
    "Héllo, Wörld! Café déjà-vu",
    "naïve façade ÅNGSTRÖM",
    "東京タワー is 333m tall",
    "tabs\tand\nnewlines  and   spaces",
    "[MASK] literal special token and [mask] lowercase",
    "emoji 😀 and symbols ① ② ∑",
    "A protein kinase phosphorylates serine residues in the cell nucleus.",
    "   leading and trailing whitespace   ",
    "",
    "a",
    "repeated repeated repeated words words",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Numbers 1234 5678 and 3.14159 plus 1e-9",
    "UPPER lower MiXeD CaSe",
    "ligature ﬁ and ß and İstanbul",
    "zero\u200bwidth space and\u00a0nbsp",
    "What is the effect of vitamin D on bone density in older adults?",
    "Aspirin reduces the risk of heart attack.",
    "x " * 80,
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Glucose metabolism in the liver is regulated by insulin and glucagon.",
    "can't won't don't isn't",
    "email@example.com http://example.org/path?q=1",
    "Ω ω Σ σ ς — en–dash “quotes” ‘single’",
]


def small_vocab(bert_tokenizer_json, size):
    full = json.load(open(bert_tokenizer_json))["model"]["vocab"]
    by_id = sorted(full.items(), key=lambda kv: kv[1])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Common pieces of the real vocabulary: its single characters and most frequent words.
    chosen = [t for t, i in by_id if 999 <= i < 999 + size - len(specials)]
    vocab = specials + [t for t in chosen if t not in specials]
    return {t: i for i, t in enumerate(vocab)}


def write_tokenizer(folder, vocab, max_len):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
            f.write(t + "\n")
    tok = BertTokenizerFast(vocab=dict(vocab), do_lower_case=True, model_max_length=max_len)
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    tok.save_pretrained(folder)
    return tok


MASK64 = (1 << 64) - 1


def splitmix_values(seed, n, mean, scale):
    """n float32 values mean + scale * (2u - 1), u from SplitMix64 (53-bit mantissa)."""
    out = np.empty(n, dtype=np.float32)
    state = seed & MASK64
    for i in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        u = (z >> 11) * (1.0 / (1 << 53))
        out[i] = np.float32(mean + scale * (2.0 * u - 1.0))
    return out


def recipe_for(name):
    if name.endswith("LayerNorm.weight") or name.endswith("LayerNorm.gamma") or name.endswith("layer_norm.weight"):
        return 1.0, 0.2
    if name in ("cls.predictions.bias", "vocab_projector.bias", "cls.predictions.decoder.bias"):
        return -2.0, 1.5
    if name == "weight":  # IDF table: positive
        return 1.5, 1.4
    if name.endswith(".bias") or name in ("pre_bias", "latent_bias"):
        return 0.0, 0.2
    return 0.0, 0.6


def replace_weights_with_recipes(folder):
    """Refills every model.safetensors under folder from seeded recipes; returns the recipes."""
    from safetensors.numpy import load_file, save_file
    for d, _, files in os.walk(folder):
        if "model.safetensors" not in files:
            continue
        path = os.path.join(d, "model.safetensors")
        tensors = load_file(path)
        recipes, new = [], {}
        for i, (name, t) in enumerate(sorted(tensors.items())):
            seed = zlib.crc32(f"{os.path.relpath(path, ROOT)}:{name}".encode())
            if t.dtype != np.float32:
                new[name] = np.zeros_like(t)
                recipes.append({"name": name, "dtype": str(t.dtype), "shape": list(t.shape), "zeros": True})
                continue
            mean, scale = recipe_for(name)
            new[name] = splitmix_values(seed, t.size, mean, scale).reshape(t.shape)
            recipes.append({"name": name, "dtype": "float32", "shape": list(t.shape), "seed": seed, "mean": mean, "scale": scale})
        save_file(new, path, metadata={"format": "pt"})
        json.dump(recipes, open(path + ".recipe.json", "w"), indent=1)


def drop_weight_files(folder):
    for d, _, files in os.walk(folder):
        for f in files:
            if f.endswith(".safetensors") or f == "README.md" or f == "vocab.txt":
                os.remove(os.path.join(d, f))


def sparse_rows(t):
    t = t.to_dense() if t.is_sparse else t
    return [{str(i): float(f"{v:.7g}") for i, v in enumerate(row.tolist()) if v != 0} for row in t]


def save_expected(name, model, sparse, **kw):
    with torch.inference_mode():
        q = model.encode_query(TEXTS, convert_to_tensor=True, **kw)
        d = model.encode_document(TEXTS, convert_to_tensor=True, **kw)
    if sparse:
        q, d = sparse_rows(q), sparse_rows(d)
    else:
        q, d = [[float(f"{v:.7g}") for v in r] for r in q.tolist()], [[float(f"{v:.7g}") for v in r] for r in d.tolist()]
    json.dump({"texts": TEXTS, "query": q, "document": d}, open(os.path.join(ROOT, name + ".expected.json"), "w"))


def bert_config(vocab, **kw):
    return BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64, initializer_range=0.6, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default=os.path.expanduser("~/.local/share/sparsedb/models/splade-tiny/tokenizer.json"))
    args = ap.parse_args()
    torch.manual_seed(7)
    np.random.seed(7)
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    vocab = small_vocab(args.vocab, 1000)
    tmp = os.path.join(ROOT, "_tmp")

    # (a) SPLADE: BERT masked LM + max pooling; and a sum / log1p_relu variant.
    bert_dir = os.path.join(tmp, "bert-mlm")
    write_tokenizer(bert_dir, vocab, 64)
    BertForMaskedLM(bert_config(vocab)).save_pretrained(bert_dir)
    for name, pool, act in [("splade", "max", "relu"), ("splade-sum", "sum", "log1p_relu")]:
        m = SparseEncoder(modules=[MLMTransformer(bert_dir, max_seq_length=48), SpladePooling(pooling_strategy=pool, activation_function=act)])
        m.save(os.path.join(ROOT, name))
        replace_weights_with_recipes(os.path.join(ROOT, name))
        save_expected(name, SparseEncoder(os.path.join(ROOT, name)), True)

    # (b) Inference-free SPLADE: DistilBERT MLM documents, IDF queries (a query prompt too).
    distil_dir = os.path.join(tmp, "distil-mlm")
    write_tokenizer(distil_dir, vocab, 64)
    DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(vocab), dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                           max_position_embeddings=64, initializer_range=0.6)).save_pretrained(distil_dir)
    doc = [MLMTransformer(distil_dir, max_seq_length=48), SpladePooling("max")]
    idf_tok = BertTokenizerFast.from_pretrained(distil_dir)
    query = [SparseStaticEmbedding(tokenizer=idf_tok, weight=torch.rand(len(vocab)) * 3)]
    m = SparseEncoder(modules=[Router.for_query_document(query_modules=query, document_modules=doc)],
                      prompts={"query": "query: "})
    m.save(os.path.join(ROOT, "inference-free"))
    replace_weights_with_recipes(os.path.join(ROOT, "inference-free"))
    save_expected("inference-free", SparseEncoder(os.path.join(ROOT, "inference-free")), True)

    # (c) CSR: BERT + CLS pooling + sparse autoencoder (k = 8 of 64).
    csr_bert = os.path.join(tmp, "bert")
    write_tokenizer(csr_bert, vocab, 64)
    BertModel(bert_config(vocab), add_pooling_layer=False).save_pretrained(csr_bert)
    t = Transformer(csr_bert, max_seq_length=48)
    sae = SparseAutoEncoder(input_dim=16, hidden_dim=64, k=8, k_aux=16)
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.5)
    m = SparseEncoder(modules=[t, Pooling(16, pooling_mode="cls"), sae])
    m.save(os.path.join(ROOT, "csr"))
    replace_weights_with_recipes(os.path.join(ROOT, "csr"))
    save_expected("csr", SparseEncoder(os.path.join(ROOT, "csr")), True)

    # (d) StaticEmbedding: mean of token rows (dense, 32 dims).
    static_tok = Tokenizer.from_file(os.path.join(bert_dir, "tokenizer.json"))
    static_tok.no_truncation()
    static_tok.no_padding()
    emb = StaticEmbedding(static_tok, embedding_weights=np.random.randn(len(vocab), 32).astype(np.float32))
    m = SentenceTransformer(modules=[emb])
    m.save(os.path.join(ROOT, "static"))
    replace_weights_with_recipes(os.path.join(ROOT, "static"))
    save_expected("static", SentenceTransformer(os.path.join(ROOT, "static")), False)

    shutil.rmtree(tmp)
    drop_weight_files(ROOT)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"fixtures written to {ROOT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
