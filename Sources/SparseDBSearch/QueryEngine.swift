import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// What one query did.
package struct QueryStatistics: Sendable, Equatable {
    /// Query terms that have postings.
    package var terms = 0
    /// Postings in the blocks the traversal entered.
    package var postingsVisited = 0
    /// Blocks the traversal entered.
    package var blocksVisited = 0
    /// Blocks never entered (skipped by pruning).
    package var blocksSkipped = 0
    /// Blocks decompressed and decoded by this query (the rest came from the posting cache).
    package var blocksDecoded = 0
    /// Documents whose score bounds were fully evaluated.
    package var documentsScored = 0
    /// Candidates rescored exactly from the forward rows.
    package var candidatesRescored = 0

    package init() {}
}

/// A document and its exact score.
package struct ScoredDocument: Sendable, Equatable {
    package var document: UInt32
    package var score: Double

    package init(document: UInt32, score: Double) {
        self.document = document
        self.score = score
    }

    /// Best first; ties broken by the smaller internal id (insertion order).
    @inline(__always)
    package static func ranksBefore(_ a: ScoredDocument, _ b: ScoredDocument) -> Bool {
        a.score != b.score ? a.score > b.score : a.document < b.document
    }
}

/// One top-k query on a sparse field.
package struct SparseQuery: Sendable {
    /// The query: every hit's score is its exact dot product with this vector.
    package var vector: SparseVector
    package var k: Int
    package var algorithm: TraversalAlgorithm
    /// > 1 makes pruning approximate (see ``CandidateCollector``).
    package var heapFactor: Float
    /// Approximate: the terms the traversal walks (the query's largest); nil = all of `vector`.
    package var traversalTerms: SparseVector?
    /// How many of the traversal's best documents are rescored exactly with `vector`, the best
    /// k of them returned (≥ k; more than k only helps when the traversal walks fewer terms).
    package var candidates: Int
    /// Approximate, instead of a traversal (``QueryEngine/searchPrunedLists``): each walked
    /// list's `postingsPerTerm` largest postings give partial scores, and the best `candidates`
    /// by those are scored with the whole query; the exact top-k of them is returned.
    package var postingsPerTerm: Int?

    package init(
        vector: SparseVector, k: Int, algorithm: TraversalAlgorithm, heapFactor: Float = 1, traversalTerms: SparseVector? = nil,
        candidates: Int? = nil, postingsPerTerm: Int? = nil
    ) {
        self.vector = vector
        self.k = k
        self.algorithm = algorithm
        self.heapFactor = heapFactor
        self.traversalTerms = traversalTerms
        self.candidates = max(k, candidates ?? k)
        self.postingsPerTerm = postingsPerTerm
    }
}

