import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// Every algorithm against the brute-force oracle on seeded random collections.
@Suite struct SearchTests {
    func checkAllAlgorithms(
        _ collection: VectorCollection, _ live: [(id: String, vector: SparseVector)], dims: UInt32, seed: UInt64, queries: Int = 40
    ) throws {
        var rng = SplitMix64(seed: seed)
        let oracle = BruteForce(live)
        for _ in 0..<queries {
            let q = try randomQuery(&rng, dims: dims)
            let k = [1, 3, 10, 50][Int.random(in: 0..<4, using: &rng)]
            let ranking = oracle.ranking(q)
            for algorithm in SearchAlgorithm.allCases {
                let got = try collection.search(q, options: SearchOptions(k: k, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                let problem = oracle.mismatch(got, query: q, k: k, ranking: ranking)
                #expect(problem == nil, "\(algorithm) k=\(k): \(problem ?? "")")
            }
        }
    }

    /// Uneven batches (so lists have partial blocks in the middle), dimension spaces from 50 to
    /// 2^24, one case without the posting cache and one with a cache so small that it evicts on
    /// almost every query.
    @Test(arguments: [(300, UInt32(50), UInt64(1)), (1500, UInt32(400), UInt64(2)), (4000, UInt32(2000), UInt64(3)), (800, UInt32(1 << 24), UInt64(4))])
    func everyAlgorithmMatchesBruteForce(count: Int, dims: UInt32, seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            var config = Database.Configuration()
            if seed == 2 { config.postingCacheBytes = 0 }
            if seed == 3 { config.postingCacheBytes = 48 << 10 }
            let db = try Database(path: dir + "/db", configuration: config)
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: count, dims: dims, seed: seed)
            var i = 0
            var size = 1
            while i < docs.count {
                try c.upsert(docs[i..<min(docs.count, i + size)].map { Document(id: $0.id, vector: $0.vector) })
                i += size
                size = size * 3 + 7
            }
            try checkAllAlgorithms(c, docs, dims: dims, seed: seed + 100)
            #expect(try c.verify().isEmpty)
        }
    }

