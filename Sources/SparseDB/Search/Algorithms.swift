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

    static func wand(_ input: [TermCursor], _ out: CandidateCollector, blockMax: Bool) throws {
        var cursors = input.filter { $0.doc != TermCursor.end }
        cursors.sort { $0.doc < $1.doc }
        while !cursors.isEmpty {
            // Pivot: the first cursor where the running sum of term maxima can reach the threshold.
            var acc: Float = 0
            var pivot = -1
            for i in cursors.indices {
                acc += cursors[i].maxContribution
                if !out.isPruned(acc) {
                    pivot = i
                    break
                }
            }
            if pivot < 0 { return }
            let pivotDoc = cursors[pivot].doc
            if pivotDoc == TermCursor.end { return }
            // Cursors after the pivot that sit on the same document belong to it as well.
            var last = pivot
            while last + 1 < cursors.count && cursors[last + 1].doc == pivotDoc { last += 1 }

            if blockMax {
                var blockBound: Float = 0
                var nextBoundary = TermCursor.end
                for i in 0...last {
                    if let b = cursors[i].shallowBlock(for: pivotDoc) {
                        blockBound += b.maxContribution
                        nextBoundary = min(nextBoundary, b.lastDocument)
                    }
                }
                if out.isPruned(blockBound) {
                    // No document up to the nearest block end among these lists can make it.
                    var target = nextBoundary == TermCursor.end ? TermCursor.end : nextBoundary + 1
                    if last + 1 < cursors.count { target = min(target, cursors[last + 1].doc) }
                    if target <= pivotDoc { target = pivotDoc + 1 }
                    var best = 0
                    for i in 0...last where cursors[i].maxContribution > cursors[best].maxContribution { best = i }
                    try cursors[best].advance(to: target)
                    resort(&cursors, from: best)
                    continue
                }
            }

            if cursors[0].doc == pivotDoc {
                var u: Float = 0
                var l: Float = 0
                var i = 0
                while i < cursors.count && cursors[i].doc == pivotDoc {
                    u += cursors[i].upper
                    l += cursors[i].lower
                    try cursors[i].next()
                    i += 1
                }
                out.offer(doc: pivotDoc, upper: u, lower: l)
                cursors.removeAll { $0.doc == TermCursor.end }
                cursors.sort { $0.doc < $1.doc }
            } else {
                // Move the lagging list with the largest maximum up to the pivot.
                var best = 0
                for i in 0..<pivot where cursors[i].doc < pivotDoc && cursors[i].maxContribution > cursors[best].maxContribution {
                    best = i
                }
                try cursors[best].advance(to: pivotDoc)
                resort(&cursors, from: best)
            }
        }
    }

    /// Restores document order after cursor `i` moved forward; drops it when exhausted.
    @inline(__always)
    private static func resort(_ cursors: inout [TermCursor], from i: Int) {
        if cursors[i].doc == TermCursor.end {
            cursors.remove(at: i)
            return
        }
        var j = i
        while j + 1 < cursors.count && cursors[j + 1].doc < cursors[j].doc {
            cursors.swapAt(j, j + 1)
            j += 1
        }
    }
}
