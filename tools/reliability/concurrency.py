#!/usr/bin/env python3
"""Concurrency: reader processes searching in loops while one writer process ingests, deletes and
compacts; a read snapshot held for the whole run; more than 200 readers killed with SIGKILL.

    nice -n 5 tools/reliability/concurrency.py --seconds 300 --readers 4 --seed 1

- Database: collection `c` with the 1,400 cranfield reference vectors.
- Writer (one thread running `sparsedb` commands one after another): ingest --vectors of 1…600
  random ids (each rescaled by a factor of the operation and with ~15 % of its dimensions dropped,
  payload {"op": N}) with batch size 1…300, so one command commits several batches; delete
  1…150 random ids (one commit); compact (no visible change). Before each command it logs the
  time and the states the command can commit, in order (after batch 1, 2, …); after it, the time.
- Readers (--readers threads, each running `sparsedb search` processes in a loop): 20 random
  cranfield query vectors, a random algorithm of the four, k = 10, --format jsonl. Every query of
  an invocation running from a to b must equal brute force over SOME committed state that could
  have been visible during [a, b]: a state whose command started before b and whose successor's
  command ended after a (a search takes one snapshot per query).
- Killer (one thread): alternately starts `hold_reader.py` (takes a reader slot, then is killed
  with SIGKILL while holding it: a stale slot) and `sparsedb search` killed after a random
  0…300 ms. Every reader search must still succeed; the reader table (126 slots) must never run out.
- A `hold_reader.py` snapshot is held from start to end: the writer must keep committing (the
  script reports the writer's commits and command durations while it is held, and the file size).

Prints and writes (--summary) a JSON summary; exit 1 on any failure.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdbcheck as S  # noqa: E402

HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hold_reader.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--thread-readers", type=int, default=1,
                    help="reader loops running `sparsedb bench --threads N` (N threads in one process, one snapshot per query)")
    ap.add_argument("--threads", type=int, default=8, help="threads per `sparsedb bench` process")
    ap.add_argument("--kills", type=int, default=250, help="readers to SIGKILL (at least; the killer keeps going until the writer stops)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work")
    ap.add_argument("--summary")
    args = ap.parse_args()
    work = args.work or f"/tmp/sdb-concurrency-{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    db = os.path.join(work, "db")
    base = S.read_vectors(os.path.join(S.REF, "doc_vectors.jsonl"))
    base_vec = dict(base)
    base_ids = [i for i, _ in base]
    queries = S.read_vectors(os.path.join(S.REF, "query_vectors.jsonl"))
    qvec = dict(queries)
    versions = {}

    def write_vectors(path, ids, op, vecs):
        with open(path, "w") as f:
            for i in ids:
                f.write(json.dumps({"_id": i, "vector": {str(d): w for d, w in sorted(vecs[i].items())}, "op": op}) + "\n")

    versions.update({(i, 0): base_vec[i] for i in base_ids})
    init = os.path.join(work, "init.jsonl")
    write_vectors(init, base_ids, 0, base_vec)
    st, _, err, _ = S.run([S.SPARSEDB, "ingest", "--db", db, "--collection", "c", "--vectors", init, "--quiet"])
    if st:
        sys.exit(err.decode())
    state0 = {i: 0 for i in base_ids}  # id -> op that wrote its version

    stop = threading.Event()
    lock = threading.Lock()
    writer_log = []  # (t_start, t_end, [states], desc, status)
    reader_log = []  # (t_start, t_end, status, stdout, stderr, algorithm)
    kill_log = {"holder": 0, "search": 0, "holder_not_ready": 0, "search_finished_first": 0}
    failures = []

    # ---- the long-held snapshot ----
    holder = subprocess.Popen([sys.executable, HOLDER, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        sys.exit("the long holder did not get a snapshot")
    size_at_hold = os.path.getsize(os.path.join(db, "data.mdb"))

    def writer():
        rng = random.Random(args.seed)
        state = dict(state0)
        op = 0
        while not stop.is_set():
            op += 1
            x = rng.random()
            if x < 0.55:
                n = rng.randint(1, 600)
                B = rng.randint(1, 300)
                ids = rng.sample(base_ids, n)
                factor = 0.5 + 1.5 * rng.random()
                vecs = {}
                for i in ids:
                    v = {d: S.f32(w * factor) for d, w in base_vec[i].items() if rng.random() < 0.85}
                    v = {d: w for d, w in v.items() if w > 0} or {min(base_vec[i]): base_vec[i][min(base_vec[i])]}
                    vecs[i] = v
                    versions[(i, op)] = v
                path = os.path.join(work, "w.jsonl")
                write_vectors(path, ids, op, vecs)
                states = []
                for k in range(0, n, B):
                    for i in ids[k:k + B]:
                        state[i] = op
                    states.append(dict(state))
                cmd = ["ingest", "--db", db, "--collection", "c", "--vectors", path, "--batch-size", str(B), "--quiet"]
                if rng.random() < 0.5:
                    cmd.append("--no-compact")
                desc = f"ingest n={n} batch={B}"
            elif x < 0.85:
                n = rng.randint(1, 150)
                ids = rng.sample(base_ids, n)
                path = os.path.join(work, "d.txt")
                with open(path, "w") as f:
                    f.write("\n".join(ids) + "\n")
                for i in ids:
                    state.pop(i, None)
                states = [dict(state)]
                cmd = ["delete", "--db", db, "--collection", "c", "--ids", path]
                desc = f"delete n={n}"
            else:
                states = [dict(state)]
                cmd = ["compact", "--db", db]
                desc = "compact"
            t0 = time.monotonic()
            st, out, err, _ = S.run([S.SPARSEDB] + cmd, timeout=600)
            t1 = time.monotonic()
            with lock:
                writer_log.append((t0, t1, states, desc, st))
            if st != 0:
                failures.append(f"writer {desc}: exit {st}: {err.decode(errors='replace')[:300]}")
                stop.set()

    def reader(k):
        rng = random.Random(args.seed * 100 + k)
        path = os.path.join(work, f"q{k}.jsonl")
        while not stop.is_set():
            qs = rng.sample(queries, 20)
            with open(path, "w") as f:
                for qid, q in qs:
                    f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
            alg = rng.choice(S.ALGORITHMS)
            t0 = time.monotonic()
            st, out, err, _ = S.run([S.SPARSEDB, "search", "--db", db, "--collection", "c", "--query-vectors", path,
                                     "--algorithm", alg, "--k", "10", "--format", "jsonl"], timeout=120)
            t1 = time.monotonic()
            with lock:
                reader_log.append((t0, t1, st, out, err, alg))

    def thread_reader(k):
        # N threads in one process, each taking the next query; --repeat 3 keeps the process (and its
        # posting cache) alive across the writer's commits; the hits of the last pass are checked
        # against the states visible during the whole process (a superset of the last pass's window).
        rng = random.Random(args.seed * 1000 + k)
        path = os.path.join(work, f"tq{k}.jsonl")
        run = os.path.join(work, f"trun{k}.jsonl")
        while not stop.is_set():
            qs = rng.sample(queries, 60)
            with open(path, "w") as f:
                for qid, q in qs:
                    f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
            alg = rng.choice(S.ALGORITHMS)
            if os.path.exists(run):
                os.remove(run)
            t0 = time.monotonic()
            st, out, err, _ = S.run([S.SPARSEDB, "bench", "--db", db, "--collection", "c", "--query-vectors", path,
                                     "--algorithm", alg, "--k", "10", "--threads", str(args.threads), "--repeat", "3",
                                     "--no-warmup", "--run", run], timeout=300)
            t1 = time.monotonic()
            if st == 0:
                out = b""
                for line in open(run):
                    o = json.loads(line)
                    out += (json.dumps({"query_id": o["query_id"], "hits": [{"id": h[0], "score": h[1]} for h in o["hits"]]}) + "\n").encode()
            with lock:
                reader_log.append((t0, t1, st, out, err, alg + f" (bench --threads {args.threads})"))

    def killer():
        rng = random.Random(args.seed * 7 + 3)
        qpath = os.path.join(work, "qkill.jsonl")
        with open(qpath, "w") as f:
            for qid, q in queries:
                f.write(json.dumps({"_id": qid, "vector": {str(d): w for d, w in sorted(q.items())}}) + "\n")
        n = 0
        while not stop.is_set() or n < args.kills:
            if n % 2 == 0:
                p = subprocess.Popen([sys.executable, HOLDER, db], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                line = p.stdout.readline().strip()
                if line != "ready":
                    kill_log["holder_not_ready"] += 1
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                p.stdout.close()
                kill_log["holder"] += 1
            else:
                p = subprocess.Popen([S.SPARSEDB, "search", "--db", db, "--collection", "c", "--query-vectors", qpath, "--algorithm",
                                      rng.choice(S.ALGORITHMS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0, 0.3))
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                    kill_log["search"] += 1
                else:
                    kill_log["search_finished_first"] += 1
                p.wait()
            n += 1
            time.sleep(rng.uniform(0, 0.2))

    t_start = time.monotonic()
    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(k,)) for k in range(args.readers)] + \
              [threading.Thread(target=thread_reader, args=(k,)) for k in range(args.thread_readers)] + \
              [threading.Thread(target=killer)]
    for t in threads:
        t.start()
    while time.monotonic() - t_start < args.seconds and not stop.is_set():
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    run_seconds = time.monotonic() - t_start
    size_at_end = os.path.getsize(os.path.join(db, "data.mdb"))
    readers_table = subprocess.run(["mdb_stat", "-r", db], capture_output=True, text=True).stdout
    holder_alive = holder.poll() is None
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    # ---- offline checks ----
    # global sequence of states with the window in which each could have been visible
    seq = [(float("-inf"), state0)]  # (earliest time it may have become visible, state)
    starts, ends = [], []
    for (t0, t1, states, desc, st) in writer_log:
        for s in states:
            seq.append((t0, s))
            ends.append(t1)
    # the state seq[i] stops being visible when seq[i+1] commits, at the latest when that command ends
    until = [ends[i] if i < len(ends) else float("inf") for i in range(len(seq))]
    score_cache = {}

    def doc_scores(key, vec):
        s = score_cache.get(key)
        if s is None:
            s = {}
            for d in sorted(vec):
                w = vec[d]
                for qid, qw in qindex.get(d, ()):
                    s[qid] = s.get(qid, 0.0) + qw * w
            score_cache[key] = s
        return s

    qindex = {}
    for qid, q in queries:
        for d, w in q.items():
            if w > 0:
                qindex.setdefault(d, []).append((qid, w))

    checked = matched_latest = 0
    states_per_query = []
    reader_failures = 0
    slot_errors = 0
    for (a, b, st, out, err, alg) in reader_log:
        if st != 0:
            reader_failures += 1
            e = err.decode(errors="replace")
            if "reader slot" in e or "MDB_READERS_FULL" in e:
                slot_errors += 1
            failures.append(f"reader {alg}: exit {st}: {e[:300]}")
            continue
        res = S.parse_jsonl_results(out.decode())
        cands = [i for i in range(len(seq)) if seq[i][0] <= b and until[i] >= a]
        for qid, hits in res.items():
            checked += 1
            ok = False
            for n, i in enumerate(reversed(cands)):
                state = seq[i][1]
                scores = {}
                for doc, op in state.items():
                    v = doc_scores((doc, op), versions[(doc, op)]).get(qid)
                    if v:
                        scores[doc] = v
                if S.check_hits(hits, scores, 10) is None:
                    ok = True
                    matched_latest += n == 0
                    break
            states_per_query.append(len(cands))
            if not ok:
                failures.append(f"query {qid} ({alg}, search {a:.2f}-{b:.2f}) matches none of the {len(cands)} states that could be visible")
    commits = sum(len(s) for (_, _, s, _, _) in writer_log)
    durations = sorted(t1 - t0 for (t0, t1, _, _, _) in writer_log)
    summary = {
        "seed": args.seed, "seconds": round(run_seconds, 1), "reader_threads": args.readers,
        "in_process_reader_loops": args.thread_readers, "threads_per_bench_process": args.threads,
        "bench_invocations": sum(1 for r in reader_log if "bench" in r[5]),
        "writer_commands": len(writer_log), "writer_commits_logged": commits,
        "writer_commands_by_kind": {k: sum(1 for w in writer_log if w[3].startswith(k)) for k in ("ingest", "delete", "compact")},
        "writer_command_seconds": {"median": round(durations[len(durations) // 2], 2) if durations else None,
                                   "max": round(durations[-1], 2) if durations else None},
        "search_invocations": len(reader_log), "queries_checked": checked,
        "queries_matching_the_latest_candidate_state": matched_latest,
        "candidate_states_per_query": {"mean": round(sum(states_per_query) / max(1, len(states_per_query)), 2),
                                       "max": max(states_per_query) if states_per_query else 0},
        "reader_failures": reader_failures, "reader_slot_errors": slot_errors,
        "killed": kill_log, "killed_total": kill_log["holder"] + kill_log["search"],
        "long_holder_alive_at_end": holder_alive,
        "data_mdb_bytes": {"when_the_snapshot_was_taken": size_at_hold, "at_end": size_at_end},
        "reader_table_at_end": readers_table.strip().splitlines(),
        "failures": failures[:50], "failure_count": len(failures),
    }
    print(json.dumps(summary, indent=1))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
