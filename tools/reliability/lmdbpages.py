#!/usr/bin/env python3
"""What every page of an LMDB data file is, read from the file's bytes (LMDB 0.9, 64-bit, as
Debian's liblmdb writes it): which meta page is current, every page reachable from it (branch,
leaf or overflow, and which table it belongs to), the pages the free list records, and the rest
(unreferenced: beyond the last page, or left over). Cross-checked against `mdb_stat -a` / `-f`
by `--check`.

    tools/reliability/lmdbpages.py DB_DIR [--check]
"""
import collections
import json
import struct
import subprocess
import sys

PAGEHDRSZ = 16
P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2 = 0x01, 0x02, 0x04, 0x08, 0x20
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
P_INVALID = 0xFFFFFFFFFFFFFFFF


def meta(buf, pgno, psize):
    o = pgno * psize + PAGEHDRSZ
    magic, version = struct.unpack_from("<II", buf, o)
    dbs = [struct.unpack_from("<IHHQQQQQ", buf, o + 24 + 48 * i) for i in range(2)]
    last_pg, txnid = struct.unpack_from("<QQ", buf, o + 24 + 96)
    return {"magic": magic, "version": version, "free": dbs[0], "main": dbs[1], "last_pg": last_pg, "txnid": txnid}


class PageMap:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        buf = self.buf
        # page size: from the meta page (offset of mm_psize is md_pad of the free db)
        self.psize = struct.unpack_from("<I", buf, PAGEHDRSZ + 24)[0] or 4096
        self.npages = len(buf) // self.psize
        metas = [meta(buf, i, self.psize) for i in (0, 1)]
        self.current = 0 if metas[0]["txnid"] >= metas[1]["txnid"] else 1
        m = metas[self.current]
        self.meta = m
        self.kind = {0: ("meta", "current" if self.current == 0 else "previous"), 1: ("meta", "current" if self.current == 1 else "previous")}
        self.stats = collections.defaultdict(lambda: collections.Counter())
        self.free_pages = set()
        self.walk(m["main"][7], "(main)", main=True)
        self.walk(m["free"][7], "(free list)", freelist=True)
        for p in self.free_pages:
            if p not in self.kind:
                self.kind[p] = ("free", None)
        for p in range(2, self.npages):
            if p not in self.kind:
                self.kind[p] = ("unreferenced", None)

    def walk(self, root, table, main=False, freelist=False):
        if root == P_INVALID:
            return
        stack = [root]
        while stack:
            pgno = stack.pop()
            o = pgno * self.psize
            flags = struct.unpack_from("<H", self.buf, o + 10)[0]
            if flags & P_BRANCH:
                self.kind[pgno] = ("branch", table)
                self.stats[table]["branch"] += 1
                lower = struct.unpack_from("<H", self.buf, o + 12)[0]
                n = (lower - PAGEHDRSZ) // 2
                for i in range(n):
                    off = struct.unpack_from("<H", self.buf, o + PAGEHDRSZ + 2 * i)[0]
                    lo, hi, fl = struct.unpack_from("<HHH", self.buf, o + off)
                    stack.append(lo | (hi << 16) | (fl << 32))
            elif flags & P_LEAF:
                self.kind[pgno] = ("leaf", table)
                self.stats[table]["leaf"] += 1
                if flags & P_LEAF2:
                    continue
                lower = struct.unpack_from("<H", self.buf, o + 12)[0]
                n = (lower - PAGEHDRSZ) // 2
                for i in range(n):
                    off = struct.unpack_from("<H", self.buf, o + PAGEHDRSZ + 2 * i)[0]
                    lo, hi, fl, ksize = struct.unpack_from("<HHHH", self.buf, o + off)
                    dsize = lo | (hi << 16)
                    key = self.buf[o + off + 8:o + off + 8 + ksize]
                    data_at = o + off + 8 + ksize
                    if fl & F_BIGDATA:
                        ov = struct.unpack_from("<Q", self.buf, data_at)[0]
                        pages = struct.unpack_from("<I", self.buf, ov * self.psize + 12)[0]
                        for p in range(ov, ov + pages):
                            self.kind[p] = ("overflow", table)
                        self.stats[table]["overflow"] += pages
                        data = self.buf[ov * self.psize + PAGEHDRSZ:ov * self.psize + PAGEHDRSZ + dsize]
                    else:
                        data = self.buf[data_at:data_at + dsize]
                    if main and fl & F_SUBDATA:
                        root = struct.unpack_from("<Q", data, 40)[0]
                        self.walk(root, key.decode(errors="replace"))
                    if freelist:
                        count = struct.unpack_from("<Q", data, 0)[0]
                        for j in range(count):
                            self.free_pages.add(struct.unpack_from("<Q", data, 8 + 8 * j)[0])
            else:
                self.kind[pgno] = ("unknown", table)

    def region(self, offset):
        """(kind, table) of the page holding byte `offset`."""
        p = offset // self.psize
        return self.kind.get(p, ("unreferenced", None))

    def summary(self):
        c = collections.Counter(k for k, _ in self.kind.values())
        return dict(c)


def mdb_stat(path):
    """{table: {branch, leaf, overflow}} and the free page count, from `mdb_stat -a -f`."""
    out = subprocess.run(["mdb_stat", "-a", "-f", path], capture_output=True, text=True, check=True).stdout
    tables, free, name = {}, None, None
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Status of "):
            name = s[len("Status of "):]
            name = "(main)" if name == "Main DB" else name
            tables[name] = {}
        elif s.startswith("Free pages:"):
            free = int(s.split(":")[1])
        elif name and ":" in s:
            k, v = s.split(":", 1)
            k = {"Branch pages": "branch", "Leaf pages": "leaf", "Overflow pages": "overflow"}.get(k)
            if k:
                tables[name][k] = int(v)
    return tables, free


def check(path):
    pm = PageMap(path + "/data.mdb")
    tables, free = mdb_stat(path)
    problems = []
    for name, counts in tables.items():
        mine = pm.stats.get(name, {})
        for k in ("branch", "leaf", "overflow"):
            if counts.get(k, 0) != mine.get(k, 0):
                problems.append(f"{name} {k}: mdb_stat {counts.get(k, 0)}, walker {mine.get(k, 0)}")
    if free is not None and free != len(pm.free_pages):
        problems.append(f"free pages: mdb_stat {free}, walker {len(pm.free_pages)}")
    return pm, problems


if __name__ == "__main__":
    pm, problems = check(sys.argv[1])
    print(json.dumps({"page_size": pm.psize, "pages": pm.npages, "last_pg": pm.meta["last_pg"], "kinds": pm.summary(),
                      "tables": {k: dict(v) for k, v in pm.stats.items()}, "mdb_stat_disagreements": problems}, indent=1))
    sys.exit(1 if problems else 0)
