import Foundation
import SparseDB
import SparseDBCore
import SparseDBTestSupport
import SparseDBTools
import Testing

/// Runs the real `sparsedb` executable, as a user would.
@Suite struct CLITests {
    let sparsedb = productPath("sparsedb")

    func ingest(_ db: String, _ file: String, collection: String = "c", extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
        try run(sparsedb, ["ingest", "--db", db, "--collection", collection, "--vectors", file, "--quiet"] + extra)
    }

    @Test func ingestSearchReopenDeleteCompactVerify() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let docs = referencePath("cranfield", "doc_vectors.jsonl")
            let queries = referencePath("cranfield", "query_vectors.jsonl")
            let r = try ingest(db, docs, extra: ["--batch-size", "500"])
            #expect(r.status == 0, "\(r.err)")
            // Each search is a new process reopening the database.
            var runs: [String: String] = [:]
            for a in SearchAlgorithm.allCases {
                let s = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", queries, "--algorithm", a.rawValue])
                #expect(s.status == 0, "\(s.err)")
                runs[a.rawValue] = s.out
            }
            let reference = try readRun(referencePath("cranfield", "run.trec"), depth: 11)
            let tmpRun = dir + "/run.trec"
            try runs["bmw"]!.write(toFile: tmpRun, atomically: true, encoding: .utf8)
            let got = try readRun(tmpRun)
            for (qid, expected) in reference {
                #expect(rankingsAgree(expected, got[qid] ?? [], k: 10, tolerance: 2e-5), "query \(qid)")
            }
            #expect(Set(runs.values).count == 1, "all algorithms print the same run")

            let stats = try run(sparsedb, ["stats", "--db", db])
            #expect(stats.status == 0)
            let json = try JSONSerialization.jsonObject(with: Data(stats.out.utf8)) as? [String: Any]
            let coll = (json?["collections"] as? [[String: Any]])?.first
            #expect(coll?["documents"] as? Int == 1400)
            #expect(json?["formatVersion"] as? Int == 4)

