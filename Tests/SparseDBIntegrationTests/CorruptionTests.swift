import Foundation
import SparseDB
import SparseDBCore
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// Damaged stored values (as a bad disk or a foreign writer would leave them) are reported by
/// `verify` and turn searches into typed errors — never a crash, never a silently wrong answer.
@Suite struct CorruptionTests {
    func freshCollection(_ dir: String) throws -> (Database, VectorCollection, [(id: String, vector: SparseVector)]) {
        var config = Database.Configuration()
        config.postingCacheBytes = 0  // every search reads the damaged bytes
        let db = try Database(path: dir + "/db", configuration: config)
        let c = try db.collection("c", creatingWithDimensions: 30_522)
        let docs = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"), limit: 300)
        try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
        return (db, c, docs)
    }

    /// Rewrites the values of `table` for which `select` holds with `change` applied; returns how many.
    @discardableResult
    func damage(_ db: Database, _ table: Table, select: (UnsafeRawBufferPointer) -> Bool = { _ in true }, _ change: (inout [UInt8]) -> Void) throws -> Int {
        try db.env.write { txn in
            var entries: [([UInt8], [UInt8])] = []
            try txn.scan(prefix: [], in: txn.table(table)) { k, v in
                if select(k) { entries.append((Array(k), Array(v))) }
                return true
            }
            for (k, v) in entries {
                var copy = v
                change(&copy)
                try txn.put(copy, forKey: k, in: txn.table(table))
            }
            return entries.count
        }
    }

    /// Searches over the damaged collection: each is either right (brute force over the true
    /// documents) or a typed error; returns how many failed.
    func searchesAreRightOrFail(_ c: VectorCollection, _ docs: [(id: String, vector: SparseVector)], queries: Int = 30) throws -> Int {
        var failures = 0
        for q in docs.prefix(queries) {
            for a in SearchAlgorithm.allCases {
                do {
                    let hits = try c.search(q.vector, options: SearchOptions(k: 10, algorithm: a)).hits.map { ($0.id, $0.score) }
                    #expect(topKMismatch(hits, docs: docs, query: q.vector, k: 10) == nil, "\(a): a silently wrong answer")
                } catch let e as SparseDBError {
                    #expect(e.code == .corrupt, "\(e)")
                    failures += 1
                }
            }
        }
        return failures
    }

    @Test(arguments: ["flip", "truncate", "garbage"])
    func damagedPostingBlocks(kind: String) throws {
        try withTemporaryDirectory { dir in
            let (db, c, docs) = try freshCollection(dir)
            defer { db.close() }
            var rng = SplitMix64(seed: 77)
            try damage(db, .postingBlock) { v in
                switch kind {
                case "flip": v[Int.random(in: 0..<v.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case "truncate": v = Array(v.prefix(Int.random(in: 0..<v.count, using: &rng)))
                default: v = (0..<v.count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            #expect(try !c.verify().isEmpty)
            #expect(try searchesAreRightOrFail(c, docs) > 0)
        }
    }

    /// One flipped byte in a block-max (the header field Block-Max WAND skips on) or a forward
    /// row (the float weights scores come from): every search either fails or is right.
    @Test func flippedBlockMaxesAndForwardRowsNeverGiveWrongAnswers() throws {
        for table in [Table.postingBlock, .forwardRow] {
            for byte in [8, 9, 10, 11, 20, 40] {
                try withTemporaryDirectory { dir in
                    let (db, c, docs) = try freshCollection(dir)
                    defer { db.close() }
                    try damage(db, table) { v in if byte < v.count { v[byte] ^= 0x40 } }
                    #expect(try !c.verify().isEmpty)
                    #expect(try searchesAreRightOrFail(c, docs, queries: 10) > 0)
                }
            }
        }
    }

    /// A flipped byte in a document record's id, and an id-map entry that points at another
    /// live document: verify names them, search fails instead of returning a nonexistent id,
    /// and delete refuses instead of removing the wrong document.
    @Test func damagedDocumentRecordsAndIdMapEntries() throws {
        try withTemporaryDirectory { dir in
            let (db, c, docs) = try freshCollection(dir)
            defer { db.close() }
            try damage(db, .document) { v in v[v.count - 1] ^= 0x01 }  // the id's last byte
            #expect(try c.verify().contains { $0.contains("document") && $0.contains("checksum") })
            #expect(try searchesAreRightOrFail(c, docs, queries: 5) > 0)
        }
        try withTemporaryDirectory { dir in
            let (db, c, _) = try freshCollection(dir)
            defer { db.close() }
            // Point id "1" at the document of id "2", with a valid checksum (a misdirected write).
            let two = try db.env.read { txn in try IndexWriter.documentId(txn, idKey: Keys.externalId(1, "2")) }!
            try db.env.write { txn in
                let key = Keys.externalId(1, "1")
                try txn.put(Records.externalId(key: key, document: two), forKey: key, in: txn.table(.externalId))
            }
            let problems = try c.verify()
            #expect(problems.contains { $0.contains("'1' maps to document") && $0.contains("holds id '2'") }, "\(problems)")
            let e = #expect(throws: SparseDBError.self) { try c.delete(ids: ["1"]) }
            #expect(e?.code == .corrupt)
            #expect(try c.document(id: "2") != nil)
            #expect(try c.count() == 300)
        }
        try withTemporaryDirectory { dir in
            let (db, c, _) = try freshCollection(dir)
            defer { db.close() }
            try damage(db, .term) { v in v.append(1) }
            #expect(try c.verify().contains { $0.contains("term record") })
        }
        try withTemporaryDirectory { dir in
            let (db, _, _) = try freshCollection(dir)
            try db.env.write { txn in
                let key = Catalog.collectionKey("c")
                var v = try txn.value(key, in: txn.table(.meta))!
                v[v.count / 2] ^= 0x04
                try txn.put(v, forKey: key, in: txn.table(.meta))
            }
            let e = #expect(throws: SparseDBError.self) { try db.collection("c") }
            #expect(e?.code == .corrupt)
            db.close()
        }
    }
}
