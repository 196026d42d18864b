#!/usr/bin/env python3
"""Resources: full disk, hostile model folders, a 5 GB input file, 1 MB query lines.

    tools/reliability/resources.py full-disk   [--mount /mnt/sdbfull]      # needs root (mount -t tmpfs)
    tools/reliability/resources.py hostile-models
    tools/reliability/resources.py big-query
    nice -n 5 tools/reliability/resources.py big-input [--gigabytes 5] [--dir /tmp/sdb-big]

Each prints a JSON report and exits 1 when a check fails.

full-disk: a 20 MB tmpfs (--size-mb) holds the database; ingests of 1,400 renamed cranfield vectors (batch
  200) run until one fails. Pass: that ingest exits 1 with a message about space (no signal);
  `verify` passes on the full disk; the live documents (read from LMDB) are exactly the
  committed inputs plus a whole-batch prefix of the failed one, with bit-identical rows; searches
  (4 algorithms, 20 queries, k = 10) equal brute force; `compact` and `delete` on the full disk
  exit 0 or 1 cleanly and leave it verifiable; after `mount -o remount,size=200m` the same ingest
  completes. Then again with a filler file: fill to 1 MB free, ingest fails cleanly, delete the
  filler, the same ingest completes. Falls back to `ulimit -f` when mount is refused.
hostile-models: copies of the real splade-tiny (BERT MLM folder) and all-MiniLM-L6-v2
  (sentence-transformers folder) with one damage each; `sparsedb encode --model DIR --documents`
  must exit 1 with a message naming the file and the key (or tensor), never a signal or a hang.
big-query: a query vector of 30,522 dimensions written out to > 1 MB, searched with the four
  algorithms (the result is checked against brute force); a 1 MB text query through `--queries`;
  a 1 MB corpus document; `encode --queries` of a 1 MB text. Clean result or clean error, with
  time and peak RSS.
big-input: streams a vector JSONL of --gigabytes GB (the cranfield reference vectors repeated
  with renamed ids) through a pipe into `ingest --vectors -` with --batch-size 5000 under
  `/usr/bin/time -v` (peak RSS), after checking the free disk for the database; checks `stats`,
  `verify` and 20 bmw searches (scores against brute force over the originals: every copy ties),
  and deletes everything.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdbcheck as S  # noqa: E402

MODELS = os.path.expanduser("~/.local/share/sparsedb/models")


def timed(args, timeout=None, stdin=None):
    """(status, stdout, stderr, seconds, peak RSS KB) under /usr/bin/time -v."""
    t0 = time.time()
    try:
        p = subprocess.run(["/usr/bin/time", "-v"] + args, capture_output=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired:
        return -1, b"", b"timeout", time.time() - t0, None
    err = p.stderr.decode(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    sig = re.search(r"Command terminated by signal (\d+)", err)
    status = 128 + int(sig.group(1)) if sig else p.returncode
    m2 = re.search(r"Exit status: (\d+)", err)
    if m2 and not sig:
        status = int(m2.group(1))
    body = re.sub(r"Command (exited with non-zero status \d+|terminated by signal \d+)\n?", "", err.split("\tCommand being timed:")[0])
    return status, p.stdout, body.encode(), time.time() - t0, int(m.group(1)) if m else None


# ---------------------------------------------------------------- full disk

def renamed_lines(prefix, round_tag):
    out = []
    with open(os.path.join(S.REF, "doc_vectors.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            o["_id"] = f"{prefix}-{o['_id']}"
            o["r"] = round_tag
            out.append(json.dumps(o))
    return out


def check_db(db, expected, report, label):
    """expected: {id: vector}. verify, exact live set and rows, brute-force searches."""
    problems = []
    st, out, err, _ = S.run([S.SPARSEDB, "verify", "--db", db], timeout=600)
    if st != 0:
        problems.append(f"{label}: verify exit {st}: {(out + err).decode()[:300]}")
    live = S.live_documents(db, "c")
    if set(live) != set(expected):
        problems.append(f"{label}: {len(live)} live documents, expected {len(expected)}")
    else:
        bad = [i for i in live if live[i][1] != expected[i]]
        if bad:
            problems.append(f"{label}: {len(bad)} stored rows differ from the input, e.g. {bad[0]}")
    qs = S.read_vectors(os.path.join(S.REF, "query_vectors.jsonl"))[:20]
    qpath = os.path.join(os.path.dirname(db.rstrip("/")), "q20.jsonl") if not db.startswith("/mnt") else "/tmp/sdb-q20.jsonl"
    with open(qpath, "w") as f:
        for qid, q in qs:
            f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
    oracle = S.InvertedOracle({i: v for i, (_, v) in live.items()})
    for alg in S.ALGORITHMS:
        st, out, err, _ = S.run([S.SPARSEDB, "search", "--db", db, "--collection", "c", "--query-vectors", qpath, "--algorithm", alg, "--format", "jsonl"])
        if st != 0:
            problems.append(f"{label}: search {alg} exit {st}: {err.decode()[:300]}")
            continue
        res = S.parse_jsonl_results(out.decode())
        for qid, q in qs:
            p = S.check_hits(res.get(qid, []), oracle.scores(q), 10)
            if p:
                problems.append(f"{label}: search {alg} query {qid}: {p}")
                break
    report.setdefault("checks", []).append({label: "ok" if not problems else problems, "live": len(live)})
    return problems


def full_disk(args):
    mnt = args.mount
    report = {"mount": mnt}
    problems = []
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["umount", mnt], capture_output=True)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", mnt], capture_output=True, text=True)
    use_ulimit = m.returncode != 0
    report["method"] = f"tmpfs {args.size_mb} MB" if not use_ulimit else f"ulimit -f (mount refused: {m.stderr.strip()})"
    if use_ulimit:
        mnt = "/tmp/sdb-fulldisk"
        shutil.rmtree(mnt, ignore_errors=True)
        os.makedirs(mnt)
    work = "/tmp/sdb-fulldisk-inputs"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    db = os.path.join(mnt, "db")
    limit_kb = args.size_mb * 1024

    def ingest(path, batch=200):
        cmd = [S.SPARSEDB, "ingest", "--db", db, "--collection", "c", "--vectors", path, "--batch-size", str(batch), "--quiet"]
        if use_ulimit:
            cmd = ["/bin/bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "sh"] + cmd
        return S.run(cmd, timeout=1800)

    expected = {}
    first = renamed_lines("init", -1)[:400]
    p0 = os.path.join(work, "init.jsonl")
    open(p0, "w").write("\n".join(first) + "\n")
    st, _, err, _ = ingest(p0, 100)
    if st != 0:
        sys.exit(f"initial ingest failed: {err.decode()}")
    expected.update(dict(S.read_vectors(p0)))
    r = 0
    while True:
        path = os.path.join(work, f"r{r}.jsonl")
        open(path, "w").write("\n".join(renamed_lines(f"r{r}", r)) + "\n")
        st, out, err, secs = ingest(path)
        if st != 0:
            break
        expected.update(dict(S.read_vectors(path)))
        r += 1
        if r > 50:
            problems.append("the disk never filled")
            break
    msg = err.decode(errors="replace").strip()
    report["failed_ingest"] = {"round": r, "exit": st, "stderr": msg[-500:], "data_mdb_bytes": os.path.getsize(os.path.join(db, "data.mdb")),
                               "df": subprocess.run(["df", "-k", mnt], capture_output=True, text=True).stdout.splitlines()[-1]}
    if st != 1:
        problems.append(f"the ingest on a full disk exited {st} (expected 1)")
    if not re.search(r"space|disk full", msg, re.I):
        problems.append("the message does not mention space")
    # a whole-batch prefix of the failed input may be committed
    failed_input = S.read_vectors(path)
    live = S.live_documents(db, "c")
    got = [i for i, _ in failed_input if i in live]
    ids = [i for i, _ in failed_input]
    report["failed_ingest"]["committed_of_failed_input"] = len(got)
    if got != ids[:len(got)] or len(got) % 200 != 0:
        problems.append(f"the failed ingest left {len(got)} documents, not a whole-batch prefix")
    expected.update({i: v for i, v in failed_input[:len(got)]})
    problems += check_db(db, expected, report, "after the failed ingest, disk still full")
    # other writes on the full disk
    for label, cmd in (("compact on the full disk", ["compact", "--db", db]),
                       ("delete on the full disk", ["delete", "--db", db, "--collection", "c", "--ids", "-"])):
        stdin = ("\n".join(list(expected)[:50]) + "\n").encode() if "delete" in label else None
        full = [S.SPARSEDB] + cmd
        if use_ulimit:
            full = ["/bin/bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "sh"] + full
        cst, cout, cerr, _ = S.run(full, stdin=stdin, timeout=600)
        report[label] = {"exit": cst, "stderr": cerr.decode(errors="replace").strip()[-300:]}
        if cst not in (0, 1):
            problems.append(f"{label}: exit {cst}")
        if "delete" in label and cst == 0:
            for i in list(expected)[:50]:
                expected.pop(i)
        problems += check_db(db, expected, report, f"after {label}")
    # make room: a bigger tmpfs, the same ingest again
    if not use_ulimit:
        subprocess.run(["mount", "-o", "remount,size=200m", mnt], check=True)
    else:
        limit_kb = 200 * 1024
    st, out, err, _ = ingest(path)
    report["same_ingest_after_remount_200m"] = {"exit": st, "stderr": err.decode(errors="replace").strip()[-300:]}
    if st != 0:
        problems.append(f"the same ingest after making room exited {st}")
    expected.update(dict(failed_input))
    problems += check_db(db, expected, report, "after the ingest with room")
    # filler file: fill the disk, fail, delete the filler, succeed
    if not use_ulimit:
        stv = os.statvfs(mnt)
        free = stv.f_bavail * stv.f_frsize
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            left = free - (1 << 20)
            chunk = b"\0" * (1 << 20)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
        path2 = os.path.join(work, "filler-round.jsonl")
        # 4 x 1,400 documents: more than the free pages inside data.mdb can take, so the file must grow
        open(path2, "w").write("\n".join(sum((renamed_lines(f"fill{k}", 99) for k in range(4)), [])) + "\n")
        st, out, err, _ = ingest(path2)
        msg = err.decode(errors="replace").strip()
        report["ingest_with_filler_1MB_free"] = {"exit": st, "stderr": msg[-300:]}
        if st != 1 or not re.search(r"space|disk full", msg, re.I):
            problems.append(f"ingest with the disk filled by a filler: exit {st}: {msg[-200:]}")
        inp = S.read_vectors(path2)
        live = S.live_documents(db, "c")
        got = [i for i, _ in inp if i in live]
        if got != [i for i, _ in inp][:len(got)] or len(got) % 200 != 0:
            problems.append(f"the failed ingest left {len(got)} documents, not a whole-batch prefix")
        expected.update({i: v for i, v in inp[:len(got)]})
        problems += check_db(db, expected, report, "after the filler ingest failed")
        os.remove(filler)
        st, out, err, _ = ingest(path2)
        report["same_ingest_after_deleting_filler"] = {"exit": st, "stderr": err.decode(errors="replace").strip()[-300:]}
        if st != 0:
            problems.append(f"the same ingest after deleting the filler exited {st}")
        expected.update(dict(inp))
        problems += check_db(db, expected, report, "after deleting the filler")
        subprocess.run(["umount", mnt], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    report["problems"] = problems
    return report, problems


# ---------------------------------------------------------------- hostile models

def hostile_models(args):
    root = "/tmp/sdb-hostile"
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    docs = os.path.join(root, "docs.jsonl")
    with open(docs, "w") as f:
        for i, t in enumerate(["the capital of france is paris", "experimental investigation of the aerodynamics of a wing", "hello"]):
            f.write(json.dumps({"_id": str(i), "text": t}) + "\n")

    def copy(model, name):
        d = os.path.join(root, name)
        shutil.copytree(os.path.join(MODELS, model), d)
        return d

    def edit_json(path, fn):
        o = json.load(open(path))
        fn(o)
        json.dump(o, open(path, "w"))

    def vocab(value):
        def fn(d):
            edit_json(d + "/tokenizer.json", lambda t: t["model"]["vocab"].__setitem__("hostile", value))
        return fn

    def added(index, value):
        def fn(d):
            edit_json(d + "/tokenizer.json", lambda t: t["added_tokens"][index].__setitem__("id", value))
        return fn

    def config(key, value, file="config.json"):
        def fn(d):
            edit_json(d + "/" + file, lambda c: c.__setitem__(key, value))
        return fn

    def truncate(fraction):
        def fn(d):
            p = d + "/model.safetensors"
            os.truncate(p, int(os.path.getsize(p) * fraction))
        return fn

    def header_len(value):
        def fn(d):
            with open(d + "/model.safetensors", "r+b") as f:
                f.write(value.to_bytes(8, "little"))
        return fn

    def header_offsets(d):
        p = d + "/model.safetensors"
        with open(p, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            h = json.loads(f.read(n))
            data = f.read()
        name = sorted(k for k in h if k != "__metadata__")[0]
        h[name]["data_offsets"][1] += 10 ** 12
        text = json.dumps(h, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(p, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text + data)
        return name

    def modules(path_value):
        def fn(d):
            edit_json(d + "/modules.json", lambda m: m[1].__setitem__("path", path_value))
        return fn

    def modules_symlink(d):
        shutil.rmtree(d + "/1_Pooling")
        os.symlink("/etc", d + "/1_Pooling")

    def not_json(d):
        open(d + "/config.json", "w").write("{\"hidden_size\": 128,")

    def missing(file):
        def fn(d):
            os.remove(d + "/" + file)
        return fn

    cases = [
        ("splade-tiny", "vocab id -5", vocab(-5), ["tokenizer.json", "hostile"]),
        ("splade-tiny", "vocab id 3e9", vocab(3_000_000_000), ["tokenizer.json", "hostile"]),
        ("splade-tiny", "vocab id 1e6 (beyond the table)", vocab(1_000_000), ["tokenizer.json", "hostile"]),
        ("splade-tiny", "added_tokens id -7", added(0, -7), ["tokenizer.json", "added_tokens[0].id"]),
        ("splade-tiny", "added_tokens id 2^31", added(0, 2 ** 31), ["tokenizer.json", "added_tokens[0].id"]),
        ("splade-tiny", "num_hidden_layers 1e12", config("num_hidden_layers", 1e12), ["config.json", "num_hidden_layers"]),
        ("splade-tiny", "num_hidden_layers 1", config("num_hidden_layers", 1), ["config.json", "num_hidden_layers"]),
        ("splade-tiny", "num_hidden_layers -2", config("num_hidden_layers", -2), ["config.json", "num_hidden_layers"]),
        ("splade-tiny", "layer_norm_eps -1e-12", config("layer_norm_eps", -1e-12), ["config.json", "layer_norm_eps"]),
        ("splade-tiny", "layer_norm_eps 0", config("layer_norm_eps", 0), ["config.json", "layer_norm_eps"]),
        ("splade-tiny", "hidden_size 1e12", config("hidden_size", 1e12), ["config.json", "hidden_size"]),
        ("splade-tiny", "num_attention_heads 0", config("num_attention_heads", 0), ["config.json", "num_attention_heads"]),
        ("splade-tiny", "intermediate_size 1e15", config("intermediate_size", 1e15), ["config.json", "intermediate_size"]),
        ("splade-tiny", "vocab_size -1000", config("vocab_size", -1000), ["config.json", "vocab_size"]),
        ("splade-tiny", "max_position_embeddings 1e12", config("max_position_embeddings", 1e12), ["config.json", "max_position_embeddings"]),
        ("splade-tiny", "config.json not JSON", not_json, ["config.json"]),
        ("splade-tiny", "tokenizer.json missing", missing("tokenizer.json"), ["tokenizer.json"]),
        ("splade-tiny", "safetensors truncated to half", truncate(0.5), ["model.safetensors"]),
        ("splade-tiny", "safetensors truncated to 4 bytes", truncate(4 / 17671552), ["model.safetensors"]),
        ("splade-tiny", "safetensors empty", truncate(0), ["model.safetensors"]),
        ("splade-tiny", "safetensors header length 2^63", header_len(2 ** 63), ["model.safetensors"]),
        ("splade-tiny", "safetensors header length 2^64-1", header_len(2 ** 64 - 1), ["model.safetensors"]),
        ("splade-tiny", "safetensors tensor end offset +1e12", header_offsets, ["model.safetensors"]),
        ("all-MiniLM-L6-v2", "modules.json path ../../../etc", modules("../../../etc"), ["modules.json"]),
        ("all-MiniLM-L6-v2", "modules.json path /etc", modules("/etc"), ["modules.json"]),
        ("all-MiniLM-L6-v2", "modules.json module folder a symlink to /etc", modules_symlink, ["1_Pooling"]),
        ("all-MiniLM-L6-v2", "num_hidden_layers 1e12", config("num_hidden_layers", 1e12), ["config.json", "num_hidden_layers"]),
        ("all-MiniLM-L6-v2", "layer_norm_eps -1", config("layer_norm_eps", -1.0), ["config.json", "layer_norm_eps"]),
        ("all-MiniLM-L6-v2", "safetensors truncated to 90 %", truncate(0.9), ["model.safetensors"]),
    ]
    results = []
    problems = []
    for n, (model, label, damage, expect) in enumerate(cases):
        d = copy(model, f"case{n}")
        extra = damage(d)
        if isinstance(extra, str):
            expect = expect + [extra]
        st, out, err, secs, rss = timed([S.SPARSEDB, "encode", "--model", d, "--documents", docs], timeout=120)
        msg = err.decode(errors="replace").strip()
        ok = st == 1 and all(e in msg for e in expect)
        results.append({"model": model, "damage": label, "exit": st, "seconds": round(secs, 2), "peak_rss_mb": rss // 1024 if rss else None,
                        "message": msg[-400:], "names": expect, "pass": ok})
        if not ok:
            problems.append(f"{model} {label}: exit {st}, message {msg[-200:]!r} (expected exit 1 naming {expect})")
        shutil.rmtree(d)
    shutil.rmtree(root, ignore_errors=True)
    return {"cases": results, "passed": sum(r["pass"] for r in results), "total": len(results), "problems": problems}, problems


# ---------------------------------------------------------------- 1 MB queries

def big_query(args):
    work = "/tmp/sdb-bigquery"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    db = os.path.join(work, "db")
    problems = []
    report = {}
    st, _, err, _ = S.run([S.SPARSEDB, "ingest", "--db", db, "--collection", "c", "--vectors", os.path.join(S.REF, "doc_vectors.jsonl"), "--quiet"])
    corpus = os.path.join(work, "corpus.jsonl")
    with open(os.path.join(S.CRANFIELD, "corpus.jsonl")) as src, open(corpus, "w") as f:
        for n, line in enumerate(src):
            if n == 30:
                break
            f.write(line)
    st2, _, err2, _ = S.run([S.SPARSEDB, "ingest", "--db", db, "--collection", "t", "--corpus", corpus, "--quiet"])
    if st or st2:
        sys.exit((err + err2).decode())
    rng = random.Random(5)
    q = {d: S.f32(rng.uniform(1e-4, 3.0)) for d in range(30522)}
    line = json.dumps({"_id": "big", "vector": {str(d): float(f"{w:.17g}") for d, w in q.items()}})
    line = line.replace(", ", ",")
    # pad the weights' text with more digits to pass 1 MB while keeping the same floats
    body = "{" + ",".join(f'"{d}":{w!r}0000000000' for d, w in q.items()) + "}"
    line = '{"_id":"big","vector":' + body + "}"
    qpath = os.path.join(work, "bigq.jsonl")
    open(qpath, "w").write(line + "\n")
    report["query_vector_line_bytes"] = len(line)
    live = S.live_documents(db, "c")
    scores = S.InvertedOracle({i: v for i, (_, v) in live.items()}).scores(q)
    for alg in S.ALGORITHMS:
        st, out, err, secs, rss = timed([S.SPARSEDB, "search", "--db", db, "--collection", "c", "--query-vectors", qpath, "--algorithm", alg,
                                         "--format", "jsonl"], timeout=600)
        entry = {"exit": st, "seconds": round(secs, 2), "peak_rss_mb": rss // 1024 if rss else None}
        if st == 0:
            res = S.parse_jsonl_results(out.decode())
            p = S.check_hits(res.get("big", []), scores, 10)
            entry["brute_force"] = p or "equal"
            if p:
                problems.append(f"30,522-dim query {alg}: {p}")
        else:
            entry["stderr"] = err.decode(errors="replace").strip()[-300:]
            if st != 1:
                problems.append(f"30,522-dim query {alg}: exit {st}")
        report[f"vector query 30522 dims, {alg}"] = entry
    words = open(corpus).read().split()
    text = []
    size = 0
    while size < 1 << 20:
        w = rng.choice(words)
        text.append(w)
        size += len(w) + 1
    big_text = " ".join(text)
    tq = os.path.join(work, "bigtext.jsonl")
    open(tq, "w").write(json.dumps({"_id": "bigtext", "text": big_text}) + "\n")
    report["text_query_line_bytes"] = os.path.getsize(tq)
    for label, cmd in (
        ("text query 1 MB (search --queries)", ["search", "--db", db, "--collection", "t", "--queries", tq, "--format", "jsonl"]),
        ("encode --queries 1 MB", ["encode", "--model", "default", "--queries", tq]),
        ("corpus document 1 MB (ingest --corpus)", ["ingest", "--db", db, "--collection", "t", "--corpus", tq, "--quiet"]),
        ("vector document 30,522 dims (ingest --vectors)", ["ingest", "--db", db, "--collection", "c", "--vectors", qpath, "--quiet"]),
    ):
        st, out, err, secs, rss = timed([S.SPARSEDB] + cmd, timeout=900)
        entry = {"exit": st, "seconds": round(secs, 2), "peak_rss_mb": rss // 1024 if rss else None,
                 "stderr": err.decode(errors="replace").strip()[-300:], "stdout_bytes": len(out)}
        if st == 0 and "search" in cmd:
            entry["hits"] = len(S.parse_jsonl_results(out.decode()).get("bigtext", []))
        if st not in (0, 1):
            problems.append(f"{label}: exit {st}")
        report[label] = entry
    st, out, err, _ = S.run([S.SPARSEDB, "verify", "--db", db])
    report["verify_after"] = st
    if st != 0:
        problems.append(f"verify after the big lines: exit {st}: {out.decode()[:300]}")
    shutil.rmtree(work, ignore_errors=True)
    report["problems"] = problems
    return report, problems


# ---------------------------------------------------------------- 5 GB input

def big_input(args):
    """Streams the generated JSONL through a pipe into `ingest --vectors -` (nothing of the input
    touches the disk); the database itself goes to --dir."""
    work = args.dir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    target = int(args.gigabytes * (1 << 30))
    stv = os.statvfs(work)
    free = stv.f_bavail * stv.f_frsize
    report = {"df_before": subprocess.run(["df", "-h", work], capture_output=True, text=True).stdout.splitlines()[-1],
              "method": "generated in this process, written to the ingest's standard input (a pipe)"}
    # a database of at most about the input's size, plus slack
    if free < target + (4 << 30):
        report["refused"] = f"only {free >> 30} GB free, need {(target + (4 << 30)) >> 30} GB"
        return report, [report["refused"]]
    lines = open(os.path.join(S.REF, "doc_vectors.jsonl")).read().splitlines()
    parsed = [json.loads(l) for l in lines]
    tails = [l[l.index(',"vector"'):] if ',"vector"' in l else l[l.index(', "vector"'):] for l in lines]
    db = os.path.join(work, "db")
    cmd = ["/usr/bin/time", "-v", S.SPARSEDB, "ingest", "--db", db, "--collection", "big", "--vectors", "-",
           "--batch-size", str(args.batch_size), "--quiet"]
    t0 = time.time()
    errf = open(os.path.join(work, "ingest.stderr"), "w+b")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
    written = 0
    count = 0
    broken = None
    samples = []  # (seconds, bytes written, VmRSS MB of sparsedb)
    next_sample = 0
    stopped_early = False

    def rss_mb():
        try:
            kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            for line in open(f"/proc/{kids[0]}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
        except (OSError, IndexError, ValueError):
            return None

    try:
        rep = 0
        buf = []
        while written < target:
            for o, tail in zip(parsed, tails):
                s = '{"_id":"' + f"{rep}-{o['_id']}" + '"' + tail + "\n"
                buf.append(s)
                written += len(s)
                count += 1
                if written >= target:
                    break
            p.stdin.write("".join(buf).encode())
            buf = []
            rep += 1
            if written >= next_sample:
                samples.append((round(time.time() - t0, 1), written, rss_mb()))
                next_sample += 256 << 20
            if args.max_seconds and time.time() - t0 > args.max_seconds:
                stopped_early = True
                break
        p.stdin.close()
    except BrokenPipeError as e:
        broken = str(e)
    p.wait()
    secs = time.time() - t0
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    sig = re.search(r"Command terminated by signal (\d+)", err)
    m2 = re.search(r"Exit status: (\d+)", err)
    st = 128 + int(sig.group(1)) if sig else (int(m2.group(1)) if m2 else p.returncode)
    rss = int(m.group(1)) if m else None
    report["input"] = {"bytes": written, "documents": count, "broken_pipe": broken, "target_bytes": target,
                       "stopped_early_after_max_seconds": stopped_early}
    report["rss_samples_seconds_bytes_mb"] = samples
    report["ingest"] = {"exit": st, "seconds": round(secs, 1), "peak_rss_mb": rss // 1024 if rss else None,
                        "stderr": err.split("\tCommand being timed:")[0].strip()[-500:],
                        "docs_per_second": round(count / secs, 1) if st == 0 else None,
                        "mb_per_second": round(written / secs / 1e6, 1) if st == 0 else None}
    problems = []
    if st not in (0, 1):
        problems.append(f"ingest exit {st}")
    if st == 0:
        report["data_mdb_bytes"] = os.path.getsize(os.path.join(db, "data.mdb"))
        s, out, err, _ = S.run([S.SPARSEDB, "stats", "--db", db])
        docs = json.loads(out)["collections"][0]["documents"] if s == 0 else None
        report["stats_documents"] = docs
        if docs != count:
            problems.append(f"stats says {docs} documents, the input has {count}")
        s, out, err, secs, vrss = timed([S.SPARSEDB, "verify", "--db", db])
        report["verify"] = {"exit": s, "seconds": round(secs, 1), "peak_rss_mb": vrss // 1024 if vrss else None,
                            "output": (out + err).decode(errors="replace").strip()[-300:]}
        if s != 0:
            problems.append(f"verify exit {s}")
        qs = S.read_vectors(os.path.join(S.REF, "query_vectors.jsonl"))[:20]
        qpath = os.path.join(work, "q.jsonl")
        with open(qpath, "w") as f:
            for qid, q in qs:
                f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
        s, out, err, secs, srss = timed([S.SPARSEDB, "search", "--db", db, "--collection", "big", "--query-vectors", qpath,
                                         "--algorithm", "bmw", "--k", "10", "--format", "jsonl"])
        report["search_20_queries_bmw"] = {"exit": s, "seconds": round(secs, 1), "peak_rss_mb": srss // 1024 if srss else None}
        if s != 0:
            problems.append(f"search exit {s}")
        else:
            # oracle: the database holds `count // 1400` copies of every cranfield document plus one
            # more of the first `count % 1400`; copies have identical vectors. Expected: the top-10
            # scores of that multiset, and every hit scoring what its original scores.
            base = S.read_vectors(os.path.join(S.REF, "doc_vectors.jsonl"))
            full, extra = divmod(count, len(base))
            copies = {i: full + (1 if k < extra else 0) for k, (i, _) in enumerate(base)}
            oracle = S.InvertedOracle(dict(base))
            res = S.parse_jsonl_results(out.decode())
            bad = 0
            for qid, q in qs:
                sc = oracle.scores(q)
                expect = []
                for i, v in sorted(sc.items(), key=lambda x: -x[1]):
                    expect += [v] * copies[i]
                    if len(expect) >= 10:
                        break
                expect = expect[:10]
                hits = res.get(qid, [])
                ok = len(hits) == len(expect) and all(S.close(h[1], e, 1e-6) for h, e in zip(hits, expect))
                ok = ok and all(S.close(sc.get(h[0].split("-", 1)[1], 0.0), h[1], 1e-6) for h in hits)
                bad += not ok
            report["search_20_queries_bmw"]["queries_not_matching_brute_force"] = bad
            if bad:
                problems.append(f"{bad} of 20 queries do not match brute force")
    shutil.rmtree(work, ignore_errors=True)
    report["df_after_cleanup"] = subprocess.run(["df", "-h", os.path.dirname(work.rstrip('/'))], capture_output=True, text=True).stdout.splitlines()[-1]
    report["problems"] = problems
    return report, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["full-disk", "hostile-models", "big-query", "big-input"])
    ap.add_argument("--mount", default="/mnt/sdbfull")
    ap.add_argument("--size-mb", type=int, default=20, help="full-disk: size of the tmpfs")
    ap.add_argument("--gigabytes", type=float, default=5)
    ap.add_argument("--dir", default="/tmp/sdb-big")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="big-input: stop generating after this long (at a line boundary) and let the ingest finish what it got")
    ap.add_argument("--summary")
    args = ap.parse_args()
    fn = {"full-disk": full_disk, "hostile-models": hostile_models, "big-query": big_query, "big-input": big_input}[args.what]
    report, problems = fn(args)
    print(json.dumps(report, indent=1))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
