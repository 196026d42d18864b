/// The traversal algorithms. All exact ones return the same top-k with the same scores (ties
/// broken by the smaller internal document id); they differ in how much they skip.
package enum TraversalAlgorithm: String, CaseIterable, Sendable {
    case exhaustive, maxscore, wand, bmw
}

enum Traversal {
    static func run(_ algorithm: TraversalAlgorithm, cursors: [TermCursor], collector: CandidateCollector) throws {
        for c in cursors { try c.start() }
        switch algorithm {
        case .exhaustive: try exhaustive(cursors, collector)
        case .maxscore: try maxScore(cursors, collector)
        case .wand: try wand(cursors, collector, blockMax: false)
        case .bmw: try wand(cursors, collector, blockMax: true)
        }
    }

    // The loops below keep each cursor's current document in a plain buffer and reach the
    // cursors through unretained references: the array `cursors` keeps them alive (hence
    // `withExtendedLifetime`), and this keeps reference counting and bounds checks out of the
    // per-posting path. Every index is below `n`, the buffers' length.

    static func exhaustive(_ cursors: [TermCursor], _ out: CandidateCollector) throws {
        let n = cursors.count
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        defer {
            docs.deallocate()
            refs.deallocate()
        }
        for i in 0..<n {
            docs[i] = cursors[i].doc
            refs[i] = Unmanaged.passUnretained(cursors[i])
        }
        try withExtendedLifetime(cursors) {
            while true {
                var d = TermCursor.end
                for i in 0..<n where docs[i] < d { d = docs[i] }
                if d == TermCursor.end { return }
                if out.isFilteredOut(d) {
                    for i in 0..<n where docs[i] == d {
                        try refs[i]._withUnsafeGuaranteedRef { c in
                            try c.next()
                            docs[i] = c.doc
                        }
                    }
                    continue
                }
                var u: Float = 0
                var l: Float = 0
                for i in 0..<n where docs[i] == d {
                    try refs[i]._withUnsafeGuaranteedRef { c in
                        u += c.upper
                        l += c.lower
                        try c.next()
                        docs[i] = c.doc
                    }
                }
                out.offer(doc: d, upper: u, lower: l)
            }
        }
    }

    static func maxScore(_ input: [TermCursor], _ out: CandidateCollector) throws {
        let cursors = input.sorted { $0.maxContribution < $1.maxContribution }
        let n = cursors.count
        let prefix = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        defer {
            prefix.deallocate()
            docs.deallocate()
            refs.deallocate()
        }
        var running: Float = 0
        for i in 0..<n {
            running += cursors[i].maxContribution
            prefix[i] = running
            docs[i] = cursors[i].doc
            refs[i] = Unmanaged.passUnretained(cursors[i])
        }
        var firstEssential = 0
        try withExtendedLifetime(cursors) {
            while true {
                while firstEssential < n && out.isPruned(prefix[firstEssential]) { firstEssential &+= 1 }
                if firstEssential == n { return }
                var d = TermCursor.end
                var i = firstEssential
                while i < n {
                    if docs[i] < d { d = docs[i] }
                    i &+= 1
                }
                if d == TermCursor.end { return }
                if out.isFilteredOut(d) {
                    i = firstEssential
                    while i < n {
                        if docs[i] == d {
                            try refs[i]._withUnsafeGuaranteedRef { c in
                                try c.next()
                                docs[i] = c.doc
                            }
                        }
                        i &+= 1
                    }
                    continue
                }
                var u: Float = 0
                var l: Float = 0
                i = firstEssential
                while i < n {
                    if docs[i] == d {
                        try refs[i]._withUnsafeGuaranteedRef { c in
                            u += c.upper
                            l += c.lower
                            try c.next()
                            docs[i] = c.doc
                        }
                    }
                    i &+= 1
                }
                var pruned = false
                i = firstEssential &- 1
                while i >= 0 {
                    if out.isPruned(u + prefix[i]) {
                        pruned = true
                        break
                    }
                    if docs[i] < d {
                        try refs[i]._withUnsafeGuaranteedRef { c in
                            try c.advance(to: d)
                            docs[i] = c.doc
                        }
                    }
                    if docs[i] == d {
                        refs[i]._withUnsafeGuaranteedRef { c in
                            u += c.upper
                            l += c.lower
                        }
                    }
                    i &-= 1
                }
                if !pruned { out.offer(doc: d, upper: u, lower: l) }
            }
        }
    }

    /// The cursors of a WAND traversal ordered by current document: `order[0..<live]` holds
    /// cursor indices sorted by `docs`, which mirrors each cursor's current document, so sorting
    /// and pivoting never touch the cursor objects. A struct with mutating methods (rather than
    /// nested functions capturing `live`) keeps Swift's dynamic exclusivity checks out of the loop.
    struct SortedCursors {
        let docs: UnsafeMutablePointer<UInt32>
        let order: UnsafeMutablePointer<Int>
        var live: Int

