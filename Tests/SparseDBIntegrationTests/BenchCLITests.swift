import Foundation
import SparseDB
import SparseDBTestSupport
import SparseDBTools
import Testing

/// `.csr` input through the command line, and `sparsedb bench`.
@Suite struct BenchCLITests {
    let sparsedb = productPath("sparsedb")

    /// A JSONL vector file rewritten as `.csr` + `.ids`.
    func csr(from jsonl: String, to path: String) throws {
        let reader = try VectorFileReader(InputFile(path: jsonl), dimensions: 30_522)
        let writer = try BigANNWriter(path: path, columns: 30_522)
        while let r = try reader.next() { try writer.append(id: r.id, r.vector) }
        try writer.finish()
    }

    @Test func csrInputMatchesJSONL() throws {
        try withTemporaryDirectory { dir in
            let docs = referencePath("cranfield", "doc_vectors.jsonl")
            let queries = referencePath("cranfield", "query_vectors.jsonl")
            try csr(from: docs, to: dir + "/docs.csr")
            try csr(from: queries, to: dir + "/q.csr")
            for (db, file) in [(dir + "/a", docs), (dir + "/b", dir + "/docs.csr")] {
                let r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet", "--batch-size", "300"])
                #expect(r.status == 0, "\(r.err)")
            }
            let a = try run(sparsedb, ["search", "--db", dir + "/a", "--collection", "c", "--query-vectors", queries])
            let b = try run(sparsedb, ["search", "--db", dir + "/b", "--collection", "c", "--query-vectors", dir + "/q.csr"])
            #expect(a.status == 0 && b.status == 0, "\(a.err) \(b.err)")
            #expect(!a.out.isEmpty && a.out == b.out)

            // A repeated id in the .ids file is refused before anything is written.
            var ids = try String(contentsOfFile: dir + "/docs.csr.ids", encoding: .utf8).split(separator: "\n").map(String.init)
            ids[5] = ids[4]
            try (ids.joined(separator: "\n") + "\n").write(toFile: dir + "/docs.csr.ids", atomically: true, encoding: .utf8)
            let dup = try run(sparsedb, ["ingest", "--db", dir + "/c", "--collection", "c", "--vectors", dir + "/docs.csr", "--quiet"])
            #expect(dup.status == 1 && dup.err.contains("row 5") && dup.err.contains("repeats row 4"), "\(dup.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/c/data.mdb"))

            // A hostile header: a typed error, one line, exit 1.
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/q.csr")))
            bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: Int64(1 << 60).littleEndian, Array.init))
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/bad.csr"))
            let bad = try run(sparsedb, ["search", "--db", dir + "/a", "--collection", "c", "--query-vectors", dir + "/bad.csr"])
            #expect(bad.status == 1 && bad.err.contains("not a valid .csr file"), "\(bad.err)")
        }
    }

    @Test func benchReportsLatencyStatisticsAndHits() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let queries = referencePath("cranfield", "query_vectors.jsonl")
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", referencePath("cranfield", "doc_vectors.jsonl"), "--quiet"]).status == 0)
            let search = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", queries, "--algorithm", "bmw", "--format", "jsonl"])
            var expected: [String: [String]] = [:]
            for line in search.out.split(separator: "\n") {
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                expected[o["query_id"] as! String] = (o["hits"] as! [[String: Any]]).map { $0["id"] as! String }
            }
            for extra in [["--repeat", "2"], ["--threads", "3", "--repeat", "2"], ["--cold"], ["--cold", "--drop-os-cache", "--limit", "20"]] {
                let r = try run(sparsedb, ["bench", "--db", db, "--collection", "c", "--query-vectors", queries, "--run", dir + "/run.jsonl"] + extra)
                #expect(r.status == 0, "\(extra): \(r.err)")
                let o = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
                for key in ["mean_ms", "p50_ms", "p99_ms", "max_ms", "qps", "cpu_mean_ms", "rss_bytes", "peak_rss_bytes"] {
                    #expect((o[key] as? Double ?? 0) > 0, "\(extra): \(key)")
                }
                let queriesRun = o["queries"] as! Int
                #expect(o["measured_queries"] as? Int == queriesRun * (extra.contains("--repeat") ? 2 : 1))
                let stats = (o["statistics"] as! [String: Any])["sum"] as! [String: Int]
                #expect(stats["postings_decoded"]! > 0 && stats["candidates_rescored"]! > 0 && stats["documents_scored"]! > 0)
                if extra.contains("--cold") {
                    // Every query decompressed what it read again.
                    #expect(stats["blocks_decompressed"] == stats["blocks_decoded"], "\(stats)")
                }
                // The run file holds every query's hits, the same as `search` (all algorithms agree).
                let lines = try String(contentsOfFile: dir + "/run.jsonl", encoding: .utf8).split(separator: "\n")
                #expect(lines.count == queriesRun)
                for line in lines {
                    let h = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                    let ids = (h["hits"] as! [[Any]]).map { $0[0] as! String }
                    #expect(ids == expected[h["query_id"] as! String], "\(extra)")
                }
            }
            let refused = try run(sparsedb, ["bench", "--db", db, "--collection", "c", "--query-vectors", queries, "--cold", "--threads", "2"])
            #expect(refused.status != 0)
        }
    }

    /// An approximate setting reports the recall it costs: recall@10 of its hits against brute
    /// force, computed here from the run file (a hit counts when its document's true score reaches
    /// the exact 10th score); an exact setting reports none.
    @Test func benchReportsTheRecallOfApproximateSettings() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let docsPath = referencePath("cranfield", "doc_vectors.jsonl")
            let queriesPath = referencePath("cranfield", "query_vectors.jsonl")
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", docsPath, "--quiet"]).status == 0)
            let oracle = BruteForce(try readVectors(docsPath))
            let queries = Dictionary(uniqueKeysWithValues: try readVectors(queriesPath).map { ($0.id, $0.vector) })
            let scores = Dictionary(uniqueKeysWithValues: oracle.docs.map { ($0.id, $0.vector) })
            let exact = try run(sparsedb, ["bench", "--db", db, "--collection", "c", "--query-vectors", queriesPath])
            #expect(exact.status == 0, "\(exact.err)")
            #expect((try JSONSerialization.jsonObject(with: Data(exact.out.utf8)) as! [String: Any])["recall_at_k"] == nil)
            for setting in [
                ["--max-query-terms", "2"], ["--max-query-terms", "2", "--candidates", "30"], ["--heap-factor", "3"],
                ["--postings-per-term", "20", "--candidates", "30"],
            ] {
                let r = try run(sparsedb, ["bench", "--db", db, "--collection", "c", "--query-vectors", queriesPath, "--run", dir + "/run.jsonl"] + setting)
                #expect(r.status == 0, "\(setting): \(r.err)")
                let reported = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any])["recall_at_k"] as? Double
                var found = 0
                var wanted = 0
                for line in try String(contentsOfFile: dir + "/run.jsonl", encoding: .utf8).split(separator: "\n") {
                    let h = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                    let q = queries[h["query_id"] as! String]!
                    let top = oracle.ranking(q).prefix(10)
                    guard let kth = top.last?.score else { continue }
                    wanted += top.count
                    let ids = (h["hits"] as! [[Any]]).map { $0[0] as! String }
                    found += min(top.count, ids.filter { scores[$0]!.dot(q) >= kth - abs(kth) * 1e-9 }.count)
                }
                let expected = Double(found) / Double(wanted)
                #expect(reported.map { abs($0 - expected) < 1e-12 } == true, "\(setting): reported \(String(describing: reported)), brute force \(expected)")
                #expect(expected < 1, "\(setting) is lossless on cranfield: the check would not see a wrong recall")
            }
        }
    }
}