    /// MaxScore works a window of 8,192 internal ids at a time: a collection spanning several
    /// windows, with deleted documents and a filter whose documents are scattered over all of
    /// them, against brute force (each of the other algorithms as well).
    @Test func manyWindowsWithDeletesAndAFilter() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 1000
            let docs = try randomDocuments(count: 20_000, dims: dims, seed: 21)
            let schema = CollectionSchema(fields: [.sparse("s", dimensions: dims)], attributes: [AttributeField(name: "bucket", type: .integer)])
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: schema)
            // Bucket i % 10: filters admitting 10% and 70% of the documents, spread over every window.
            try c.upsert(docs.enumerated().map { i, d in Document(id: d.id, vectors: ["s": .sparse(d.vector)], attributes: ["bucket": .integer(Int64(i % 10))]) })
            let deleted = Set(stride(from: 5, to: docs.count, by: 9).map { docs[$0].id })
            _ = try c.delete(ids: Array(deleted))
            var rng = SplitMix64(seed: 22)
            let cases: [(Filter?, (Int) -> Bool)] = [
                (nil, { _ in true }), (.equals("bucket", .integer(3)), { $0 % 10 == 3 }), (.range("bucket", atLeast: .integer(3)), { $0 % 10 >= 3 }),
            ]
            for (filter, admits) in cases {
                let live = docs.enumerated().filter { !deleted.contains($0.element.id) && admits($0.offset) }.map(\.element)
                let oracle = BruteForce(live)
                for _ in 0..<12 {
                    let q = try randomQuery(&rng, dims: dims)
                    let k = [1, 10, 50][Int.random(in: 0..<3, using: &rng)]
                    let ranking = oracle.ranking(q)
                    for algorithm in SearchAlgorithm.allCases {
                        let got = try c.search(.sparse(q), options: SearchOptions(k: k, algorithm: algorithm, filter: filter)).hits.map { ($0.id, $0.score) }
                        let problem = oracle.mismatch(got, query: q, k: k, ranking: ranking)
                        #expect(problem == nil, "\(algorithm) k=\(k) filter=\(String(describing: filter)): \(problem ?? "")")
                    }
                }
            }
        }
    }

    @Test func deletesUpsertsCompactionAndReopening() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 300
            var docs = try randomDocuments(count: 2000, dims: dims, seed: 9)
            var live: [(id: String, vector: SparseVector)] = []
            do {
                let db = try Database(path: dir + "/db")
                defer { db.close() }
                let c = try db.collection("c", creatingWithDimensions: dims)
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
                live = docs.filter { !deletedSet.contains($0.id) }
                #expect(try c.count() == live.count)
                #expect(try c.document(id: deleted[0]) == nil)
                #expect(try c.document(id: replacements[0].id)?.vector == replacements[0].vector!.droppingZeros())
                try checkAllAlgorithms(c, live, dims: dims, seed: 11)
                #expect(try c.verify().isEmpty)
                try c.compact()
                #expect(try c.verify().isEmpty)
                let stats = try c.statistics()
                #expect(stats.deletedDocuments == 0)
                #expect(stats.postings == UInt64(live.reduce(0) { $0 + $1.vector.activeCount }))
                try checkAllAlgorithms(c, live, dims: dims, seed: 12)
            }
            // A new process's view: reopened from disk.
            let db = try Database(path: dir + "/db", configuration: .readOnlyExisting)
            defer { db.close() }
            try checkAllAlgorithms(try db.collection("c"), live, dims: dims, seed: 13)
        }
    }

    /// A batch that holds an id twice is refused whole, whatever its size.
    @Test func duplicateIdsInOneBatchAreRefused() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 10)
            let a = Document(id: "x", vector: try SparseVector([(1, 1)]))
            let b = Document(id: "x", vector: try SparseVector([(2, 1)]))
            let e = #expect(throws: SparseDBError.self) { try c.upsert([a, b]) }
            #expect(e?.code == .invalidInput && e?.message.contains("more than once") == true)
            #expect(try c.count() == 0)
        }
    }

    @Test func badQueriesAreRefused() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 10)
            try c.upsert([Document(id: "a", vector: try SparseVector([(1, 1)]))])
            let q = try SparseVector([(1, 1)])
            for options in [SearchOptions(k: 0), SearchOptions(k: -5), SearchOptions(maxQueryTerms: 0), SearchOptions(heapFactor: .nan), SearchOptions(heapFactor: 0.5)] {
                let e = #expect(throws: SparseDBError.self) { try c.search(q, options: options) }
                #expect(e?.code == .invalidInput)
            }
            #expect(throws: SparseDBError.self) { try c.search(try SparseVector([(10, 1)])) }
            #expect(throws: SparseDBError.self) { try c.search(q, options: SearchOptions(field: "nope")) }
        }
    }
}

@Suite struct ApproximateSearchTests {
    /// The heap factor's guarantee: every hit carries its exact score, and the k-th score
    /// returned is at least the true k-th score divided by the factor. maxQueryTerms walks the
    /// pruned query and rescores its best `candidates` documents with the whole query.
    @Test func heapFactorAndQueryPruningKeepTheirGuarantees() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 800
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: 3000, dims: dims, seed: 21)
            try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
            let byId = Dictionary(uniqueKeysWithValues: docs.map { ($0.id, $0.vector) })
            let oracle = BruteForce(docs)
            var checked = 0
            var rng = SplitMix64(seed: 22)
            for _ in 0..<40 {
                let q = try randomQuery(&rng, dims: dims)
                let exact = bruteForce(docs, q, k: 10)
                for factor: Float in [1.1, 1.5, 3] {
                    for algorithm in SearchAlgorithm.allCases {
                        let hits = try c.search(q, options: SearchOptions(k: 10, algorithm: algorithm, heapFactor: factor)).hits
                        #expect(hits.count == min(10, exact.count))
                        for h in hits { #expect(abs(h.score - byId[h.id]!.dot(q)) <= 1e-9 * max(1, h.score)) }
                        if let last = hits.last, exact.count >= 10 {
                            #expect(last.score * Double(factor) >= exact[9].score * (1 - 1e-6), "\(algorithm) ×\(factor)")
                        }
                    }
                }
                // maxQueryTerms: the traversal walks the 3 largest terms; its best `candidates`
                // documents (by that pruned query) are scored with the whole query and the best
                // 10 returned. Oracle: the same two steps by brute force.
                let pruned = q.keepingLargest(3)
                let byPruned = oracle.ranking(pruned)
                for candidates in [10, 40] {
                    // Ties at the candidates' cut go to the smaller internal id (insertion order),
                    // as the oracle's ranking breaks them.
                    let chosen = Set(byPruned.prefix(candidates).map(\.id))
                    let expected = oracle.ranking(q).filter { chosen.contains($0.id) }
                    let got = try c.search(q, options: SearchOptions(k: 10, maxQueryTerms: 3, candidates: candidates)).hits.map { ($0.id, $0.score) }
                    #expect(oracle.mismatch(got, query: q, k: 10, ranking: expected) == nil, "candidates \(candidates)")
                    checked += 1
                }
            }
            #expect(checked == 80)
            // Candidates beyond 2^20 or below k are refused.
            for bad in [SearchOptions(k: 10, candidates: 9), SearchOptions(k: 10, candidates: (1 << 20) + 1)] {
                #expect(throws: SparseDBError.self) { try c.search(docs[0].vector, options: bad) }
            }
        }
    }
}

