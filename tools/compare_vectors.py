#!/usr/bin/env python3
"""Compare two vector JSONL files: max per-dimension difference and dimension-set agreement.

    tools/compare_vectors.py ours.jsonl reference.jsonl [--tolerance 2e-3]
"""
import json, sys

def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                out[o["_id"]] = {int(k): v for k, v in o["vector"].items()}
    return out

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tol = float(sys.argv[sys.argv.index("--tolerance") + 1]) if "--tolerance" in sys.argv else 2e-3
    ours, ref = load(args[0]), load(args[1])
    worst, worst_id, bad = 0.0, None, 0
    for i, r in ref.items():
        o = ours.get(i)
        if o is None:
            print("missing", i); bad += 1; continue
        d = max((abs(o.get(k, 0.0) - r.get(k, 0.0)) for k in set(o) | set(r)), default=0.0)
        if d > worst: worst, worst_id = d, i
        if d > tol: bad += 1
    print(f"{len(ref)} vectors, max |diff| {worst:.3g} (id {worst_id}), {bad} over {tol}")
    sys.exit(1 if bad else 0)

main()
