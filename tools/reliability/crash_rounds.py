#!/usr/bin/env python3
"""Crash rounds: SIGKILL `sparsedb` at random moments of ingest (vectors and text), delete and
compact, and check after every kill that nothing but whole committed transactions is visible.

    nice -n 5 tools/reliability/crash_rounds.py --rounds 200 --seed 1 [--queries 100] [--work DIR]

One database lives through all rounds, with two collections:

- `vec`: the 1,400 cranfield reference document vectors (splade-tiny). A vector round ingests a
  random sample of them in random order, each document rescaled by a factor of the round and with
  about 15 % of its dimensions dropped (so a replacement really changes the postings), tagged with
  a payload {"round": R}; batch size log-uniform in 1…2000.
- `text`: 120 cranfield documents (text cut to 40 words so that rounds stay fast), ingested from
  text with the default model, a payload field "round": R; batch size 1…60; 30 % of the text
  rounds use --replace, the others resume (skip stored ids).
- delete rounds delete 1…300 ids (some absent) of either collection; compact rounds compact one
  or all collections.

The kill comes after a uniform random delay in [0, 1.1 × the expected duration of the command]
(the expectation is learnt from the rounds the kill missed). After each round:

1. `sparsedb verify` exits 0, `stats` counts the live documents read from LMDB;
2. the live documents are read straight from LMDB (ctypes, liblmdb — not through the engine):
   id map → document record (payload: which round wrote it) → forward row;
   - vector ingest: the ids the round wrote are exactly the first m ids of its input with m a
     multiple of the batch size (or all n); every other id is as before; every stored row equals
     the round's vector bit for bit;
   - text ingest: the ids written are the union of the first j input batches (minus the ids
     already stored, unless --replace); untouched rows are byte-identical; written rows are within
     1e-4 of `sparsedb encode`'s vectors (batch composition changes the last float bits);
   - delete: all listed live ids gone, or none; compact: nothing visible changes;
   - a command the kill missed exited 0 and did all of its work;
3. `sparsedb search --query-vectors` with each of the four algorithms, k = 10, on both
   collections equals brute force (double sums of the float32 weights, in increasing dimension
   order) over exactly the live documents: every hit scores its brute-force score (relative
   1e-6, the JSON output's precision), and the hit set is the top k with ties at the cut-off
   judged by score with relative tolerance 1e-9.

Writes a JSON summary (--summary) and prints it. Exit status 1 if any round failed.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdbcheck as S  # noqa: E402

TEXT_DOCS = 120
TEXT_WORDS = 40


def log_uniform_int(rng, lo, hi):
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


class Rounds:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = args.work or f"/tmp/sdb-crash-{args.seed}"
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.db = os.path.join(self.work, "db")
        self.base = S.read_vectors(os.path.join(S.REF, "doc_vectors.jsonl"))
        self.base_ids = [i for i, _ in self.base]
        self.base_vec = dict(self.base)
        queries = S.read_vectors(os.path.join(S.REF, "query_vectors.jsonl"))
        qrng = random.Random(args.seed * 7919 + 1)
        self.queries = sorted(qrng.sample(queries, min(args.queries, len(queries))), key=lambda q: queries.index(q))
        self.query_file = os.path.join(self.work, "queries.jsonl")
        with open(self.query_file, "w") as f:
            for qid, q in self.queries:
                f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
        # query index: dim -> [(query number, weight)], for per-document score vectors
        self.qindex = {}
        for qn, (_, q) in enumerate(self.queries):
            for d, w in q.items():
                if w > 0:
                    self.qindex.setdefault(d, []).append((qn, w))
        self.score_cache = {}
        # text documents
        self.text_lines = {}
        self.text_ids = []
        with open(os.path.join(S.CRANFIELD, "corpus.jsonl")) as f:
            for line in f:
                o = json.loads(line)
                o["text"] = " ".join(o["text"].split()[:TEXT_WORDS])
                self.text_ids.append(o["_id"])
                self.text_lines[o["_id"]] = o
                if len(self.text_ids) == TEXT_DOCS:
                    break
        enc_in = os.path.join(self.work, "text_all.jsonl")
        self.write_corpus(enc_in, self.text_ids, -1)
        st, out, err, _ = S.run([S.SPARSEDB, "encode", "--model", "default", "--documents", enc_in])
        if st != 0:
            sys.exit(f"encode failed: {err.decode()}")
        self.text_expected = {}
        for line in out.decode().splitlines():
            o = json.loads(line)
            self.text_expected[o["_id"]] = {int(d): S.f32(w) for d, w in o["vector"].items()}
        # state read from the database: id -> (round, row)
        self.vec_state = {}
        self.text_state = {}
        self.versions = {}  # (id, round) -> vector, for vec
        self.cost = {"vectors": [0.4, 0.0012, 0.006], "corpus": [1.0, 0.03, 0.02], "delete": [0.25, 0.0, 0.0], "compact": [0.8, 0.0, 0.0]}
        self.failures = []
        self.tally = {"rounds": 0, "killed": 0, "completed": 0, "by_op": {}, "committed_batches_seen": 0, "partial_ingests": 0,
                      "searches": 0, "queries_checked": 0, "verify_runs": 0}

    # ---------- inputs ----------

    def write_corpus(self, path, ids, rnd):
        with open(path, "w") as f:
            for i in ids:
                o = dict(self.text_lines[i])
                o["round"] = rnd
                f.write(json.dumps(o) + "\n")

    def variant(self, rnd, doc_id):
        r = random.Random(f"{self.args.seed}/{rnd}/{doc_id}")
        factor = 0.5 + 1.5 * random.Random(f"{self.args.seed}/{rnd}").random()
        base = self.base_vec[doc_id]
        dims = sorted(base)
        kept = [d for d in dims if r.random() < 0.85] or [dims[0]]
        out = {}
        for d in kept:
            w = S.f32(base[d] * factor)
            if w > 0:
                out[d] = w
        if not out:
            out[dims[0]] = S.f32(max(base[dims[0]], 1e-3))
        return out

    # ---------- state ----------

    def epochs(self):
        with S.LMDB(self.db) as view:
            return {name: [f["epoch"] for f in rec["fields"]] for name, rec in S.collections(view).items()}

    def read_state(self, collection):
        live = S.live_documents(self.db, collection)
        out = {}
        for i, (payload, row) in live.items():
            rnd = json.loads(payload)["round"] if payload else None
            out[i] = (rnd, row)
        return out

    def doc_scores(self, key, vec):
        s = self.score_cache.get(key)
        if s is None:
            s = {}
            for d in sorted(vec):
                w = vec[d]
                for qn, qw in self.qindex.get(d, ()):
                    s[qn] = s.get(qn, 0.0) + qw * w
            self.score_cache[key] = s
        return s

    # ---------- checks ----------

    def fail(self, rnd, what, detail):
        self.failures.append({"round": rnd, "what": what, "detail": detail[:2000]})
        print(f"FAIL round {rnd}: {what}: {detail[:500]}", flush=True)

    def check_search(self, rnd, collection, scored):
        """scored: {id: {query number: score}} of the live documents."""
        per_query = [dict() for _ in self.queries]
        for doc_id, s in scored.items():
            for qn, v in s.items():
                if v > 0:
                    per_query[qn][doc_id] = v
        for alg in S.ALGORITHMS:
            st, out, err, _ = S.run([S.SPARSEDB, "search", "--db", self.db, "--collection", collection, "--query-vectors", self.query_file,
                                     "--algorithm", alg, "--k", "10", "--format", "jsonl"], timeout=300)
            self.tally["searches"] += 1
            if st != 0:
                self.fail(rnd, f"search {collection} {alg} exit {st}", err.decode(errors="replace"))
                continue
            res = S.parse_jsonl_results(out.decode())
            for qn, (qid, _) in enumerate(self.queries):
                self.tally["queries_checked"] += 1
                problem = S.check_hits(res.get(qid, []), per_query[qn], 10) if qid in res else "query missing from the output"
                if problem:
                    self.fail(rnd, f"search {collection} {alg} query {qid}", problem)
                    break

    def verify(self, rnd):
        st, out, err, _ = S.run([S.SPARSEDB, "verify", "--db", self.db], timeout=300)
        self.tally["verify_runs"] += 1
        if st != 0:
            self.fail(rnd, f"verify exit {st}", (out + err).decode(errors="replace"))
            return False
        return True

    def check_stats(self, rnd):
        st, out, err, _ = S.run([S.SPARSEDB, "stats", "--db", self.db], timeout=300)
        if st != 0:
            self.fail(rnd, f"stats exit {st}", err.decode(errors="replace"))
            return False
        counts = {c["name"]: c["documents"] for c in json.loads(out)["collections"]}
        for name, state in (("vec", self.vec_state), ("text", self.text_state)):
            if counts.get(name, 0) != len(state):
                self.fail(rnd, "stats", f"{name}: stats says {counts.get(name)} documents, LMDB holds {len(state)} live")
        return True

    def check_vec_rows(self, rnd, state):
        for i, (r, row) in state.items():
            exp = self.versions.get((i, r))
            if exp is None:
                self.fail(rnd, "vec row", f"{i} carries round {r}, which never wrote it")
                return False
            if row != exp:
                self.fail(rnd, "vec row", f"{i} (round {r}): stored row differs from the ingested vector")
                return False
        return True

    def check_text_rows(self, rnd, state, touched):
        worst = 0.0
        for i, (r, row) in state.items():
            if i not in touched and i in self.text_state and self.text_state[i] != (r, row):
                self.fail(rnd, "text row", f"{i} changed although round {rnd} did not write it")
                return False
            exp = self.text_expected[i]
            for d in set(row) | set(exp):
                worst = max(worst, abs(row.get(d, 0.0) - exp.get(d, 0.0)))
        if worst > 1e-4:
            self.fail(rnd, "text row", f"a stored row differs from `sparsedb encode` by {worst}")
            return False
        return True

    # ---------- operations ----------

    def launch(self, op, args, expected, kill=True):
        delay = self.rng.uniform(0, 1.1 * expected) if kill else None
        t0 = time.time()
        p = subprocess.Popen([S.SPARSEDB] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        killed = False
        if delay is not None:
            try:
                p.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                killed = True
        try:
            _, err = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            _, err = p.communicate()
            return "hang", time.time() - t0, err
        status = p.returncode if p.returncode >= 0 else 128 - p.returncode
        if killed and status != 128 + signal.SIGKILL:
            killed = False  # it finished between the timeout and the kill
        return ("killed" if killed else status), time.time() - t0, err

    def slower(self, op):
        """A kill that left no trace: the command may be slower than estimated."""
        self.cost[op] = [x * 1.15 for x in self.cost[op]]

    def learn(self, op, size_terms, seconds):
        c = self.cost[op]
        predicted = c[0] + c[1] * size_terms[0] + c[2] * size_terms[1]
        ratio = seconds / max(predicted, 1e-3)
        ratio = min(max(ratio, 0.5), 2.0)
        self.cost[op] = [x * (0.7 + 0.3 * ratio) for x in c]

    def expected(self, op, n, batches):
        c = self.cost[op]
        return c[0] + c[1] * n + c[2] * batches

    def op_vectors(self, rnd):
        B = log_uniform_int(self.rng, 1, 2000)
        n = self.rng.randint(1, min(len(self.base_ids), B * self.rng.randint(1, 12), 1400 if B > 1 else 40))
        ids = self.rng.sample(self.base_ids, n)
        path = os.path.join(self.work, "input.jsonl")
        with open(path, "w") as f:
            for i in ids:
                v = self.variant(rnd, i)
                self.versions[(i, rnd)] = v
                f.write(json.dumps({"_id": i, "vector": {str(d): w for d, w in sorted(v.items())}, "round": rnd}) + "\n")
        batches = math.ceil(n / B)
        outcome, secs, err = self.launch("vectors", ["ingest", "--db", self.db, "--collection", "vec", "--vectors", path,
                                                     "--batch-size", str(B), "--quiet"], self.expected("vectors", n, batches))
        desc = f"ingest --vectors n={n} batch={B}"
        ok = self.after_kill(rnd, desc, outcome, err)
        if outcome != "killed":
            self.learn("vectors", (n, batches), secs)
        if not ok:
            return desc, outcome
        state = self.read_state("vec")
        old = self.vec_state
        written = [i for i in ids if i in state and state[i][0] == rnd]
        m = len(written)
        if written != ids[:m]:
            self.fail(rnd, desc, f"the ids written are not a prefix of the input: {m} written, first gap at "
                      f"{next(k for k, i in enumerate(ids) if (i in written) != (k < m))}")
        elif m % B != 0 and m != n:
            self.fail(rnd, desc, f"{m} ids written: not a whole number of batches of {B}")
        elif outcome != "killed" and m != n:
            self.fail(rnd, desc, f"exit {outcome} but only {m} of {n} written")
        others = set(state) | set(old)
        committed = set(ids[:m])
        for i in others:
            if i in committed:
                continue
            if (i in state) != (i in old) or (i in state and state[i][0] != old[i][0]):
                self.fail(rnd, desc, f"id {i} changed although it is not in the committed batches ({old.get(i, (None,))[0]} -> {state.get(i, (None,))[0]})")
                break
        if 0 < m < n:
            self.tally["partial_ingests"] += 1
        if outcome == "killed" and m == 0:
            self.slower("vectors")
        self.tally["committed_batches_seen"] += math.ceil(m / B)
        desc += f" -> {m} written ({math.ceil(m / B)} of {batches} batches)"
        self.check_vec_rows(rnd, state)
        self.vec_state = state
        return desc, outcome

    def op_corpus(self, rnd):
        B = log_uniform_int(self.rng, 1, 60)
        n = self.rng.randint(1, TEXT_DOCS)
        ids = self.rng.sample(self.text_ids, n)
        replace = self.rng.random() < 0.3
        path = os.path.join(self.work, "corpus.jsonl")
        self.write_corpus(path, ids, rnd)
        old = self.text_state
        todo = n if replace else sum(1 for i in ids if i not in old)
        batches = math.ceil(n / B)
        args = ["ingest", "--db", self.db, "--collection", "text", "--corpus", path, "--batch-size", str(B), "--quiet"]
        if replace:
            args.append("--replace")
        outcome, secs, err = self.launch("corpus", args, self.expected("corpus", todo, batches))
        desc = f"ingest --corpus n={n} batch={B}{' --replace' if replace else ''}"
        ok = self.after_kill(rnd, desc, outcome, err)
        if outcome != "killed":
            self.learn("corpus", (todo, batches), secs)
        if not ok:
            return desc, outcome
        state = self.read_state("text")
        written = {i for i in state if state[i][0] == rnd}
        chunks = [ids[k:k + B] for k in range(0, n, B)]
        allowed = [set()]
        acc = set()
        for c in chunks:
            acc |= {i for i in c if replace or i not in old}
            allowed.append(set(acc))
        if written not in allowed:
            self.fail(rnd, desc, f"the {len(written)} ids written are not the first j batches of the input")
        elif outcome != "killed" and written != allowed[-1]:
            self.fail(rnd, desc, f"exit {outcome} but {len(written)} of {len(allowed[-1])} written")
        for i in set(state) | set(old):
            if i in written:
                continue
            if (i in state) != (i in old) or (i in state and state[i][0] != old[i][0]):
                self.fail(rnd, desc, f"id {i} changed although the round did not write it")
                break
        j = allowed.index(written) if written in allowed else -1
        if 0 < j < len(chunks):
            self.tally["partial_ingests"] += 1
        if outcome == "killed" and j == 0:
            self.slower("corpus")
        self.tally["committed_batches_seen"] += max(j, 0)
        desc += f" -> {len(written)} written ({j} of {len(chunks)} batches)"
        self.check_text_rows(rnd, state, written)
        self.text_state = state
        return desc, outcome

    def op_delete(self, rnd):
        coll = "vec" if self.rng.random() < 0.7 else "text"
        pool = self.base_ids if coll == "vec" else self.text_ids
        n = self.rng.randint(1, 300 if coll == "vec" else 60)
        ids = self.rng.sample(pool, n)
        path = os.path.join(self.work, "delete.txt")
        with open(path, "w") as f:
            f.write("\n".join(ids) + "\n")
        outcome, secs, err = self.launch("delete", ["delete", "--db", self.db, "--collection", coll, "--ids", path], self.expected("delete", n, 0))
        desc = f"delete {coll} n={n}"
        ok = self.after_kill(rnd, desc, outcome, err)
        if outcome != "killed":
            self.learn("delete", (n, 0), secs)
        if not ok:
            return desc, outcome
        old = self.vec_state if coll == "vec" else self.text_state
        state = self.read_state(coll)
        gone = set(old) - set(state)
        listed_live = set(ids) & set(old)
        if gone and gone != listed_live:
            self.fail(rnd, desc, f"{len(gone)} of {len(listed_live)} listed live ids gone (all or none expected)")
        elif outcome != "killed" and gone != listed_live:
            self.fail(rnd, desc, f"exit {outcome} but {len(gone)} of {len(listed_live)} deleted")
        if set(state) - set(old) or any(state[i] != old[i] for i in state):
            self.fail(rnd, desc, "a document that was not deleted changed")
        if outcome == "killed" and not gone and listed_live:
            self.slower("delete")
        desc += f" -> {len(gone)} of {len(listed_live)} listed live ids deleted"
        self.tally["deletes_applied" if gone else "deletes_not_applied"] = self.tally.get("deletes_applied" if gone else "deletes_not_applied", 0) + 1
        if coll == "vec":
            self.vec_state = state
        else:
            self.text_state = state
        return desc, outcome

    def op_compact(self, rnd):
        coll = self.rng.choice([None, "vec", "text"])
        args = ["compact", "--db", self.db] + (["--collection", coll] if coll else [])
        epochs_before = self.epochs()
        outcome, secs, err = self.launch("compact", args, self.expected("compact", 0, 0))
        desc = f"compact {coll or 'all'}"
        ok = self.after_kill(rnd, desc, outcome, err)
        if outcome != "killed":
            self.learn("compact", (0, 0), secs)
        if not ok:
            return desc, outcome
        epochs_after = self.epochs()
        done = [c for c in epochs_after if epochs_after[c] != epochs_before.get(c)]
        desc += f" -> compacted: {', '.join(done) or 'none'}"
        if outcome == "killed" and not done:
            self.slower("compact")
        self.tally["compactions_committed"] = self.tally.get("compactions_committed", 0) + len(done)
        for name in ("vec", "text"):
            state = self.read_state(name)
            old = self.vec_state if name == "vec" else self.text_state
            if state != old:
                self.fail(rnd, desc, f"compaction changed the live documents of {name}")
            if name == "vec":
                self.vec_state = state
            else:
                self.text_state = state
        return desc, outcome

    def after_kill(self, rnd, desc, outcome, err):
        if outcome == "hang":
            self.fail(rnd, desc, "no exit within 900 s")
            return False
        if outcome != "killed" and outcome != 0:
            self.fail(rnd, f"{desc}: exit {outcome}", err.decode(errors="replace"))
        return self.verify(rnd)

    # ---------- main ----------

    def setup(self):
        path = os.path.join(self.work, "input.jsonl")
        with open(path, "w") as f:
            for i in self.base_ids:
                self.versions[(i, -1)] = self.base_vec[i]
                f.write(json.dumps({"_id": i, "vector": {str(d): w for d, w in sorted(self.base_vec[i].items())}, "round": -1}) + "\n")
        st, _, err, _ = S.run([S.SPARSEDB, "ingest", "--db", self.db, "--collection", "vec", "--vectors", path, "--batch-size", "500", "--quiet"])
        if st:
            sys.exit(err.decode())
        cpath = os.path.join(self.work, "corpus.jsonl")
        self.write_corpus(cpath, self.text_ids[:60], -1)
        st, _, err, _ = S.run([S.SPARSEDB, "ingest", "--db", self.db, "--collection", "text", "--corpus", cpath, "--batch-size", "30", "--quiet"])
        if st:
            sys.exit(err.decode())
        self.vec_state = self.read_state("vec")
        self.text_state = self.read_state("text")
        self.check_vec_rows(-1, self.vec_state)
        self.check_text_rows(-1, self.text_state, set(self.text_state))

    def scored(self, name):
        if name == "vec":
            return {i: self.doc_scores((i, r), row) for i, (r, row) in self.vec_state.items()}
        out = {}
        for i, (r, row) in self.text_state.items():
            s = {}
            for d in sorted(row):
                for qn, qw in self.qindex.get(d, ()):
                    s[qn] = s.get(qn, 0.0) + qw * row[d]
            out[i] = s
        return out

    def prune(self):
        live = {(i, r) for i, (r, _) in self.vec_state.items()}
        self.versions = {k: v for k, v in self.versions.items() if k in live}
        self.score_cache = {k: v for k, v in self.score_cache.items() if k in live}

    def main(self):
        t_start = time.time()
        self.setup()
        ops = [("vectors", 0.4, self.op_vectors), ("corpus", 0.2, self.op_corpus), ("delete", 0.2, self.op_delete), ("compact", 0.2, self.op_compact)]
        log = open(os.path.join(self.work, "rounds.log"), "w")
        for rnd in range(self.args.rounds):
            x = self.rng.random()
            for name, weight, fn in ops:
                if x < weight:
                    break
                x -= weight
            before = len(self.failures)
            backup = os.path.join(self.work, "db.before")
            shutil.rmtree(backup, ignore_errors=True)
            shutil.copytree(self.db, backup)
            t0 = time.time()
            desc, outcome = fn(rnd)
            t1 = time.time()
            killed = outcome == "killed"
            self.tally["rounds"] += 1
            self.tally["killed" if killed else "completed"] += 1
            t = self.tally["by_op"].setdefault(name, {"rounds": 0, "killed": 0})
            t["rounds"] += 1
            t["killed"] += killed
            if len(self.failures) == before:
                self.check_stats(rnd)
            t2 = t3 = time.time()
            if len(self.failures) == before:
                scored = self.scored("vec"), self.scored("text")
                t2 = time.time()
                self.check_search(rnd, "vec", scored[0])
                self.check_search(rnd, "text", scored[1])
                t3 = time.time()
            self.prune()
            line = f"round {rnd}: {desc}: {'killed' if killed else 'exit ' + str(outcome)}; vec {len(self.vec_state)} live, text {len(self.text_state)} live" + \
                   f" [op+checks {t1 - t0:.1f} s, oracle {t2 - t1:.1f} s, searches {t3 - t2:.1f} s]" + \
                   ("" if len(self.failures) == before else "  FAILED")
            print(line, flush=True)
            log.write(line + "\n")
            if len(self.failures) > before:
                keep = os.path.join(self.work, f"failed-round-{rnd}")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(backup, keep)
                if self.args.stop_on_failure:
                    break
                # resynchronise with what is stored, to keep going
                self.vec_state = self.read_state("vec")
                self.text_state = self.read_state("text")
                for i, (r, row) in self.vec_state.items():
                    self.versions.setdefault((i, r), row)
        self.tally["failures"] = len(self.failures)
        self.tally["failure_list"] = self.failures
        self.tally["seconds"] = round(time.time() - t_start, 1)
        self.tally["seed"] = self.args.seed
        self.tally["queries_per_search"] = len(self.queries)
        size = os.path.getsize(os.path.join(self.db, "data.mdb"))
        self.tally["final_data_mdb_bytes"] = size
        print(json.dumps(self.tally, indent=1))
        if self.args.summary:
            with open(self.args.summary, "w") as f:
                json.dump(self.tally, f, indent=1)
        return 1 if self.failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=60, help="query vectors per search (a seeded sample of cranfield's 225)")
    ap.add_argument("--work", help="working directory (default /tmp/sdb-crash-SEED; emptied first)")
    ap.add_argument("--summary", help="write the JSON summary here")
    ap.add_argument("--stop-on-failure", action="store_true")
    sys.exit(Rounds(ap.parse_args()).main())


if __name__ == "__main__":
    main()