/// `postingsPerTerm`: each walked list's N largest postings give partial scores, the best
/// `candidates` by those are scored from the forward cache, and their exact top-k is returned.
@Suite struct PrunedListsSearchTests {
    /// Oracle, by brute force over every vector ever written (a deleted or replaced document's
    /// postings stay in the lists until compaction and take part in choosing the N largest):
    /// with wN the list's N-th largest weight and m its largest, a posting of weight ≥ wN + m/255
    /// is always chosen (its code's upper bound is at least its weight) and one of weight
    /// ≤ wN − m/255 never is (a code overstates a weight by less than m/255). So the union U of
    /// live documents found lies between G (the surely found) and H (the possibly found), and
    /// the hits must be: live, in H, with exact scores, best first, no id twice; and when every
    /// document of U is scored (candidates ≥ |H|), exactly the top-k of U: every document of G
    /// that scores above the last hit is present. With every list walked whole, the exact top-k.
    /// The same with and without the forward cache, before and after deletes and upserts.
    @Test func theBestOfThePrunedListsAreRankedExactly() throws {
        let dims: UInt32 = 800
        for budget in [0, 1 << 30] {
            try withTemporaryDirectory { dir in
                var configuration = Database.Configuration()
                configuration.forwardCacheBytes = budget
                let db = try Database(path: dir + "/db", configuration: configuration)
                defer { db.close() }
                let c = try db.collection("c", creatingWithDimensions: dims)
                var stored = try randomDocuments(count: 3000, dims: dims, seed: 31)
                try c.upsert(stored.map { Document(id: $0.id, vector: $0.vector) })
                var live = stored
                try check(c, stored: stored, live: live, seed: 32)
                // Writes after the cache holds the chunk: deletes, replacements, new documents.
                let gone = live.prefix(300).map(\.id)
                _ = try c.delete(ids: gone)
                let replaced = try randomDocuments(count: 200, dims: dims, seed: 33).enumerated().map { (i, d) in (id: "doc-\(300 + i)", vector: d.vector) }
                let added = try randomDocuments(count: 500, dims: dims, seed: 34, prefix: "new-")
                try c.upsert((replaced + added).map { Document(id: $0.id, vector: $0.vector) })
                stored += replaced + added
                let replacedIds = Set(replaced.map(\.id))
                live = live.dropFirst(300).filter { !replacedIds.contains($0.id) } + replaced + added
                try check(c, stored: stored, live: live, seed: 35)
            }
        }
    }

