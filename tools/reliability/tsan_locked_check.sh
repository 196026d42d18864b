#!/bin/sh
# Does ThreadSanitizer see `Locked`'s lock? (RELIABILITY.md §6, finding 6.) Three small
# programs, 8 threads each, built with -sanitize=thread against Sources/SparseDBCore/Locks.swift:
#   mutex      a dictionary updated inside one Synchronization.Mutex   -> reports (TSan cannot
#              see a contended Mutex: a futex in the uninstrumented Synchronization library)
#   locked     the same inside one Locked                              -> expect 0 reports
#   twolocks   one dictionary under two different Locked (a real race)  -> expect reports
#
#     tools/reliability/tsan_locked_check.sh
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
cd "$T"
swiftc -sanitize=thread -g -parse-as-library -emit-library -static -module-name SparseDBCore \
    "$ROOT/Sources/SparseDBCore/Locks.swift" -o libSparseDBCore.a -emit-module -emit-module-path SparseDBCore.swiftmodule
RUN='threads.forEach { $0.start() }
while threads.contains(where: { !$0.isFinished }) { usleep(1000) }'
cat > mutex.swift <<SWIFT
import Foundation
import Synchronization
final class Box: Sendable { let m = Mutex<[Int: Int]>([:]) }
let box = Box()
let threads = (0..<8).map { t in Thread { for i in 0..<2000 { box.m.withLock { \$0[i % 64, default: 0] += t } } } }
$RUN
SWIFT
cat > locked.swift <<SWIFT
import Foundation
import SparseDBCore
let box = Locked<[Int: Int]>([:])
let threads = (0..<8).map { t in Thread { for i in 0..<2000 { box.withLock { \$0[i % 64, default: 0] += t } } } }
$RUN
SWIFT
cat > twolocks.swift <<SWIFT
import Foundation
import SparseDBCore
final class Shared: @unchecked Sendable { var d: [Int: Int] = [:] }
let shared = Shared()
let locks = [Locked(0), Locked(0)]
let threads = (0..<8).map { t in Thread { for i in 0..<2000 { locks[t % 2].withLock { _ in shared.d[i % 64, default: 0] += t } } } }
$RUN
SWIFT
for p in mutex locked twolocks; do
    swiftc -sanitize=thread -g -I . -L . -lSparseDBCore $p.swift -o $p
    n=$(TSAN_OPTIONS="halt_on_error=0 exitcode=0" ./$p 2>&1 | grep -c "WARNING: ThreadSanitizer" || true)
    echo "$p: $n reports"
done
rm -rf "$T"
