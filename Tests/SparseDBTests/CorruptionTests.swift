import Foundation
import Testing

@testable import SparseDB

/// Damaged stored values (as a bad disk or a foreign writer would leave them) are reported by
/// `verify` and turn searches into typed errors — never a crash.
@Suite struct CorruptionTests {
    func freshCollection(_ dir: String) throws -> (Database, SparseDB.Collection, [(id: String, vector: SparseVector)]) {
        var config = Database.Configuration()
        config.postingCacheBytes = 0  // every search reads the damaged bytes
        let db = try Database(path: dir + "/db", configuration: config)
        let c = try db.collection("c", creatingWithDimensions: 30_522)
        let docs = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"), limit: 300)
        try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
        return (db, c, docs)
    }

    /// Rewrites every value of `table` for the collection with `damage` applied.
    func damage(_ db: Database, table: (Tables) -> UInt32, _ change: (inout [UInt8]) -> Void) throws {
        try db.env.write { txn in
            let dbi = table(txn.tables)
            var entries: [([UInt8], [UInt8])] = []
            try txn.scan(prefix: [], in: dbi) { k, v in
                entries.append((Array(k), Array(v)))
                return true
            }
            for (k, v) in entries {
                var copy = v
                change(&copy)
                try txn.put(copy, forKey: k, in: dbi)
            }
        }
    }

    @Test(arguments: ["flip", "truncate", "garbage"])
    func damagedPostingBlocks(kind: String) throws {
        try withTemporaryDirectory { dir in
            let (db, c, docs) = try freshCollection(dir)
            var rng = SplitMix64(seed: 77)
            try damage(db, table: { $0.postings }) { v in
                switch kind {
                case "flip": v[Int.random(in: 0..<v.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case "truncate": v = Array(v.prefix(Int.random(in: 0..<v.count, using: &rng)))
                default: v = (0..<v.count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            #expect(try !c.verify().isEmpty)
            // Searches either fail with a typed error or return something; they never trap.
            var failures = 0
            for q in docs.prefix(30) {
                for a in SearchAlgorithm.allCases {
                    do { _ = try c.search(q.vector, options: SearchOptions(k: 10, algorithm: a)) } catch is SparseDBError { failures += 1 }
                }
            }
            #expect(failures > 0)
        }
    }

    @Test func damagedForwardRowsAndRecords() throws {
        try withTemporaryDirectory { dir in
            let (db, c, docs) = try freshCollection(dir)
            try damage(db, table: { $0.forward }) { v in v = Array(v.prefix(max(0, v.count - 3))) }
            #expect(try c.verify().contains { $0.contains("forward row") })
            #expect(throws: SparseDBError.self) { try c.search(docs[0].vector, options: SearchOptions(k: 5)) }
            #expect(throws: SparseDBError.self) { try c.document(id: docs[0].id) }
        }
        try withTemporaryDirectory { dir in
            let (db, c, docs) = try freshCollection(dir)
            try damage(db, table: { $0.documents }) { v in v = [9, 9] }
            #expect(try !c.verify().isEmpty)
            #expect(throws: SparseDBError.self) { try c.search(docs[0].vector, options: SearchOptions(k: 5)) }
        }
        try withTemporaryDirectory { dir in
            let (db, c, _) = try freshCollection(dir)
            try damage(db, table: { $0.terms }) { v in v.append(1) }
            #expect(try c.verify().contains { $0.contains("term record") })
        }
        try withTemporaryDirectory { dir in
            let (db, _, _) = try freshCollection(dir)
            try db.env.write { txn in try txn.put(Array("{not json".utf8), forKey: Schema.collectionKey("c"), in: txn.tables.meta) }
            let e = #expect(throws: SparseDBError.self) { try db.collection("c") }
            #expect(e?.code == .corrupt)
        }
    }

    @Test func oversizedLinesAreRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/big.jsonl"
            var text = #"{"_id": "a", "vector": {"1": 1}}"# + "\n" + #"{"_id": "b", "title": ""#
            text += String(repeating: "x", count: JSONLinesReader.maxLineBytes + 10) + "\"}\n" + #"{"_id": "c", "vector": {"2": 1}}"# + "\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            var lines: [(Int, Int)] = []
            for (n, bytes) in try JSONLinesReader(path: path) { lines.append((n, bytes.count)) }
            #expect(lines.map(\.0) == [1, 2, 3])
            #expect(lines[1].1 > JSONLinesReader.maxLineBytes && lines[1].1 <= JSONLinesReader.maxLineBytes + (1 << 20) + 1)
            let r = try run(productPath("sparsedb"), ["ingest", "--db", dir + "/db", "--vectors", path, "--quiet"])
            #expect(r.status != 0 && r.err.contains("big.jsonl:2") && r.err.contains("MiB"), "\(r.err)")
        }
    }
}
