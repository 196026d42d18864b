import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// Attributes and filters through the command line: `ingest --attribute`, `search --filter`, on
/// vector lines and on a corpus encoded with the default model; bad values and bad filters
/// refused with where and what, nothing written.
@Suite struct FilterCLITests {
    let sparsedb = productPath("sparsedb")

    @Test func vectorIngestAndFilteredSearchMatchBruteForce() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            var rng = SplitMix64(seed: 12)
            let docs = try randomDocuments(count: 600, dims: 500, seed: 13)
            var lines = ""
            var attrs: [String: (lang: String?, year: Int?, open: Bool?)] = [:]
            for (i, d) in docs.enumerated() {
                let lang = i % 9 == 0 ? nil : ["en", "de", "fr"][Int(pow(Double.random(in: 0..<1, using: &rng), 2) * 3)]
                let year = i % 5 == 0 ? nil : 1990 + Int.random(in: 0..<30, using: &rng)
                let open = i % 4 == 0 ? nil : Bool.random(using: &rng)
                attrs[d.id] = (lang, year, open)
                var o: [String: Any] = ["_id": d.id, "vector": Dictionary(uniqueKeysWithValues: zip(d.vector.dimensions, d.vector.weights).map { ("\($0)", Double($1)) })]
                if let lang { o["lang"] = lang }
                if let year { o["year"] = year }
                if let open { o["open"] = open }
                lines += String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self) + "\n"
            }
            try lines.write(toFile: dir + "/v.jsonl", atomically: true, encoding: .utf8)
            var r = try run(sparsedb, [
                "ingest", "--db", db, "--collection", "c", "--vectors", dir + "/v.jsonl", "--dims", "500", "--batch-size", "150", "--quiet",
                "--attribute", "lang:keyword", "--attribute", "year:integer", "--attribute", "open:bool",
            ])
            #expect(r.status == 0, "\(r.err)")
            let stats = try JSONSerialization.jsonObject(with: Data(try run(sparsedb, ["stats", "--db", db]).out.utf8)) as! [String: Any]
            let attributes = (stats["collections"] as! [[String: Any]])[0]["attributes"] as? [String: String]
            #expect(attributes == ["lang": "keyword", "year": "integer", "open": "bool"])

            var queries = ""
            var qs: [SparseVector] = []
            for i in 0..<8 {
                let q = try randomQuery(&rng, dims: 500)
                qs.append(q)
                queries += "{\"_id\": \"q\(i)\", \"vector\": {\(zip(q.dimensions, q.weights).map { "\"\($0)\": \($1)" }.joined(separator: ", "))}}\n"
            }
            try queries.write(toFile: dir + "/q.jsonl", atomically: true, encoding: .utf8)

            for (filter, admits) in [
                (#"{"lang": "de"}"#, { (a: (lang: String?, year: Int?, open: Bool?)) in a.lang == "de" }),
                (#"{"year": {"gte": 2000, "lt": 2010}, "open": true}"#, { a in (a.year.map { $0 >= 2000 && $0 < 2010 } ?? false) && a.open == true }),
                (#"{"$or": [{"lang": {"in": ["fr"]}}, {"$not": {"year": {"lte": 2015}}}]}"#, { a in a.lang == "fr" || !(a.year.map { $0 <= 2015 } ?? false) }),
                (#"{"lang": "xx"}"#, { _ in false }),
            ] {
                for algorithm in ["maxscore", "wand", "bmw", "exhaustive"] {
                    r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", dir + "/q.jsonl", "--k", "7", "--algorithm", algorithm, "--filter", filter])
                    #expect(r.status == 0, "\(r.err)")
                    let run = parseRun(r.out, depth: 7)
                    for (i, q) in qs.enumerated() {
                        let scores = Dictionary(uniqueKeysWithValues: docs.filter { admits(attrs[$0.id]!) }.map { ($0.id, $0.vector.dot(q)) })
                        let problem = rankingMismatch(run["q\(i)"] ?? [], scores: scores, k: 7, tolerance: 1e-5, positiveOnly: true)
                        #expect(problem == nil, "\(filter) \(algorithm) q\(i): \(problem ?? "")")
                    }
                }
            }

            // A value of the wrong type: refused with file and line; nothing written.
            let before = try run(sparsedb, ["stats", "--db", db]).out
            try ("{\"_id\": \"n1\", \"vector\": {\"1\": 1}, \"year\": 2001}\n{\"_id\": \"n2\", \"vector\": {\"1\": 1}, \"year\": \"2002\"}\n")
                .write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", dir + "/bad.jsonl"])
            #expect(r.status == 1 && r.err.contains("bad.jsonl:2") && r.err.contains("year"), "\(r.err)")
            #expect(try run(sparsedb, ["stats", "--db", db]).out == before)
            // An attribute the collection was not made with.
            r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", dir + "/v.jsonl", "--attribute", "topic:keyword"])
            #expect(r.status == 1 && r.err.contains("topic"), "\(r.err)")
            // Bad filters: each a clear error, exit status 1 or 64, no output.
            for (filter, needle) in [
                (#"{"lang": "#, "not valid JSON"), (#"{"nope": 1}"#, "nope"), (#"{"year": {"near": 1}}"#, "near"),
                (#"{"year": "x"}"#, "year"), (#"{"lang": {"gte": 1}}"#, "lang"),
            ] {
                r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", dir + "/q.jsonl", "--filter", filter])
                #expect(r.status != 0 && r.out.isEmpty && r.err.contains(needle), "\(filter): \(r.status) \(r.err)")
            }
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)
        }
    }

    /// A corpus with a keyword attribute, encoded by the default model; a filtered text query
    /// returns only matching documents, and exactly the unfiltered ranking restricted to them
    /// (deep enough to hold them all).
    @Test func corpusWithAttributeAndFilteredTextQuery() throws {
        try #require(FileManager.default.fileExists(atPath: TextEncoder.defaultModelPath + "/model.safetensors"), "run tools/fetch-model.sh")
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let corpus = sharedDirectory + "/data/scifact/corpus.jsonl"
            var lines = ""
            var kinds: [String: String] = [:]
            let reader = try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n").prefix(300)
            for (i, line) in reader.enumerated() {
                var o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let kind = ["a", "b", "c"][i % 3]
                o["kind"] = kind
                kinds[o["_id"] as! String] = kind
                lines += String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self) + "\n"
            }
            try lines.write(toFile: dir + "/corpus.jsonl", atomically: true, encoding: .utf8)
            var r = try run(sparsedb, ["ingest", "--db", db, "--collection", "s", "--corpus", dir + "/corpus.jsonl", "--quiet", "--attribute", "kind:keyword"])
            #expect(r.status == 0, "\(r.err)")
            r = try run(sparsedb, ["search", "--db", db, "--collection", "s", "--query", "cells in the immune system", "--k", "300", "--format", "trec"])
            let all = parseRun(r.out, depth: 300)["1"] ?? []
            #expect(all.count > 20)
            r = try run(sparsedb, ["search", "--db", db, "--collection", "s", "--query", "cells in the immune system", "--k", "10", "--filter", #"{"kind": "b"}"#, "--format", "trec"])
            #expect(r.status == 0, "\(r.err)")
            let filtered = parseRun(r.out, depth: 10)["1"] ?? []
            let expected = all.filter { kinds[$0.0] == "b" }
            #expect(rankingsAgree(Array(expected.prefix(11)), filtered, k: 10, tolerance: 1e-6), "\(filtered) vs \(expected.prefix(11))")
        }
    }
}
