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
    /// Approximate: keep only this many query terms, the largest weights first (≥ 1).
    public var maxQueryTerms: Int? = nil
    /// Approximate: prune documents whose score bound is below this factor times the current
    /// k-th score (1 = exact; 1.1–1.5 trades recall for speed, as PISA's and Seismic's heap factor).
    public var heapFactor: Float = 1
    /// Load the stored payload of each hit.
    public var includePayloads: Bool = true

    /// Options with the given values; the defaults are an exact MaxScore top-10 with payloads.
    public init(
        k: Int = 10, algorithm: SearchAlgorithm = .maxscore, field: String? = nil, maxQueryTerms: Int? = nil, heapFactor: Float = 1,
        includePayloads: Bool = true
    ) {
        self.k = k
        self.algorithm = algorithm
        self.field = field
        self.maxQueryTerms = maxQueryTerms
        self.heapFactor = heapFactor
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
}

/// The hits of one query and what the query did.
public struct SearchResult: Sendable {
    /// The top-k, best first.
    public var hits: [SearchHit]
    /// What the query did.
    public var statistics: SearchStatistics
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

    /// The exact top-k documents by dot product with `query` (approximate when
    /// `options.maxQueryTerms` or `options.heapFactor` say so).
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
        try options.validate()
        var q = query.droppingZeros()
        if let limit = options.maxQueryTerms { q = q.keepingLargest(limit) }
        return try env.read { txn in
            let record = try record(txn)
            let field = try resolveField(options.field, in: record)
            guard try field.knownKind(collection: name) == .sparse else {
                throw SparseDBError(.invalidInput, "field '\(field.name)' is \(field.kind); search it with a \(field.kind) query")
            }
            if let last = q.dimensions.last, last >= field.dimensions {
                throw SparseDBError(
                    .invalidInput, "query dimension \(last) is out of range (field '\(field.name)' of '\(name)' has \(field.dimensions) dimensions)")
            }
            let engine = database.engine
            let deleted = try engine.deletedDocuments(txn, record: record)
            let (scored, statistics) = try engine.searchSparse(
                txn, record: record, field: field,
                query: SparseQuery(
                    vector: q, k: options.k, algorithm: TraversalAlgorithm(rawValue: options.algorithm.rawValue)!, heapFactor: options.heapFactor),
                deleted: deleted)
            let hits = try scored.map { s in
                let stored = try storedDocument(txn, s.document, includePayload: options.includePayloads)
                return SearchHit(id: stored.id, score: s.score, payload: stored.payload, internalId: s.document)
            }
            return SearchResult(hits: hits, statistics: SearchStatistics(statistics))
        }
    }
}
