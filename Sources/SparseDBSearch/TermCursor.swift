import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// Fetches and decodes one term's blocks for a query: from the posting cache when another query
/// decoded them already, otherwise from the read transaction (checking both checksums) and then
/// into the cache.
///
/// Valid only while the read closure that made it runs (it holds a ``ValueLender``).
final class BlockSource {
    let lender: ValueLender
    let collection: UInt32
    let field: UInt32
    let decoder: BlockDecoder
    let cache: PostingCache
    /// Blocks this query decompressed itself (cache misses).
    var decoded = 0

    init(lender: ValueLender, collection: UInt32, field: UInt32, codec: ZstdCodec, cache: PostingCache) {
        self.lender = lender
        self.collection = collection
        self.field = field
        self.decoder = BlockDecoder(codec: codec)
        self.cache = cache
    }

    /// Decodes block `index` of `term` from the transaction and, when `keep`, publishes it in `entry`.
    func load(term: UInt32, firstDocument: UInt32, index: Int, entry: TermEntry, keep: Bool = true) throws -> DecodedBlock {
        let key = Keys.postingBlock(collection, field, term, firstDocument)
        let block = try key.withUnsafeBytes { k in
            try lender.withValue(key) { bytes throws -> DecodedBlock in
                guard let bytes else {
                    throw SparseDBError(.corrupt, "term \(term): block at document \(firstDocument) is missing")
                }
                let (_, n) = try decoder.decode(key: k, bytes)
                decoded += 1
                return DecodedBlock(documents: decoder.documents, codes: decoder.codes, count: n)
            }
        }
        if keep { cache.account(entry.publish(block, at: index)) }
        return block
    }
}

/// Iterates one query term's posting list in document order, decoding blocks only when a
/// posting inside them is needed. The block directory (first/last document, block-max of every
/// block) comes from checked headers, so Block-Max WAND can skip whole blocks without
/// decompressing them.
final class TermCursor {
    static let end = UInt32.max

    let term: UInt32
    let queryWeight: Float
    /// Upper bound of this term's contribution to any document's score.
    let maxContribution: Float

    private let directory: TermDirectory
    /// Blocks of this snapshot (the directory may be longer: a newer snapshot's).
    let blockCount: Int
    /// Postings of this snapshot's list.
    let postingCount: Int
    private let entry: TermEntry
    /// The blocks other queries had decoded when this cursor was made.
    private let cachedBlocks: [DecodedBlock?]
    /// Their objects' addresses (nil where not cached), read to prefetch the blocks ahead
    /// without reference counting; `cachedBlocks` keeps the objects alive.
    private let cachedAddresses: UnsafeMutablePointer<UnsafeRawPointer?>
    private let source: BlockSource
    /// queryWeight / 255: a code's step in a block is blockMax · this.
    private let weightScale: Float
    // The directory's buffers, read without bounds checks: `directory` keeps them alive and
    // every index is below `blockCount` ≤ its count.
    private let firstDocs: UnsafeMutablePointer<UInt32>
    private let lastDocs: UnsafeMutablePointer<UInt32>
    private let blockMaxes: UnsafeMutablePointer<Float>

    private var block = -1
    /// Where ``maxContribution(from:before:)`` starts looking: blocks before it end before every
    /// window still to come. Moves only forward.
    private var shallow = 0
    private var current: DecodedBlock?
    private var position = 0
    private var count = 0
    private var documents = UnsafePointer<UInt32>(bitPattern: 8)!
    private var codes = UnsafePointer<UInt8>(bitPattern: 8)!
    private var step: Float = 0

    /// The current document, or ``end``.
    private(set) var doc: UInt32 = TermCursor.end

    var postingsDecoded = 0
    var blocksDecoded = 0

