#!/bin/sh
# Cost of Locked.withLock outside ThreadSanitizer: Locks.swift at OLD_REV (default: the commit
# before the TSan annotation) against the working tree's, time per call and, with valgrind,
# instructions per call (callgrind, inclusive per function; divide by N).
#
#     tools/reliability/lock_cost.sh [OLD_REV]
set -e
OLD=${1:-791c663}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
git -C "$ROOT" show "$OLD:Sources/SparseDBCore/Locks.swift" > "$T/old.swift"
cp "$ROOT/Sources/SparseDBCore/Locks.swift" "$T/new.swift"
cd "$T"
for m in Old New; do
    f=$(echo $m | tr OldNew oldnew)
    swiftc -O -parse-as-library -emit-library -static -module-name ${m}Core $f.swift -o lib${m}Core.a \
        -emit-module -emit-module-path ${m}Core.swiftmodule
done
swiftc -O -I . -L . -lOldCore -lNewCore "$ROOT/tools/reliability/lock_cost.swift" -o lock_cost
./lock_cost 2000000 15
if command -v valgrind >/dev/null; then
    valgrind --tool=callgrind --callgrind-out-file=cg.out ./lock_cost 100000 1 >/dev/null 2>&1
    echo "instructions in 100,000 calls (inclusive):"
    callgrind_annotate --inclusive=yes cg.out | grep -E 'run(Old|New)|inc(Old|New)' | sed 's/ (.*)  ???:/  /; s/ \[.*//'
fi
rm -rf "$T"
