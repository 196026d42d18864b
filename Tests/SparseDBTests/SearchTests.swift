import Foundation
import Testing

@testable import SparseDB

/// Spreads a small vocabulary over a huge dimension space (up to 2^24 and beyond), so that
/// large dimension ids are exercised while documents and queries still share terms.
func spread(_ d: UInt32, _ dims: UInt32) -> UInt32 {
    dims <= 3000 ? d : min(dims - 1, d &* (dims / 3000) &+ d % 7)
}

@Suite struct SearchTests {
    /// Random collections shaped to hit the edge cases: one-posting lists, lists that end exactly
    /// at block boundaries, very long lists, heavy ties.
    func randomDocuments(count: Int, dims: UInt32, seed: UInt64) throws -> [(id: String, vector: SparseVector)] {
        var rng = SplitMix64(seed: seed)
        var docs: [(String, SparseVector)] = []
        for i in 0..<count {
            var entries: [UInt32: Float] = [:]
            let n = Int.random(in: 0...40, using: &rng)
            for _ in 0..<n {
                // Skewed: low dimensions are frequent (long lists), high ones rare.
                let r = Double.random(in: 0..<1, using: &rng)
                let d = spread(UInt32(Double(min(dims, 3000)) * r * r * r), dims)
                entries[d] = Bool.random(using: &rng) ? Float(Int.random(in: 1...4, using: &rng)) : Float.random(in: 0.01..<3, using: &rng)
            }
            if i % 3 == 0 { entries[0] = Float.random(in: 0.1..<1, using: &rng) }  // a list in every third document
            if i == count - 1 { entries[dims - 1] = 2 }  // a one-posting list
            docs.append(("doc-\(i)", try SparseVector(entries.map { ($0.key, $0.value) })))
        }
        return docs
    }

    func randomQuery(_ rng: inout SplitMix64, dims: UInt32) throws -> SparseVector {
        var entries: [UInt32: Float] = [:]
        for _ in 0..<Int.random(in: 1...25, using: &rng) {
            let r = Double.random(in: 0..<1, using: &rng)
            entries[spread(UInt32(Double(min(dims, 3000)) * r * r), dims)] = Float.random(in: 0.05..<3, using: &rng)
        }
        return try SparseVector(entries.map { ($0.key, $0.value) })
    }