    init(
        term: UInt32, queryWeight: Float, termMaxWeight: Float, directory: TermDirectory, blocks: [DecodedBlock?], blockCount: Int,
        postingCount: Int, entry: TermEntry, source: BlockSource
    ) {
        precondition(blockCount <= directory.count)
        self.term = term
        self.queryWeight = queryWeight
        // A hair above the true bound so float rounding can never make it an under-estimate.
        self.maxContribution = queryWeight * termMaxWeight * (1 + 1e-6)
        self.directory = directory
        self.cachedBlocks = blocks
        cachedAddresses = .allocate(capacity: max(blocks.count, 1))
        for (i, block) in blocks.enumerated() {
            (cachedAddresses + i).initialize(to: block.map { UnsafeRawPointer(Unmanaged.passUnretained($0).toOpaque()) })
        }
        self.blockCount = blockCount
        self.postingCount = postingCount
        self.entry = entry
        self.source = source
        self.weightScale = queryWeight / 255
        firstDocs = directory.firstDocs
        lastDocs = directory.lastDocs
        blockMaxes = directory.blockMaxes
    }

    deinit { cachedAddresses.deallocate() }

    /// The list's last document in this snapshot (0 for an empty list).
    var lastDocument: UInt32 { blockCount > 0 ? lastDocs[blockCount - 1] : 0 }

    /// Positions on the first posting.
    func start() throws {
        if blockCount == 0 {
            doc = Self.end
            return
        }
        try load(block: 0)
        doc = documents[0]
    }

    /// Block `b`, from the cache or decoded (both checksums checked) and, when `keep`, cached.
    private func decodedBlock(_ b: Int, keep: Bool = true) throws -> DecodedBlock {
        let decoded: DecodedBlock
        if b < cachedBlocks.count, let hit = cachedBlocks[b] {
            decoded = hit
        } else {
            decoded = try source.load(term: term, firstDocument: firstDocs[b], index: b, entry: entry, keep: keep)
        }
        // Every block ends at the last document its (checked) header records; the scans below
        // rely on it to stop inside the block without a bounds test per posting.
        guard decoded.count > 0, decoded.lastDocument == lastDocs[b] else {
            throw SparseDBError(.corrupt, "term \(term): block \(b) does not end at its recorded last document")
        }
        return decoded
    }

    private func load(block b: Int) throws {
        let decoded = try decodedBlock(b)
        // Lists are mostly read block after block, and each block is a separate object whose
        // first touch would miss every cache: bring the next blocks' objects in.
        if b &+ 1 < cachedBlocks.count, let next = cachedAddresses[b &+ 1] { sparsedb_prefetch(next) }
        if b &+ 2 < cachedBlocks.count, let ahead = cachedAddresses[b &+ 2] { sparsedb_prefetch(ahead) }
        block = b
        current = decoded
        step = blockMaxes[b] * weightScale
        count = decoded.count
        documents = decoded.documentsPointer
        codes = decoded.codesPointer
        position = 0
        postingsDecoded &+= count
        blocksDecoded &+= 1
    }

    /// The pruned-lists search (``QueryEngine/searchPrunedLists``): the list's `n` postings of
    /// largest weight estimate (the code's upper bound, code · block-max / 255; every posting
    /// tied with the n-th kept; a list of at most `n` postings whole), in document order. Made
    /// from every block of the snapshot, then kept in the term's cache entry for snapshots with
    /// as many blocks (``TermEntry/prunedList(_:blocks:)``).
    func largest(_ n: Int, scratch: inout [Float]) throws -> PrunedList {
        let list = try prunedList(n, scratch: &scratch)
        source.cache.account(entry.setPrunedList(list))
        return list
    }

