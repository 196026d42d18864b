import SparseDBCore
import SparseDBIndex
import SparseDBSearch
import SparseDBStorage

/// How a hybrid search fuses the rankings of several fields (`--fuse`, `--fuse-depth`, `--weights`).
public struct FusionOptions: Sendable {
    /// The fusion rule.
    public enum Method: String, Sendable, CaseIterable {
        /// Reciprocal rank fusion: score = Σ 1 / (60 + rank) over each field's exact top-depth.
        case rrf
        /// A weighted sum of each field's min-max normalised exact scores over the candidates
        /// (the union of the fields' top-depth).
        case weighted
    }

    /// The fusion rule.
    public var method: Method = .rrf
    /// How deep each field's exact ranking goes (`--fuse-depth`, default 100).
    public var depth: Int = 100
    /// Weighted fusion: a weight per field name; fields not named get an equal share of the rest
    /// (all equal when none is named).
    public var weights: [String: Double] = [:]
    /// RRF's constant (60, as in the original paper and in Qdrant, Milvus and OpenSearch).
    public var rrfConstant: Double = 60

    /// Fusion with the given values.
    public init(method: Method = .rrf, depth: Int = 100, weights: [String: Double] = [:], rrfConstant: Double = 60) {
        self.method = method
        self.depth = depth
        self.weights = weights
        self.rrfConstant = rrfConstant
    }
}

/// The fused hits of a hybrid search, and each field's own exact ranking.
public struct HybridResult: Sendable {
    /// The fused top-k, best first; ties in the fused score go to the smaller external id.
    public var hits: [SearchHit]
    /// Each field's exact top-depth, best first, with its own scores.
    public var fields: [String: [SearchHit]]
}

extension VectorCollection {
    /// Searches several fields of the collection, each exactly to `fusion.depth`, and fuses the
    /// rankings. `queries` maps field names to their query (a sparse vector for sparse and CSR
    /// fields, a dense one for dense fields). `options.k` hits are returned; `options` applies to
    /// every field (its algorithm, truncations and approximations where they apply).
    ///
    /// Each fused hit's ``SearchHit/fieldScores`` holds its exact score in every field searched.
    public func search(hybrid queries: [String: FieldVector], fusion: FusionOptions = FusionOptions(), options: SearchOptions = SearchOptions())
        throws -> HybridResult
    {
        try options.validate()
        guard !queries.isEmpty else { throw SparseDBError(.invalidInput, "a hybrid search needs at least one field") }
        guard fusion.depth >= 1, fusion.depth <= 1 << 20 else { throw SparseDBError(.invalidInput, "fusion depth must be 1…2^20, got \(fusion.depth)") }
        guard fusion.rrfConstant.isFinite, fusion.rrfConstant >= 0 else { throw SparseDBError(.invalidInput, "the RRF constant must be ≥ 0") }
        for (name, w) in fusion.weights {
            guard queries[name] != nil else { throw SparseDBError(.invalidInput, "a weight is given for field '\(name)', which is not searched") }
            guard w.isFinite, w >= 0 else { throw SparseDBError(.invalidInput, "the weight of field '\(name)' must be a finite number ≥ 0") }
        }
        return try env.read { txn in
            let record = try record(txn)
            let deleted = try database.engine.deletedDocuments(txn, record: record)
            let allowed = try options.filter.map { try database.engine.evaluate(try $0.resolve(in: record), txn, record: record, deleted: deleted) }
            var rankings: [(field: String, ranking: [ScoredDocument])] = []
            var prepared: [String: (FieldRecord, PreparedQuery)] = [:]
            for name in queries.keys.sorted() {
                let field = try resolveField(name, in: record)
                let (ranking, _) = try fieldTopK(txn, record: record, field: field, query: queries[name]!, k: fusion.depth, options: options, deleted: deleted, allowed: allowed)
                rankings.append((name, ranking))
                prepared[name] = (field, try prepare(queries[name]!, field: field, options: options))
            }
            let method: FusionMethod
            switch fusion.method {
            case .rrf: method = .rrf(constant: fusion.rrfConstant)
            case .weighted:
                let named = fusion.weights.values.reduce(0, +)
                let unnamed = queries.keys.filter { fusion.weights[$0] == nil }
                let share = unnamed.isEmpty ? 0 : max(0, (fusion.weights.isEmpty ? 1 : 1 - named)) / Double(unnamed.count)
                method = .weighted(Dictionary(uniqueKeysWithValues: queries.keys.map { ($0, fusion.weights[$0] ?? share) }))
            }
            // Every candidate's exact score in every field, and its record (ids break ties).
            let candidates = Fusion.candidates(rankings)
            var scores: [String: [UInt32: Double]] = [:]
            for (name, ranking) in rankings {
                var known = Dictionary(uniqueKeysWithValues: ranking.map { ($0.document, $0.score) })
                let missing = candidates.filter { known[$0] == nil }.sorted()
                if !missing.isEmpty {
                    let (field, q) = prepared[name]!
                    let found = try database.engine.scores(
                        txn, record: record, field: field, sparse: q.sparse, dense: q.dense, dimensions: q.dense.isEmpty ? nil : q.dense.count,
                        documents: missing)
                    known.merge(found) { a, _ in a }
                }
                scores[name] = known
            }
            var records: [UInt32: Records.StoredDocument] = [:]
            for doc in candidates { records[doc] = try storedDocument(txn, doc, includePayload: options.includePayloads) }
            let fused = Fusion.fuse(
                rankings: rankings, scores: scores, method: method, k: options.k, externalIds: records.mapValues(\.id))
            let hits = fused.map { f in
                let s = records[f.document]!
                return SearchHit(id: s.id, score: f.score, payload: s.payload, internalId: f.document, fieldScores: f.fieldScores)
            }
            var fields: [String: [SearchHit]] = [:]
            for (name, ranking) in rankings {
                fields[name] = ranking.map { r in
                    let s = records[r.document]!
                    return SearchHit(id: s.id, score: r.score, payload: s.payload, internalId: r.document)
                }
            }
            return HybridResult(hits: hits, fields: fields)
        }
    }

    /// Encodes `text` with each field's encoder (its query route) and runs a hybrid search.
    public func search(text: String, encoders: [String: TextEncoder], fusion: FusionOptions = FusionOptions(), options: SearchOptions = SearchOptions())
        throws -> HybridResult
    {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw SparseDBError(.invalidInput, "the query text is empty") }
        var queries: [String: FieldVector] = [:]
        for (name, encoder) in encoders {
            queries[name] = try encoder.fieldVectors([text], task: .query, maxActiveDims: nil)[0]
        }
        return try search(hybrid: queries, fusion: fusion, options: options)
    }
}