    func check(_ c: VectorCollection, stored: [(id: String, vector: SparseVector)], live: [(id: String, vector: SparseVector)], seed: UInt64) throws {
        let oracle = BruteForce(live)
        var lists: [UInt32: [Float]] = [:]
        for d in stored { for (t, w) in zip(d.vector.dimensions, d.vector.weights) where w > 0 { lists[t, default: []].append(w) } }
        for t in lists.keys { lists[t]!.sort(by: >) }
        var rng = SplitMix64(seed: seed)
        var checked = 0
        for _ in 0..<25 {
            let q = try randomQuery(&rng, dims: 800)
            let ranking = oracle.ranking(q)
            let score = Dictionary(uniqueKeysWithValues: ranking.map { ($0.id, $0.score) })
            for (terms, perTerm) in [(nil, 1 << 24), (3, 40), (5, 200), (nil, 15)] as [(Int?, Int)] {
                let walked = terms.map { q.keepingLargest($0) } ?? q
                // Per walked term: the weights above which a posting is surely chosen and at or
                // below which it never is (a hair wider for float rounding).
                var sure: [UInt32: Float] = [:]
                var possible: [UInt32: Float] = [:]
                for t in walked.dimensions {
                    guard let l = lists[t] else { continue }
                    if l.count <= perTerm {
                        sure[t] = 0
                        possible[t] = 0
                    } else {
                        let slack = l[0] / 255 * 1.001
                        sure[t] = l[perTerm - 1] + slack
                        possible[t] = l[perTerm - 1] - slack
                    }
                }
                var surely = Set<String>()
                var possibly = Set<String>()
                for d in live {
                    for (t, w) in zip(d.vector.dimensions, d.vector.weights) where w > 0 {
                        if let s = sure[t], w >= s { surely.insert(d.id) }
                        if let p = possible[t], w > p { possibly.insert(d.id) }
                    }
                }
                for candidates in [10, 1 << 20] {
                    let hits = try c.search(q, options: SearchOptions(k: 10, maxQueryTerms: terms, candidates: candidates, postingsPerTerm: perTerm)).hits
                    let label = "terms \(terms.map(String.init) ?? "all"), \(perTerm) a term, \(candidates) candidates"
                    #expect(hits.count <= min(10, possibly.count), "\(label)")
                    #expect(Set(hits.map(\.id)).count == hits.count, "\(label)")
                    for (i, h) in hits.enumerated() {
                        #expect(possibly.contains(h.id), "\(label): \(h.id) was never among the chosen postings")
                        #expect(abs(h.score - (score[h.id] ?? 0)) <= 1e-9 * max(1, h.score), "\(label): \(h.id) reported \(h.score)")
                        if i > 0 { #expect(hits[i - 1].score >= h.score, "\(label)") }
                    }
                    if candidates >= possibly.count {
                        #expect(hits.count == min(10, surely.count) || hits.count == 10, "\(label)")
                        if let last = hits.last, hits.count == 10 {
                            for id in surely where score[id]! > last.score * (1 + 1e-9) {
                                #expect(hits.contains { $0.id == id }, "\(label): \(id) (score \(score[id]!)) is above the last hit \(last.score) but missing")
                            }
                        }
                    }
                    if terms == nil && perTerm == 1 << 24 && candidates == 1 << 20 {
                        #expect(oracle.mismatch(hits.map { ($0.id, $0.score) }, query: q, k: 10) == nil, "every list whole: the exact top-k")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == 200)
    }

    /// Two documents whose half-precision scores order the other way round from their exact
    /// ones, and one whose weight is past half precision's range: the error bounds must send
    /// them to be rescored, so the exact best comes first.
    @Test func roundingToHalfPrecisionNeverChangesTheTopK() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 10)
            // a: 1.000487 (→ 1.0 in half precision) + 0.5; b: 1.000489 (→ 1.000977) + 0.49995 (→ 0.5).
            // Exact: a 1.500487 > b 1.500439; in half precision b 1.500977 > a 1.5.
            var docs = [
                Document(id: "a", vector: try SparseVector([(1, 1.000487), (2, 0.5)])),
                Document(id: "b", vector: try SparseVector([(1, 1.000489), (2, 0.49995)])),
            ]
            for i in 0..<20 { docs.append(Document(id: "filler-\(i)", vector: try SparseVector([(1, 0.25), (3, 1)]))) }
            // huge: 1e6 (clamped to 65504 in the cache); near: 65504 + 1000, larger in the cache.
            docs.append(Document(id: "huge", vector: try SparseVector([(5, 1e6)])))
            docs.append(Document(id: "near", vector: try SparseVector([(5, 65504), (6, 1000)])))
            try c.upsert(docs)
            let first = try c.search(try SparseVector([(1, 1), (2, 1)]), options: SearchOptions(k: 1, candidates: 30, postingsPerTerm: 100)).hits
            #expect(first.map(\.id) == ["a"] && abs(first[0].score - (Double(Float(1.000487)) + 0.5)) < 1e-9)
            let second = try c.search(try SparseVector([(5, 1), (6, 1)]), options: SearchOptions(k: 1, candidates: 30, postingsPerTerm: 100)).hits
            #expect(second.map(\.id) == ["huge"] && second[0].score == 1e6)
        }
    }

    @Test func badValuesAreRefused() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 10)
            try c.upsert([Document(id: "a", vector: try SparseVector([(1, 1)]))])
            for bad in [0, -1, (1 << 24) + 1] {
                let e = #expect(throws: SparseDBError.self) { try c.search(try SparseVector([(1, 1)]), options: SearchOptions(postingsPerTerm: bad)) }
                #expect(e?.code == .invalidInput && e?.message.contains("postingsPerTerm") == true)
            }
        }
    }
}
