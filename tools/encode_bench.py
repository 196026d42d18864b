#!/usr/bin/env python3
"""Side by side: documents per second of `sparsedb encode` and of sentence-transformers'
SparseEncoder (PyTorch, torch.set_num_threads(2), batch 32) on the same N passages of
../shared/data/scifact, with the default model (splade-tiny). Also checks that the two agree.

    pip install torch sentence-transformers
    tools/encode_bench.py [--n 1000] [--binary .build/release/sparsedb]
"""
import argparse, json, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "sparsedb"))
    ap.add_argument("--model", default=os.path.expanduser("~/.local/share/sparsedb/models/splade-tiny"))
    args = ap.parse_args()
    corpus = os.path.join(HERE, "..", "..", "shared", "data", "scifact", "corpus.jsonl")
    rows = [json.loads(l) for l, _ in zip(open(corpus), range(args.n))]
    texts = [(r["title"] + " " + r["text"]) if r.get("title") else r["text"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "docs.jsonl")
        with open(inp, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        t0 = time.perf_counter()
        out = subprocess.run([args.binary, "encode", "--documents", inp, "--quiet"], check=True, capture_output=True, text=True).stdout
        ours_s = time.perf_counter() - t0
    ours = [json.loads(l)["vector"] for l in out.splitlines()]

    import torch
    from sentence_transformers import SparseEncoder
    torch.set_num_threads(2)
    model = SparseEncoder(args.model, device="cpu")
    model.max_seq_length = 512
    with torch.inference_mode():
        model.encode_document(texts[:32], batch_size=32)  # warm-up
        t0 = time.perf_counter()
        ref = model.encode_document(texts, batch_size=32, convert_to_tensor=True)
        st_s = time.perf_counter() - t0
    ref = ref.to_dense()
    worst = 0.0
    for i, v in enumerate(ours):
        row = ref[i]
        nz = torch.nonzero(row).flatten().tolist()
        keys = set(int(k) for k in v) | set(nz)
        worst = max(worst, max((abs(v.get(str(k), 0.0) - float(row[k])) for k in keys), default=0.0))
    print(json.dumps({
        "documents": len(texts),
        "sparsedb_docs_per_s": len(texts) / ours_s,
        "sentence_transformers_docs_per_s": len(texts) / st_s,
        "ratio": (len(texts) / ours_s) / (len(texts) / st_s),
        "max_abs_difference": worst,
        "sparsedb_seconds": ours_s, "sentence_transformers_seconds": st_s,
    }, indent=1))


main()