/// Runs queries on snapshots of one environment: owns the posting cache and the zstd contexts
/// queries reuse. Thread-safe; one per open database.
package final class QueryEngine: Sendable {
    package let cache: PostingCache
    package let flatCache: FlatCache
    package let forwardCache: ForwardCache
    package let filterCache = FilterCache()
    package let codecs = CodecPool()

    package init(cacheBytes: Int, flatCacheBytes: Int = 1 << 30, forwardCacheBytes: Int = 1 << 30) {
        cache = PostingCache(budget: cacheBytes)
        flatCache = FlatCache(budget: flatCacheBytes)
        forwardCache = ForwardCache(budget: forwardCacheBytes)
    }

    /// The deleted documents of `record`'s snapshot (cached per generation).
    package func deletedDocuments(_ txn: borrowing Transaction, record: CollectionRecord) throws -> DocumentBitmap {
        guard record.deletedDocuments > 0 else { return DocumentBitmap() }
        return try cache.deletedDocuments(collection: record.id, generation: record.generation) {
            try IndexWriter.tombstones(txn, collection: record.id, capacity: record.nextDocument)
        }
    }

    /// The exact top-k of `query` on sparse field `field`, best first, with exact float scores.
    ///
    /// With `allowed` (a filter's documents), only those documents are candidates: the traversal
    /// skips the others without scoring them, and when the filter is selective enough that
    /// scoring its documents directly from their forward rows reads less than the query's posting
    /// lists, it does that instead.
    package func searchSparse(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, query: SparseQuery, deleted: DocumentBitmap,
        allowed: DocumentBitmap? = nil
    ) throws -> (hits: [ScoredDocument], statistics: QueryStatistics) {
        let q = query.vector
        guard query.k > 0, q.count > 0 else { return ([], QueryStatistics()) }
        let c = record.id
        let f = field.id
        let codec = codecs.checkOut()
        defer { codecs.checkIn(codec) }
        let source = BlockSource(lender: txn.lender(txn.table(.postingBlock)), collection: c, field: f, codec: codec, cache: cache)
        let walked = query.traversalTerms ?? q
        var cursors: [TermCursor] = []
        cursors.reserveCapacity(walked.count)
        var prunedLists: [(queryWeight: Float, list: PrunedList)] = []
        // Postings of every walked list, cursor or not (what the filter's direct scoring weighs).
        var walkedPostings = 0
        for (term, weight) in zip(walked.dimensions, walked.weights) where weight > 0 {
            let entry = cache.entry(PostingCache.Key(collection: c, field: f, epoch: field.epoch, term: term))
            // Term statistics change with every write that touches the term; the collection's
            // generation changes with every write, so a value known for this generation is this
            // snapshot's.
            let stats: Records.TermStats?
            if let known = entry.statistics(generation: record.generation) {
                stats = known
            } else {
                let termKey = Keys.term(c, f, term)
                stats = try termKey.withUnsafeBytes { k in
                    try txn.withValue(termKey, in: txn.table(.term)) { b throws in try b.map { try Records.parseTerm(key: k, $0) } }
                }
                entry.setStatistics(stats, generation: record.generation)
            }
            guard let stats else { continue }
            let blocks = Int(stats.blocks)
            walkedPostings += Int(stats.postings)
            // The pruned-lists search needs no cursor for a term whose pruned list is known: a
            // cursor over a long list costs a pass over its block directory to make.
            if let perTerm = query.postingsPerTerm, let known = entry.prunedList(perTerm, blocks: blocks) {
                prunedLists.append((weight, known))
                continue
            }
            let (directory, decoded) = try self.directory(txn, collection: c, field: f, term: term, blocks: blocks, entry: entry)
            cursors.append(
                TermCursor(
                    term: term, queryWeight: weight, termMaxWeight: stats.maxWeight, directory: directory, blocks: decoded, blockCount: blocks,
                    postingCount: Int(stats.postings), entry: entry, source: source))
        }
        if let allowed {
            // Direct scoring reads one forward row (about postings / documents entries) per
            // admitted document; the traversal walks the query's lists. A row is a B-tree
            // lookup at random: measured at 1 M documents (BENCHMARKS.md, filtered search), about
            // 5 µs per row of 108 entries against 9 ns per posting traversed, so a row entry
            // counts five postings.
            let queryPostings = walkedPostings
            let rowLength = Double(field.postings) / Double(max(record.liveDocuments + record.deletedDocuments, 1))
            if Double(allowed.count) * max(rowLength, 1) * 5 <= Double(queryPostings) {
                var stats = QueryStatistics()
                stats.terms = cursors.count
                stats.documentsScored = allowed.count
                stats.candidatesRescored = allowed.count
                // An admitted document without a vector in this field has no row: it scores 0.
                let scored = try rescore(txn, collection: c, field: f, query: q, documents: allowed.members, skippingAbsentRows: true).filter { $0.score > 0 }
                return (Array(scored.prefix(query.k)), stats)
            }
        }
        if let perTerm = query.postingsPerTerm {
            return try searchPrunedLists(
                txn, record: record, field: field, query: query, known: prunedLists, cursors: cursors, perTerm: perTerm, deleted: deleted,
                allowed: allowed)
        }
        let collector = CandidateCollector(k: query.candidates, deleted: deleted, allowed: allowed, thresholdFactor: query.heapFactor)
        try Traversal.run(query.algorithm, cursors: cursors, collector: collector)
        var stats = QueryStatistics()
        stats.terms = cursors.count
        for cursor in cursors {
            stats.postingsVisited += cursor.postingsDecoded
            stats.blocksVisited += cursor.blocksDecoded
            stats.blocksSkipped += cursor.blockCount - cursor.blocksDecoded
        }
        stats.blocksDecoded = source.decoded
        stats.documentsScored = collector.documentsScored
        let survivors = collector.survivors()
        stats.candidatesRescored = survivors.count
        guard let pruned = query.traversalTerms else {
            let scored = try rescore(txn, collection: c, field: f, query: q, documents: survivors)
            return (Array(scored.prefix(query.k)), stats)
        }
        // The candidates are the best `candidates` documents by the pruned query's exact score
        // (ties by internal id, as everywhere), then ranked by the whole query's: both scores
        // from one read of each row.
        let both = try rescore(txn, collection: c, field: f, query: pruned, documents: survivors, alsoScoring: q)
        let chosen = both.prefix(query.candidates).map { ScoredDocument(document: $0.document, score: $0.second) }
        return (Array(chosen.sorted(by: ScoredDocument.ranksBefore).prefix(query.k)), stats)
    }

    /// Exact scores of `documents` from their forward rows (checksums checked), best first.
    ///
    /// A document found in the posting lists must have a row (its absence is damage); with
    /// `skippingAbsentRows`, for documents taken from a filter, an absent row means the document
    /// has no vector in this field, and it is left out.
    package func rescore(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, query q: SparseVector, documents: [UInt32],
        skippingAbsentRows: Bool = false
    ) throws -> [ScoredDocument] {
        var scored = try q.dimensions.withUnsafeBufferPointer { qd in
            try q.weights.withUnsafeBufferPointer { qw in
                try scoreRows(txn, collection: c, field: f, documents: documents, skippingAbsentRows: skippingAbsentRows) { row in
                    try Records.dot(queryDimensions: qd, queryWeights: qw, row: row)
                }
            }
        }.map { ScoredDocument(document: $0.document, score: $0.value) }
        scored.sort(by: ScoredDocument.ranksBefore)
        return scored
    }

    /// Exact scores of `documents` for `query` (best first, as ``rescore(_:collection:field:query:documents:skippingAbsentRows:)``)
    /// and, from the same read of each row, for `second`.
    func rescore(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, query q: SparseVector, documents: [UInt32], alsoScoring second: SparseVector
    ) throws -> [(document: UInt32, score: Double, second: Double)] {
        let scored = try q.dimensions.withUnsafeBufferPointer { qd in
            try q.weights.withUnsafeBufferPointer { qw in
                try second.dimensions.withUnsafeBufferPointer { sd in
                    try second.weights.withUnsafeBufferPointer { sw in
                        try scoreRows(txn, collection: c, field: f, documents: documents, skippingAbsentRows: false) { row in
                            (try Records.dot(queryDimensions: qd, queryWeights: qw, row: row), try Records.dot(queryDimensions: sd, queryWeights: sw, row: row))
                        }
                    }
                }
            }
        }
        return scored.map { (document: $0.document, score: $0.value.0, second: $0.value.1) }
            .sorted { ScoredDocument.ranksBefore(ScoredDocument(document: $0.document, score: $0.score), ScoredDocument(document: $1.document, score: $1.score)) }
    }

    /// `score` of each document's checked forward row, in the order of `documents` (absent rows:
    /// left out with `skippingAbsentRows`, else damage). One B-tree lookup per document.
    private func scoreRows<T>(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, documents: [UInt32], skippingAbsentRows: Bool,
        _ score: (Records.ForwardRow) throws -> T
    ) throws -> [(document: UInt32, value: T)] {
        var scored: [(document: UInt32, value: T)] = []
        scored.reserveCapacity(documents.count)
        let layout = try ForwardRows.layout(txn)
        for doc in documents {
            let value = try ForwardRows.withRow(txn, collection: c, field: f, document: doc, layout: layout) { k, b throws -> T? in
                guard let b else {
                    if skippingAbsentRows { return nil }
                    throw SparseDBError(.corrupt, "document \(doc) has no forward row in field \(f)")
                }
                return try score(try Records.checkedForwardRow(key: k, b))
            }
            if let value { scored.append((doc, value)) }
        }
        return scored
    }

    /// `term`'s block directory covering at least this snapshot's `blocks` blocks, and the
    /// blocks decoded so far: from the cache, extended from the snapshot when this snapshot has
    /// more blocks than the cache knows (headers checked).
    private func directory(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, term: UInt32, blocks: Int, entry: TermEntry
    ) throws -> (TermDirectory, [DecodedBlock?]) {
        let (known, decoded) = entry.snapshot()
        if known.count >= blocks { return (known, decoded) }
        var firsts: [UInt32] = []
        var lasts: [UInt32] = []
        var maxes: [Float] = []
        let prefix = Keys.term(c, f, term)
        var previousLast: UInt32? = known.count > 0 ? known.lastDocs[known.count - 1] : nil
        let start = previousLast.map { _ in Keys.postingBlock(c, f, term, known.firstDocs[known.count - 1] &+ 1) } ?? prefix
        let needed = blocks - known.count
        try txn.scan(prefix: prefix, from: start, in: txn.table(.postingBlock)) { k, v in
            guard k.count == 16, let first = Keys.part(k, 3) else { throw SparseDBError(.corrupt, "term \(term): posting key is malformed") }
            let header = try PostingBlock.Header(key: k, v)
            if let last = previousLast, first <= last {
                throw SparseDBError(.corrupt, "term \(term): block at document \(first) overlaps the previous block")
            }
            previousLast = first &+ header.span
            firsts.append(first)
            lasts.append(first &+ header.span)
            maxes.append(header.blockMax)
            return firsts.count < needed
        }
        guard firsts.count >= needed else {
            throw SparseDBError(.corrupt, "term \(term): statistics say \(blocks) blocks, \(known.count + firsts.count) are stored")
        }
        let longer = TermDirectory(prefix: known, appending: firsts, lasts, maxes)
        cache.account(entry.extend(to: longer))
        return (longer, decoded)
    }
}
