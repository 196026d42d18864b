#!/usr/bin/env python3
"""Records Hugging Face `tokenizers`' token ids for every text of ../shared/data, compactly, as a
golden for the Swift tokenizer. Run by hand (pip install tokenizers):

    tools/make_tokenizer_goldens.py [--tokenizer ~/.local/share/sparsedb/models/splade-tiny/tokenizer.json]

Writes Tests/Fixtures/tokenizer-ids/NAME.{corpus,queries}.tsv: `_id <TAB> count <TAB> fnv1a64`, where
the hash is FNV-1a 64 over the ids as little-endian u32, with [CLS]/[SEP] and no truncation.
Documents are title + " " + text (text alone when the title is empty); queries their text.
"""
import argparse, json, os

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
OUT = os.path.join(HERE, "..", "Tests", "Fixtures", "tokenizer-ids")


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.expanduser("~/.local/share/sparsedb/models/splade-tiny/tokenizer.json"))
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_truncation()
    tok.no_padding()
    os.makedirs(OUT, exist_ok=True)
    for name in sorted(os.listdir(SHARED)):
        for kind in ("corpus", "queries"):
            path = os.path.join(SHARED, name, kind + ".jsonl")
            if not os.path.exists(path):
                continue
            rows = [json.loads(l) for l in open(path) if l.strip()]
            texts = []
            for r in rows:
                title = r.get("title") or ""
                text = r.get("text") or ""
                texts.append((title + " " + text) if (kind == "corpus" and title) else text)
            encs = tok.encode_batch(texts, add_special_tokens=True)
            with open(os.path.join(OUT, f"{name}.{kind}.tsv"), "w") as f:
                for r, e in zip(rows, encs):
                    f.write(f"{r['_id']}\t{len(e.ids)}\t{fnv1a64(e.ids):016x}\n")
            print(name, kind, len(rows))


main()
