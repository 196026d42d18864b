#!/usr/bin/env python3
"""Sorts ThreadSanitizer reports (files written with TSAN_OPTIONS=log_path=...) into those where
both conflicting accesses run inside `Locked.withLock` and the rest, grouped by the pair of
innermost SparseDB source locations.

    tools/reliability/tsan_reports.py LOG...

`Locked` tells TSan about its lock (`__tsan_acquire` / `__tsan_release`, found with `dlsym`,
Sources/SparseDBCore/Locks.swift), so a report is a race TSan could not order, to be read:

- both inside `Locked.withLock`: the two accesses hold two DIFFERENT locks (or one of them
  reached the state outside its lock by another path): a real race unless explained;
- the rest: at least one access holds no `Locked`.

Before that annotation (commits before the `tsan` branch), a `Synchronization.Mutex` was a futex
in the uninstrumented Synchronization library and every contended lock gave same-lock reports
here (RELIABILITY.md §6, finding 6).
"""
import collections, os, re, sys

LOCKED = "SparseDBCore6LockedC8withLock"


def frames(block):
    return re.findall(r"#\d+ (\S+) (\S+)", block)


def first_own(fs):
    for fn, loc in fs:
        m = re.search(r"/((?:Sources|Tests)/.*)", loc)
        if m:
            return m.group(1)
    return "?"


def main():
    both, rest = collections.Counter(), collections.Counter()
    # TSan writes a log (LOG.PID) only for a process that reported something, so an unmatched
    # glob (no file) means no report.
    paths = [p for p in sys.argv[1:] if os.path.exists(p)]
    print("%d log files" % len(paths))
    for path in paths:
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