            // Delete the top hit of query 1, compact, and check it is gone while verify stays clean.
            let top = got["1"]![0].0
            try "\(top)\n".write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
            #expect(try run(sparsedb, ["delete", "--db", db, "--collection", "c", "--ids", dir + "/ids.txt"]).status == 0)
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)
            let afterDelete = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", queries])
            #expect(!afterDelete.out.contains(" \(top) "))
            #expect(try run(sparsedb, ["compact", "--db", db]).status == 0)
            let afterCompact = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", queries])
            #expect(afterCompact.out == afterDelete.out)
            let v = try run(sparsedb, ["verify", "--db", db])
            #expect(v.status == 0, "\(v.out)")
            // Debian's mdb_stat reads the directory.
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/mdb_stat") {
                let m = try run("/usr/bin/mdb_stat", ["-a", db])
                #expect(m.status == 0 && m.out.contains("posting-block"))
            }
        }
    }

    @Test(arguments: [
        ("nan", #"{"_id": "x", "vector": {"5": NaN}}"#, "malformed JSON"),
        ("infinite", #"{"_id": "x", "vector": {"5": 1e39}}"#, "infinite"),
        ("negative", #"{"_id": "x", "vector": {"5": -0.5}}"#, "negative"),
        ("range", #"{"_id": "x", "vector": {"30522": 0.5}}"#, "out of range"),
        ("duplicate", #"{"_id": "x", "vector": {"5": 0.5, "5": 0.7}}"#, "more than once"),
        ("missing id", #"{"vector": {"5": 0.5}}"#, "missing \"_id\""),
        ("broken", #"{"_id": "x", "vector": {"5": 0.5"#, "malformed JSON"),
        ("not a number", #"{"_id": "x", "vector": {"5": "big"}}"#, "not a number"),
        ("bad key", #"{"_id": "x", "vector": {"five": 1}}"#, "not a non-negative integer"),
        ("huge weight", #"{"_id": "x", "vector": {"5": 1e30}}"#, "above the limit"),
        ("numeric id", #"{"_id": 7, "vector": {"5": 1}}"#, "must be a string"),
        ("boolean id", #"{"_id": true, "vector": {"5": 1}}"#, "must be a string"),
        ("repeated id", #"{"_id": "b", "vector": {"5": 1}}"#, "repeats line 1"),
        ("long id", "{\"_id\": \"" + String(repeating: "i", count: 501) + "\", \"vector\": {\"5\": 1}}", "at most 500"),
    ])
    func badInputIsRefusedAndChangesNothing(name: String, line: String, message: String) throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let good = dir + "/good.jsonl"
            try (#"{"_id": "a", "vector": {"1": 1.0, "2": 0.5}}"# + "\n").write(toFile: good, atomically: true, encoding: .utf8)
            #expect(try ingest(db, good).status == 0)
            let before = try run(sparsedb, ["stats", "--db", db]).out
            // The bad line comes third, after two good ones, in a file ingested in batches of one.
            let bad = dir + "/bad.jsonl"
            let text = #"{"_id": "b", "vector": {"3": 1.0}}"# + "\n" + #"{"_id": "c", "vector": {"4": 1.0}}"# + "\n" + line + "\n"
            try text.write(toFile: bad, atomically: true, encoding: .utf8)
            let r = try ingest(db, bad, extra: ["--batch-size", "1"])
            #expect(r.status != 0, "\(name) was accepted")
            #expect(r.err.contains("bad.jsonl:3"), "\(name): \(r.err)")
            #expect(r.err.contains(message), "\(name): \(r.err)")
            #expect(try run(sparsedb, ["stats", "--db", db]).out == before)
        }
    }

    @Test func emptyFileAndInvalidUTF8AreRefused() throws {
        try withTemporaryDirectory { dir in
            let empty = dir + "/empty.jsonl"
            _ = FileManager.default.createFile(atPath: empty, contents: Data())
            let r = try ingest(dir + "/db", empty)
            #expect(r.status != 0 && r.err.contains("no records"), "\(r.err)")
            // Refused input creates nothing at a new --db path.
            #expect(!FileManager.default.fileExists(atPath: dir + "/db"))
            let binary = dir + "/binary.jsonl"
            _ = FileManager.default.createFile(atPath: binary, contents: Data([0x7B, 0xFF, 0xFE, 0x7D, 0x0A]))
            let b = try ingest(dir + "/db", binary)
            #expect(b.status != 0 && b.err.contains("binary.jsonl:1") && b.err.contains("UTF-8"))
        }
    }
}

/// The text pipeline as a user runs it: corpus ingest with the default model, resume, text search, eval.
@Suite struct TextPipelineTests {
    let sparsedb = productPath("sparsedb")

    @Test func ingestResumeSearchAndModelCheck() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            // The first 150 documents of cranfield, then all 300 (the first 150 are skipped, not duplicated).
            let lines = try String(contentsOfFile: sharedDirectory + "/data/cranfield/corpus.jsonl", encoding: .utf8)
                .split(separator: "\n").prefix(300)
            try (lines.prefix(150).joined(separator: "\n") + "\n").write(toFile: dir + "/part.jsonl", atomically: true, encoding: .utf8)
            try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/all.jsonl", atomically: true, encoding: .utf8)
            var r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--corpus", dir + "/part.jsonl", "--batch-size", "64"])
            #expect(r.status == 0, "\(r.err)")
            r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--corpus", dir + "/all.jsonl", "--batch-size", "64"])
            #expect(r.status == 0 && r.err.contains("ingested 150 documents (150 already present)"), "\(r.err)")
            let stats = try run(sparsedb, ["stats", "--db", db]).out
            #expect(stats.contains("\"documents\" : 300") && stats.contains("\"encoder\" : \"splade-tiny\""), "\(stats)")
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)

            // Text search uses the recorded encoder; results equal searching the encoded query vector.
            let s = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query", "boundary layer flow over a flat plate", "--format", "jsonl"])
            #expect(s.status == 0, "\(s.err)")
            let hit = try JSONSerialization.jsonObject(with: Data(s.out.split(separator: "\n")[0].utf8)) as! [String: Any]
            let hits = hit["hits"] as! [[String: Any]]
            #expect(hits.count == 10)
            let payload = hits[0]["payload"] as? [String: Any]
            #expect(payload?["title"] != nil, "the payload keeps the corpus line's other fields")
            let db2 = try Database(path: db, configuration: .readOnlyExisting)
            let coll = try db2.collection("c")
            let encoder = try TextEncoder(path: "default")
            let direct = try coll.search(text: "boundary layer flow over a flat plate", encoder: encoder).hits
            #expect(direct.map(\.id) == hits.map { $0["id"] as! String })

            // A different model is refused unless allowed.
            let other = try materializeFixture("splade", in: dir)
            let m = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query", "flow", "--model", other])
            #expect(m.status != 0 && m.err.contains("was built with model 'splade-tiny'"), "\(m.err)")
        }
    }

    @Test func badCorpusLineIsRefusedBeforeWriting() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/c.jsonl"
            try "{\"_id\": \"a\", \"text\": \"fine\"}\n{\"text\": \"no id\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
            let r = try run(sparsedb, ["ingest", "--db", dir + "/db", "--collection", "c", "--corpus", path])
            #expect(r.status != 0 && r.err.contains("c.jsonl:2") && r.err.contains("_id"), "\(r.err)")
        }
    }

    /// `sparsedb eval` reproduces the reference metrics of splade-tiny on cranfield within 0.003.
    @Test func evalReproducesTheReferenceMetrics() throws {
        let r = try run(sparsedb, ["eval", sharedDirectory + "/data/cranfield", "--quiet"])
        #expect(r.status == 0, "\(r.err)")
        let out = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let metrics = out["metrics"] as! [String: Double]
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: referencePath("cranfield", "summary.json")))) as! [String: Any]
        let reference = summary["metrics"] as! [String: Double]
        for m in ["nDCG@10", "RR@10"] {
            #expect(abs(metrics[m]! - reference[m]!) <= 0.003, "\(m): \(metrics[m]!) vs \(reference[m]!)")
        }
        for m in ["R@100", "AP@100"] {
            #expect(abs(metrics[m]! - reference[m]!) <= 0.003, "\(m): \(metrics[m]!) vs \(reference[m]!)")
        }
        #expect(out["documents"] as? Int == 1400)
    }
}

/// kill -9 in the middle of a text ingest: every committed batch survives, the database verifies,
/// and running the same command again completes it without duplicates.
@Suite struct InterruptionTests {
    let sparsedb = productPath("sparsedb")

    @Test func killedIngestResumes() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let lines = try String(contentsOfFile: sharedDirectory + "/data/cranfield/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(400)
            let corpus = dir + "/c.jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: sparsedb)
            p.arguments = ["ingest", "--db", db, "--collection", "c", "--corpus", corpus, "--batch-size", "10", "--quiet"]
            try p.run()
            // Wait until at least one batch is committed (another process may read meanwhile), then kill.
            var committed = 0
            let deadline = Date().addingTimeInterval(120)
            while committed == 0 && Date() < deadline && p.isRunning {
                Thread.sleep(forTimeInterval: 0.2)
                let s = try run(sparsedb, ["stats", "--db", db])
                if s.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(s.out.utf8)) as? [String: Any],
                    let c = (json["collections"] as? [[String: Any]])?.first
                {
                    committed = c["documents"] as? Int ?? 0
                }
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(committed > 0)
            let v = try run(sparsedb, ["verify", "--db", db])
            #expect(v.status == 0, "\(v.out)")
            let stats = try JSONSerialization.jsonObject(with: Data(try run(sparsedb, ["stats", "--db", db]).out.utf8)) as! [String: Any]
            let afterKill = ((stats["collections"] as! [[String: Any]])[0]["documents"] as! Int)
            #expect(afterKill % 10 == 0 || afterKill == 400, "only whole batches are committed: \(afterKill)")
            let r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--corpus", corpus, "--batch-size", "10"])
            #expect(r.status == 0, "\(r.err)")
            #expect(r.err.contains("(\(afterKill) already present)"), "\(r.err)")
            let final = try JSONSerialization.jsonObject(with: Data(try run(sparsedb, ["stats", "--db", db]).out.utf8)) as! [String: Any]
            #expect(((final["collections"] as! [[String: Any]])[0]["documents"] as! Int) == 400)
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)
        }
    }
}

@Suite struct EncodeCommandTests {
    /// The issue's acceptance command: `sparsedb encode --model default --queries scifact/queries.jsonl`
    /// reproduces the reference query vectors.
    @Test func encodeReproducesTheReferenceQueryVectors() throws {
        let r = try run(productPath("sparsedb"), ["encode", "--model", "default", "--queries", sharedDirectory + "/data/scifact/queries.jsonl", "--quiet"])
        #expect(r.status == 0, "\(r.err)")
        let reference = Dictionary(uniqueKeysWithValues: try readVectors(referencePath("scifact", "query_vectors.jsonl")).map { ($0.id, $0.vector) })
        var seen = 0
        for (n, line) in r.out.split(separator: "\n").enumerated() {
            let v = try LineFormats.vectorRecord(ArraySlice(Array(line.utf8)), file: "stdout", line: n + 1, dimensions: 30_522)
            let want = try #require(reference[v.id])
            let w = Dictionary(uniqueKeysWithValues: zip(want.dimensions, want.weights))
            let g = Dictionary(uniqueKeysWithValues: zip(v.vector.dimensions, v.vector.weights))
            let worst = Set(w.keys).union(g.keys).map { abs((w[$0] ?? 0) - (g[$0] ?? 0)) }.max() ?? 0
            #expect(worst <= 2e-3, "query \(v.id): \(worst)")
            seen += 1
        }
        #expect(seen == reference.count)
    }
}

@Suite struct IngestPipelineTests {
    /// A failure in the write stage (here an id longer than 500 bytes in the third batch) stops
    /// the pipeline with that error; the batches committed before it stay, nothing after it is written.
    @Test func writerErrorsStopThePipeline() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            let c = try db.collection("c", creatingWithDimensions: 30_522)
            let encoder = try TextEncoder(path: "default")
            var docs = (0..<50).map { TextDocument(id: "d\($0)", text: "document number \($0) about boundary layers") }
            docs[25].id = String(repeating: "x", count: 600)
            let e = #expect(throws: SparseDBError.self) {
                try c.ingest(docs, encoder: encoder, options: IngestOptions(batchSize: 10))
            }
            #expect(e?.code == .invalidInput && e?.message.contains("at most 500") == true)
            #expect(try c.count() == 20)
            #expect(try c.verify().isEmpty)
            // The collection now remembers the encoder.
            #expect(try c.encoderDescription()?.name == "splade-tiny")
        }
    }
}
