import Foundation

/// A named set of documents with one sparse vector each, indexed for exact top-k by dot product.
///
/// Obtain one from ``Database/collection(_:)`` or ``Database/collection(_:creatingWithDimensions:)``.
/// Every mutation is one ACID write transaction: all of a batch or nothing.
public final class Collection: @unchecked Sendable {
    /// The collection's name.
    public let name: String
    let database: Database
    let id: UInt32
    /// Valid dimension indices are `0..<dimensions`.
    public let dimensions: UInt32

    init(database: Database, info: CollectionInfo) {
        self.database = database
        self.name = info.name
        self.id = info.id
        self.dimensions = info.dimensions
    }

    var env: LMDBEnvironment { database.env }

    func info(_ txn: borrowing Transaction) throws -> CollectionInfo {
        guard let info = try Catalog.loadInfo(txn, name: name) else {
            throw SparseDBError(.notFound, "collection '\(name)' no longer exists")
        }
        return info
    }

    /// Current metadata (counts, encoder).
    func currentInfo() throws -> CollectionInfo { try env.read { txn in try info(txn) } }

    /// Number of live documents.
    public func count() throws -> Int { Int(try currentInfo().liveDocuments) }

    /// Inserts `documents`, replacing any stored document with the same id, in one transaction.
    ///
    /// - Throws: `.invalidInput` (nothing is written) when a document has an empty or too long id
    ///   or a dimension outside `0..<dimensions`.
    public func upsert(_ documents: [Document]) throws {
        guard !documents.isEmpty else { return }
        try commit(documents, encoder: nil, allowMismatch: false)
    }

    /// The one write path of upserts: a transaction that inserts `documents` and, when they
    /// come from `encoder`, checks it against the collection's and records it on first use.
    func commit(_ documents: [Document], encoder: TextEncoder?, allowMismatch: Bool) throws {
        let codec = ZstdCodec(level: database.configuration.compressionLevel)
        try env.write { txn in
            var info = try info(txn)
            if let encoder {
                try checkEncoder(info, encoder, allowMismatch: allowMismatch)
                if info.encoder == nil {
                    info.encoder = .init(name: encoder.name, checksum: encoder.checksum, kind: encoder.kind.rawValue, path: encoder.path)
                }
            }
            try IndexWriter.upsert(txn, info: &info, documents: documents, codec: codec)
            try Catalog.saveInfo(txn, info)
        }
    }

    /// Deletes the documents with these ids in one transaction; returns the ids that did not exist.
    @discardableResult
    public func delete(ids: [String]) throws -> [String] {
        try env.write { txn in
            var info = try info(txn)
            let missing = try IndexWriter.delete(txn, info: &info, ids: ids)
            try Catalog.saveInfo(txn, info)
            return missing
        }
    }

    /// Removes deleted documents for good and re-packs every posting list into full blocks.
    /// Search results do not change.
    public func compact() throws {
        let codec = ZstdCodec(level: database.configuration.compactionCompressionLevel)
        try env.write { txn in
            var info = try info(txn)
            try IndexWriter.compact(txn, info: &info, codec: codec)
            try Catalog.saveInfo(txn, info)
        }
    }

    /// How fragmented the posting lists are: stored blocks divided by the blocks a compaction
    /// would write (1 = fully packed). Each ingest batch adds a partial block to every term it
    /// touches, so many small batches raise it; `compact()` brings it back to 1.
    public func fragmentation() throws -> Double {
        try env.read { txn in
            var blocks = 0
            var packed = 0
            try txn.scan(prefix: Schema.prefix(id), in: txn.tables.terms) { _, v in
                let stats = try Schema.parseTermRecord(v)
                blocks += Int(stats.blocks)
                packed += (Int(stats.postings) + PostingBlock.targetCount - 1) / PostingBlock.targetCount
                return true
            }
            return packed == 0 ? 1 : Double(blocks) / Double(packed)
        }
    }

