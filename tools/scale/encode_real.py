#!/usr/bin/env python3
"""Encodes the real corpus (tools/scale/build_corpus.py) with our own encoder, in seeded random
shards, resumably, and assembles the encoded shards into the real part's vector JSONL.

    nice -n 19 tools/scale/encode_real.py encode [--max-shards N]     # run in the background
    tools/scale/encode_real.py assemble                                # real.jsonl (+ real.csr)

`encode` splits corpus.jsonl into shards of --shard-size passages in a seeded random order (so
any prefix of the shards is a uniform sample of every source), then runs
`sparsedb encode --model default --documents SHARD` on each shard not yet encoded (a shard's
vectors are written to .partial and renamed when complete: kill it and run it again to resume).
`assemble` concatenates the complete shards and writes them in corpus order (sources stay
together, as they would be ingested) to OUT/real.jsonl, its .csr and .csr.ids, and
OUT/real-corpus.jsonl (the passages that were encoded).
"""
import argparse, glob, json, os, random, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def shards(args):
    d = os.path.join(args.corpus_dir, "shards")
    if glob.glob(os.path.join(d, "shard-*.jsonl")):
        return sorted(glob.glob(os.path.join(d, "shard-*.jsonl")))
    os.makedirs(d, exist_ok=True)
    lines = open(os.path.join(args.corpus_dir, "corpus.jsonl"), encoding="utf-8").readlines()
    order = list(range(len(lines)))
    random.Random(args.seed).shuffle(order)
    for s in range(0, len(order), args.shard_size):
        with open(os.path.join(d, "shard-%02d.jsonl" % (s // args.shard_size)), "w", encoding="utf-8") as f:
            f.writelines(lines[i] for i in order[s:s + args.shard_size])
    return sorted(glob.glob(os.path.join(d, "shard-*.jsonl")))


def encode(args):
    os.makedirs(os.path.join(args.out, "shards"), exist_ok=True)
    todo = shards(args)[:args.max_shards]
    for path in todo:
        out = os.path.join(args.out, "shards", os.path.basename(path))
        if os.path.exists(out):
            continue
        n = sum(1 for _ in open(path))
        t0 = time.time()
        with open(out + ".partial", "w") as f:
            subprocess.run([args.binary, "encode", "--model", "default", "--documents", path, "--quiet"], stdout=f, check=True)
        dt = time.time() - t0
        if sum(1 for _ in open(out + ".partial")) != n:
            raise SystemExit("%s: line count differs from %s" % (out, path))
        os.replace(out + ".partial", out)
        print("%s: %d passages in %.0f s (%.1f docs/s)" % (os.path.basename(path), n, dt, n / dt), file=sys.stderr, flush=True)


def assemble(args):
    sys.path.insert(0, HERE)
    from jsonl_to_csr import read_jsonl, write_csr
    done = sorted(p for p in glob.glob(os.path.join(args.out, "shards", "shard-*.jsonl")))
    vec = {}
    for p in done:
        for line in open(p, encoding="utf-8"):
            vec[json.loads(line)["_id"]] = line
    real = os.path.join(args.out, "real.jsonl")
    with open(real + ".partial", "w", encoding="utf-8") as f, open(os.path.join(args.out, "real-corpus.jsonl"), "w", encoding="utf-8") as fc:
        for line in open(os.path.join(args.corpus_dir, "corpus.jsonl"), encoding="utf-8"):
            _id = json.loads(line)["_id"]
            if _id in vec:
                f.write(vec[_id]); fc.write(line)
    os.replace(real + ".partial", real)
    ids, indptr, indices, data = read_jsonl(real, 30522)
    write_csr(os.path.join(args.out, "real.csr"), indptr, indices, data, 30522)
    with open(os.path.join(args.out, "real.csr.ids"), "w") as f:
        f.write("".join(i + "\n" for i in ids))
    print("%s: %d documents from %d shards, %d postings (%.1f per document)" % (real, len(ids), len(done), len(indices), len(indices) / max(1, len(ids))), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["encode", "assemble"])
    ap.add_argument("--corpus-dir", default="/work/scale/corpus")
    ap.add_argument("--out", default="/work/scale/vectors")
    ap.add_argument("--binary", default="/work/baseline/sparsedb-format1")
    ap.add_argument("--shard-size", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--max-shards", type=int)
    args = ap.parse_args()
    encode(args) if args.command == "encode" else assemble(args)


if __name__ == "__main__":
    main()
