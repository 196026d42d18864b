import SparseDBIndex

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
        case .wand, .bmw:
            let blockMax = algorithm == .bmw
            if let allowed = collector.allowed {
                try wand(cursors, collector, blockMax: blockMax, moves: AdmittedPostings(admitted: allowed))
            } else {
                try wand(cursors, collector, blockMax: blockMax, moves: AllPostings())
            }
        }
    }

    /// How the WAND traversals move a cursor: to every posting, or with a filter only to the
    /// postings of documents it admits. A type parameter rather than a flag, so the
    /// unfiltered loop is compiled without a test of it at each move.
    protocol CursorMoves {
        func advance(_ cursor: TermCursor, to target: UInt32) throws
        func next(_ cursor: TermCursor) throws
    }

    struct AllPostings: CursorMoves {
        @inline(__always) func advance(_ cursor: TermCursor, to target: UInt32) throws { try cursor.advance(to: target) }
        @inline(__always) func next(_ cursor: TermCursor) throws { try cursor.next() }
    }

    /// Every cursor stops only on documents the filter admits: it reads its list as if the
    /// rejected documents' postings were not there. A rejected posting then costs a bitmap
    /// test inside the cursor instead of a round of pivot selection, block-max sums, moves and
    /// re-sorting of the lists, and every pivot is an admitted document. (Skipping rejected
    /// pivots alone still took the lists through every rejected document some list holds, one
    /// round of the loop at a time, and with the lower threshold a filter leaves, cost more
    /// than the unfiltered search.)
    struct AdmittedPostings: CursorMoves {
        let admitted: DocumentBitmap
        @inline(__always) func advance(_ cursor: TermCursor, to target: UInt32) throws { try cursor.advance(to: target, admittedBy: admitted) }
        @inline(__always) func next(_ cursor: TermCursor) throws { try cursor.next(admittedBy: admitted) }
    }

    // The loops below keep each cursor's current document in a plain buffer and reach the
    // cursors through unretained references: the array `cursors` keeps them alive (hence
    // `withExtendedLifetime` in each `defer`), and this keeps reference counting and bounds
    // checks out of the per-posting path. Every index is below `n`, the buffers' length. The
    // loops are not closures: variables a closure captures live in memory and are reloaded
    // after every call; locals stay in registers.

    static func exhaustive(_ cursors: [TermCursor], _ out: CandidateCollector) throws {
        let n = cursors.count
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        defer {
            withExtendedLifetime(cursors) {}
            docs.deallocate()
            refs.deallocate()
        }
        for i in 0..<n {
            docs[i] = cursors[i].doc
            refs[i] = Unmanaged.passUnretained(cursors[i])
        }
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

    /// Documents per MaxScore window (a multiple of 64). Its accumulators (two floats per
    /// document) and candidate buffers stay in the second-level cache; at 1 M documents 8,192 to
    /// 65,536 measured alike and 2,048 to 4,096 about 15% slower (more windows, each one
    /// computing every list's window maximum).
    static let maxScoreWindow = 8192

    /// MaxScore, a window of documents at a time (as Lucene's MaxScoreBulkScorer does).
    ///
    /// For each window of `maxScoreWindow` documents, every list's largest contribution inside
    /// the window comes from the block maxima of the blocks overlapping it (nothing decoded).
    /// Ordered by those, the shortest prefix of lists whose maxima together cannot reach the
    /// threshold are the window's non-essential lists; when all of them together cannot, the
    /// window is skipped. The essential lists add every posting's bounds into accumulators (a
    /// tight loop per list, no search for the smallest current document across lists, which
    /// would cost a pass over all essential lists per document); then the window's documents
    /// are visited in order and completed from the non-essential lists, largest first, until
    /// their bound falls below the threshold.
    static func maxScore(_ cursors: [TermCursor], _ out: CandidateCollector) throws {
        let n = cursors.count
        // No wider than the lists' span of documents (a small collection then clears and scans
        // small accumulators): from the lowest current document, rounded down to 64, to the
        // highest last document.
        var lowest = TermCursor.end
        var highest: UInt32 = 0
        for c in cursors where c.doc != TermCursor.end {
            lowest = min(lowest, c.doc)
            highest = max(highest, c.lastDocument)
        }
        let span = lowest == TermCursor.end ? 64 : Int(highest - (lowest & ~63)) + 1
        let window = min(maxScoreWindow, (span + 63) & ~63)
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        // This window's maxima, the list indices ordered by them, and their running sums.
        let windowMax = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        let prefix = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let upper = UnsafeMutablePointer<Float>.allocate(capacity: window)
        let lower = UnsafeMutablePointer<Float>.allocate(capacity: window)
        let touched = UnsafeMutablePointer<UInt64>.allocate(capacity: window / 64)
        // The window's candidates: documents and their bounds so far.
        let candidateDocs = UnsafeMutablePointer<UInt32>.allocate(capacity: window)
        let candidateUpper = UnsafeMutablePointer<Float>.allocate(capacity: window)
        let candidateLower = UnsafeMutablePointer<Float>.allocate(capacity: window)
        upper.initialize(repeating: 0, count: window)
        lower.initialize(repeating: 0, count: window)
        touched.initialize(repeating: 0, count: window / 64)
        defer {
            withExtendedLifetime(cursors) {}
            docs.deallocate()
            refs.deallocate()
            windowMax.deallocate()
            order.deallocate()
            prefix.deallocate()
            upper.deallocate()
            lower.deallocate()
            touched.deallocate()
            candidateDocs.deallocate()
            candidateUpper.deallocate()
            candidateLower.deallocate()
        }
        for i in 0..<n {
            docs[i] = cursors[i].doc
            refs[i] = Unmanaged.passUnretained(cursors[i])
        }
        // Documents before `next` are done.
        var next: UInt32 = 0
        // The windows start small and double up to `window`: until k documents have been
        // offered there is no threshold, and every list of that window is essential.
        var size = min(window, 512)
        while true {
            defer { size = min(window, size &* 2) }
            // The window starts where the first document any list can still have, rounded down
            // to a multiple of 64 so that its bitmap words line up with the filter's. A list
            // behind `next` (it sat out windows) is asked where its blocks resume.
            var first = TermCursor.end
            for i in 0..<n {
                let d = docs[i] >= next ? docs[i] : refs[i]._withUnsafeGuaranteedRef { $0.firstPossibleDocument(from: next) }
                if d < first { first = d }
            }
            if first == TermCursor.end { return }
            let base = first & ~63
            let end = base < TermCursor.end &- UInt32(size) ? base &+ UInt32(size) : TermCursor.end
            next = end

            // Order the lists by their maxima in this window (insertion sort: a few dozen lists).
            var live = 0
            for i in 0..<n {
                let m = refs[i]._withUnsafeGuaranteedRef { $0.maxContribution(from: base, before: end) }
                if m == 0 { continue }
                windowMax[i] = m
                var p = live
                while p > 0 && windowMax[order[p &- 1]] > m {
                    order[p] = order[p &- 1]
                    p &-= 1
                }
                order[p] = i
                live &+= 1
            }
            var running: Float = 0
            for p in 0..<live {
                running += windowMax[order[p]]
                prefix[p] = running
            }
            var firstEssential = 0
            while firstEssential < live && out.isPruned(prefix[firstEssential]) { firstEssential &+= 1 }
            if firstEssential == live { continue }

            var p = firstEssential
            while p < live {
                let i = order[p]
                try refs[i]._withUnsafeGuaranteedRef { c in
                    if c.doc < base { try c.advance(to: base) }
                    try c.accumulate(before: end, base: base, upper: upper, lower: lower, touched: touched)
                    docs[i] = c.doc
                }
                p &+= 1
            }
            // The window's documents whose bound can still reach the threshold, in order.
            let nonEssentialBound = firstEssential > 0 ? prefix[firstEssential &- 1] : 0
            let firstWord = Int(base &>> 6)
            var candidates = 0
            var w = 0
            while w < size &>> 6 {
                var bits = touched[w]
                if bits == 0 {
                    w &+= 1
                    continue
                }
                touched[w] = 0
                let admitted = out.admittedWord(firstWord &+ w)
                while bits != 0 {
                    let t = bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let slot = w &<< 6 &+ t
                    let u = upper[slot]
                    let l = lower[slot]
                    upper[slot] = 0
                    lower[slot] = 0
                    if admitted &>> UInt64(t) & 1 == 0 || out.isPruned(u + nonEssentialBound) { continue }
                    candidateDocs[candidates] = base &+ UInt32(slot)
                    candidateUpper[candidates] = u
                    candidateLower[candidates] = l
                    candidates &+= 1
                }
                w &+= 1
            }
            // Then the non-essential lists, largest first, one list at a time over the
            // candidates (each list's postings in the window are read once, in order); a
            // candidate is dropped as soon as the lists still to come cannot lift it.
            var j = firstEssential &- 1
            while j >= 0 && candidates > 0 {
                let bound = prefix[j]
                var kept = 0
                var c = 0
                while c < candidates {
                    if !out.isPruned(candidateUpper[c] + bound) {
                        candidateDocs[kept] = candidateDocs[c]
                        candidateUpper[kept] = candidateUpper[c]
                        candidateLower[kept] = candidateLower[c]
                        kept &+= 1
                    }
                    c &+= 1
                }
                candidates = kept
                let i = order[j]
                try refs[i]._withUnsafeGuaranteedRef { cursor in
                    try cursor.addBounds(documents: candidateDocs, count: candidates, upper: candidateUpper, lower: candidateLower)
                    docs[i] = cursor.doc
                }
                j &-= 1
            }
            var c = 0
            while c < candidates {
                out.offer(doc: candidateDocs[c], upper: candidateUpper[c], lower: candidateLower[c])
                c &+= 1
            }
        }
    }

    /// Moves the cursor at `from` of `order[0..<live]` (cursor indices sorted by `docs`) right
    /// until the order is sorted again.
    @inline(__always)
    static func bubble(_ from: Int, _ docs: UnsafeMutablePointer<UInt32>, _ order: UnsafeMutablePointer<Int>, _ live: Int) {
        var m = from
        let moved = order[m]
        let d = docs[moved]
        while m &+ 1 < live && docs[order[m &+ 1]] < d {
            order[m] = order[m &+ 1]
            m &+= 1
        }
        order[m] = moved
    }

    static func wand<Moves: CursorMoves>(_ cursors: [TermCursor], _ out: CandidateCollector, blockMax: Bool, moves: Moves) throws {
        // `order[0..<live]` holds cursor indices sorted by current document; `docs` mirrors each
        // cursor's current document, so sorting and pivoting never touch the cursor objects.
        // The loop is not inside a closure (`withExtendedLifetime { }`): captured variables
        // live in memory and are reloaded after every call, locals stay in registers.
        let n = cursors.count
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        let maxContribution = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        defer {
            withExtendedLifetime(cursors) {}
            refs.deallocate()
            docs.deallocate()
            order.deallocate()
            maxContribution.deallocate()
        }
        var live = 0
        for i in 0..<n {
            refs[i] = Unmanaged.passUnretained(cursors[i])
            // On to the first posting `moves` may stop on (the first one without a filter).
            try moves.advance(cursors[i], to: cursors[i].doc)
            docs[i] = cursors[i].doc
            maxContribution[i] = cursors[i].maxContribution
            if docs[i] != TermCursor.end {
                order[live] = i
                live += 1
            }
        }
        var initial = UnsafeMutableBufferPointer(start: order, count: live)
        initial.sort { docs[$0] < docs[$1] }

        while live > 0 {
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
            let pivotDoc = docs[order[pivot]]
            if pivotDoc == TermCursor.end { return }
            // Cursors after the pivot that sit on the same document belong to it as well.
            var last = pivot
            while last &+ 1 < live && docs[order[last &+ 1]] == pivotDoc { last &+= 1 }

            if blockMax {
                var blockBound: Float = 0
                var nextBoundary = TermCursor.end
                i = 0
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
                    if last &+ 1 < live { target = min(target, docs[order[last &+ 1]]) }
                    if target <= pivotDoc { target = pivotDoc &+ 1 }
                    var best = 0
                    i = 1
                    while i <= last {
                        if maxContribution[order[i]] > maxContribution[order[best]] { best = i }
                        i &+= 1
                    }
                    let c = order[best]
                    try refs[c]._withUnsafeGuaranteedRef { cursor in
                        try moves.advance(cursor, to: target)
                        docs[c] = cursor.doc
                    }
                    bubble(best, docs, order, live)
                    while live > 0 && docs[order[live &- 1]] == TermCursor.end { live &-= 1 }
                    continue
                }
            }

            if docs[order[0]] == pivotDoc {
                // With a filter the pivot is an admitted document: every cursor is on one.
                var u: Float = 0
                var l: Float = 0
                i = 0
                while i < live && docs[order[i]] == pivotDoc {
                    let c = order[i]
                    try refs[c]._withUnsafeGuaranteedRef { cursor in
                        u += cursor.upper
                        l += cursor.lower
                        try moves.next(cursor)
                        docs[c] = cursor.doc
                    }
                    i &+= 1
                }
                out.offer(doc: pivotDoc, upper: u, lower: l)
                // Cursors 0..<i moved; insert each back into the sorted rest, right to left.
                var j = i &- 1
                while j >= 0 {
                    bubble(j, docs, order, live)
                    j &-= 1
                }
            } else {
                // No document before the pivot can reach the threshold (the lists ahead of the
                // pivot together fall short), so every lagging list moves up to it.
                var j = pivot &- 1
                while j >= 0 {
                    let c = order[j]
                    if docs[c] < pivotDoc {
                        try refs[c]._withUnsafeGuaranteedRef { cursor in
                            try moves.advance(cursor, to: pivotDoc)
                            docs[c] = cursor.doc
                        }
                        bubble(j, docs, order, live)
                    }
                    j &-= 1
                }
            }
            // Exhausted cursors sort last.
            while live > 0 && docs[order[live &- 1]] == TermCursor.end { live &-= 1 }
        }
    }
}
