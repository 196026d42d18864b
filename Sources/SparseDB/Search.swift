import SparseDBCore
import SparseDBIndex
import SparseDBSearch
import SparseDBStorage

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

/// Options of one query. The names match the command line's flags (`--k`, `--algorithm`,
/// `--field`, `--max-query-terms`, `--heap-factor`).
public struct SearchOptions: Sendable {
    /// How many hits to return.
    public var k: Int = 10
    /// The traversal algorithm; every exact one returns the same hits.
    public var algorithm: SearchAlgorithm = .maxscore
    /// The field to search; `nil` = the collection's only field (or the one named `vector`).
    public var field: String? = nil
    /// Approximate: walk the posting lists of only this many query terms, the largest weights
    /// first (≥ 1). The documents found are scored exactly with the whole query (see
    /// ``candidates``), so every hit carries its true score.
    public var maxQueryTerms: Int? = nil
    /// Approximate searches (``maxQueryTerms``, ``postingsPerTerm``): how many of the best
    /// documents the pruned search finds are scored with the whole query, the exact best k of
    /// them returned (k ≤ candidates ≤ 2^20; `nil` = k). More candidates recover documents that rank lower on
    /// the walked terms than on the whole query: at 1 M documents, 10 query terms with 50
    /// candidates find 87 % of the exact top-10, with 10 candidates 70 % (BENCHMARKS.md).
    public var candidates: Int? = nil
    /// Approximate, a second method: Seismic's static pruning, applied at query time. Each walked
    /// list (the query's ``maxQueryTerms`` largest weights, or all its terms) contributes its
    /// `postingsPerTerm` largest postings to a partial score per document; the best
    /// ``candidates`` documents by partial score are scored with the whole query from an
    /// in-memory copy of the forward rows (``Database/Configuration/forwardCacheBytes``), and
    /// their exact top-k is returned, every hit with its exact score. The pruned lists are kept
    /// in the posting cache, so a query reads about `postingsPerTerm` postings a term (more when
    /// weights tie at the cut: every tied posting is kept); nothing extra is stored. 1 ... 2^24;
    /// pair it with `candidates` of 1,000 or more. At 1 M SPLADE documents, 5,000 postings a
    /// term and 1,000 candidates find 91 % of the exact top-10 in 1.4 ms (BENCHMARKS.md). With a
    /// filter, only admitted documents are scored, so a selective one can leave fewer than k. Ignored by flat fields; `algorithm` and `heapFactor` do not apply.
    public var postingsPerTerm: Int? = nil
    /// Approximate: prune documents whose score bound is below this factor times the current
    /// k-th score (1 = exact; 1.1–1.5 trades recall for speed, as PISA's and Seismic's heap factor).
    public var heapFactor: Float = 1
    /// CSR fields: keep only the query's K largest entries (`--max-active-dims`).
    public var maxActiveDims: Int? = nil
    /// Dense fields: score on the first D dimensions only (Matryoshka truncation, `--dims`).
    public var dimensions: Int? = nil
    /// Only documents the filter admits (`--filter`); the result is the exact top-k among them.
    public var filter: Filter? = nil
    /// Load the stored payload of each hit.
    public var includePayloads: Bool = true

    /// Options with the given values; the defaults are an exact MaxScore top-10 with payloads.
    public init(
        k: Int = 10, algorithm: SearchAlgorithm = .maxscore, field: String? = nil, maxQueryTerms: Int? = nil, heapFactor: Float = 1,
        maxActiveDims: Int? = nil, dimensions: Int? = nil, filter: Filter? = nil, includePayloads: Bool = true, candidates: Int? = nil,
        postingsPerTerm: Int? = nil
    ) {
        self.candidates = candidates
        self.postingsPerTerm = postingsPerTerm
        self.filter = filter
        self.k = k
        self.algorithm = algorithm
        self.field = field
        self.maxQueryTerms = maxQueryTerms
        self.heapFactor = heapFactor
        self.maxActiveDims = maxActiveDims
        self.dimensions = dimensions
        self.includePayloads = includePayloads
    }

    /// Refuses values that cannot mean anything, rather than silently returning nothing.
    func validate() throws {
        guard k >= 1 else { throw SparseDBError(.invalidInput, "k must be at least 1, got \(k)") }
        guard k <= 1 << 20 else { throw SparseDBError(.invalidInput, "k must be at most 2^20, got \(k)") }
        guard heapFactor.isFinite, heapFactor >= 1 else {
            throw SparseDBError(.invalidInput, "heapFactor must be a finite number ≥ 1, got \(heapFactor)")
        }
        if let m = maxQueryTerms, m < 1 { throw SparseDBError(.invalidInput, "maxQueryTerms must be at least 1, got \(m)") }
        if let c = candidates, c < k || c > 1 << 20 {
            throw SparseDBError(.invalidInput, "candidates must be between k (\(k)) and 2^20, got \(c)")
        }
        if let p = postingsPerTerm, p < 1 || p > 1 << 24 {
            throw SparseDBError(.invalidInput, "postingsPerTerm must be between 1 and 2^24, got \(p)")
        }
        if let m = maxActiveDims, m < 1 { throw SparseDBError(.invalidInput, "maxActiveDims must be at least 1, got \(m)") }
        if let d = dimensions, d < 1 { throw SparseDBError(.invalidInput, "dimensions must be at least 1, got \(d)") }
    }
}

