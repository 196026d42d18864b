// The cost of `Locked.withLock` outside ThreadSanitizer, before and after the TSan annotation
// (RELIABILITY.md §6): the old and the new Locks.swift each compiled -O as its own module
// (OldCore, NewCore), called across modules as SparseDB's targets call it. Built and run by
// tools/reliability/lock_cost.sh. Per withLock: thread CPU time, minimum over rounds.
import Foundation
import NewCore
import OldCore

func cpuNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// A dictionary read (as the posting cache's lookups) and a counter increment under the lock.
@inline(never) func runOld(_ l: OldCore.Locked<[Int: Int]>, _ n: Int) -> Int {
    var s = 0
    for i in 0..<n { s &+= l.withLock { $0[i & 63, default: 0] } }
    return s
}
@inline(never) func runNew(_ l: NewCore.Locked<[Int: Int]>, _ n: Int) -> Int {
    var s = 0
    for i in 0..<n { s &+= l.withLock { $0[i & 63, default: 0] } }
    return s
}
@inline(never) func incOld(_ l: OldCore.Locked<Int>, _ n: Int) { for _ in 0..<n { l.withLock { $0 &+= 1 } } }
@inline(never) func incNew(_ l: NewCore.Locked<Int>, _ n: Int) { for _ in 0..<n { l.withLock { $0 &+= 1 } } }

let args = CommandLine.arguments
let n = args.count > 1 ? Int(args[1])! : 2_000_000
let rounds = args.count > 2 ? Int(args[2])! : 15
let dict = Dictionary(uniqueKeysWithValues: (0..<64).map { ($0, $0) })
let lo = OldCore.Locked(dict), ln = NewCore.Locked(dict)
let co = OldCore.Locked(0), cn = NewCore.Locked(0)
var best = [Double](repeating: .infinity, count: 4)
var sink = 0
for _ in 0..<rounds {
    var t = cpuNow(); sink &+= runOld(lo, n); best[0] = min(best[0], Double(cpuNow() - t) / Double(n))
    t = cpuNow(); sink &+= runNew(ln, n); best[1] = min(best[1], Double(cpuNow() - t) / Double(n))
    t = cpuNow(); incOld(co, n); best[2] = min(best[2], Double(cpuNow() - t) / Double(n))
    t = cpuNow(); incNew(cn, n); best[3] = min(best[3], Double(cpuNow() - t) / Double(n))
}
print("(sink \(sink & 1))")
print(String(format: "dictionary read under lock: old %.2f ns, new %.2f ns per withLock (min of %d rounds of %d)", best[0], best[1], rounds, n))
print(String(format: "counter increment under lock: old %.2f ns, new %.2f ns per withLock", best[2], best[3]))
