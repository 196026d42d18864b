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

    /// Decodes block `index` of `term` from the transaction and publishes it in `entry`.
    func load(term: UInt32, firstDocument: UInt32, index: Int, entry: TermEntry) throws -> DecodedBlock {
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
        cache.account(entry.publish(block, at: index))
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
    private let source: BlockSource
    /// queryWeight / 255: a code's step in a block is blockMax · this.
    private let weightScale: Float
    // The directory's buffers, read without bounds checks: `directory` keeps them alive and
    // every index is below `blockCount` ≤ its count.
    private let firstDocs: UnsafeMutablePointer<UInt32>
    private let lastDocs: UnsafeMutablePointer<UInt32>
    private let blockMaxes: UnsafeMutablePointer<Float>

    private var block = -1
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
        self.blockCount = blockCount
        self.postingCount = postingCount
        self.entry = entry
        self.source = source
        self.weightScale = queryWeight / 255
        firstDocs = directory.firstDocs
        lastDocs = directory.lastDocs
        blockMaxes = directory.blockMaxes
    }

    /// Positions on the first posting.
    func start() throws {
        if blockCount == 0 {
            doc = Self.end
            return
        }
        try load(block: 0)
        doc = documents[0]
    }

    private func load(block b: Int) throws {
        let decoded: DecodedBlock
        if b < cachedBlocks.count, let hit = cachedBlocks[b] {
            decoded = hit
        } else {
            decoded = try source.load(term: term, firstDocument: firstDocs[b], index: b, entry: entry)
        }
        // Every block ends at the last document its (checked) header records; the scans below
        // rely on it to stop inside the block without a bounds test per posting.
        guard decoded.count > 0, decoded.documentsPointer[decoded.count - 1] == lastDocs[b] else {
            throw SparseDBError(.corrupt, "term \(term): block \(b) does not end at its recorded last document")
        }
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
        } else if block + 1 < blockCount {
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
        // Stops inside the block: its last document is lastDocs[block] ≥ target (checked at load).
        while documents[position] < target { position &+= 1 }
        doc = documents[position]
    }

    /// Without decoding anything: the block that would hold `target` (the first whose last
    /// document is ≥ `target`), as (its block-max contribution, its last document), or `nil`
    /// when the list ends before `target`.
    func shallowBlock(for target: UInt32) -> (maxContribution: Float, lastDocument: UInt32)? {
        var b = max(block, 0)
        while b < blockCount && lastDocs[b] < target { b &+= 1 }
        guard b < blockCount else { return nil }
        return (blockMaxes[b] * queryWeight * (1 + 1e-6), lastDocs[b])
    }
}
