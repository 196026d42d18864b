#!/usr/bin/env python3
"""Shared helpers of the reliability scripts (Python 3 stdlib only).

- `LMDB`: reads a SparseDB environment with Debian's liblmdb through ctypes, independently of
  the engine: the tables of format-spec.md §2, the live documents of a collection with their
  payloads and forward rows (decoded from the bytes as §5, §6, §8 describe).
- `brute_force` / `check_hits`: the oracle. Dot products in double over the float32 weights,
  summed in increasing dimension order; a result is right when every hit's score equals its
  brute-force score and the hit set is the top k with ties at the cut-off judged by score with
  a relative tolerance of 1e-9.
- `run`: runs a command with a timeout, returning (status, stdout, stderr, seconds); a signal
  shows as status 128 + signal, a timeout as status -1.
"""
import ctypes
import json
import os
import signal
import struct
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPARSEDB = os.environ.get("SPARSEDB_BIN", os.path.join(REPO, ".build", "release", "sparsedb"))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))
REF = os.path.join(SHARED, "reference", "splade-tiny", "cranfield")
CRANFIELD = os.path.join(SHARED, "data", "cranfield")
ALGORITHMS = ["exhaustive", "maxscore", "wand", "bmw"]
TIE_TOLERANCE = 1e-9

MDB_RDONLY = 0x20000
MDB_NOTLS = 0x200000
MDB_NOSUBDIR = 0x4000
MDB_FIRST = 0
MDB_NEXT = 8
MDB_NOTFOUND = -30798


class MDBVal(ctypes.Structure):
    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL("liblmdb.so.0")
        _lib.mdb_strerror.restype = ctypes.c_char_p
    return _lib


class LMDB:
    """A read-only view of one SparseDB environment (directory), one snapshot per `tables` call."""

    def __init__(self, path):
        self.env = ctypes.c_void_p()
        L = lib()
        rc = L.mdb_env_create(ctypes.byref(self.env))
        if rc:
            raise RuntimeError(f"mdb_env_create {rc}")
        L.mdb_env_set_maxdbs(self.env, 32)
        rc = L.mdb_env_open(self.env, path.encode(), MDB_RDONLY | MDB_NOTLS, 0o644)
        if rc:
            L.mdb_env_close(self.env)
            raise RuntimeError(f"mdb_env_open {path}: {L.mdb_strerror(rc).decode()}")

    def close(self):
        if self.env:
            lib().mdb_env_close(self.env)
            self.env = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def tables(self, names):
        """{name: [(key bytes, value bytes)]} for the named tables, from one snapshot."""
        L = lib()
        txn = ctypes.c_void_p()
        rc = L.mdb_txn_begin(self.env, None, MDB_RDONLY, ctypes.byref(txn))
        if rc:
            raise RuntimeError(f"mdb_txn_begin: {L.mdb_strerror(rc).decode()}")
        out = {}
        try:
            for name in names:
                dbi = ctypes.c_uint()
                rc = L.mdb_dbi_open(txn, name.encode(), 0, ctypes.byref(dbi))
                if rc == MDB_NOTFOUND:
                    out[name] = []
                    continue
                if rc:
                    raise RuntimeError(f"mdb_dbi_open {name}: {L.mdb_strerror(rc).decode()}")
                cur = ctypes.c_void_p()
                rc = L.mdb_cursor_open(txn, dbi, ctypes.byref(cur))
                if rc:
                    raise RuntimeError(f"mdb_cursor_open {name}: {rc}")
                k, v = MDBVal(), MDBVal()
                rows = []
                op = MDB_FIRST
                while True:
                    rc = L.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), op)
                    if rc == MDB_NOTFOUND:
                        break
                    if rc:
                        raise RuntimeError(f"mdb_cursor_get {name}: {L.mdb_strerror(rc).decode()}")
                    rows.append((ctypes.string_at(k.mv_data, k.mv_size), ctypes.string_at(v.mv_data, v.mv_size)))
                    op = MDB_NEXT
                L.mdb_cursor_close(cur)
                out[name] = rows
        finally:
            L.mdb_txn_abort(txn)
        return out