    /// The list's `n` postings of largest estimate among this snapshot's blocks (all of them
    /// when there are at most `n`; every one tied with the n-th), in document order.
    private func prunedList(_ n: Int, scratch: inout [Float]) throws -> PrunedList {
        var blocks: [DecodedBlock] = []
        blocks.reserveCapacity(blockCount)
        var postings = 0
        for b in 0..<blockCount {
            // Not kept in the posting cache: the pruned list is what later queries read.
            let block = try decodedBlock(b, keep: false)
            blocks.append(block)
            postings &+= block.count
        }
        blocksDecoded &+= blockCount
        // The same expression wherever an estimate is compared, so the n-th compares equal to itself.
        @inline(__always) func estimate(_ code: UInt8, _ scale: Float) -> Float { Float(code) * scale }
        var cut: Float = 0
        if postings > n {
            scratch.removeAll(keepingCapacity: true)
            scratch.reserveCapacity(postings)
            for (b, block) in blocks.enumerated() {
                let scale = blockMaxes[b] / 255
                let codes = block.codesPointer
                for p in 0..<block.count { scratch.append(estimate(codes[p], scale)) }
            }
            cut = scratch.withUnsafeMutableBufferPointer { sparsedb_nth_largest($0.baseAddress, $0.count, n - 1) }
        }
        var documents: [UInt32] = []
        var estimates: [Float] = []
        documents.reserveCapacity(min(postings, n + 64))
        estimates.reserveCapacity(min(postings, n + 64))
        for (b, block) in blocks.enumerated() {
            let scale = blockMaxes[b] / 255
            if estimate(255, scale) < cut { continue }
            let docs = block.documentsPointer
            let codes = block.codesPointer
            for p in 0..<block.count {
                let e = estimate(codes[p], scale)
                if e >= cut {
                    documents.append(docs[p])
                    estimates.append(e)
                }
            }
        }
        withExtendedLifetime(blocks) {}
        return PrunedList(n: n, blocks: blockCount, documents: documents, estimates: estimates)
    }

    /// Upper bound of this posting's contribution (`code · step`).
    @inline(__always) var upper: Float { Float(codes[position]) * step }
    /// Lower bound of this posting's contribution (`(code − 1) · step`).
    @inline(__always) var lower: Float { Float(codes[position] &- 1) * step }

    /// Moves to the next posting.
    @inline(__always)
    func next() throws {
        position &+= 1
        if position < count {
            doc = documents[position]
        } else {
            try enterNextBlock()
        }
    }

    /// After the current block's last posting: the first posting of the next block, or ``end``.
    @inline(__always)
    private func enterNextBlock() throws {
        if block + 1 < blockCount {
            try load(block: block + 1)
            doc = documents[0]
        } else {
            doc = Self.end
        }
    }

    /// Adds the bounds of every posting before document `end` into a window's accumulators
    /// (`bounds[2i]` the upper, `bounds[2i + 1]` the lower bound of document `base + i`; every
    /// such document is in `base ..< end`), marks those documents in `touched`, and leaves the
    /// cursor on the first posting at or after `end`. The bounds are computed as ``upper`` and
    /// ``lower`` compute them. A document's two sums sit side by side: one cache line per
    /// posting instead of two (the window's sums are larger than the first-level cache).
    @inline(__always)
    func accumulate(before end: UInt32, base: UInt32, bounds: UnsafeMutablePointer<Float>, touched: UnsafeMutablePointer<UInt64>) throws {
        try forEachPosting(before: end, base: base) { i, code, s in
            bounds[2 &* i] += Float(code) * s
            bounds[2 &* i &+ 1] += Float(code &- 1) * s
            touched[i &>> 6] |= 1 &<< UInt64(i & 63)
        }
    }

    /// Adds the bounds of every posting in `base ..< end` to the candidate its document is:
    /// `slots[d − base]` is the candidate's index in `upper` and `lower`, or a spare index
    /// whose sums nobody reads when `d` is not a candidate (so the loop has no branch on it).
    /// Leaves the cursor on the first posting at or after `end`. For a list with few postings
    /// per candidate this beats looking each candidate up (``addBounds(of:upper:lower:rest:collector:)``).
    @inline(__always)
    func addBounds(
        before end: UInt32, base: UInt32, slots: UnsafePointer<Int32>, upper: UnsafeMutablePointer<Float>, lower: UnsafeMutablePointer<Float>
    ) throws {
        if doc < base { try advance(to: base) }
        try forEachPosting(before: end, base: base) { i, code, s in
            let c = Int(slots[i])
            upper[c] += Float(code) * s
            lower[c] += Float(code &- 1) * s
        }
    }

