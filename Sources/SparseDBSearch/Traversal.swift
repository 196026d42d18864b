import CSparseDBKernels
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

    /// A non-essential list is read through rather than searched per candidate when it has
    /// fewer than this many postings in the window per candidate: a search costs about as
    /// much as reading 16 postings (measured at 1 M documents: 8 to 32 alike, 4 and below or
    /// 64 and above slower).
    static let mergeRatio = 16

    /// MaxScore, a window of documents at a time (as Lucene's MaxScoreBulkScorer does).
    ///
    /// For each window of `maxScoreWindow` documents, every list's largest contribution inside
    /// the window comes from the block maxima of the blocks overlapping it (nothing decoded),
    /// and the lists are ordered by it. Bounds are then kept per 64-document word of the window
    /// (each list's largest block maximum overlapping the word: a block covers a few words, so
    /// these are much tighter than the window's maximum): the longest prefix of lists whose
    /// word bounds together stay below the threshold in every word are the window's
    /// non-essential lists; when that is all of them, the window is skipped. The essential lists
    /// add every posting's bounds into accumulators (a tight loop per list, no search for the
    /// smallest current document across lists, which would cost a pass over all essential lists
    /// per document); the window's documents whose bound plus their word's non-essential bound
    /// can reach the threshold become candidates, and the non-essential lists complete them one
    /// list at a time, largest first (each list's postings in the window are read once, in
    /// order). A candidate is dropped as soon as the lists still to come cannot lift it, and a
    /// list's block is decoded for it only when that block's maximum could.
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
        let words = window / 64
        let docs = UnsafeMutablePointer<UInt32>.allocate(capacity: max(n, 1))
        let refs = UnsafeMutablePointer<Unmanaged<TermCursor>>.allocate(capacity: max(n, 1))
        // This window's maxima and the list indices ordered by them.
        let windowMax = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        // Row p + 1 (`words` floats): per word, the sum of the word bounds of lists order[0...p];
        // row 0 is zeros.
        let wordBounds = UnsafeMutablePointer<Float>.allocate(capacity: (n + 1) * words)
        // Per document of the window: its upper and lower bound sums, side by side.
        let bounds = UnsafeMutablePointer<Float>.allocate(capacity: 2 * window)
        let touched = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
        // Per word of the window: the documents that may be offered (live, and the filter's).
        let admitted = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
        // The window's candidates: documents and their bounds so far.
        // Index `window` of the bounds is the spare that non-candidates add into.
        let candidateDocs = UnsafeMutablePointer<UInt32>.allocate(capacity: window)
        let candidateUpper = UnsafeMutablePointer<Float>.allocate(capacity: window + 1)
        let candidateLower = UnsafeMutablePointer<Float>.allocate(capacity: window + 1)
        // Per document of the window: its index among the candidates, else the spare.
        let candidateSlot = UnsafeMutablePointer<Int32>.allocate(capacity: window)
        let spare = Int32(window)
        // Blocks of each list overlapping this window (for the non-essential lists).
        let windowBlocks = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        wordBounds.initialize(repeating: 0, count: words)
        bounds.initialize(repeating: 0, count: 2 * window)
        touched.initialize(repeating: 0, count: words)
        candidateSlot.initialize(repeating: spare, count: window)
        // The spare's sums grow without bound and are never read.
        candidateUpper[window] = 0
        candidateLower[window] = 0
        defer {
            withExtendedLifetime(cursors) {}
            docs.deallocate()
            refs.deallocate()
            windowMax.deallocate()
            order.deallocate()
            wordBounds.deallocate()
            bounds.deallocate()
            touched.deallocate()
            admitted.deallocate()
            candidateDocs.deallocate()
            candidateUpper.deallocate()
            candidateLower.deallocate()
            candidateSlot.deallocate()
            windowBlocks.deallocate()
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
            let sizeWords = Int((end &- base &+ 63) &>> 6)
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
            // The non-essential lists: smallest first, while the sum of their word bounds stays
            // below the threshold in every word of the window.
            var firstEssential = 0
            while firstEssential < live {
                let row = wordBounds + (firstEssential &+ 1) &* words
                let previous = row - words
                row.update(repeating: 0, count: sizeWords)
                let i = order[firstEssential]
                windowBlocks[i] = refs[i]._withUnsafeGuaranteedRef { $0.raiseWordMaxima(from: base, before: end, bounds: row) }
                var largest: Float = 0
                for w in 0..<sizeWords {
                    let sum = row[w] + previous[w]
                    row[w] = sum
                    largest = max(largest, sum)
                }
                if !out.isPruned(largest) { break }
                firstEssential &+= 1
            }
            if firstEssential == live { continue }

            var p = firstEssential
            while p < live {
                let i = order[p]
                try refs[i]._withUnsafeGuaranteedRef { c in
                    if c.doc < base { try c.advance(to: base) }
                    try c.accumulate(before: end, base: base, bounds: bounds, touched: touched)
                    docs[i] = c.doc
                }
                p &+= 1
            }
            // The window's documents whose bound can still reach the threshold, in order.
            let nonEssential = wordBounds + firstEssential &* words
            let firstWord = Int(base &>> 6)
            for w in 0..<sizeWords { admitted[w] = out.admittedWord(firstWord &+ w) }
            var candidates = sparsedb_maxscore_window_candidates(
                bounds, touched, sizeWords, admitted, nonEssential, out.bar, base, candidateDocs, candidateUpper, candidateLower, candidateSlot)
            // Then the non-essential lists, largest first, one list at a time over the
            // candidates; `rest` is what the lists after list j can still add. A list with few
            // postings in the window per candidate is read through (a sum per posting into the
            // candidate's bounds, no search); otherwise each candidate is looked up, and a block
            // is decoded only when its maximum could lift the candidate.
            var j = firstEssential &- 1
            while j >= 0 && candidates > 0 {
                let rest = wordBounds + j &* words
                let i = order[j]
                try refs[i]._withUnsafeGuaranteedRef { cursor in
                    var kept = 0
                    if windowBlocks[i] &* cursor.postingsPerBlock < candidates &* mergeRatio {
                        try cursor.addBounds(before: end, base: base, slots: candidateSlot, upper: candidateUpper, lower: candidateLower)
                        kept = sparsedb_maxscore_keep_reachable(
                            candidateDocs, candidateUpper, candidateLower, candidateSlot, candidates, rest, out.bar, base, spare)
                    } else {
                        var c = 0
                        while c < candidates {
                            let d = candidateDocs[c]
                            let slot = Int(d &- base)
                            var u = candidateUpper[c]
                            var l = candidateLower[c]
                            let keep = try cursor.addBounds(of: d, upper: &u, lower: &l, rest: rest[slot &>> 6], collector: out)
                            // Written whether kept or not (never past its own place), so that no
                            // branch depends on the unpredictable outcome.
                            candidateDocs[kept] = d
                            candidateUpper[kept] = u
                            candidateLower[kept] = l
                            candidateSlot[slot] = keep ? Int32(truncatingIfNeeded: kept) : spare
                            kept &+= keep ? 1 : 0
                            c &+= 1
                        }
                    }
                    candidates = kept
                    docs[i] = cursor.doc
                }
                j &-= 1
            }
            var c = 0
            while c < candidates {
                candidateSlot[Int(candidateDocs[c] &- base)] = spare
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