    /// Compacts when ``fragmentation()`` exceeds `threshold`; returns whether it did.
    @discardableResult
    public func compactIfFragmented(threshold: Double = 2) throws -> Bool {
        guard try fragmentation() > threshold else { return false }
        try compact()
        return true
    }

    /// The stored document with external id `id`, or `nil`.
    public func document(id: String) throws -> Document? {
        try env.read { txn in
            guard let doc = try IndexWriter.documentId(txn, idKey: Schema.idKey(self.id, id)) else { return nil }
            return try self.loadDocument(txn, doc)
        }
    }

    func loadDocument(_ txn: borrowing Transaction, _ doc: UInt32) throws -> Document {
        let record = try txn.withValue(Schema.documentKey(id, doc), in: txn.tables.documents) { b throws in
            guard let b else { throw SparseDBError(.corrupt, "document \(doc) of '\(name)' has no record") }
            return try Schema.parseDocumentRecord(b)
        }
        let vector = try forwardVector(txn, doc)
        return Document(id: record.id, payload: record.payload, vector: vector)
    }

    func forwardVector(_ txn: borrowing Transaction, _ doc: UInt32) throws -> SparseVector {
        try txn.withValue(Schema.forwardKey(id, doc), in: txn.tables.forward) { b throws in
            guard let b else { throw SparseDBError(.corrupt, "document \(doc) of '\(name)' has no forward row") }
            return try Schema.parseForwardRecord(b)
        }
    }
}

/// Options of one query.
public struct SearchOptions: Sendable {
    /// How many hits to return.
    public var k: Int = 10
    /// The traversal algorithm; every exact one returns the same hits.
    public var algorithm: SearchAlgorithm = .maxscore
    /// Approximate: keep only this many query terms, the largest weights first.
    public var maxQueryTerms: Int? = nil
    /// Approximate: prune documents whose score bound is below this factor times the current
    /// k-th score (1 = exact; 1.1–1.5 trades recall for speed, as PISA's and Seismic's heap factor).
    public var thresholdFactor: Float = 1
    /// Load the stored payload of each hit.
    public var includePayloads: Bool = true

    /// Options with the given values; the defaults are an exact MaxScore top-10 with payloads.
    public init(
        k: Int = 10, algorithm: SearchAlgorithm = .maxscore, maxQueryTerms: Int? = nil, thresholdFactor: Float = 1,
        includePayloads: Bool = true
    ) {
        self.k = k
        self.algorithm = algorithm
        self.maxQueryTerms = maxQueryTerms
        self.thresholdFactor = thresholdFactor
        self.includePayloads = includePayloads
    }
}

/// One search result.
public struct SearchHit: Sendable, Equatable {
    /// External document id.
    public var id: String
    /// Exact dot product of query and document (float weights, summed in double precision).
    public var score: Double
    /// The stored payload, when asked for and present.
    public var payload: [UInt8]?
    /// Internal document id (insertion order); ties in score are broken by the smaller one.
    public var internalId: UInt32
}

/// The hits of one query and what the query did.
public struct SearchResult: Sendable {
    /// The top-k, best first.
    public var hits: [SearchHit]
    /// What the query did.
    public var statistics: SearchStatistics
}

