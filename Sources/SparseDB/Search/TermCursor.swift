/// Iterates one query term's posting list in document order, decoding blocks only when a
/// posting inside them is needed. Block headers (first/last document, block-max) are read
/// up front, so Block-Max WAND can skip whole blocks without decompressing them.
///
/// The stored bytes belong to the read transaction the cursor was made in; a cursor must not
/// outlive it.
final class TermCursor {
    static let end = UInt32.max

    let term: UInt32
    let queryWeight: Float
    /// Upper bound of this term's contribution to any document's score.
    let maxContribution: Float

    private var firstDocs: [UInt32] = []
    private var lastDocs: [UInt32] = []
    private var steps: [Float] = []  // queryWeight · blockMax / 255
    private var headers: [PostingBlock.Header] = []
    private var storage: [UnsafeRawBufferPointer] = []

    private var block = -1
    private var decodedBlock = -1
    private var position = 0
    private var count = 0
    /// The current block's postings: our own decode buffers, or a slice of a cached list.
    private var documents: UnsafeMutablePointer<UInt32>
    private var codes: UnsafeMutablePointer<UInt8>
    private let decoder: BlockDecoder
    private var cached: DecodedPostingList?
    private var step: Float = 0

    /// The current document, or ``end``.
    private(set) var doc: UInt32 = TermCursor.end

    var postingsDecoded = 0
    var blocksDecoded = 0
    var blockCount: Int { firstDocs.count }

    init(term: UInt32, queryWeight: Float, termMaxWeight: Float, codec: ZstdCodec) {
        self.term = term
        self.queryWeight = queryWeight
        // A hair above the true bound so float rounding can never make it an under-estimate.
        self.maxContribution = queryWeight * termMaxWeight * (1 + 1e-6)
        decoder = BlockDecoder(codec: codec)
        documents = decoder.documents
        codes = decoder.codes
    }

    /// A cursor over a list already decoded (from the posting cache).
    convenience init(term: UInt32, queryWeight: Float, list: DecodedPostingList, codec: ZstdCodec) {
        self.init(term: term, queryWeight: queryWeight, termMaxWeight: list.termMaxWeight, codec: codec)
        cached = list
        firstDocs = list.firstDocs
        lastDocs = list.lastDocs
        steps = list.blockMaxes.map { queryWeight * $0 / 255 }
    }


    func addBlock(firstDocument: UInt32, bytes: UnsafeRawBufferPointer) throws {
        let h = try PostingBlock.Header(bytes)
        firstDocs.append(firstDocument)
        lastDocs.append(firstDocument &+ h.span)
        steps.append(queryWeight * h.blockMax / 255)
        headers.append(h)
        storage.append(bytes)
    }

    /// Positions on the first posting.
    func start() throws {
        if firstDocs.isEmpty {
            doc = Self.end
            return
        }
        try load(block: 0)
        doc = documents[0]
    }

    private func load(block b: Int) throws {
        block = b
        step = steps[b]
        if let list = cached {
            let start = list.blockStarts[b]
            let end = b + 1 < list.blockStarts.count ? list.blockStarts[b + 1] : list.count
            documents = list.documents + start
            codes = list.codes + start
            count = end - start
            if decodedBlock != b {
                decodedBlock = b
                postingsDecoded += count
                blocksDecoded += 1
            }
        } else if decodedBlock != b {
            count = try decoder.decode(storage[b], firstDocument: firstDocs[b], header: headers[b])
            decodedBlock = b
            postingsDecoded += count
            blocksDecoded += 1
        }
        position = 0
    }

    /// Upper bound of this posting's contribution (`code · step`).
    @inline(__always) var upper: Float { Float(codes[position]) * step }
    /// Lower bound of this posting's contribution (`(code − 1) · step`).
    @inline(__always) var lower: Float { Float(codes[position] &- 1) * step }

    /// Moves to the next posting.
    @inline(__always)
    func next() throws {
        position += 1
        if position < count {
            doc = documents[position]
        } else if block + 1 < firstDocs.count {
            try load(block: block + 1)
            doc = documents[0]
        } else {
            doc = Self.end
        }
    }

    /// Moves to the first posting with document ≥ `target`.
    func advance(to target: UInt32) throws {
        if doc >= target { return }
        if target > lastDocs[block] {
            var b = block + 1
            // Gallop, then binary search, over the remaining blocks' last documents.
            var bound = 1
            while b + bound < lastDocs.count && lastDocs[b + bound] < target { bound <<= 1 }
            var lo = b
            var hi = min(b + bound, lastDocs.count)
            while lo < hi {
                let mid = (lo + hi) >> 1
                if lastDocs[mid] < target { lo = mid + 1 } else { hi = mid }
            }
            b = lo
            if b >= lastDocs.count {
                doc = Self.end
                return
            }
            try load(block: b)
        }
        while documents[position] < target { position += 1 }
        doc = documents[position]
    }

    /// Without decoding anything: the block that would hold `target` (the first whose last
    /// document is ≥ `target`), as (its block-max contribution, its last document), or
    /// `nil` when the list ends before `target`.
    func shallowBlock(for target: UInt32) -> (maxContribution: Float, lastDocument: UInt32)? {
        var b = max(block, 0)
        while b < lastDocs.count && lastDocs[b] < target { b += 1 }
        guard b < lastDocs.count else { return nil }
        return (steps[b] * 255 * (1 + 1e-6), lastDocs[b])
    }
}
