import Foundation
import SparseDB
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// A thread-safe list the test threads append to.
final class Collected<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ item: T) { lock.withLock { items.append(item) } }
    var all: [T] { lock.withLock { items } }
}

@Suite struct ConcurrencyTests {
    /// Searches running while a writer commits batches see consistent snapshots: every result
    /// equals brute force over one of the committed states (the state before some commit or
    /// after it), never a mixture.
    @Test func concurrentSearchesEqualBruteForceOverACommittedState() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 500
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: 1200, dims: dims, seed: 31)
            try c.upsert(docs.prefix(200).map { Document(id: $0.id, vector: $0.vector) })
            // The committed states: the first 200 documents, then 50 more per batch, and one delete.
            var states: [[(id: String, vector: SparseVector)]] = [Array(docs.prefix(200))]
            let batches = stride(from: 200, to: 1200, by: 50).map { Array(docs[$0..<$0 + 50]) }
            for b in batches { states.append(states.last! + b) }
            let deletedIds = Set(docs.prefix(100).map(\.id))
            states.append(states.last!.filter { !deletedIds.contains($0.id) })
            var rng = SplitMix64(seed: 32)
            let queries = try (0..<30).map { _ in try randomQuery(&rng, dims: dims) }
            let results = Collected<(query: Int, algorithm: SearchAlgorithm, hits: [(String, Double)])>()
            let failures = Collected<String>()
            DispatchQueue.concurrentPerform(iterations: 6) { worker in
                if worker == 0 {
                    do {
                        for b in batches { try c.upsert(b.map { Document(id: $0.id, vector: $0.vector) }) }
                        try c.delete(ids: Array(deletedIds))
                    } catch { failures.append("writer: \(error)") }
                } else {
                    for round in 0..<4 {
                        for (i, q) in queries.enumerated() {
                            let algorithm = SearchAlgorithm.allCases[(i + worker + round) % 4]
                            do {
                                let hits = try c.search(q, options: SearchOptions(k: 10, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                                results.append((i, algorithm, hits))
                            } catch { failures.append("search: \(error)") }
                        }
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
            #expect(results.all.count == 5 * 4 * queries.count)
            let oracles = states.map(BruteForce.init)
            let rankings = oracles.map { o in queries.map { o.ranking($0) } }
            for r in results.all {
                let matches = oracles.indices.contains { s in
                    oracles[s].mismatch(r.hits, query: queries[r.query], k: 10, ranking: rankings[s][r.query]) == nil
                }
                #expect(matches, "query \(r.query) \(r.algorithm): matches no committed state")
            }
            #expect(try c.count() == 1100)
        }
    }

    /// Two writers that both find the map full grow it once, not twice.
    @Test func concurrentGrowthDoublesOnce() throws {
        try withTemporaryDirectory { dir in
            let env = try LMDBEnvironment(path: dir, mapSize: 1 << 20, readOnly: false, maxReaders: 16)
            defer { env.close() }
            let failedAt = env.mapSize
            DispatchQueue.concurrentPerform(iterations: 8) { _ in try? env.grow(from: failedAt) }
            #expect(env.mapSize == 2 * failedAt)
        }
    }

    /// Writers and readers on a map far too small: every write commits (the map grows under the
    /// exclusive lock while searches keep arriving), every search is right for a committed state.
    @Test func writersAndReadersFillingTheMap() throws {
        try withTemporaryDirectory { dir in
            var config = Database.Configuration()
            config.initialMapSize = 256 << 10
            let db = try Database(path: dir + "/db", configuration: config)
            defer { db.close() }
            let dims: UInt32 = 3000
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: 3000, dims: dims, seed: 41)
            let probe = try SparseVector([(0, 1)])
            let failures = Collected<String>()
            DispatchQueue.concurrentPerform(iterations: 6) { worker in
                if worker < 3 {
                    // Three writers, each its own third of the documents, in batches of 50.
                    for start in stride(from: worker * 1000, to: worker * 1000 + 1000, by: 50) {
                        do { try c.upsert(docs[start..<start + 50].map { Document(id: $0.id, vector: $0.vector) }) } catch {
                            failures.append("writer \(worker): \(error)")
                        }
                    }
                } else {
                    for _ in 0..<200 {
                        do { _ = try c.search(probe, options: SearchOptions(k: 5)) } catch { failures.append("reader: \(error)") }
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
            #expect(try c.count() == 3000)
            #expect(db.env.mapSize > 256 << 10)
            #expect(try c.verify().isEmpty)
            var rng = SplitMix64(seed: 42)
            for _ in 0..<20 {
                let q = try randomQuery(&rng, dims: dims)
                let hits = try c.search(q, options: SearchOptions(k: 10)).hits.map { ($0.id, $0.score) }
                #expect(topKMismatch(hits, docs: docs, query: q, k: 10) == nil)
            }
        }
    }

    /// The posting cache survives writes: after another batch is ingested, a repeated query
    /// decodes only blocks the new batch added (and at most one per query term and block it
    /// needs), while its answers stay exact. After a compaction it starts afresh.
    @Test func postingCacheSurvivesIngest() throws {
        try withTemporaryDirectory { dir in
            let dims: UInt32 = 200
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: dims)
            let docs = try randomDocuments(count: 4000, dims: dims, seed: 51)
            try c.upsert(docs.prefix(3000).map { Document(id: $0.id, vector: $0.vector) })
            var rng = SplitMix64(seed: 52)
            let queries = try (0..<20).map { _ in try randomQuery(&rng, dims: dims) }
            for q in queries { _ = try c.search(q, options: SearchOptions(k: 10, algorithm: .exhaustive)) }
            // Warm: nothing left to decode.
            for q in queries {
                #expect(try c.search(q, options: SearchOptions(k: 10, algorithm: .exhaustive)).statistics.blocksDecompressed == 0)
            }
            try c.upsert(docs[3000..<3100].map { Document(id: $0.id, vector: $0.vector) })
            for q in queries {
                let r = try c.search(q, options: SearchOptions(k: 10, algorithm: .exhaustive))
                // Exhaustive enters every block; one batch of 100 documents adds at most one block per term.
                #expect(r.statistics.blocksDecompressed <= r.statistics.terms, "decoded \(r.statistics.blocksDecompressed) of \(r.statistics.blocksDecoded)")
                #expect(r.statistics.blocksDecoded > r.statistics.blocksDecompressed)
                #expect(topKMismatch(r.hits.map { ($0.id, $0.score) }, docs: Array(docs.prefix(3100)), query: q, k: 10) == nil)
            }
            try c.compact()
            for q in queries {
                let r = try c.search(q, options: SearchOptions(k: 10, algorithm: .bmw))
                #expect(topKMismatch(r.hits.map { ($0.id, $0.score) }, docs: Array(docs.prefix(3100)), query: q, k: 10) == nil)
            }
        }
    }
}
