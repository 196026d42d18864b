import CLMDB
import Foundation
import SparseDB
import SparseDBCore
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

@Suite struct StorageTests {
    @Test func invalidBatchLeavesNothingBehind() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
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
            #expect(throws: SparseDBError.self) { try c.upsert([Document(id: "d", vectors: ["nope": .sparse(SparseVector())])]) }
            let after = try c.statistics()
            #expect(after.documents == before.documents && after.postings == before.postings)
            #expect(after.fields[0].postingBytes == before.fields[0].postingBytes)
            #expect(try c.document(id: "b") == nil)
        }
    }

    /// Weights are bounded so that no accepted input can overflow a score or a bound.
    @Test func vectorsRejectBadWeights() {
        for w: Float in [.nan, .infinity, -1, 1.0000001e9, 3e38] {
            #expect(throws: SparseDBError.self, "\(w)") { try SparseVector([(UInt32(1), w)]) }
        }
        #expect(throws: SparseDBError.self) { try SparseVector([(UInt32(1), Float(1)), (UInt32(1), Float(2))]) }
        #expect((try? SparseVector([(UInt32(1), SparseVector.maxWeight)])) != nil)
    }

    /// The largest accepted weights, in documents and queries, give finite, exact top-k scores.
    @Test func largestWeightsDoNotOverflow() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 64)
            var docs: [(id: String, vector: SparseVector)] = []
            var rng = SplitMix64(seed: 5)
            for i in 0..<300 {
                let entries = (0..<64).map { d in (UInt32(d), Float.random(in: 0.5...1, using: &rng) * SparseVector.maxWeight) }
                docs.append(("d\(i)", try SparseVector(entries)))
            }
            try c.upsert(docs.map { Document(id: $0.id, vector: $0.vector) })
            let q = try SparseVector((0..<64).map { (UInt32($0), SparseVector.maxWeight) })
            for a in SearchAlgorithm.allCases {
                let hits = try c.search(q, options: SearchOptions(k: 10, algorithm: a)).hits
                #expect(hits.allSatisfy { $0.score.isFinite })
                #expect(topKMismatch(hits.map { ($0.id, $0.score) }, docs: docs, query: q, k: 10) == nil, "\(a)")
            }
        }
    }

    @Test func foreignEnvironmentsAreRefused() throws {
        // A plain LMDB environment with someone else's table in it.
        try withTemporaryDirectory { dir in
            let env = try LMDBEnvironment(path: dir, mapSize: 1 << 20, readOnly: false, maxReaders: 8)
            try env.write { txn in
                let dbi = try txn.openTable("theirs", create: true)
                try txn.put([1], forKey: [1], in: TableRef(name: "theirs", dbi: dbi))
            }
            env.close()
            let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
            #expect(error?.code == .foreignFormat)
            // Nothing was written into it.
            let again = try LMDBEnvironment(path: dir, mapSize: 1 << 20, readOnly: true, maxReaders: 8)
            #expect(try again.read { try $0.tableNames() } == ["theirs"])
            again.close()
        }
        // A file that is not LMDB at all.
        try withTemporaryDirectory { dir in
            try Data("not an lmdb file at all".utf8).write(to: URL(fileURLWithPath: dir + "/data.mdb"))
            let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
            #expect(error?.code == .corrupt || error?.code == .foreignFormat)
        }
        // A directory with other files in it is not made a database.
        try withTemporaryDirectory { dir in
            try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
            let error = #expect(throws: SparseDBError.self) { try Database(path: dir) }
            #expect(error?.code == .foreignFormat)
            #expect(!FileManager.default.fileExists(atPath: dir + "/data.mdb"))
        }
        // A file where the directory should be.
        try withTemporaryDirectory { dir in
            try Data().write(to: URL(fileURLWithPath: dir + "/file"))
            #expect(throws: SparseDBError.self) { try Database(path: dir + "/file") }
        }
    }

    @Test func newerFormatIsRefused() throws {
        try withTemporaryDirectory { dir in
            do {
                let db = try Database(path: dir + "/db")
                try db.env.write { txn in
                    try txn.put(Catalog.formatRecord(version: Catalog.formatVersion + 1), forKey: Catalog.formatKey, in: txn.table(.meta))
                }
                db.close()
            }
            let error = #expect(throws: SparseDBError.self) { try Database(path: dir + "/db") }
            #expect(error?.code == .newerFormat)
            #expect(error?.message.contains("newer") == true)
        }
    }

    /// `writeCompactedCopy` (`sparsedb compact --into`): a copy that answers every query as the
    /// original does, verifies clean (its commit stamp included), takes writes, and whose tables
    /// are packed — the id map, filled out of key order, on fewer pages than in the original.
    @Test func compactedCopyIsPackedAndAnswersAsTheOriginal() throws {
        let docs = try readVectors(referencePath("scifact", "doc_vectors.jsonl"), limit: 1200)
        let queries = try readVectors(referencePath("scifact", "query_vectors.jsonl"), limit: 25).map(\.vector)
        func pages(_ db: Database, _ table: Table) throws -> Int { try db.env.read { txn in try txn.tableStats(txn.table(table)).bytes } }
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 30_522)
            // Ids inserted in reverse key order, in small batches: the id map's pages split half full.
            for batch in stride(from: 0, to: docs.count, by: 50) {
                try c.upsert(docs[batch..<min(batch + 50, docs.count)].map { Document(id: "id-" + String(String($0.id).reversed()), vector: $0.vector) })
            }
            #expect(try c.delete(ids: docs.prefix(100).map { "id-" + String(String($0.id).reversed()) }).isEmpty)
            try c.compact()
            #expect(throws: SparseDBError.self) { try db.writeCompactedCopy(to: dir + "/db") }  // not empty
            try db.writeCompactedCopy(to: dir + "/copy")
            let copy = try Database(path: dir + "/copy")
            defer { copy.close() }
            #expect(try copy.verify().isEmpty)
            #expect(try pages(copy, .externalId) < pages(db, .externalId))
            for table in Table.allCases { #expect(try pages(copy, table) <= pages(db, table), "\(table)") }
            #expect(LMDBEnvironment.fileSize(dir + "/copy/data.mdb")! < LMDBEnvironment.fileSize(dir + "/db/data.mdb")!)
            let copied = try copy.collection("c")
            #expect(try copied.statistics().documents == docs.count - 100)
            for q in queries {
                let a = try c.search(q, options: SearchOptions(k: 10)).hits, b = try copied.search(q, options: SearchOptions(k: 10)).hits
                #expect(a == b)
            }
            // The copy takes writes, and reopens clean after them.
            try copied.upsert([Document(id: "new", vector: docs[0].vector)])
            copy.close()
            let again = try Database(path: dir + "/copy")
            defer { again.close() }
            #expect(try again.verify().isEmpty)
            #expect(try again.collection("c").document(id: "new") != nil)
        }
    }

    /// Formats 2 (plain forward rows, one record each) and 3 (packed rows, one record each) are
    /// opened, searched and written as they are — new rows one record each, plain in format 2, so
    /// the releases that made them can still read them — and `upgrade` takes them to format 4:
    /// every row packed (format 2: more than one run of 4,096 rows, tombstoned documents'
    /// included) and gathered into groups (§8a), every answer the same as brute force before and
    /// after, every vector back bit for bit. An upgrade refuses a database whose commit stamp
    /// says LMDB opened an older snapshot, and verify reports a packed row in a format-2 database.
    @Test(arguments: [2, 3] as [UInt32])
    func olderFormatsAreKeptThenUpgradedToGroupedRows(version: UInt32) throws {
        let docs = try readVectors(referencePath("scifact", "doc_vectors.jsonl"), limit: 5000)
        let queries = try readVectors(referencePath("scifact", "query_vectors.jsonl"), limit: 25).map(\.vector)
        let first = 4500, deleted = Set(docs.prefix(40).map(\.id))
        func encodings(_ db: Database) throws -> [UInt8: Int] {
            var seen: [UInt8: Int] = [:]
            try db.env.read { txn in
                let layout = try ForwardRows.layout(txn)
                try ForwardRows.scan(txn, collection: 1, field: 1, layout: layout) { _, _, v in
                    seen[v[4], default: 0] += 1
                    return true
                }
            }
            return seen
        }
        func rewriteRows(_ db: Database, _ encoding: Records.ForwardRowEncoding, only: Int? = nil) throws {
            try db.env.write { txn in
                var rows: [([UInt8], SparseVector)] = []
                try txn.scan(prefix: [], in: txn.table(.forwardRow)) { k, v in
                    rows.append(([UInt8](k), try Records.parseForwardRow(key: k, v, dimensions: 30_522)))
                    return only == nil || rows.count < only!
                }
                for (k, v) in rows { try txn.put(Records.forwardRow(key: k, v, encoding: encoding), forKey: k, in: txn.table(.forwardRow)) }
            }
        }
        func checkAnswers(_ db: Database, live: [(id: String, vector: SparseVector)]) throws {
            let c = try db.collection("c")
            for q in queries {
                let got = try c.search(q, options: SearchOptions(k: 10)).hits.map { ($0.id, $0.score) }
                #expect(topKMismatch(got, docs: live, query: q, k: 10) == nil)
            }
        }
        try withTemporaryDirectory { dir in
            let path = dir + "/db"
            // A database as a format-2 or 3 release wrote it: the version record says so before
            // anything is written, so the rows are written as those releases wrote them.
            let encoding: UInt8 = version == 2 ? 0 : 1
            do {
                let db = try Database(path: path)
                try db.env.write { txn in try txn.put(Catalog.formatRecord(version: version), forKey: Catalog.formatKey, in: txn.table(.meta)) }
                let c = try db.collection("c", creatingWithDimensions: 30_522)
                try c.upsert(docs.prefix(first).map { Document(id: $0.id, vector: $0.vector) })
                #expect(try c.delete(ids: Array(deleted)).isEmpty)
                #expect(try encodings(db) == [encoding: first])
                #expect(try db.env.read { txn in try txn.tableStats(txn.table(.forwardRow)).entries } == first)
                if version == 2 {
                    // One packed row is a finding in a format-2 database.
                    try rewriteRows(db, .packed, only: 1)
                    #expect(try db.verify().contains { $0.contains("packed") })
                    try rewriteRows(db, .plain)
                }
                #expect(try db.verify().isEmpty)
                db.close()
            }
            let liveFirst = docs.prefix(first).filter { !deleted.contains($0.id) }
            let live = liveFirst + docs.dropFirst(first)
            do {
                let db = try Database(path: path)
                #expect(try db.statistics().formatVersion == Int(version))
                try checkAnswers(db, live: Array(liveFirst))
                try db.collection("c").upsert(docs.dropFirst(first).map { Document(id: $0.id, vector: $0.vector) })
                #expect(try encodings(db) == [encoding: docs.count])
                #expect(try db.env.read { txn in try txn.tableStats(txn.table(.forwardRow)).entries } == docs.count)
                #expect(try db.statistics().formatVersion == Int(version))
                try checkAnswers(db, live: live)
                db.close()
            }
            // A stamp older than the snapshot (what a damaged newest meta page leaves): refused,
            // nothing changed.
            let damaged = dir + "/damaged"
            try FileManager.default.createDirectory(atPath: damaged, withIntermediateDirectories: false)
            try FileManager.default.copyItem(atPath: path + "/data.mdb", toPath: damaged + "/data.mdb")
            do {
                let raw = try LMDBEnvironment(path: damaged, mapSize: 1 << 30, readOnly: false, maxReaders: 8)
                try raw.write { txn in
                    let commit = TableRef(name: Table.commit.name, dbi: try txn.openTable(Table.commit.name, create: false))
                    try txn.put([1, 0, 0, 0, 0, 0, 0, 0], forKey: Catalog.lastCommitKey, in: commit)
                }
                raw.close()
            }
            let refused = #expect(throws: SparseDBError.self) { try Database.upgrade(path: damaged) }
            #expect(refused?.code == .corrupt)
            #expect(try Database.formatVersion(path: damaged) == Int(version))

            #expect(try Database.upgrade(path: path) == Int(version))
            #expect(try Database.formatVersion(path: path) == 4)
            #expect(try Database.upgrade(path: path) == 4)
            let db = try Database(path: path)
            defer { db.close() }
            #expect(try encodings(db) == [1: docs.count])
            // Grouped as §8a's writer does (greedily up to 65,520 bytes, each row 4 bytes of table
            // more): at least the bytes over that bound, and any two neighbours hold more than it.
            let (groups, bytes) = try db.env.read { txn in
                var bytes = 0
                try ForwardRows.scan(txn, collection: 1, field: 1, layout: .grouped) { _, _, row in
                    bytes += row.count + 4
                    return true
                }
                return (try txn.tableStats(txn.table(.forwardRow)).entries, bytes)
            }
            #expect(groups >= (bytes + 65_511) / 65_512 && groups <= 2 * bytes / 65_512 + 1, "\(groups) groups for \(bytes) bytes")
            #expect(try db.verify().isEmpty)
            try checkAnswers(db, live: live)
            // Every stored vector comes back bit for bit.
            let c = try db.collection("c")
            for d in docs.suffix(100) + liveFirst.prefix(100) {
                let stored = try c.document(id: d.id)?.vector
                #expect(stored?.dimensions == d.vector.dimensions && stored?.weights.map(\.bitPattern) == d.vector.weights.map(\.bitPattern))
            }
        }
    }

    /// Tables come from a registry: a table added by a later SparseDB does not make an older
    /// database unopenable, and a table this SparseDB does not know is handled by its flags.
    @Test func tableRegistry() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/db"
            // An "older" database: one table (and its registry entry) missing.
            do {
                let db = try Database(path: path)
                try db.collection("c", creatingWithDimensions: 10).upsert([Document(id: "a", vector: try SparseVector([(1, 1)]))])
                try db.env.write { txn in
                    try txn.dropTable(txn.table(.tombstone))
                    try txn.delete(TableRegistry.key(Table.tombstone.name), in: txn.table(.meta))
                }
                db.close()
            }
            // Read-only: the missing table reads as empty.
            do {
                let db = try Database(path: path, configuration: .readOnlyExisting)
                #expect(db.env.table(named: Table.tombstone.name).dbi == nil)
                #expect(try db.collection("c").search(try SparseVector([(1, 1)])).hits.map(\.id) == ["a"])
                db.close()
            }
            // Writable: created and registered again.
            do {
                let db = try Database(path: path)
                #expect(db.env.table(named: Table.tombstone.name).dbi != nil)
                #expect(try db.collection("c").delete(ids: ["a"]).isEmpty)
                #expect(try db.env.read { try $0.value(TableRegistry.key(Table.tombstone.name), in: $0.table(.meta)) } != nil)
                db.close()
            }
            // Tables of a "newer" SparseDB.
            func addTable(_ name: String, flags: UInt8?) throws {
                let env = try LMDBEnvironment(path: path, mapSize: 1 << 30, readOnly: false, maxReaders: 8)
                defer { env.close() }
                try env.write { txn in
                    _ = try txn.openTable(name, create: true)
                    // A newer SparseDB records each commit, as this one does (format-spec.md §3a).
                    try Catalog.stampCommit(txn)
                    if let flags {
                        try txn.put([flags], forKey: TableRegistry.key(name), in: TableRef(name: "meta", dbi: try txn.openTable("meta", create: false)))
                    }
                }
            }
            try addTable("optional-new", flags: 0)
            try Database(path: path).close()  // an optional unknown table is ignored
            try addTable("write-new", flags: TableRegistry.writersMustKnow)
            #expect((try? Database(path: path, configuration: .readOnlyExisting))?.close() != nil)
            #expect(try #require(#expect(throws: SparseDBError.self) { try Database(path: path) }).code == .newerFormat)
            try addTable("read-new", flags: TableRegistry.readersMustKnow)
            #expect(try #require(#expect(throws: SparseDBError.self) { try Database(path: path, configuration: .readOnlyExisting) }).code == .newerFormat)
            try addTable("unregistered", flags: nil)
        }
    }

    @Test func closedDatabaseThrows() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: 10)
            db.close()
            db.close()
            let e = #expect(throws: SparseDBError.self) { try c.count() }
            #expect(e?.code == .closed)
            // The directory can be opened again afterwards.
            let again = try Database(path: dir + "/db")
            #expect(try again.collection("c").count() == 0)
            again.close()
        }
    }

    /// One environment per directory per process: once open read-only, it cannot be reopened for writing.
    @Test func readOnlyThenWritableIsRefused() throws {
        try withTemporaryDirectory { dir in
            try Database(path: dir + "/db").close()
            let reader = try Database(path: dir + "/db", configuration: .readOnlyExisting)
            #expect(throws: SparseDBError.self) { try Database(path: dir + "/db") }
            reader.close()
        }
    }

    @Test func collectionsAreCreatedDroppedAndNamedSafely() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let a = try db.createCollection("a", schema: .sparse(dimensions: 10))
            try a.upsert([Document(id: "x", vector: try SparseVector([(1, 1)]))])
            #expect(try #require(#expect(throws: SparseDBError.self) { try db.createCollection("a", schema: .sparse(dimensions: 10)) }).code == .alreadyExists)
            #expect(throws: SparseDBError.self) { try db.collection("a", creatingWith: .sparse(dimensions: 11)) }
            for bad in ["", String(repeating: "n", count: 201), "tab\there"] {
                #expect(throws: SparseDBError.self) { try db.createCollection(bad, schema: .sparse(dimensions: 10)) }
            }
            #expect(throws: SparseDBError.self) { try db.createCollection("two", schema: CollectionSchema(fields: [.sparse("f", dimensions: 3), .sparse("f", dimensions: 3)])) }
            try db.dropCollection("a")
            #expect(try db.collectionNames().isEmpty)
            #expect(try #require(#expect(throws: SparseDBError.self) { try a.count() }).code == .notFound)
            // A new collection with the same name is a different one (ids are never reused).
            let again = try db.createCollection("a", schema: .sparse(dimensions: 10))
            #expect(try again.count() == 0)
            #expect(try #require(#expect(throws: SparseDBError.self) { try a.count() }).code == .notFound)
            #expect(try db.env.read { txn in try txn.tableStats(txn.table(.postingBlock)).entries } == 0)
        }
    }
}