/// What one query did.
public struct SearchStatistics: Sendable, Equatable {
    /// Query terms that have postings.
    public var terms = 0
    /// Postings in the blocks the traversal entered.
    public var postingsDecoded = 0
    /// Blocks the traversal entered.
    public var blocksDecoded = 0
    /// Blocks never entered (skipped by pruning).
    public var blocksSkipped = 0
    /// Blocks this query decompressed itself (the others came from the posting cache).
    public var blocksDecompressed = 0
    /// Documents whose score bounds were fully evaluated.
    public var documentsScored = 0
    /// Candidates rescored exactly from the forward store.
    public var candidatesRescored = 0

    /// Empty statistics.
    public init() {}

    init(_ s: QueryStatistics) {
        terms = s.terms
        postingsDecoded = s.postingsVisited
        blocksDecoded = s.blocksVisited
        blocksSkipped = s.blocksSkipped
        blocksDecompressed = s.blocksDecoded
        documentsScored = s.documentsScored
        candidatesRescored = s.candidatesRescored
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
    /// Hybrid search: the document's exact score in each field searched (empty otherwise).
    public var fieldScores: [String: Double] = [:]

    /// A hit.
    public init(id: String, score: Double, payload: [UInt8]? = nil, internalId: UInt32, fieldScores: [String: Double] = [:]) {
        self.id = id
        self.score = score
        self.payload = payload
        self.internalId = internalId
        self.fieldScores = fieldScores
    }
}

/// The hits of one query and what the query did.
public struct SearchResult: Sendable {
    /// The top-k, best first.
    public var hits: [SearchHit]
    /// What the query did.
    public var statistics: SearchStatistics

    /// A result with these hits and statistics.
    public init(hits: [SearchHit], statistics: SearchStatistics = SearchStatistics()) {
        self.hits = hits
        self.statistics = statistics
    }
}

extension VectorCollection {
    /// The field a query addresses: `name`, or the collection's only field (or `vector`).
    func resolveField(_ name: String?, in record: CollectionRecord) throws -> FieldRecord {
        if let name {
            guard let f = record.field(named: name) else {
                throw SparseDBError(
                    .invalidInput, "collection '\(self.name)' has no field '\(name)' (fields: \(record.fields.map(\.name).joined(separator: ", ")))")
            }
            return f
        }
        if record.fields.count == 1 { return record.fields[0] }
        if let f = record.field(named: VectorField.defaultName) { return f }
        throw SparseDBError(
            .invalidInput, "collection '\(self.name)' has fields \(record.fields.map(\.name).joined(separator: ", ")): name the one to search")
    }

    /// The exact top-k documents by dot product with `query` on a sparse or CSR field
    /// (approximate when `options.maxQueryTerms` or `options.heapFactor` say so).
    ///
    /// ```swift
    /// let result = try collection.search(query, options: SearchOptions(k: 10, algorithm: .bmw))
    /// for hit in result.hits { print(hit.id, hit.score) }
    /// ```
    ///
    /// - Throws: `.invalidInput` for a dimension outside the field, `k` < 1, a heap factor below
    ///   1 or `maxQueryTerms` < 1; `.corrupt` when a stored record the query reads fails its
    ///   checksum (never a silently wrong answer).
    public func search(_ query: SparseVector, options: SearchOptions = SearchOptions()) throws -> SearchResult {
        try search(.sparse(query), options: options)
    }

    /// The exact top-k documents for `query` on one field: a ``FieldVector/sparse(_:)`` query for
    /// sparse and CSR fields, a ``FieldVector/dense(_:)`` query (dot product or cosine, as the
    /// field says) for dense fields.
    public func search(_ query: FieldVector, options: SearchOptions = SearchOptions()) throws -> SearchResult {
        try options.validate()
        return try env.read { txn in
            let record = try record(txn)
            let field = try resolveField(options.field, in: record)
            let deleted = try database.engine.deletedDocuments(txn, record: record)
            let allowed = try options.filter.map { try database.engine.evaluate(try $0.resolve(in: record), txn, record: record, deleted: deleted) }
            let (scored, statistics) = try fieldTopK(
                txn, record: record, field: field, query: query, k: options.k, options: options, deleted: deleted, allowed: allowed)
            let hits = try scored.map { s in
                let stored = try storedDocument(txn, s.document, includePayload: options.includePayloads)
                return SearchHit(id: stored.id, score: s.score, payload: stored.payload, internalId: s.document)
            }
            return SearchResult(hits: hits, statistics: SearchStatistics(statistics))
        }
    }

