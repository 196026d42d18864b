/// How a query walks the posting lists. All exact algorithms return the same top-k with the same
/// scores (ties broken by smaller internal document id); they differ in how much they skip.
public enum SearchAlgorithm: String, CaseIterable, Sendable {
    /// Scores every document that shares a term with the query (no pruning): the reference.
    case exhaustive
    /// MaxScore: terms split into essential and non-essential by their maximum contributions.
    case maxscore
    /// WAND: pivoting on cumulative term maxima.
    case wand
    /// Block-Max WAND: WAND plus per-block maxima, skipping blocks without decoding them.
    case bmw
}

/// What one query did.
public struct SearchStatistics: Sendable, Equatable {
    /// Query terms that have postings.
    public var terms = 0
    /// Postings in the blocks that were decompressed and decoded.
    public var postingsDecoded = 0
    /// Blocks decoded.
    public var blocksDecoded = 0
    /// Blocks never decoded (skipped by pruning).
    public var blocksSkipped = 0
    /// Documents whose score bounds were fully evaluated.
    public var documentsScored = 0
    /// Candidates rescored exactly from the forward store.
    public var candidatesRescored = 0

    public init() {}
}

enum Traversal {
    static func run(_ algorithm: SearchAlgorithm, cursors: [TermCursor], collector: CandidateCollector) throws {
        for c in cursors { try c.start() }
        switch algorithm {
        case .exhaustive: try exhaustive(cursors, collector)
        case .maxscore: try maxScore(cursors, collector)
        case .wand: try wand(cursors, collector, blockMax: false)
        case .bmw: try wand(cursors, collector, blockMax: true)
        }
    }

    static func exhaustive(_ cursors: [TermCursor], _ out: CandidateCollector) throws {
        while true {
            var d = TermCursor.end
            for c in cursors where c.doc < d { d = c.doc }
            if d == TermCursor.end { return }
            var u: Float = 0
            var l: Float = 0
            for c in cursors where c.doc == d {
                u += c.upper
                l += c.lower
                try c.next()
            }
            out.offer(doc: d, upper: u, lower: l)
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
        var firstEssential = 0
        while true {
            while firstEssential < n && out.isPruned(prefix[firstEssential]) { firstEssential += 1 }
            if firstEssential == n { return }
            var d = TermCursor.end
            for i in firstEssential..<n where cursors[i].doc < d { d = cursors[i].doc }
            if d == TermCursor.end { return }
            var u: Float = 0
            var l: Float = 0
            for i in firstEssential..<n where cursors[i].doc == d {
                u += cursors[i].upper
                l += cursors[i].lower
                try cursors[i].next()
            }
            var pruned = false
            var i = firstEssential - 1
            while i >= 0 {
                if out.isPruned(u + prefix[i]) {
                    pruned = true
                    break
                }
                let c = cursors[i]
                try c.advance(to: d)
                if c.doc == d {
                    u += c.upper
                    l += c.lower
                }
                i -= 1
            }
            if !pruned { out.offer(doc: d, upper: u, lower: l) }
        }
    }

    static func wand(_ cursors: [TermCursor], _ out: CandidateCollector, blockMax: Bool) throws {
        // `order` holds cursor indices sorted by current document; plain integers keep the
        // re-sorting free of reference counting.
        var order = cursors.indices.filter { cursors[$0].doc != TermCursor.end }
        order.sort { cursors[$0].doc < cursors[$1].doc }
        let maxContribution = cursors.map(\.maxContribution)
        @inline(__always) func bubble(_ from: Int) {
            var m = from
            let moved = order[m]
            let d = cursors[moved].doc
            while m + 1 < order.count && cursors[order[m + 1]].doc < d {
                order[m] = order[m + 1]
                m += 1
            }
            order[m] = moved
        }
        @inline(__always) func dropExhausted() {
            while let last = order.last, cursors[last].doc == TermCursor.end { order.removeLast() }
        }
        while !order.isEmpty {
            // Pivot: the first cursor where the running sum of term maxima can reach the threshold.
            var acc: Float = 0
            var pivot = -1
            for i in order.indices {
                acc += maxContribution[order[i]]
                if !out.isPruned(acc) {
                    pivot = i
                    break
                }
            }
            if pivot < 0 { return }
            let pivotDoc = cursors[order[pivot]].doc
            if pivotDoc == TermCursor.end { return }
            // Cursors after the pivot that sit on the same document belong to it as well.
            var last = pivot
            while last + 1 < order.count && cursors[order[last + 1]].doc == pivotDoc { last += 1 }

            if blockMax {
                var blockBound: Float = 0
                var nextBoundary = TermCursor.end
                for i in 0...last {
                    if let b = cursors[order[i]].shallowBlock(for: pivotDoc) {
                        blockBound += b.maxContribution
                        nextBoundary = min(nextBoundary, b.lastDocument)
                    }
                }
                if out.isPruned(blockBound) {
                    // No document up to the nearest block end among these lists can make it.
                    var target = nextBoundary == TermCursor.end ? TermCursor.end : nextBoundary + 1
                    if last + 1 < order.count { target = min(target, cursors[order[last + 1]].doc) }
                    if target <= pivotDoc { target = pivotDoc + 1 }
                    var best = 0
                    for i in 0...last where maxContribution[order[i]] > maxContribution[order[best]] { best = i }
                    try cursors[order[best]].advance(to: target)
                    bubble(best)
                    dropExhausted()
                    continue
                }
            }

            if cursors[order[0]].doc == pivotDoc {
                var u: Float = 0
                var l: Float = 0
                var i = 0
                while i < order.count, case let c = cursors[order[i]], c.doc == pivotDoc {
                    u += c.upper
                    l += c.lower
                    try c.next()
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
                // Move the lagging list with the largest maximum up to the pivot.
                var best = 0
                for i in 0..<pivot where cursors[order[i]].doc < pivotDoc && maxContribution[order[i]] > maxContribution[order[best]] {
                    best = i
                }
                try cursors[order[best]].advance(to: pivotDoc)
                bubble(best)
                dropExhausted()
            }
        }
    }
}
