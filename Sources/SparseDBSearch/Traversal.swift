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

    // The loops below keep each cursor's current document in a plain array and reach the
    // cursors through `unowned(unsafe)` references: the array `cursors` keeps them alive, and
    // this keeps reference counting out of the per-posting path.

    static func exhaustive(_ cursors: [TermCursor], _ out: CandidateCollector) throws {
        let n = cursors.count
        var docs = cursors.map(\.doc)
        let refs = cursors.map { Unmanaged.passUnretained($0) }
        try withExtendedLifetime(cursors) {
            while true {
                var d = TermCursor.end
                for i in 0..<n where docs[i] < d { d = docs[i] }
                if d == TermCursor.end { return }
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
        var prefix = [Float](repeating: 0, count: n)
        var running: Float = 0
        for i in 0..<n {
            running += cursors[i].maxContribution
            prefix[i] = running
        }
        var docs = cursors.map(\.doc)
        let refs = cursors.map { Unmanaged.passUnretained($0) }
        var firstEssential = 0
        try withExtendedLifetime(cursors) {
            while true {
                while firstEssential < n && out.isPruned(prefix[firstEssential]) { firstEssential += 1 }
                if firstEssential == n { return }
                var d = TermCursor.end
                for i in firstEssential..<n where docs[i] < d { d = docs[i] }
                if d == TermCursor.end { return }
                var u: Float = 0
                var l: Float = 0
                for i in firstEssential..<n where docs[i] == d {
                    try refs[i]._withUnsafeGuaranteedRef { c in
                        u += c.upper
                        l += c.lower
                        try c.next()
                        docs[i] = c.doc
                    }
                }
                var pruned = false
                var i = firstEssential - 1
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
                    i -= 1
                }
                if !pruned { out.offer(doc: d, upper: u, lower: l) }
            }
        }
    }

    static func wand(_ cursors: [TermCursor], _ out: CandidateCollector, blockMax: Bool) throws {
        // `order[0..<live]` holds cursor indices sorted by current document; `docs` mirrors each
        // cursor's current document, so sorting and pivoting never touch the cursor objects.
        // Plain buffers (not arrays captured by the helpers) keep copy-on-write checks out.
        let n = cursors.count
        let refs = cursors.map { Unmanaged.passUnretained($0) }
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        let maxContribution = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        defer {
            docs.deallocate()
            order.deallocate()
            maxContribution.deallocate()
        }
        var live = 0
        for i in 0..<n {
            docs[i] = cursors[i].doc
            maxContribution[i] = cursors[i].maxContribution
            if docs[i] != TermCursor.end {
                order[live] = i
                live += 1
            }
        }
        var initial = UnsafeMutableBufferPointer(start: order, count: live)
        initial.sort { docs[$0] < docs[$1] }

        @inline(__always) func bubble(_ from: Int) {
            var m = from
            let moved = order[m]
            let d = docs[moved]
            while m + 1 < live && docs[order[m + 1]] < d {
                order[m] = order[m + 1]
                m += 1
            }
            order[m] = moved
        }
        @inline(__always) func dropExhausted() {
            while live > 0 && docs[order[live - 1]] == TermCursor.end { live -= 1 }
        }
        @inline(__always) func advance(_ position: Int, to target: UInt32) throws {
            let c = order[position]
            try refs[c]._withUnsafeGuaranteedRef { cursor in
                try cursor.advance(to: target)
                docs[c] = cursor.doc
            }
        }
        try withExtendedLifetime(cursors) {
            while live > 0 {
                // Pivot: the first cursor where the running sum of term maxima can reach the threshold.
                var acc: Float = 0
                var pivot = -1
                for i in 0..<live {
                    acc += maxContribution[order[i]]
                    if !out.isPruned(acc) {
                        pivot = i
                        break
                    }
                }
                if pivot < 0 { return }
                let pivotDoc = docs[order[pivot]]
                if pivotDoc == TermCursor.end { return }
                // Cursors after the pivot that sit on the same document belong to it as well.
                var last = pivot
                while last + 1 < live && docs[order[last + 1]] == pivotDoc { last += 1 }

                if blockMax {
                    var blockBound: Float = 0
                    var nextBoundary = TermCursor.end
                    for i in 0...last {
                        if let b = refs[order[i]]._withUnsafeGuaranteedRef({ $0.shallowBlock(for: pivotDoc) }) {
                            blockBound += b.maxContribution
                            nextBoundary = min(nextBoundary, b.lastDocument)
                        }
                    }
                    if out.isPruned(blockBound) {
                        // No document up to the nearest block end among these lists can make it.
                        var target = nextBoundary == TermCursor.end ? TermCursor.end : nextBoundary + 1
                        if last + 1 < live { target = min(target, docs[order[last + 1]]) }
                        if target <= pivotDoc { target = pivotDoc + 1 }
                        var best = 0
                        for i in 0...last where maxContribution[order[i]] > maxContribution[order[best]] { best = i }
                        try advance(best, to: target)
                        bubble(best)
                        dropExhausted()
                        continue
                    }
                }

                if docs[order[0]] == pivotDoc {
                    var u: Float = 0
                    var l: Float = 0
                    var i = 0
                    while i < live && docs[order[i]] == pivotDoc {
                        let c = order[i]
                        try refs[c]._withUnsafeGuaranteedRef { cursor in
                            u += cursor.upper
                            l += cursor.lower
                            try cursor.next()
                            docs[c] = cursor.doc
                        }
                        i += 1
                    }
                    out.offer(doc: pivotDoc, upper: u, lower: l)
                    // Cursors 0..<i moved; insert each back into the sorted rest, right to left.
                    var j = i - 1
                    while j >= 0 {
                        bubble(j)
                        j -= 1
                    }
                    dropExhausted()
                } else {
                    // No document before the pivot can reach the threshold (the lists ahead of the
                    // pivot together fall short), so every lagging list moves up to it.
                    var j = pivot - 1
                    while j >= 0 {
                        if docs[order[j]] < pivotDoc {
                            try advance(j, to: pivotDoc)
                            bubble(j)
                        }
                        j -= 1
                    }
                    dropExhausted()
                }
            }
        }
    }
}