    func checkAllAlgorithms(
        _ collection: SparseDB.Collection, _ live: [(id: String, vector: SparseVector)], dims: UInt32, seed: UInt64, queries: Int = 40
    ) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<queries {
            let q = try randomQuery(&rng, dims: dims)
            let k = [1, 3, 10, 50][Int.random(in: 0..<4, using: &rng)]
            let expected = bruteForce(live, q, k: k)
            for algorithm in SearchAlgorithm.allCases {
                let got = try collection.search(q, options: SearchOptions(k: k, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                #expect(rankingsAgree(expected, got), "\(algorithm) k=\(k): expected \(expected.prefix(5)) got \(got.prefix(5))")
            }
        }
    }

    @Test(arguments: [(300, UInt32(50), UInt64(1)), (1500, UInt32(400), UInt64(2)), (4000, UInt32(2000), UInt64(3)), (800, UInt32(1 << 24), UInt64(4))])
    func everyAlgorithmMatchesBruteForce(count: Int, dims: UInt32, seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            // One case reads blocks lazily from the map (no decoded-postings cache).
            var config = Database.Configuration()
            if seed == 2 { config.postingCacheBytes = 0 }
            let db = try Database(path: dir + "/db", configuration: config)
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: count, dims: dims, seed: seed)
            // Uneven batches so that lists have partial blocks in the middle.
            var i = 0
            var size = 1
            while i < docs.count {
                let batch = docs[i..<min(docs.count, i + size)].map { Document(id: $0.id, vector: $0.vector) }
                try c.upsert(batch)
                i += size
                size = size * 3 + 7
            }
            try checkAllAlgorithms(c, docs, dims: dims, seed: seed + 100)
            #expect(try c.verify().isEmpty)
        }
    }

    @Test func deletesUpsertsAndCompaction() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 300
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: dims)
            var docs = try randomDocuments(count: 2000, dims: dims, seed: 9)
            try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
            // Delete every 7th document, replace every 11th with a new vector.
            var rng = SplitMix64(seed: 10)
            let deleted = stride(from: 0, to: docs.count, by: 7).map { docs[$0].id }
            #expect(try c.delete(ids: deleted + ["no-such-id"]) == ["no-such-id"])
            var replacements: [Document] = []
            for i in stride(from: 0, to: docs.count, by: 11) where i % 7 != 0 {
                let v = try randomQuery(&rng, dims: dims)
                replacements.append(Document(id: docs[i].id, vector: v))
                docs[i].vector = v
            }
            try c.upsert(replacements)
            let deletedSet = Set(deleted)
            let live = docs.filter { !deletedSet.contains($0.id) }
            #expect(try c.count() == live.count)
            #expect(try c.document(id: deleted[0]) == nil)
            #expect(try c.document(id: replacements[0].id)?.vector == replacements[0].vector)
            try checkAllAlgorithms(c, live, dims: dims, seed: 11)
            #expect(try c.verify().isEmpty)

            try c.compact()
            #expect(try c.verify().isEmpty)
            let stats = try c.statistics()
            #expect(stats.deletedDocuments == 0)
            #expect(stats.postings == UInt64(live.reduce(0) { $0 + $1.vector.activeCount }))
            try checkAllAlgorithms(c, live, dims: dims, seed: 11)
        }
    }

    @Test func referenceRunsAreReproduced() throws {
        for name in ["cranfield", "nfcorpus"] {
            try withTemporaryDirectory { dir in
                let db = try Database(path: dir + "/db")
                let c = try db.collection(name, creatingWithDimensions: 30_522)
                let docs = try readVectors(referencePath(name, "doc_vectors.jsonl"))
                for start in stride(from: 0, to: docs.count, by: 2000) {
                    try c.upsert(docs[start..<min(docs.count, start + 2000)].map { Document(id: $0.id, vector: $0.vector) })
                }
                let queries = try readVectors(referencePath(name, "query_vectors.jsonl"))
                let reference = try readRun(referencePath(name, "run.trec"))
                var checked = 0
                for (qid, q) in queries {
                    guard let expected = reference[qid] else { continue }
                    for algorithm in SearchAlgorithm.allCases {
                        let got = try c.search(q, options: SearchOptions(k: expected.count, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                        // The reference scores are printed with 6 decimals from float32 sums.
                        #expect(rankingsAgree(expected, got, tolerance: 2e-5), "\(name) q\(qid) \(algorithm)")
                    }
                    checked += 1
                }
                #expect(checked == queries.count)
            }
        }
    }
}

@Suite struct ApproximateSearchTests {
    /// The approximate knobs still return k hits with exact scores, and recall stays meaningful.
    @Test func heapFactorAndQueryPruning() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: 30_522)
            let docs = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"))
            try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
            let byId = Dictionary(uniqueKeysWithValues: docs.map { ($0.id, $0.vector) })
            let queries = try readVectors(referencePath("cranfield", "query_vectors.jsonl"), limit: 60)
            var overlap = 0
            for (_, q) in queries {
                let exact = try c.search(q, options: SearchOptions(k: 10)).hits
                for options in [SearchOptions(k: 10, thresholdFactor: 1.3), SearchOptions(k: 10, maxQueryTerms: 20)] {
                    let approx = try c.search(q, options: options).hits
                    #expect(approx.count == exact.count)
                    let pruned = options.maxQueryTerms.map { q.keepingLargest($0) } ?? q
                    for h in approx { #expect(abs(h.score - byId[h.id]!.dot(pruned)) < 1e-9) }
                    overlap += Set(approx.map(\.id)).intersection(exact.map(\.id)).count
                }
            }
            #expect(Double(overlap) / Double(queries.count * 20) > 0.5)
            #expect(throws: SparseDBError.self) { try c.search(queries[0].vector, options: SearchOptions(thresholdFactor: .nan)) }
        }
    }
}
