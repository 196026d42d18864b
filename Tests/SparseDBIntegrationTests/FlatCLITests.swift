import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// Dense and CSR fields, and hybrid search, through the command line as a user runs them.
@Suite struct FlatCLITests {
    let sparsedb = productPath("sparsedb")

    @Test func denseAndCSRVectorsFromFiles() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            var rng = SplitMix64(seed: 5)
            var dense = ""
            var rows: [(String, [Float])] = []
            for i in 0..<300 {
                let v = (0..<32).map { _ in Float(Int.random(in: -100...100, using: &rng)) / 64 }
                rows.append(("e\(i)", v))
                dense += "{\"_id\": \"e\(i)\", \"dense\": [\(v.map { "\($0)" }.joined(separator: ", "))], \"tag\": \(i % 3)}\n"
            }
            try dense.write(toFile: dir + "/dense.jsonl", atomically: true, encoding: .utf8)
            var r = try run(sparsedb, ["ingest", "--db", db, "--collection", "d", "--kind", "dense", "--vectors", dir + "/dense.jsonl", "--metric", "cosine", "--quiet", "--batch-size", "70"])
            #expect(r.status == 0, "\(r.err)")
            let q = rows[7].1
            try ("{\"_id\": \"q1\", \"dense\": [\(q.map { "\($0)" }.joined(separator: ","))]}\n").write(toFile: dir + "/q.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["search", "--db", db, "--collection", "d", "--query-vectors", dir + "/q.jsonl", "--k", "5", "--format", "jsonl"])
            #expect(r.status == 0, "\(r.err)")
            let hits = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any])["hits"] as! [[String: Any]]
            let stored = Dictionary(uniqueKeysWithValues: rows.map { ($0.0, denseStored($0.1, cosine: true, half: false)) })
            let problem = rankingMismatch(hits.map { ($0["id"] as! String, $0["score"] as! Double) }, scores: stored.mapValues { denseScore(q, $0, d: 32, cosine: true) }, k: 5)
            #expect(problem == nil, "\(problem ?? "")")
            #expect(hits.first?["id"] as? String == "e7")
            r = try run(sparsedb, ["search", "--db", db, "--collection", "d", "--query-vectors", dir + "/q.jsonl", "--dims", "8", "--k", "3"])
            #expect(r.status == 0 && r.out.split(separator: "\n").count == 3, "\(r.err)")
            // Bad dense lines: refused with file and line, nothing written.
            let before = try run(sparsedb, ["stats", "--db", db]).out
            for (line, message) in [
                (#"{"_id": "x", "dense": [1, 2]}"#, "has 2 values, expected 32"),
                (#"{"_id": "x", "dense": [1e39"# + String(repeating: ", 0", count: 31) + "]}", "not a finite number"),
                (#"{"_id": "x", "dense": "no"}"#, "array of numbers"),
            ] {
                try ("{\"_id\": \"ok\", \"dense\": [\(Array(repeating: "1", count: 32).joined(separator: ","))]}\n" + line + "\n").write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
                r = try run(sparsedb, ["ingest", "--db", db, "--collection", "d", "--kind", "dense", "--vectors", dir + "/bad.jsonl"])
                #expect(r.status == 1 && r.err.contains("bad.jsonl:2") && r.err.contains(message), "\(r.err)")
            }
            #expect(try run(sparsedb, ["stats", "--db", db]).out == before)
            // A value beyond half precision for a new f16 dot field, after the first batch: refused
            // with its line before any batch is committed.
            let half = (1...5).map { i in
                "{\"_id\": \"h\(i)\", \"dense\": [\(i == 4 ? "70000" : "1.5"), \(Array(repeating: "0.25", count: 31).joined(separator: ", "))]}"
            }
            try (half.joined(separator: "\n") + "\n").write(toFile: dir + "/half.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, [
                "ingest", "--db", db, "--collection", "h", "--kind", "dense", "--precision", "f16", "--vectors", dir + "/half.jsonl", "--batch-size", "2",
            ])
            #expect(r.status == 1 && r.err.contains("half.jsonl:4") && r.err.contains("document 'h4'") && r.err.contains("beyond half precision"), "\(r.err)")
            #expect(try run(sparsedb, ["stats", "--db", db]).out == before)

            // CSR codes: k from the file; more active dimensions than the field holds is refused.
            var csr = ""
            for i in 0..<200 { csr += "{\"_id\": \"c\(i)\", \"vector\": {\"\(i % 50)\": 1.5, \"\(100 + i % 7)\": 0.5, \"4095\": 0.25}}\n" }
            try csr.write(toFile: dir + "/csr.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["ingest", "--db", db, "--collection", "k", "--kind", "csr", "--dims", "4096", "--vectors", dir + "/csr.jsonl", "--quiet"])
            #expect(r.status == 0, "\(r.err)")
            let stats = try JSONSerialization.jsonObject(with: Data(try run(sparsedb, ["stats", "--db", db]).out.utf8)) as! [String: Any]
            let field = ((stats["collections"] as! [[String: Any]]).first { $0["name"] as? String == "k" }!["fields"] as! [[String: Any]])[0]
            #expect(field["kind"] as? String == "csr" && field["index"] as? String != nil, "\(field)")
            try (#"{"_id": "wide", "vector": {"1": 1, "2": 1, "3": 1, "4": 1}}"# + "\n").write(toFile: dir + "/wide.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["ingest", "--db", db, "--collection", "k", "--kind", "csr", "--vectors", dir + "/wide.jsonl"])
            #expect(r.status == 1 && r.err.contains("wide.jsonl:1") && r.err.contains("at most 3"), "\(r.err)")
            try (#"{"_id": "q", "vector": {"3": 1, "4095": 2}}"# + "\n").write(toFile: dir + "/cq.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["search", "--db", db, "--collection", "k", "--query-vectors", dir + "/cq.jsonl", "--k", "3", "--max-active-dims", "1"])
            #expect(r.status == 0 && r.out.split(separator: "\n").allSatisfy { $0.contains("0.500000") }, "\(r.out) \(r.err)")
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)
        }
    }

    /// `eval` over a sparse and a dense field with RRF: fused metrics and each field's own.
    @Test func evalWithTwoFieldsAndFusion() throws {
        let minilm = MiniLMTests.modelPath
        try #require(FileManager.default.fileExists(atPath: minilm + "/model.safetensors"), "run tools/fetch-model.sh minilm")
        try withTemporaryDirectory { dir in
            // A small slice of cranfield: the first 300 documents, the queries judged on them.
            let data = sharedDirectory + "/data/cranfield"
            try FileManager.default.createDirectory(atPath: dir + "/set/qrels", withIntermediateDirectories: true)
            let docs = try String(contentsOfFile: data + "/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(300)
            try (docs.joined(separator: "\n") + "\n").write(toFile: dir + "/set/corpus.jsonl", atomically: true, encoding: .utf8)
            let ids = Set(docs.map { (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["_id"] as! String })
            let qrels = try String(contentsOfFile: data + "/qrels/test.tsv", encoding: .utf8).split(separator: "\n")
            let kept = qrels.dropFirst().filter { ids.contains(String($0.split(separator: "\t")[1])) }
            try ((["query-id\tcorpus-id\tscore"] + kept.map(String.init)).joined(separator: "\n") + "\n").write(toFile: dir + "/set/qrels/test.tsv", atomically: true, encoding: .utf8)
            let judged = Set(kept.map { String($0.split(separator: "\t")[0]) })
            let queries = try String(contentsOfFile: data + "/queries.jsonl", encoding: .utf8).split(separator: "\n")
                .filter { judged.contains((try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["_id"] as! String) }
            try (queries.joined(separator: "\n") + "\n").write(toFile: dir + "/set/queries.jsonl", atomically: true, encoding: .utf8)
            let r = try run(sparsedb, ["eval", dir + "/set", "--field", "splade=default", "--field", "minilm=" + minilm, "--fuse", "rrf", "--quiet"])
            #expect(r.status == 0, "\(r.err)")
            let out = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
            let fused = out["metrics"] as! [String: Double]
            let fields = out["fields"] as! [String: [String: [String: Double]]]
            #expect(Set(fields.keys) == ["splade", "minilm"])
            for (_, f) in fields { #expect(f["metrics"]!["nDCG@10"]! > 0.1) }
            #expect(fused["nDCG@10"]! > 0.1)
            #expect(out["documents"] as? Int == 300)
        }
    }
}
