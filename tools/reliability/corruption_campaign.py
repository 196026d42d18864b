#!/usr/bin/env python3
"""Corruption campaign: damage one byte (or 16 bytes) of a copy of a real database per trial and
check that SparseDB either reports the damage or is provably unaffected — never crashes, hangs or
answers wrongly in silence.

    nice -n 5 tools/reliability/corruption_campaign.py --flips 1000 --smashes 100 --seed 1

The database (built once, in --work): the 1,400 cranfield reference vectors ingested in 4 runs of
350 (batch size 100, no automatic compaction), 100 ids deleted, one `compact`, 50 more ids deleted
(tombstones left), and a `text` collection of 50 cranfield documents (40 words each) from text
with the default model.

Per trial: copy the clean data.mdb, then either XOR one random byte with a random non-zero value
(a flip) or overwrite 16 consecutive bytes with random bytes (a smash). The offset is uniform
over the bytes of the pages in use (meta, branch, leaf, overflow) in 80 % of the trials
(--used-fraction) and uniform over the whole file in the others: after a compaction most of the
file is free pages, which a purely uniform draw would mostly hit. Then run, each with a 60 s timeout: `verify`; `stats`; `search` on `vec`
with query vectors (50 cranfield queries) for each of the 4 algorithms; `search` on `text` with
the same query vectors (maxscore, bmw) and with 5 text queries (bmw); all searches `--format
jsonl` (hits, scores, payloads and traversal statistics). Classes:

- detected: verify exits 1 (its report is kept; whether it names a collection / table / term /
  document / page is tallied), and nothing crashed or hung;
- harmless: verify exits 0 and every search output and the stats output are byte-identical to
  the undamaged database's;
- FAILURE: any command ended by a signal (exit status >= 128) or hung (60 s) — reported apart
  when verify had reported the damage (format-spec.md §13 warns that a damaged B-tree page can
  crash a reader) —, or verify exited 0 while some output changed (silent), or verify exited
  with a status other than 0/1.

The region hit is the kind of the page the first damaged byte falls in, from `lmdbpages.py`
(meta current/previous, branch / leaf / overflow page of a table, free page, unreferenced page).
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmdbpages  # noqa: E402
import sdbcheck as S  # noqa: E402

TIMEOUT = 60
# page header (16) + MDB_meta (magic, version, address, map size, 2 x MDB_db, last page, txnid): the
# bytes of a meta page LMDB reads; the rest of the page is unused
META_STRUCT_BYTES = 16 + 136


def build(work, seed):
    db = os.path.join(work, "clean")
    shutil.rmtree(db, ignore_errors=True)
    rng = random.Random(seed)
    lines = open(os.path.join(S.REF, "doc_vectors.jsonl")).read().splitlines()
    ids = [json.loads(l)["_id"] for l in lines]

    def sdb(*args):
        st, out, err, _ = S.run([S.SPARSEDB] + list(args))
        if st != 0:
            sys.exit(f"setup {' '.join(args)}: exit {st}: {err.decode()}")

    for k in range(4):
        path = os.path.join(work, f"part{k}.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines[k * 350:(k + 1) * 350]) + "\n")
        sdb("ingest", "--db", db, "--collection", "vec", "--vectors", path, "--batch-size", "100", "--no-compact", "--quiet")
    dels = rng.sample(ids, 150)
    with open(os.path.join(work, "del1.txt"), "w") as f:
        f.write("\n".join(dels[:100]) + "\n")
    with open(os.path.join(work, "del2.txt"), "w") as f:
        f.write("\n".join(dels[100:]) + "\n")
    sdb("delete", "--db", db, "--collection", "vec", "--ids", os.path.join(work, "del1.txt"))
    sdb("compact", "--db", db)
    sdb("delete", "--db", db, "--collection", "vec", "--ids", os.path.join(work, "del2.txt"))
    corpus = os.path.join(work, "corpus.jsonl")
    with open(os.path.join(S.CRANFIELD, "corpus.jsonl")) as src, open(corpus, "w") as f:
        for n, line in enumerate(src):
            if n == 50:
                break
            o = json.loads(line)
            o["text"] = " ".join(o["text"].split()[:40])
            f.write(json.dumps(o) + "\n")
    sdb("ingest", "--db", db, "--collection", "text", "--corpus", corpus, "--batch-size", "16", "--quiet")
    qv = open(os.path.join(S.REF, "query_vectors.jsonl")).read().splitlines()
    with open(os.path.join(work, "qvec.jsonl"), "w") as f:
        f.write("\n".join(rng.sample(qv, 50)) + "\n")
    with open(os.path.join(S.CRANFIELD, "queries.jsonl")) as src, open(os.path.join(work, "qtext.jsonl"), "w") as f:
        for n, line in enumerate(src):
            if n == 5:
                break
            f.write(line)
    return db


def commands(work, db):
    qv, qt = os.path.join(work, "qvec.jsonl"), os.path.join(work, "qtext.jsonl")
    cmds = [("stats", ["stats", "--db", db])]
    for alg in S.ALGORITHMS:
        cmds.append((f"vec-{alg}", ["search", "--db", db, "--collection", "vec", "--query-vectors", qv, "--algorithm", alg, "--format", "jsonl"]))
    for alg in ("maxscore", "bmw"):
        cmds.append((f"text-{alg}", ["search", "--db", db, "--collection", "text", "--query-vectors", qv, "--algorithm", alg, "--format", "jsonl"]))
    cmds.append(("text-queries", ["search", "--db", db, "--collection", "text", "--queries", qt, "--algorithm", "bmw", "--format", "jsonl"]))
    return cmds


def normalise_stats(out, db):
    # stats names the database path; everything else must be identical
    return re.sub(rb'"path" : "[^"]*"', b'"path" : ""', out)


NAMES = ("collection", "term", "document", "page", "table", "block", "row", "id map", "external id", "meta")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flips", type=int, default=1000)
    ap.add_argument("--smashes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=None)
    ap.add_argument("--used-fraction", type=float, default=0.8,
                    help="share of trials whose offset is drawn from the pages in use (meta, branch, leaf, overflow) rather than the whole file")
    ap.add_argument("--regions", default="meta,branch,leaf,overflow",
                    help="page kinds the in-use draw picks from (e.g. meta,branch to aim at the few pages a uniform draw rarely hits)")
    ap.add_argument("--meta-struct-only", action="store_true",
                    help="in meta pages, damage only the bytes LMDB reads (header and MDB_meta, the first 152)")
    ap.add_argument("--summary")
    args = ap.parse_args()
    work = args.work or f"/tmp/sdb-corrupt-{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t_start = time.time()
    clean = build(work, args.seed)
    pm, disagreements = lmdbpages.check(clean)
    if disagreements:
        sys.exit(f"page walker disagrees with mdb_stat: {disagreements}")
    clean_bytes = open(os.path.join(clean, "data.mdb"), "rb").read()
    size = len(clean_bytes)
    reference = {}
    st, out, err, _ = S.run([S.SPARSEDB, "verify", "--db", clean])
    if st != 0:
        sys.exit(f"the clean database does not verify: {out.decode()} {err.decode()}")
    for name, cmd in commands(work, clean):
        st, out, err, _ = S.run([S.SPARSEDB] + cmd, timeout=TIMEOUT)
        if st != 0:
            sys.exit(f"clean {name}: exit {st} {err.decode()}")
        reference[name] = normalise_stats(out, clean) if name == "stats" else out
    rng = random.Random(args.seed)
    regions = tuple(args.regions.split(","))
    used_pages = sorted(p for p, (k, _) in pm.kind.items() if k in regions)
    trial_db = os.path.join(work, "trial")
    failures_dir = os.path.join(work, "failures")
    os.makedirs(failures_dir, exist_ok=True)
    classes = collections.Counter()
    by_region = collections.defaultdict(collections.Counter)
    by_table = collections.defaultdict(collections.Counter)
    named = collections.Counter()
    failures = []
    harmless_stats_changed = 0
    log = open(os.path.join(work, "trials.jsonl"), "w")
    kinds = ["flip"] * args.flips + ["smash"] * args.smashes
    for n, kind in enumerate(kinds):
        shutil.rmtree(trial_db, ignore_errors=True)
        os.makedirs(trial_db)
        data = bytearray(clean_bytes)
        width = 1 if kind == "flip" else 16
        if rng.random() < args.used_fraction:
            page = rng.choice(used_pages)
            span = pm.psize
            if args.meta_struct_only and pm.kind[page][0] == "meta":
                span = META_STRUCT_BYTES
            offset = page * pm.psize + rng.randrange(span - width + 1)
        else:
            offset = rng.randrange(size - width + 1)
        if kind == "flip":
            data[offset] ^= rng.randrange(1, 256)
        else:
            data[offset:offset + 16] = bytes(rng.randrange(256) for _ in range(16))
        with open(os.path.join(trial_db, "data.mdb"), "wb") as f:
            f.write(data)
        region, table = pm.region(offset)
        if region == "meta":
            label = f"meta ({table})"
        else:
            label = region
        record = {"trial": n, "kind": kind, "offset": offset, "page": offset // pm.psize, "region": region, "table": table}
        st, out, err, secs = S.run([S.SPARSEDB, "verify", "--db", trial_db], timeout=TIMEOUT)
        record["verify"] = st
        record["verify_report"] = (out + err).decode(errors="replace")[:600]
        crashes, changed = [], []
        for name, cmd in commands(work, trial_db):
            cst, cout, cerr, _ = S.run([S.SPARSEDB] + cmd, timeout=TIMEOUT)
            if cst == -1:
                crashes.append(f"{name}: hang ({TIMEOUT} s)")
            elif cst >= 128:
                crashes.append(f"{name}: {S.signal_name(cst)} {cerr.decode(errors='replace')[-300:]}")
            elif cst != 0:
                changed.append(f"{name}: exit {cst}: {cerr.decode(errors='replace').strip()[:200]}")
            else:
                got = normalise_stats(cout, trial_db) if name == "stats" else cout
                if got != reference[name]:
                    changed.append(f"{name}: output differs")
        record["crashes"] = crashes
        record["changed"] = changed
        if st == -1 or st >= 128:
            crashes.insert(0, f"verify: {'hang' if st == -1 else S.signal_name(st)}")
        if crashes:
            cls = "FAILURE: crash/hang after verify reported the damage" if st == 1 else "FAILURE: crash/hang"
        elif st not in (0, 1):
            cls = f"FAILURE: verify exit {st}"
        elif st == 1:
            cls = "detected"
            rep = record["verify_report"].lower()
            named["names what is damaged" if any(w in rep for w in NAMES) else "does not name what"] += 1
        elif changed:
            only_stats = all(c.startswith("stats") for c in changed)
            cls = "FAILURE: verify passed, output changed silently"
            if only_stats:
                cls = "FAILURE: verify passed, stats changed silently"
        else:
            cls = "harmless"
        record["class"] = cls
        classes[cls] += 1
        by_region[label][cls] += 1
        if table:
            by_table[f"{region} {table}"][cls] += 1
        log.write(json.dumps(record) + "\n")
        log.flush()
        if cls.startswith("FAILURE"):
            keep = os.path.join(failures_dir, f"trial-{n}")
            shutil.copytree(trial_db, keep, ignore=shutil.ignore_patterns("lock.mdb"))
            record["kept"] = keep
            failures.append(record)
            print(f"trial {n} {kind} @{offset} (page {offset // pm.psize}, {label} {table or ''}): {cls}: {crashes or changed}", flush=True)
        if (n + 1) % 50 == 0:
            print(f"{n + 1} trials: {dict(classes)}", flush=True)
    summary = {
        "seed": args.seed, "flips": args.flips, "smashes": args.smashes, "used_fraction": args.used_fraction, "regions": args.regions, "seconds": round(time.time() - t_start, 1),
        "data_mdb_bytes": size, "pages": pm.summary(),
        "classes": dict(classes),
        "by_kind": {k: dict(collections.Counter(json.loads(l)["class"] for l in open(os.path.join(work, "trials.jsonl")) if json.loads(l)["kind"] == k)) for k in ("flip", "smash")},
        "by_region": {k: dict(v) for k, v in sorted(by_region.items())},
        "by_table": {k: dict(v) for k, v in sorted(by_table.items())},
        "detected_reports": dict(named),
        "failures": failures,
    }
    print(json.dumps(summary, indent=1))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