    /// The exact top-k of every query of a batch on one field, all answered from one snapshot;
    /// each result equals ``search(_:options:)-(FieldVector,_)`` for that query. On a dense field the rows
    /// are read once for the whole batch (one matrix product, OpenBLAS sgemm, per chunk of
    /// rows), which costs far less per query than one search each; on other fields the queries
    /// are answered one after the other.
    ///
    /// ```swift
    /// let results = try collection.search(batch: embeddings.map { .dense($0) }, options: SearchOptions(k: 10))
    /// ```
    ///
    /// - Throws: as ``search(_:options:)-(FieldVector,_)``, for the first query that fails; nothing is returned then.
    public func search(batch queries: [FieldVector], options: SearchOptions = SearchOptions()) throws -> [SearchResult] {
        try options.validate()
        return try env.read { txn in
            let record = try record(txn)
            let field = try resolveField(options.field, in: record)
            let engine = database.engine
            let deleted = try engine.deletedDocuments(txn, record: record)
            let allowed = try options.filter.map { try engine.evaluate(try $0.resolve(in: record), txn, record: record, deleted: deleted) }
            let answers: [(hits: [ScoredDocument], statistics: QueryStatistics)]
            if field.kind == FieldKind.dense.rawValue {
                let flat = try queries.map { q in
                    let prepared = try prepare(q, field: field, options: options)
                    return FlatQuery(dense: prepared.dense, k: options.k, dimensions: prepared.dense.count)
                }
                answers = try engine.searchDenseBatch(txn, record: record, field: field, queries: flat, deleted: deleted, allowed: allowed)
            } else {
                answers = try queries.map { q in
                    try fieldTopK(txn, record: record, field: field, query: q, k: options.k, options: options, deleted: deleted, allowed: allowed)
                }
            }
            return try answers.map { scored, statistics in
                let hits = try scored.map { s in
                    let stored = try storedDocument(txn, s.document, includePayload: options.includePayloads)
                    return SearchHit(id: stored.id, score: s.score, payload: stored.payload, internalId: s.document)
                }
                return SearchResult(hits: hits, statistics: SearchStatistics(statistics))
            }
        }
    }

    /// A query checked against its field and prepared as the engine takes it.
    struct PreparedQuery {
        var sparse = SparseVector()
        /// The terms an approximate traversal walks (``SearchOptions/maxQueryTerms``); nil = all.
        var traversal: SparseVector? = nil
        var dense: [Float] = []
    }

    func prepare(_ query: FieldVector, field: FieldRecord, options: SearchOptions) throws -> PreparedQuery {
        let kind = try field.knownKind(collection: name)
        var prepared = PreparedQuery()
        switch (kind, query) {
        case (.sparse, .sparse(let v)), (.csr, .sparse(let v)):
            var q = v.droppingZeros()
            if let limit = options.maxActiveDims { q = q.keepingLargest(limit) }
            if let last = q.dimensions.last, last >= field.dimensions {
                throw SparseDBError(
                    .invalidInput, "query dimension \(last) is out of range (field '\(field.name)' of '\(name)' has \(field.dimensions) dimensions)")
            }
            prepared.sparse = q
            if let limit = options.maxQueryTerms, limit < q.count { prepared.traversal = q.keepingLargest(limit) }
        case (.dense, .dense(let v)):
            let d = options.dimensions ?? Int(field.dimensions)
            guard v.count == Int(field.dimensions) || v.count == d else {
                throw SparseDBError(.invalidInput, "field '\(field.name)' takes queries of \(field.dimensions) values (or the first --dims), got \(v.count)")
            }
            guard d <= Int(field.dimensions) else {
                throw SparseDBError(.invalidInput, "field '\(field.name)' has \(field.dimensions) dimensions; cannot search the first \(d)")
            }
            for (i, x) in v.enumerated() where !x.isFinite || abs(x) > SparseVector.maxWeight {
                throw SparseDBError(.invalidInput, "query value \(i) is \(x); values must be finite and within ±\(SparseVector.maxWeight)")
            }
            prepared.dense = Array(v.prefix(d))
        default:
            throw SparseDBError(.invalidInput, "field '\(field.name)' is \(kind.rawValue); this query does not fit it")
        }
        return prepared
    }

    /// One field's exact top-k of `query` in `txn`'s snapshot.
    func fieldTopK(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, query: FieldVector, k: Int, options: SearchOptions,
        deleted: DocumentBitmap, allowed: DocumentBitmap?
    ) throws -> ([ScoredDocument], QueryStatistics) {
        let q = try prepare(query, field: field, options: options)
        let engine = database.engine
        if field.isInverted {
            return try engine.searchSparse(
                txn, record: record, field: field,
                query: SparseQuery(
                    vector: q.sparse, k: k, algorithm: TraversalAlgorithm(rawValue: options.algorithm.rawValue)!, heapFactor: options.heapFactor,
                    traversalTerms: q.traversal, candidates: options.candidates, postingsPerTerm: options.postingsPerTerm),
                deleted: deleted, allowed: allowed)
        }
        let flat = field.kind == FieldKind.dense.rawValue ? FlatQuery(dense: q.dense, k: k, dimensions: q.dense.count) : FlatQuery(sparse: q.sparse, k: k)
        return try engine.searchFlat(txn, record: record, field: field, query: flat, deleted: deleted, allowed: allowed)
    }
}