    /// Calls `visit(d − base, code, step)` for every posting before document `end` (each at or
    /// after `base`), block after block, and leaves the cursor on the first posting at or after
    /// `end`. Inlined with its closure into each caller: one tight loop per block.
    @inline(__always)
    private func forEachPosting(before end: UInt32, base: UInt32, _ visit: (Int, UInt8, Float) -> Void) throws {
        while doc < end {
            // The rest of this block, up to the window's end (locals, so the loop keeps them in registers).
            let docs = documents
            let codes = self.codes
            let s = step
            let n = count
            var p = position
            while p < n {
                let d = docs[p]
                if d >= end { break }
                visit(Int(d &- base), codes[p], s)
                p &+= 1
            }
            position = p
            if p < n {
                doc = docs[p]
            } else {
                try enterNextBlock()
            }
        }
    }

    /// One candidate document `d` of a MaxScore window (candidates come in increasing order),
    /// whose bounds from the lists before this one are `upper` and `lower`, and `rest`, a bound
    /// of what the lists after this one can add to it. When this list's largest possible
    /// contribution to `d` (the block maximum of the block that would hold it) cannot lift it
    /// to the collector's bar, returns false without decoding anything: the candidate is out.
    /// Otherwise adds this list's bounds for `d` (nothing when the list lacks it) and returns
    /// whether it can still reach the bar. A `d` between two blocks decodes nothing either.
    @inline(__always)
    func addBounds(of d: UInt32, upper: inout Float, lower: inout Float, rest: Float, collector out: CandidateCollector) throws -> Bool {
        if doc < d {
            var b = block
            if d > lastDocs[b] {
                // The first block that ends at or after d (blocks up to the current one end
                // before d, and d is in the current window).
                shallow = max(shallow, b &+ 1)
                b = moveShallow(to: d)
                if b >= blockCount || firstDocs[b] > d { return !out.isPruned(upper + rest) }
            }
            if out.isPruned(upper + blockContribution(b) + rest) { return false }
            if b != block { try load(block: b) }
            seek(d)
        }
        if doc == d {
            upper += self.upper
            lower += self.lower
        }
        return !out.isPruned(upper + rest)
    }

    /// Moves to the first posting with document ≥ `target`.
    func advance(to target: UInt32) throws {
        if doc >= target { return }
        if target > lastDocs[block] {
            // Gallop, then binary search, over the remaining blocks' last documents.
            let b = block &+ 1
            var bound = 1
            while b &+ bound < blockCount && lastDocs[b &+ bound] < target { bound &<<= 1 }
            var lo = b
            var hi = min(b &+ bound, blockCount)
            while lo < hi {
                let mid = (lo &+ hi) &>> 1
                if lastDocs[mid] < target { lo = mid &+ 1 } else { hi = mid }
            }
            if lo >= blockCount {
                doc = Self.end
                return
            }
            try load(block: lo)
        }
        seek(target)
    }

    /// Moves to the first posting with document ≥ `target` inside the current block, whose last
    /// document is ≥ `target`.
    @inline(__always)
    private func seek(_ target: UInt32) {
        // Stops inside the block: its last document is lastDocs[block] ≥ target (checked at load).
        // A local position (the stored one would be written back on every step) and, when the
        // target is more than a few postings ahead, a binary search first.
        var p = position
        let last = count &- 1
        if p &+ 8 < last && documents[p &+ 8] < target {
            var lo = p &+ 9
            var hi = last
            // documents[hi] ≥ target; find the first position ≥ target in [lo, hi].
            while lo < hi {
                let mid = (lo &+ hi) &>> 1
                if documents[mid] < target { lo = mid &+ 1 } else { hi = mid }
            }
            p = lo
        } else {
            while documents[p] < target { p &+= 1 }
        }
        position = p
        doc = documents[p]
    }

    /// Moves to the first posting at or after `target` whose document `admitted` (a filter's
    /// documents) holds, or to ``end``: the list read as if the rejected documents' postings
    /// were not there (see ``Traversal/AdmittedPostings``). After a rejected posting the cursor
    /// jumps to the next admitted document rather than to the next posting, so a selective
    /// filter skips by search (and whole blocks by the block directory) instead of one posting
    /// at a time; at half selectivity the jump is usually one posting.
    @inline(__always)
    func advance(to target: UInt32, admittedBy admitted: DocumentBitmap) throws {
        try advance(to: target)
        try skipRejected(admitted)
    }

