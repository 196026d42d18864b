#!/usr/bin/env python3
"""Sorts ThreadSanitizer reports (files written with TSAN_OPTIONS=log_path=...) into those where
both conflicting accesses run inside `Locked.withLock` and the rest.

    tools/reliability/tsan_reports.py LOG...

Why: `Locked` is a `Synchronization.Mutex`, which on Linux is a futex that ThreadSanitizer does
not see (the toolchain's Synchronization library is not instrumented), so two accesses under the
same `Locked` are reported as a race whenever the lock was contended. Such a report is a false
positive only if both accesses are under the SAME lock, which the stacks do not show; the
script prints, per distinct pair of source locations, how many reports there were and the
innermost SparseDB frame of each access, for a reader to check.
"""
import collections, re, sys

LOCKED = "SparseDBCore6LockedC8withLock"


def frames(block):
    return re.findall(r"#\d+ (\S+) (\S+)", block)


def first_own(fs):
    for fn, loc in fs:
        if "/Sources/" in loc or "/Tests/" in loc:
            return loc.split("/work/rel/")[-1] if "/work/rel/" in loc else loc
    return "?"


def main():
    both, rest = collections.Counter(), collections.Counter()
    for path in sys.argv[1:]:
        text = open(path, errors="replace").read()
        for rep in text.split("==================\nWARNING: ThreadSanitizer:")[1:]:
            rep = rep.split("==================")[0]
            parts = re.split(r"\n  (?:Previous )?(?:[Rr]ead|[Ww]rite|[Mm]odifying access|atomic)[^\n]*by (?:thread T\d+|main thread)[^\n]*:\n", rep)
            if len(parts) < 3:
                rest[("unparsed", rep.splitlines()[0])] += 1
                continue
            a = frames(parts[1].split("\n\n")[0])
            b = frames(parts[2].split("\n\n")[0])
            key = (first_own(a), first_own(b))
            locked = any(LOCKED in f for f, _ in a) and any(LOCKED in f for f, _ in b)
            (both if locked else rest)[key] += 1
    print("both accesses inside Locked.withLock (%d reports):" % sum(both.values()))
    for k, n in both.most_common():
        print("  %4d  %s  <->  %s" % (n, k[0], k[1]))
    print("the rest (%d reports):" % sum(rest.values()))
    for k, n in rest.most_common():
        print("  %4d  %s  <->  %s" % (n, k[0], k[1]))


if __name__ == "__main__":
    main()
