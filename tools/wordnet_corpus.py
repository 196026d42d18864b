#!/usr/bin/env python3
"""Writes the WordNet 3.0 glosses (Debian's wordnet-base, /usr/share/wordnet/data.*) as a BEIR-style
corpus on stdout: {"_id": "n00001740", "title": "entity", "text": "<gloss>", "pos": "noun"}.
The title is the synset's words (underscores as spaces), the text its gloss with examples.

    tools/wordnet_corpus.py [/usr/share/wordnet] > wordnet.jsonl
"""
import json, os, sys

root = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet"
for pos, tag in (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")):
    path = os.path.join(root, "data." + pos)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, count = fields[0], int(fields[3], 16)
            words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
            words = [w.split("(")[0] for w in words]  # adjective markers such as "(a)"
            print(json.dumps({"_id": tag + offset, "title": ", ".join(words), "text": gloss.strip(), "pos": pos}, ensure_ascii=False))
