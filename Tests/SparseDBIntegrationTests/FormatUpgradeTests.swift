import Foundation
import SparseDB
import SparseDBTestSupport
import SparseDBTools
import Testing

/// A database written by format 1 (Tests/Fixtures/format1, made by tools/make_format1_fixture.sh
/// from the commit tagged `format-1`): refused with a pointer to the upgrade, upgraded in one
/// step, and then answering every query exactly as before — checked against the old binary's
/// own runs and, independently, against brute force over the documents the manifest says it holds.
@Suite struct FormatUpgradeTests {
    let fixture = fixturesDirectory + "/format1"
    let sparsedb = productPath("sparsedb")

    /// The live documents of `vectors`, rebuilt from ../shared and the manifest.
    func expectedVectors() throws -> [(id: String, vector: SparseVector)] {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture + "/manifest.json"))) as! [String: Any]
        let collections = manifest["collections"] as! [String: Any]
        let vectors = collections["vectors"] as! [String: Any]
        let liveIds = vectors["live_ids"] as! [String]
        let all = try readVectors(referencePath("cranfield", "doc_vectors.jsonl"), limit: 200)
        var byId = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.vector) })
        for step in vectors["steps"] as! [[String: Any]] {
            for r in step["replaced"] as? [[String: Any]] ?? [] {
                byId[r["id"] as! String] = all[(r["vector_line"] as! NSNumber).intValue - 1].vector
            }
        }
        return liveIds.map { ($0, byId[$0]!) }
    }

    @Test func formatOneIsRefusedThenUpgradedAndAnswersAsBefore() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/db"
            try FileManager.default.copyItem(atPath: fixture + "/db", toPath: path)
            // Opening says how to upgrade, and changes nothing.
            let before = try Data(contentsOf: URL(fileURLWithPath: path + "/data.mdb"))
            let refused = #expect(throws: SparseDBError.self) { try Database(path: path) }
            #expect(refused?.code == .olderFormat && refused?.message.contains("sparsedb upgrade --db") == true)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/data.mdb")) == before)
            let cli = try run(sparsedb, ["search", "--db", path, "--collection", "vectors", "--query", "x"])
            #expect(cli.status == 1 && cli.err.contains("sparsedb upgrade"), "\(cli.err)")

            let up = try run(sparsedb, ["upgrade", "--db", path])
            #expect(up.status == 0 && up.err.contains("from format 1 to 4"), "\(up.err)")
            let again = try run(sparsedb, ["upgrade", "--db", path])
            #expect(again.status == 0 && again.err.contains("already in format 4"), "\(again.err)")
            let verify = try run(sparsedb, ["verify", "--db", path])
            #expect(verify.status == 0, "\(verify.out)")

            // Every algorithm, both collections: the old binary's runs, byte for byte.
            let queryVectors = dir + "/q.jsonl"
            let queryTexts = dir + "/qt.jsonl"
            let qv = try String(contentsOfFile: referencePath("cranfield", "query_vectors.jsonl"), encoding: .utf8).split(separator: "\n").prefix(20)
            try (qv.joined(separator: "\n") + "\n").write(toFile: queryVectors, atomically: true, encoding: .utf8)
            let qt = try String(contentsOfFile: sharedDirectory + "/data/cranfield/queries.jsonl", encoding: .utf8).split(separator: "\n").prefix(20)
            try (qt.joined(separator: "\n") + "\n").write(toFile: queryTexts, atomically: true, encoding: .utf8)
            for algorithm in SearchAlgorithm.allCases {
                let v = try run(sparsedb, ["search", "--db", path, "--collection", "vectors", "--query-vectors", queryVectors, "--algorithm", algorithm.rawValue])
                #expect(v.status == 0, "\(v.err)")
                #expect(v.out == (try String(contentsOfFile: "\(fixture)/expected/vectors.\(algorithm.rawValue).trec", encoding: .utf8)), "vectors \(algorithm)")
                let t = try run(sparsedb, ["search", "--db", path, "--collection", "text", "--queries", queryTexts, "--model", "default", "--algorithm", algorithm.rawValue])
                #expect(t.status == 0, "\(t.err)")
                let old = parseRun(try String(contentsOfFile: "\(fixture)/expected/text.\(algorithm.rawValue).trec", encoding: .utf8))
                let new = parseRun(t.out)
                for (qid, hits) in old { #expect(rankingsAgree(hits, new[qid] ?? [], k: 10, tolerance: 2e-5), "text \(algorithm) q\(qid)") }
            }

            // Independently: brute force over the documents the manifest says are live.
            let db = try Database(path: path)
            defer { db.close() }
            let vectors = try db.collection("vectors")
            let live = try expectedVectors()
            let oracle = BruteForce(live)
            #expect(try vectors.count() == live.count)
            for (_, q) in try readVectors(queryVectors) {
                for algorithm in SearchAlgorithm.allCases {
                    let got = try vectors.search(q, options: SearchOptions(k: 10, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                    #expect(oracle.mismatch(got, query: q, k: 10) == nil)
                }
            }
            // The text collection kept its encoder record, and the upgraded database takes writes.
            let text = try db.collection("text")
            #expect(try text.encoderDescription()?.name == "splade-tiny")
            try vectors.upsert([Document(id: "new", vector: try SparseVector([(1, 1)]))])
            try vectors.compact()
            #expect(try db.verify().isEmpty)
        }
    }
}