    /// ``next()``, then on to the first posting whose document `admitted` holds (see
    /// ``advance(to:admittedBy:)``).
    @inline(__always)
    func next(admittedBy admitted: DocumentBitmap) throws {
        try next()
        try skipRejected(admitted)
    }

    /// From the current posting on to the first whose document `admitted` holds, or ``end``.
    @inline(__always)
    private func skipRejected(_ admitted: DocumentBitmap) throws {
        while doc != Self.end && !admitted.contains(doc) {
            try advance(to: admitted.firstMember(from: doc &+ 1))
        }
    }

    /// Block `b`'s largest contribution to a score: its block maximum times the query weight, a
    /// hair above so that float rounding never makes it an under-estimate.
    @inline(__always)
    private func blockContribution(_ b: Int) -> Float { blockMaxes[b] * queryWeight * (1 + 1e-6) }

    /// Moves ``shallow`` to the first block that ends at or after `target` (`blockCount` when
    /// none does) and returns it.
    @inline(__always)
    private func moveShallow(to target: UInt32) -> Int {
        var b = shallow
        while b < blockCount && lastDocs[b] < target { b &+= 1 }
        shallow = b
        return b
    }

    /// Without decoding anything: a lower bound of this list's first document at or after
    /// `target` (the current document when that is past `target`, else the start of the first
    /// block that ends at or after it), or ``end`` when the list has none. Targets must not
    /// decrease between calls.
    @inline(__always)
    func firstPossibleDocument(from target: UInt32) -> UInt32 {
        if doc >= target { return doc }
        let b = moveShallow(to: target)
        return b < blockCount ? max(target, firstDocs[b]) : Self.end
    }

    /// Without decoding anything: an upper bound of this term's contribution to any document
    /// in `base ..< end`, from the block maxima of the blocks that overlap it (0 when none
    /// does). Windows must be asked for in increasing order.
    @inline(__always)
    func maxContribution(from base: UInt32, before end: UInt32) -> Float {
        var b = moveShallow(to: base)
        var m: Float = 0
        while b < blockCount && firstDocs[b] < end {
            m = max(m, blockContribution(b))
            b &+= 1
        }
        return m
    }

    /// Without decoding anything: for each 64-document word `w` of the window `base ..< end`
    /// (`bounds[w]` for documents `base + 64w ..< base + 64w + 64`), raises `bounds[w]` to this
    /// term's largest contribution to a document of the word: the largest block maximum among
    /// the blocks overlapping it. Windows must be asked for in increasing order.
    /// Returns the number of blocks overlapping the window.
    @inline(__always)
    func raiseWordMaxima(from base: UInt32, before end: UInt32, bounds: UnsafeMutablePointer<Float>) -> Int {
        let firstBlock = moveShallow(to: base)
        var b = firstBlock
        while b < blockCount && firstDocs[b] < end {
            let m = blockContribution(b)
            var w = Int((max(firstDocs[b], base) &- base) &>> 6)
            let last = Int((min(lastDocs[b], end &- 1) &- base) &>> 6)
            while w <= last {
                if m > bounds[w] { bounds[w] = m }
                w &+= 1
            }
            b &+= 1
        }
        return b &- firstBlock
    }

    /// Postings per block of this list, on average.
    var postingsPerBlock: Int { blockCount > 0 ? postingCount / blockCount : 0 }

    /// Without decoding anything: the block that would hold `target` (the first whose last
    /// document is ≥ `target`), as (its block-max contribution, its last document), or `nil`
    /// when the list ends before `target`.
    func shallowBlock(for target: UInt32) -> (maxContribution: Float, lastDocument: UInt32)? {
        var b = max(block, 0)
        while b < blockCount && lastDocs[b] < target { b &+= 1 }
        guard b < blockCount else { return nil }
        return (blockContribution(b), lastDocs[b])
    }
}