def varint(b, i):
    value, shift = 0, 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def decode_forward_row(body):
    """§8: encoding u8 ‖ count varint ‖ the entries: encoding 0 (plain) = count dimension gaps
    (varints) ‖ count f32le weights; encoding 1 (packed) = gap parameter u8 ‖ exponent parameter
    u8 ‖ top u16le ‖ first dimension varint ‖ bit stream (LSB first) of, per entry, the Rice code
    of the gap − 1 (not for the first), the Rice code of top − (bits >> 23), 23 mantissa bits."""
    encoding = body[0]
    count, i = varint(body, 1)
    if encoding == 0:
        dims, d = [], 0
        for j in range(count):
            g, i = varint(body, i)
            d = g if j == 0 else d + g
            dims.append(d)
        weights = struct.unpack_from(f"<{count}f", body, i)
        return dict(zip(dims, weights))
    assert encoding == 1, "forward row encoding"
    if count == 0:
        assert i == len(body)
        return {}
    gap_k, exp_k = body[i], body[i + 1]
    top = body[i + 2] | body[i + 3] << 8
    assert gap_k <= 31 and exp_k <= 9 and top <= 511
    first, i = varint(body, i + 4)
    stream = int.from_bytes(body[i:], "little")
    nbits = 8 * (len(body) - i)
    pos = 0

    def bits(n):
        nonlocal pos
        v = (stream >> pos) & ((1 << n) - 1)
        pos += n
        assert pos <= nbits, "packed row runs past its end"
        return v

    def rice(k):
        nonlocal pos
        q = 0
        while not (stream >> pos) & 1:
            q += 1
            pos += 1
            assert pos < nbits, "packed row runs past its end"
        pos += 1
        return q << k | bits(k)

    out, d = {}, first
    for j in range(count):
        if j > 0:
            d += rice(gap_k) + 1
        below = rice(exp_k)
        assert below <= top
        pattern = (top - below) << 23 | bits(23)
        out[d] = struct.unpack("<f", struct.pack("<I", pattern))[0]
    assert (pos + 7) // 8 == len(body) - i and stream >> pos == 0, "packed row has bytes or bits after its end"
    return out


def collections(view):
    """{name: record} from the meta table (§4: sealed JSON)."""
    meta = view.tables(["meta"])["meta"]
    out = {}
    for k, v in meta:
        if k.startswith(b"collection:"):
            out[k[len(b"collection:"):].decode()] = json.loads(v[4:])
    return out


def grouped_rows(entries, fprefix):
    """{doc key bytes: sealed row body} from format 4's row groups (§8a): crc ‖ slots ‖ slots ×
    u32le ends ‖ rows, each row a §8 sealed row under its own document's key (checksums are the
    engine's to check; this reads the layout as the spec states it)."""
    rows = {}
    for k, v in entries:
        if k[:8] != fprefix:
            continue
        first = struct.unpack(">I", k[8:12])[0]
        slots = struct.unpack_from("<I", v, 4)[0]
        ends = struct.unpack_from("<%dI" % slots, v, 8)
        base = 8 + 4 * slots
        assert ends[-1] == len(v) - base, f"group {first}: table"
        start = 0
        for i, end in enumerate(ends):
            if end > start:
                doc = struct.pack(">I", first + i)
                row = v[base + start:base + end]
                rows[doc] = row[4:]
            start = end
    return rows


def live_documents(path, collection, field_id=1):
    """{external id: (payload bytes or None, {dim: float weight})} of the collection's live
    documents, read straight from LMDB: id map → document record → forward row."""
    with LMDB(path) as view:
        meta = {k: v for k, v in view.tables(["meta"])["meta"]}
        raw = meta.get(b"collection:" + collection.encode())
        if raw is None:
            return {}
        cid = json.loads(raw[4:])["id"]
        t = view.tables(["external-id", "document", "forward-row"])
    prefix = struct.pack(">I", cid)
    docs = {k[4:]: v[4:] for k, v in t["document"] if k[:4] == prefix}
    fprefix = prefix + struct.pack(">I", field_id)
    version = struct.unpack_from("<I", meta[b"format"], 8)[0]
    if version >= 4:
        rows = grouped_rows(t["forward-row"], fprefix)
    else:
        rows = {k[8:]: v[4:] for k, v in t["forward-row"] if k[:8] == fprefix}
    out = {}
    for k, v in t["external-id"]:
        if k[:4] != prefix:
            continue
        ext = k[4:].decode()
        doc = struct.pack(">I", struct.unpack("<I", v[:4])[0])
        rec = docs[doc]
        flags, n = rec[0], struct.unpack_from("<H", rec, 1)[0]
        assert rec[3:3 + n].decode() == ext, f"document record of {ext} names {rec[3:3 + n]!r}"
        payload = rec[3 + n:] if flags & 1 else None
        out[ext] = (payload, decode_forward_row(rows[doc]) if doc in rows else {})
    return out


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def read_vectors(path):
    """[(id, {dim: float32 weight})] of a vector JSONL file, in file order."""
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                out.append((o["_id"], {int(d): f32(w) for d, w in o["vector"].items()}))
    return out


