#!/usr/bin/env python3
"""Vector JSONL ({"_id", "vector": {dim: weight}}) <-> the NeurIPS'23 big-ann-benchmarks sparse
track's .csr file, and a reader that checks one against the other.

The .csr layout (little-endian): int64 rows, int64 cols, int64 nnz, then int64 indptr[rows + 1],
int32 indices[nnz], float32 data[nnz]. Indices are written sorted within each row. The ids, which
the format has no room for, go to FILE.csr.ids (one a line, row order).

    tools/scale/jsonl_to_csr.py vectors.jsonl out.csr [--dims 30522]
    tools/scale/jsonl_to_csr.py --check vectors.jsonl out.csr       # re-reads both, compares every row

Library use: read_csr(path) -> (indptr, indices, data, cols); write_csr(path, indptr, indices,
data, cols); read_jsonl(path) -> (ids, indptr, indices, data).
"""
import argparse, json, os, sys

import numpy as np


def read_jsonl(path, dims=None):
    """Vector JSONL -> ids, indptr (int64), indices (int32, sorted per row), data (float32)."""
    ids, indptr, indices, data = [], [0], [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            items = sorted((int(k), float(v)) for k, v in d["vector"].items())
            if dims is not None and items and items[-1][0] >= dims:
                raise ValueError("%s:%d: dimension %d >= %d" % (path, n, items[-1][0], dims))
            ids.append(d["_id"])
            indices.extend(k for k, _ in items)
            data.extend(v for _, v in items)
            indptr.append(len(indices))
    return ids, np.asarray(indptr, np.int64), np.asarray(indices, np.int32), np.asarray(data, np.float32)


def write_csr(path, indptr, indices, data, cols):
    indptr = np.asarray(indptr, dtype="<i8")
    indices = np.asarray(indices, dtype="<i4")
    data = np.asarray(data, dtype="<f4")
    rows, nnz = len(indptr) - 1, len(indices)
    assert indptr[0] == 0 and indptr[-1] == nnz == len(data)
    with open(path + ".partial", "wb") as f:
        f.write(np.array([rows, cols, nnz], dtype="<i8").tobytes())
        f.write(indptr.tobytes()); f.write(indices.tobytes()); f.write(data.tobytes())
    os.replace(path + ".partial", path)


class CsrAppender:
    """Writes a .csr file row batch by row batch (rows and nnz unknown up front): indices and
    data go to side files, the header and indptr are written at close()."""

    def __init__(self, path, cols):
        self.path, self.cols = path, cols
        self.fi = open(path + ".indices.partial", "wb")
        self.fd = open(path + ".data.partial", "wb")
        self.indptr = [np.zeros(1, np.int64)]
        self.nnz = 0

    def append(self, indptr, indices, data):
        """indptr of the batch starting at 0."""
        self.indptr.append(np.asarray(indptr[1:], np.int64) + self.nnz)
        self.fi.write(np.asarray(indices, "<i4").tobytes())
        self.fd.write(np.asarray(data, "<f4").tobytes())
        self.nnz += int(indptr[-1])

    def close(self):
        self.fi.close(); self.fd.close()
        indptr = np.concatenate(self.indptr)
        with open(self.path + ".partial", "wb") as out:
            out.write(np.array([len(indptr) - 1, self.cols, self.nnz], dtype="<i8").tobytes())
            out.write(indptr.astype("<i8").tobytes())
            for side in (".indices.partial", ".data.partial"):
                with open(self.path + side, "rb") as f:
                    while True:
                        b = f.read(1 << 24)
                        if not b:
                            break
                        out.write(b)
                os.remove(self.path + side)
        os.replace(self.path + ".partial", self.path)


def read_csr(path, mmap=True):
    """(indptr, indices, data, cols) of a .csr file; memory-mapped by default. Checks the header
    against the file size and indptr's monotonicity."""
    with open(path, "rb") as f:
        rows, cols, nnz = (int(x) for x in np.frombuffer(f.read(24), dtype="<i8"))
    expect = 24 + 8 * (rows + 1) + 4 * nnz + 4 * nnz
    size = os.path.getsize(path)
    if size != expect:
        raise ValueError("%s: %d bytes, header says rows=%d nnz=%d -> %d bytes" % (path, size, rows, nnz, expect))
    if mmap:
        indptr = np.memmap(path, dtype="<i8", mode="r", offset=24, shape=(rows + 1,))
        indices = np.memmap(path, dtype="<i4", mode="r", offset=24 + 8 * (rows + 1), shape=(nnz,))
        data = np.memmap(path, dtype="<f4", mode="r", offset=24 + 8 * (rows + 1) + 4 * nnz, shape=(nnz,))
    else:
        raw = open(path, "rb").read()
        indptr = np.frombuffer(raw, "<i8", rows + 1, 24)
        indices = np.frombuffer(raw, "<i4", nnz, 24 + 8 * (rows + 1))
        data = np.frombuffer(raw, "<f4", nnz, 24 + 8 * (rows + 1) + 4 * nnz)
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise ValueError("%s: indptr is not a monotone 0..nnz sequence" % path)
    return indptr, indices, data, cols


def check(jsonl, csr):
    ids, ip, ix, dt = read_jsonl(jsonl)
    indptr, indices, data, cols = read_csr(csr)
    assert len(indptr) - 1 == len(ids), "rows: %d in csr, %d in jsonl" % (len(indptr) - 1, len(ids))
    assert np.array_equal(np.asarray(indptr), ip), "indptr differs"
    assert np.array_equal(np.asarray(indices), ix), "indices differ"
    assert np.array_equal(np.asarray(data), dt), "data differ (float32)"
    assert int(ix.max(initial=0)) < cols
    if os.path.exists(csr + ".ids"):
        assert open(csr + ".ids").read().split("\n")[:-1] == ids, "ids differ"
    print("ok: %d rows, %d cols, %d nnz, identical to %s" % (len(ids), cols, len(ix), jsonl))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl")
    ap.add_argument("csr")
    ap.add_argument("--dims", type=int, default=30522)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        return check(args.jsonl, args.csr)
    ids, indptr, indices, data = read_jsonl(args.jsonl, args.dims)
    write_csr(args.csr, indptr, indices, data, args.dims)
    with open(args.csr + ".ids", "w") as f:
        f.write("".join(i + "\n" for i in ids))
    print("%s: %d rows, %d nnz" % (args.csr, len(ids), len(indices)), file=sys.stderr)


if __name__ == "__main__":
    main()
