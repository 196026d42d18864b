import CLMDB
import Foundation
import Testing

@testable import SparseDB

@Suite struct StorageTests {
    @Test func mapGrowsByItselfWhenFull() throws {
        try withTemporaryDirectory { dir in
            var config = Database.Configuration()
            config.initialMapSize = 256 << 10  // 256 KiB: full after a few hundred documents
            let db = try Database(path: dir + "/db", configuration: config)
            let c = try db.collection("c", creatingWithDimensions: 30_522)
            let docs = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"), limit: 600)
            try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
            #expect(try c.count() == 600)
            #expect(db.env.mapSize > 256 << 10)
            #expect(try c.verify().isEmpty)
        }
    }

    @Test func invalidBatchLeavesNothingBehind() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: 100)
            try c.upsert([Document(id: "a", vector: try SparseVector([(1, 1), (2, 0.5)]))])
            let before = try c.statistics()
            let bad = [
                Document(id: "b", vector: try SparseVector([(3, 1)])),
                Document(id: "c", vector: try SparseVector([(100, 1)])),  // out of range
            ]
            #expect(throws: SparseDBError.self) { try c.upsert(bad) }
            #expect(throws: SparseDBError.self) { try c.upsert([Document(id: "", vector: SparseVector())]) }
            #expect(throws: SparseDBError.self) { try c.upsert([Document(id: String(repeating: "x", count: 501), vector: SparseVector())]) }
            let after = try c.statistics()
            #expect(after.documents == before.documents && after.postings == before.postings && after.postingBytes == before.postingBytes)
            #expect(try c.document(id: "b") == nil)
        }
    }

    @Test func vectorsRejectBadWeights() {
        for w: Float in [.nan, .infinity, -1] {
            #expect(throws: SparseDBError.self) { try SparseVector([(UInt32(1), w)]) }
        }
        #expect(throws: SparseDBError.self) { try SparseVector([(UInt32(1), Float(1)), (UInt32(1), Float(2))]) }
    }

    @Test func foreignEnvironmentIsRefused() throws {
        try withTemporaryDirectory { dir in
            // A plain LMDB environment with someone else's table in it.
            let env = try LMDBEnvironment(path: dir, mapSize: 1 << 20, readOnly: false)
            try env.write { txn in
                var dbi: MDB_dbi = 0
                try lmdbCheck(mdb_dbi_open(txn.handle, "theirs", UInt32(MDB_CREATE), &dbi), "open")
                try txn.put([1], forKey: [1], in: dbi)
            }
            withExtendedLifetime(env) {}
        }
        try withTemporaryDirectory { dir in
            try Data("not an lmdb file at all".utf8).write(to: URL(fileURLWithPath: dir + "/data.mdb"))
            let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
            #expect(error?.code == .foreignFormat)
        }
    }

    @Test func foreignTablesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-foreign-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let env = try LMDBEnvironment(path: dir, mapSize: 1 << 20, readOnly: false)
            try env.write { txn in
                var dbi: MDB_dbi = 0
                try lmdbCheck(mdb_dbi_open(txn.handle, "theirs", UInt32(MDB_CREATE), &dbi), "open")
                try txn.put([1], forKey: [1], in: dbi)
            }
        }
        let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
        #expect(error?.code == .foreignFormat)
    }

    @Test func newerFormatIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-newer-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let db = try Database(path: dir)
            var w = ByteWriter()
            w.append(Schema.magic)
            w.u32le(Schema.formatVersion + 1)
            try db.env.write { txn in try txn.put(w.bytes, forKey: Schema.formatKey, in: txn.tables.meta) }
        }
        // The environment registry holds environments weakly, so this opens it afresh.
        let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
        #expect(error?.code == .newerFormat)
        #expect(error?.message.contains("newer") == true)
    }

    @Test func concurrentReadersSeeConsistentSnapshots() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: 30_522)
            let docs = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"), limit: 400)
            try c.upsert(docs.prefix(200).map { Document(id: $0.id, vector: $0.vector) })
            let queries = try readVectors(referencePath("cranfield", "query_vectors.jsonl"), limit: 20)
            let failures = ManagedAtomicCounter()
            DispatchQueue.concurrentPerform(iterations: 8) { worker in
                if worker == 0 {
                    for start in stride(from: 200, to: 400, by: 20) {
                        do { try c.upsert(docs[start..<start + 20].map { Document(id: $0.id, vector: $0.vector) }) } catch { failures.add() }
                    }
                } else {
                    for q in queries {
                        do {
                            let hits = try c.search(q.vector, options: SearchOptions(k: 10, algorithm: .bmw)).hits
                            if hits.isEmpty { failures.add() }
                        } catch { failures.add() }
                    }
                }
            }
            #expect(failures.value == 0)
            #expect(try c.count() == 400)
        }
    }
}

final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

@Suite struct PostingCacheTests {
    @Test func budgetAndGenerations() throws {
        let cache = PostingCache(budget: 10_000)
        func list(_ n: Int, generation: UInt64) -> DecodedPostingList {
            DecodedPostingList(
                documents: (0..<UInt32(n)).map { $0 }, codes: [UInt8](repeating: 1, count: n), blockStarts: [0], firstDocs: [0],
                lastDocs: [UInt32(n - 1)], blockMaxes: [1], termMaxWeight: 1, generation: generation)
        }
        for term in 0..<UInt32(20) { cache.insert(list(300, generation: 1), collection: 1, term: term) }
        // Over budget: the oldest entries are gone, the newest stay.
        #expect(cache.list(collection: 1, term: 0, generation: 1) == nil)
        #expect(cache.list(collection: 1, term: 19, generation: 1) != nil)
        // Another snapshot's generation never matches.
        #expect(cache.list(collection: 1, term: 19, generation: 2) == nil)
        // An older generation does not replace a newer entry.
        cache.insert(list(10, generation: 3), collection: 1, term: 5)
        cache.insert(list(12, generation: 2), collection: 1, term: 5)
        #expect(cache.list(collection: 1, term: 5, generation: 3)?.count == 10)
        // Lists larger than a quarter of the budget are not cached.
        cache.insert(list(1_000, generation: 1), collection: 2, term: 1)
        #expect(cache.list(collection: 2, term: 1, generation: 1) == nil)
    }

    /// One environment per directory per process: once open read-only, it cannot be reopened for writing.
    @Test func readOnlyThenWritableIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-ro-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do { _ = try Database(path: dir) }
        let reader = try Database(path: dir, configuration: .readOnlyExisting)
        #expect(throws: SparseDBError.self) { try Database(path: dir) }
        withExtendedLifetime(reader) {}
    }
}
