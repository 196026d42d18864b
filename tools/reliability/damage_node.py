#!/usr/bin/env python3
"""Targeted damage to one LMDB leaf node of a table, for reproducing the corruption campaign's
crashes without its random draw (the page layout of a rebuilt database may differ).

    tools/reliability/damage_node.py DB_DIR TABLE size|offset [--node N] [--page K]
    tools/reliability/damage_node.py DB_DIR - meta-txnid [--txnid T]

- `size`: the node's data size (lo16 | hi16 << 16) becomes 0x0E000000 + its old value (about 235 MB,
  what trial 528 of the seed-1 campaign did with one byte): LMDB hands out a value that runs past
  the end of the file.
- `offset`: the node's entry in the page's offset array points past the page (what trial 262 did):
  LMDB reads a node header from outside the page.

- `meta-txnid`: the previous meta page's transaction id (t - 1) becomes t + 1 (what trial 37 of the
  seed-2 meta run did with one byte, there to 3,019,898,905): LMDB then opens the previous
  snapshot, and the last committed transaction is gone. TABLE is ignored.

Picks the K-th leaf page (default 0, in page number order) of TABLE and its N-th node
(default 1). Prints what it changed. Works on DB_DIR/data.mdb in place: use a copy.
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmdbpages  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("table")
    ap.add_argument("mode", choices=["size", "offset", "meta-txnid"])
    ap.add_argument("--node", type=int, default=1)
    ap.add_argument("--page", type=int, default=0)
    ap.add_argument("--txnid", type=lambda x: int(x, 0), default=None, help="meta-txnid: the value to write (default: current + 1)")
    a = ap.parse_args()
    path = os.path.join(a.db, "data.mdb")
    pm = lmdbpages.PageMap(path)
    if a.mode == "meta-txnid":
        prev = 1 - pm.current
        cur_txnid = pm.meta["txnid"]
        at = prev * pm.psize + lmdbpages.PAGEHDRSZ + 24 + 96 + 8
        old = struct.unpack_from("<Q", pm.buf, at)[0]
        with open(path, "r+b") as f:
            f.seek(at)
            new = a.txnid if a.txnid is not None else cur_txnid + 1
            f.write(struct.pack("<Q", new))
        print(f"meta page {prev} (previous): txnid {old} -> {new}; meta page {pm.current} (current) has {cur_txnid}")
        return
    leaves = sorted(p for p, (k, t) in pm.kind.items() if k == "leaf" and t == a.table)
    if not leaves:
        sys.exit(f"no leaf page of table {a.table!r}")
    page = leaves[a.page]
    o = page * pm.psize
    buf = bytearray(pm.buf)
    lower = struct.unpack_from("<H", buf, o + 12)[0]
    n = (lower - lmdbpages.PAGEHDRSZ) // 2
    if a.node >= n:
        sys.exit(f"page {page} has {n} nodes")
    slot = o + lmdbpages.PAGEHDRSZ + 2 * a.node
    off = struct.unpack_from("<H", buf, slot)[0]
    if a.mode == "size":
        lo, hi = struct.unpack_from("<HH", buf, o + off)
        old = lo | (hi << 16)
        new = old + 0x0E000000
        struct.pack_into("<HH", buf, o + off, new & 0xFFFF, new >> 16)
        what = f"data size {old} -> {new}"
    else:
        new = off + 8 * pm.psize
        struct.pack_into("<H", buf, slot, new & 0xFFFF)
        what = f"node offset {off} -> {new & 0xFFFF}"
    with open(path, "r+b") as f:
        f.write(buf)
    print(f"table {a.table}, leaf page {page}, node {a.node} of {n}: {what}")


if __name__ == "__main__":
    main()