        /// Moves the cursor at `from` right until the order is sorted again.
        @inline(__always)
        mutating func bubble(_ from: Int) {
            var m = from
            let moved = order[m]
            let d = docs[moved]
            while m &+ 1 < live && docs[order[m &+ 1]] < d {
                order[m] = order[m &+ 1]
                m &+= 1
            }
            order[m] = moved
        }

        /// Drops exhausted cursors (they sort last).
        @inline(__always)
        mutating func dropExhausted() {
            while live > 0 && docs[order[live &- 1]] == TermCursor.end { live &-= 1 }
        }

        @inline(__always)
        func doc(at position: Int) -> UInt32 { docs[order[position]] }
    }

    static func wand(_ cursors: [TermCursor], _ out: CandidateCollector, blockMax: Bool) throws {
        let n = cursors.count
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        let maxContribution = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        defer {
            refs.deallocate()
            docs.deallocate()
            order.deallocate()
            maxContribution.deallocate()
        }
        var sorted = SortedCursors(docs: docs, order: order, live: 0)
        for i in 0..<n {
            refs[i] = Unmanaged.passUnretained(cursors[i])
            docs[i] = cursors[i].doc
            maxContribution[i] = cursors[i].maxContribution
            if docs[i] != TermCursor.end {
                order[sorted.live] = i
                sorted.live += 1
            }
        }
        var initial = UnsafeMutableBufferPointer(start: order, count: sorted.live)
        initial.sort { docs[$0] < docs[$1] }

        try withExtendedLifetime(cursors) {
            while sorted.live > 0 {
                let live = sorted.live
                // Pivot: the first cursor where the running sum of term maxima can reach the threshold.
                var acc: Float = 0
                var pivot = -1
                var i = 0
                while i < live {
                    acc += maxContribution[order[i]]
                    if !out.isPruned(acc) {
                        pivot = i
                        break
                    }
                    i &+= 1
                }
                if pivot < 0 { return }
                let pivotDoc = sorted.doc(at: pivot)
                if pivotDoc == TermCursor.end { return }
                // Cursors after the pivot that sit on the same document belong to it as well.
                var last = pivot
                while last &+ 1 < live && sorted.doc(at: last &+ 1) == pivotDoc { last &+= 1 }

                if blockMax {
                    var blockBound: Float = 0
                    var nextBoundary = TermCursor.end
                    var i = 0
                    while i <= last {
                        if let b = refs[order[i]]._withUnsafeGuaranteedRef({ $0.shallowBlock(for: pivotDoc) }) {
                            blockBound += b.maxContribution
                            if b.lastDocument < nextBoundary { nextBoundary = b.lastDocument }
                        }
                        i &+= 1
                    }
                    if out.isPruned(blockBound) {
                        // No document up to the nearest block end among these lists can make it.
                        var target = nextBoundary == TermCursor.end ? TermCursor.end : nextBoundary &+ 1
                        if last &+ 1 < live { target = min(target, sorted.doc(at: last &+ 1)) }
                        if target <= pivotDoc { target = pivotDoc &+ 1 }
                        var best = 0
                        i = 1
                        while i <= last {
                            if maxContribution[order[i]] > maxContribution[order[best]] { best = i }
                            i &+= 1
                        }
                        let c = order[best]
                        try refs[c]._withUnsafeGuaranteedRef { cursor in
                            try cursor.advance(to: target)
                            docs[c] = cursor.doc
                        }
                        sorted.bubble(best)
                        sorted.dropExhausted()
                        continue
                    }
                }

                if sorted.doc(at: 0) == pivotDoc {
                    var u: Float = 0
                    var l: Float = 0
                    var i = 0
                    let skip = out.isFilteredOut(pivotDoc)
                    while i < live && sorted.doc(at: i) == pivotDoc {
                        let c = order[i]
                        try refs[c]._withUnsafeGuaranteedRef { cursor in
                            if !skip {
                                u += cursor.upper
                                l += cursor.lower
                            }
                            try cursor.next()
                            docs[c] = cursor.doc
                        }
                        i &+= 1
                    }
                    if !skip { out.offer(doc: pivotDoc, upper: u, lower: l) }
                    // Cursors 0..<i moved; insert each back into the sorted rest, right to left.
                    var j = i &- 1
                    while j >= 0 {
                        sorted.bubble(j)
                        j &-= 1
                    }
                    sorted.dropExhausted()
                } else {
                    // No document before the pivot can reach the threshold (the lists ahead of the
                    // pivot together fall short), so every lagging list moves up to it.
                    var j = pivot &- 1
                    while j >= 0 {
                        if sorted.doc(at: j) < pivotDoc {
                            let c = order[j]
                            try refs[c]._withUnsafeGuaranteedRef { cursor in
                                try cursor.advance(to: pivotDoc)
                                docs[c] = cursor.doc
                            }
                            sorted.bubble(j)
                        }
                        j &-= 1
                    }
                    sorted.dropExhausted()
                }
            }
        }
    }
}