extension Collection {
    /// The exact top-k documents by dot product with `query` (approximate when
    /// `options.maxQueryTerms` is set).
    ///
    /// ```swift
    /// let result = try collection.search(query, options: SearchOptions(k: 10, algorithm: .bmw))
    /// for hit in result.hits { print(hit.id, hit.score) }
    /// ```
    public func search(_ query: SparseVector, options: SearchOptions = SearchOptions()) throws -> SearchResult {
        guard options.k > 0 else { return SearchResult(hits: [], statistics: SearchStatistics()) }
        guard options.thresholdFactor.isFinite, options.thresholdFactor >= 1 else {
            throw SparseDBError(.invalidInput, "thresholdFactor must be a finite number ≥ 1, got \(options.thresholdFactor)")
        }
        var q = query.droppingZeros()
        if let limit = options.maxQueryTerms { q = q.keepingLargest(limit) }
        if let last = q.dimensions.last, last >= dimensions {
            throw SparseDBError(.invalidInput, "query dimension \(last) is out of range (collection '\(name)' has \(dimensions) dimensions)")
        }
        let codec = env.codecs.checkOut()
        defer { env.codecs.checkIn(codec) }
        return try env.read { txn in
            let info = try info(txn)
            var deleted = Set<UInt32>()
            if info.deletedDocuments > 0 {
                deleted = try env.postingCache.deletedDocuments(collection: id, generation: info.generation ?? 0) {
                    try IndexWriter.tombstones(txn, collection: id)
                }
            }
            var cursors: [TermCursor] = []
            let cache = env.postingCache
            let generation = info.generation ?? 0
            for (term, weight) in zip(q.dimensions, q.weights) {
                if cache.isEnabled, let list = cache.list(collection: id, term: term, generation: generation) {
                    cursors.append(TermCursor(term: term, queryWeight: weight, list: list, codec: codec))
                    continue
                }
                let stats = try txn.withValue(Schema.termKey(id, term), in: txn.tables.terms) { b throws in
                    try b.map { b throws in try Schema.parseTermRecord(b) }
                }
                guard let stats else { continue }
                if cache.isEnabled {
                    let list = try decodeList(txn, term: term, termMaxWeight: stats.maxWeight, generation: generation, codec: codec)
                    cache.insert(list, collection: id, term: term)
                    cursors.append(TermCursor(term: term, queryWeight: weight, list: list, codec: codec))
                    continue
                }
                let cursor = TermCursor(term: term, queryWeight: weight, termMaxWeight: stats.maxWeight, codec: codec)
                try txn.scan(prefix: Schema.termKey(id, term), in: txn.tables.postings) { k, v in
                    guard let first = Schema.keyPart(k, 2) else { throw SparseDBError(.corrupt, "posting key is truncated") }
                    try cursor.addBlock(firstDocument: first, bytes: v)
                    return true
                }
                cursors.append(cursor)
            }
            let collector = CandidateCollector(k: options.k, deleted: deleted, thresholdFactor: options.thresholdFactor)
            try Traversal.run(options.algorithm, cursors: cursors, collector: collector)
            var stats = SearchStatistics()
            stats.terms = cursors.count
            for c in cursors {
                stats.postingsDecoded += c.postingsDecoded
                stats.blocksDecoded += c.blocksDecoded
                stats.blocksSkipped += c.blockCount - c.blocksDecoded
            }
            stats.documentsScored = collector.documentsScored
            let survivors = collector.survivors()
            stats.candidatesRescored = survivors.count
            var scored: [(doc: UInt32, score: Double)] = []
            scored.reserveCapacity(survivors.count)
            for doc in survivors {
                let s = try txn.withValue(Schema.forwardKey(id, doc), in: txn.tables.forward) { b throws -> Double in
                    guard let b else { throw SparseDBError(.corrupt, "document \(doc) of '\(name)' has no forward row") }
                    return try Self.dot(query: q, forwardRow: b)
                }
                scored.append((doc, s))
            }
            scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.doc < $1.doc }
            var hits: [SearchHit] = []
            for (doc, score) in scored.prefix(options.k) {
                let record = try txn.withValue(Schema.documentKey(id, doc), in: txn.tables.documents) { b throws in
                    guard let b else { throw SparseDBError(.corrupt, "document \(doc) of '\(name)' has no record") }
                    return try Schema.parseDocumentRecord(b)
                }
                hits.append(SearchHit(id: record.id, score: score, payload: options.includePayloads ? record.payload : nil, internalId: doc))
            }
            return SearchResult(hits: hits, statistics: stats)
        }
    }

    /// Decodes every block of `term` into one list (for the posting cache).
    func decodeList(_ txn: borrowing Transaction, term: UInt32, termMaxWeight: Float, generation: UInt64, codec: ZstdCodec) throws -> DecodedPostingList {
        var documents: [UInt32] = []
        var codes: [UInt8] = []
        var starts: [Int] = []
        var firsts: [UInt32] = []
        var lasts: [UInt32] = []
        var maxes: [Float] = []
        let decoder = BlockDecoder(codec: codec)
        try txn.scan(prefix: Schema.termKey(id, term), in: txn.tables.postings) { k, v in
            guard let first = Schema.keyPart(k, 2) else { throw SparseDBError(.corrupt, "posting key is truncated") }
            let (h, n) = try decoder.decode(v, firstDocument: first)
            starts.append(documents.count)
            firsts.append(first)
            lasts.append(first &+ h.span)
            maxes.append(h.blockMax)
            documents.append(contentsOf: UnsafeBufferPointer(start: decoder.documents, count: n))
            codes.append(contentsOf: UnsafeBufferPointer(start: decoder.codes, count: n))
            return true
        }
        return DecodedPostingList(
            documents: documents, codes: codes, blockStarts: starts, firstDocs: firsts, lastDocs: lasts, blockMaxes: maxes,
            termMaxWeight: termMaxWeight, generation: generation)
    }

    /// Exact dot product of `query` with a stored forward row, decoded on the fly.
    static func dot(query: SparseVector, forwardRow bytes: UnsafeRawBufferPointer) throws -> Double {
        var header = ByteReader(bytes)
        guard let n32 = header.u32le(), header.u32le() != nil else { throw SparseDBError(.corrupt, "forward row is truncated") }
        let n = Int(n32)
        // Each entry takes at least 5 bytes (a varint and a weight), and the weights are the last
        // 4·n bytes, so the dimensions can be merged with the query as they are decoded.
        guard n <= (bytes.count - 8) / 5 else { throw SparseDBError(.corrupt, "forward row of \(bytes.count) bytes cannot hold \(n) entries") }
        let weightsStart = bytes.count - 4 * n
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[8..<weightsStart]))
        let qd = query.dimensions
        let qw = query.weights
        var sum = 0.0
        var j = 0
        var dim: UInt32 = 0
        for i in 0..<n {
            guard j < qd.count else { break }
            guard let delta = r.varint() else { throw SparseDBError(.corrupt, "forward row is truncated") }
            dim = i == 0 ? delta : dim &+ delta
            while j < qd.count && qd[j] < dim { j += 1 }
            if j < qd.count && qd[j] == dim {
                let w = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: weightsStart + 4 * i, as: UInt32.self)))
                sum += Double(w) * Double(qw[j])
                j += 1
            }
        }
        return sum
    }

    /// Counts and sizes of this collection.
    public func statistics() throws -> CollectionStatistics {
        try env.read { txn in
            let info = try info(txn)
            var terms = 0
            var blocks = 0
            var postingBytes = 0
            var forwardBytes = 0
            try txn.scan(prefix: Schema.prefix(id), in: txn.tables.terms) { _, _ in
                terms += 1
                return true
            }
            try txn.scan(prefix: Schema.prefix(id), in: txn.tables.postings) { _, v in
                blocks += 1
                postingBytes += v.count
                return true
            }
            try txn.scan(prefix: Schema.prefix(id), in: txn.tables.forward) { _, v in
                forwardBytes += v.count
                return true
            }
            return CollectionStatistics(
                name: name, dimensions: dimensions, documents: info.liveDocuments, deletedDocuments: info.deletedDocuments,
                postings: info.postings, terms: terms, postingBlocks: blocks, postingBytes: postingBytes,
                bytesPerPosting: info.postings > 0 ? Double(postingBytes) / Double(info.postings) : 0,
                forwardBytes: forwardBytes, encoder: info.encoder?.name)
        }
    }
}
