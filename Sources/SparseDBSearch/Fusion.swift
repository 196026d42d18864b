import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// How the rankings of several fields become one.
package enum FusionMethod: Sendable {
    /// Reciprocal rank fusion: Σ 1 / (constant + rank) over each field's top-depth (ranks from 1).
    case rrf(constant: Double)
    /// Σ weight · min-max normalised score, each field's scores normalised over the candidates
    /// (the union of the fields' top-depth), every candidate scored exactly in every field.
    case weighted([String: Double])
}

/// One fused result.
package struct FusedDocument: Sendable {
    package var document: UInt32
    package var score: Double
    /// Each field's exact score of the document (0 where it shares nothing with the query).
    package var fieldScores: [String: Double]
    /// Each field's rank of the document (1-based), where it is in that field's top-depth.
    package var fieldRanks: [String: Int]
}

package enum Fusion {
    /// The candidates of a fusion: the union of the fields' rankings.
    package static func candidates(_ rankings: [(field: String, ranking: [ScoredDocument])]) -> Set<UInt32> {
        Set(rankings.flatMap { $0.ranking.map(\.document) })
    }

    /// Fuses per-field rankings (each best first, of at most the fusion depth). `scores` holds
    /// every candidate's exact score in every field (documents without a vector in a field may
    /// be absent: they score 0 there); `externalIds` every candidate's external id, which breaks
    /// ties in the fused score (the smaller first).
    package static func fuse(
        rankings: [(field: String, ranking: [ScoredDocument])], scores: [String: [UInt32: Double]], method: FusionMethod, k: Int,
        externalIds: [UInt32: String]
    ) -> [FusedDocument] {
        var candidates: [UInt32: FusedDocument] = [:]
        for doc in Self.candidates(rankings) { candidates[doc] = FusedDocument(document: doc, score: 0, fieldScores: [:], fieldRanks: [:]) }
        for (field, ranking) in rankings {
            for (i, s) in ranking.enumerated() { candidates[s.document]?.fieldRanks[field] = i + 1 }
            for doc in candidates.keys { candidates[doc]?.fieldScores[field] = scores[field]?[doc] ?? 0 }
        }
        switch method {
        case .rrf(let constant):
            for (d, entry) in candidates {
                candidates[d]?.score = entry.fieldRanks.values.reduce(0) { $0 + 1 / (constant + Double($1)) }
            }
        case .weighted(let weights):
            for (field, _) in rankings {
                let values = candidates.values.map { $0.fieldScores[field] ?? 0 }
                let lo = values.min() ?? 0
                let hi = values.max() ?? 0
                let w = weights[field] ?? 0
                for (d, entry) in candidates {
                    let s = entry.fieldScores[field] ?? 0
                    // All candidates equal in a field: that field does not tell them apart.
                    let normalized = hi > lo ? (s - lo) / (hi - lo) : 1
                    candidates[d]?.score += w * normalized
                }
            }
        }
        return Array(
            candidates.values.sorted { a, b in
                a.score != b.score ? a.score > b.score : (externalIds[a.document] ?? "") < (externalIds[b.document] ?? "")
            }.prefix(k))
    }
}

extension QueryEngine {
    /// Exact scores of `documents` in a field for a query, from their forward rows (inverted
    /// fields) or flat rows (flat fields); documents without a vector in the field are absent.
    package func scores(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, sparse: SparseVector, dense: [Float], dimensions: Int?,
        documents: [UInt32]
    ) throws -> [UInt32: Double] {
        var out: [UInt32: Double] = [:]
        if field.isInverted {
            let layout = try ForwardRows.layout(txn)
            for doc in documents {
                let s = try ForwardRows.withRow(txn, collection: record.id, field: field.id, document: doc, layout: layout) { k, b throws -> Double? in
                    guard let b else { return nil }
                    return try sparse.dimensions.withUnsafeBufferPointer { qd in
                        try sparse.weights.withUnsafeBufferPointer { qw in
                            try Records.dot(queryDimensions: qd, queryWeights: qw, row: try Records.checkedForwardRow(key: k, b))
                        }
                    }
                }
                if let s { out[doc] = s }
            }
            return out
        }
        var byChunk: [UInt32: [UInt32]] = [:]
        for doc in documents { byChunk[FlatStore.chunkIndex(doc), default: []].append(doc) }
        for (index, docs) in byChunk {
            let key = Keys.flatChunk(record.id, field.id, index)
            guard
                let chunk = try key.withUnsafeBytes({ k in
                    try txn.withValue(key, in: txn.table(.flatChunk)) { b throws in try b.map { try FlatStore.decode(key: k, $0, field: field) } }
                })
            else { continue }
            for doc in docs {
                guard let r = chunk.documents.firstIndex(of: doc) else { continue }
                let base = r * chunk.width
                if chunk.layout.isCSR {
                    var row: [(UInt32, Float)] = []
                    for j in 0..<chunk.width where chunk.values[base + j] != 0 { row.append((UInt32(chunk.dimensions[base + j]), chunk.values[base + j])) }
                    out[doc] = SparseVector(unchecked: row.map(\.0), weights: row.map(\.1)).dot(sparse)
                } else {
                    let d = min(dimensions ?? chunk.width, chunk.width, dense.count)
                    var q = Array(dense.prefix(d))
                    var s = 0.0
                    var p = 0.0
                    if field.isCosine {
                        let n = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                        if n > 0 { q = q.map { Float(Double($0) / n) } }
                    }
                    for j in 0..<d {
                        let x = Double(chunk.values[base + j])
                        s += Double(q[j]) * x
                        p += x * x
                    }
                    if field.isCosine && d < chunk.width { s = p > 0 ? s / p.squareRoot() : 0 }
                    out[doc] = s
                }
            }
        }
        return out
    }
}