def brute_force(docs, query, top=None):
    """[(score, id)] of every document with a positive score, best first (ties by id).
    docs: {id: {dim: weight}}; sums in double in increasing dimension order."""
    qdims = sorted(d for d, w in query.items() if w > 0)
    scores = []
    for doc_id, vec in docs.items():
        s = 0.0
        hit = False
        for d in qdims:
            w = vec.get(d)
            if w:
                s += query[d] * w
                hit = True
        if hit and s > 0:
            scores.append((s, doc_id))
    scores.sort(key=lambda x: (-x[0], x[1]))
    return scores if top is None else scores[:top]


class InvertedOracle:
    """Brute force over a fixed document set, with an inverted index for speed; the same sums
    (per document, in increasing dimension order) as `brute_force`."""

    def __init__(self, docs):
        self.docs = docs
        self.index = {}
        for doc_id, vec in docs.items():
            for d, w in vec.items():
                if w > 0:
                    self.index.setdefault(d, []).append((doc_id, w))

    def scores(self, query):
        acc = {}
        for d in sorted(d for d, w in query.items() if w > 0):
            q = query[d]
            for doc_id, w in self.index.get(d, ()):
                acc[doc_id] = acc.get(doc_id, 0.0) + q * w
        return acc


def close(a, b, tol=TIE_TOLERANCE):
    return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300)


def check_hits(hits, scores, k, tol=TIE_TOLERANCE):
    """hits: [(id, score)] returned; scores: {id: brute-force score} over the committed documents
    (documents with a positive score). Returns None when right, else a description."""
    ranked = sorted(scores.items(), key=lambda x: -x[1])
    expect_n = min(k, len(ranked))
    if len(hits) != expect_n:
        return f"{len(hits)} hits, brute force has {expect_n}"
    if not hits:
        return None
    for hid, hs in hits:
        if hid not in scores:
            return f"hit {hid} ({hs}) is not a committed document matching the query"
        if not close(hs, scores[hid], 1e-6):
            return f"hit {hid} scored {hs!r}, brute force {scores[hid]!r}"
    if len({h for h, _ in hits}) != len(hits):
        return "a document is returned twice"
    kth = ranked[expect_n - 1][1]
    got = {h for h, _ in hits}
    for doc_id, s in ranked:
        if s > kth and not close(s, kth, tol) and doc_id not in got:
            return f"missing {doc_id} ({s!r} > k-th {kth!r})"
        if s < kth:
            break
    for hid, hs in hits:
        if scores[hid] < kth and not close(scores[hid], kth, tol):
            return f"hit {hid} ({scores[hid]!r}) is below the k-th brute-force score {kth!r}"
    prev = None
    for _, hs in hits:
        if prev is not None and hs > prev and not close(hs, prev, 1e-6):
            return "hits are not in decreasing score order"
        prev = hs
    return None


def parse_jsonl_results(text):
    """{query id: [(hit id, score)]} from `sparsedb search --format jsonl`."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            o = json.loads(line)
            out[o["query_id"]] = [(h["id"], float(h["score"])) for h in o["hits"]]
    return out


def run(args, timeout=600, stdin=None, env=None):
    t0 = time.time()
    try:
        p = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        return -1, e.stdout or b"", e.stderr or b"", time.time() - t0
    status = p.returncode if p.returncode >= 0 else 128 - p.returncode
    return status, p.stdout, p.stderr, time.time() - t0


def signal_name(status):
    if status >= 128:
        try:
            return signal.Signals(status - 128).name
        except ValueError:
            return f"signal {status - 128}"
    return None
