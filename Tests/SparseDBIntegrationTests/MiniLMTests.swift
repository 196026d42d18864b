import Foundation
import SparseDB
import SparseDBCore
import SparseDBTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// all-MiniLM-L6-v2 (Transformer + mean Pooling + Normalize), the dense sentence-transformers
/// model, against sentence-transformers' own embeddings of 150 real texts
/// (Tests/Fixtures/minilm.expected.json, written by tools/make_dense_reference.py): every
/// dimension within 1e-4, encoded in one batch and one text at a time. The model comes from the
/// model cache (`tools/fetch-model.sh minilm`, run by setup).
@Suite struct MiniLMTests {
    static let modelPath = TextEncoder.modelCacheDirectory + "/all-MiniLM-L6-v2"

    struct Reference {
        let texts: [String]
        let tokenCounts: [Int]
        let embeddings: [[Float]]
        let maxSequenceLength: Int
    }

    static let reference: Reference = {
        let url = URL(fileURLWithPath: fixturesDirectory + "/minilm.expected.json")
        let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return Reference(
            texts: json["texts"] as! [String], tokenCounts: (json["token_counts"] as! [NSNumber]).map(\.intValue),
            embeddings: (json["embeddings"] as! [[NSNumber]]).map { $0.map(\.floatValue) },
            maxSequenceLength: (json["max_seq_length"] as! NSNumber).intValue)
    }()

    /// The model, or a failure saying how to get it.
    func encoder() throws -> TextEncoder {
        try #require(
            FileManager.default.fileExists(atPath: Self.modelPath + "/model.safetensors"),
            "all-MiniLM-L6-v2 is not in the model cache (\(Self.modelPath)); run tools/fetch-model.sh minilm (tools/setup.sh does)")
        return try TextEncoder(path: Self.modelPath)
    }

    /// The largest absolute difference of any dimension of text `i`.
    func difference(_ got: [Float], _ i: Int) -> Float {
        let want = Self.reference.embeddings[i]
        guard got.count == want.count else { return .infinity }
        return zip(got, want).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func loadsAsADenseModel() throws {
        let encoder = try encoder()
        #expect(encoder.kind == .dense)
        #expect(!encoder.producesSparseVectors)
        #expect(encoder.dimensions == 384)
        let error = #expect(throws: SparseDBError.self) { try encoder.encode(["a"], task: .document) }
        #expect(error?.code == .model)
        // Matryoshka-style truncation keeps the leading dimensions.
        let full = try encoder.embed(["The capital of France is Paris."], task: .query)[0]
        #expect(try encoder.embed(["The capital of France is Paris."], task: .query, truncateDimensions: 64)[0] == Array(full.prefix(64)))
        #expect(abs(full.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
    }

    /// The ids fed to the model: [CLS] … [SEP], truncated to max_seq_length 256 from
    /// sentence_bert_config.json (not tokenizer.json's own 128).
    @Test func tokenCountsMatch() throws {
        let encoder = try encoder()
        let ref = Self.reference
        #expect(ref.maxSequenceLength == 256)
        #expect(ref.tokenCounts.contains { $0 > 128 })
        for (i, text) in ref.texts.enumerated() {
            #expect(encoder.tokenize(text, task: .document).count == ref.tokenCounts[i], "text \(i) '\(text.prefix(40))'")
        }
    }

    @Test func oneBatchMatchesSentenceTransformers() throws {
        let encoder = try encoder()
        let got = try encoder.embed(Self.reference.texts, task: .document)
        var worst: Float = 0
        for i in got.indices {
            let diff = difference(got[i], i)
            worst = max(worst, diff)
            #expect(diff <= 1e-4, "text \(i) '\(Self.reference.texts[i].prefix(40))': max abs diff \(diff)")
        }
        print("MiniLM one batch: max abs difference \(worst) over \(got.count) texts")
    }

    @Test func oneAtATimeMatchesSentenceTransformers() throws {
        let encoder = try encoder()
        var worst: Float = 0
        for (i, text) in Self.reference.texts.enumerated() {
            // No prompts in this model: queries and documents are encoded alike.
            let got = try encoder.embed([text], task: i % 2 == 0 ? .document : .query)[0]
            let diff = difference(got, i)
            worst = max(worst, diff)
            #expect(diff <= 1e-4, "text \(i) '\(text.prefix(40))': max abs diff \(diff)")
        }
        print("MiniLM one at a time: max abs difference \(worst) over \(Self.reference.texts.count) texts")
    }

    /// Encode speed of `TextEncoder.embed` on the first N scifact passages (title + " " + text),
    /// warm, all cores. Opt-in: `SPARSEDB_MINILM_BENCH=N` (and `SPARSEDB_MINILM_BENCH_OUT=FILE`
    /// to write the figures and embeddings as JSON, for a side-by-side comparison with
    /// sentence-transformers).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SPARSEDB_MINILM_BENCH"] != nil))
    func encodeSpeed() throws {
        let env = ProcessInfo.processInfo.environment
        let n = Int(env["SPARSEDB_MINILM_BENCH"] ?? "") ?? 1000
        let encoder = try encoder()
        var texts: [String] = []
        let corpus = try String(contentsOfFile: sharedDirectory + "/data/scifact/corpus.jsonl", encoding: .utf8)
        for line in corpus.split(separator: "\n") where texts.count < n {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let title = o["title"] as? String ?? ""
            let text = o["text"] as? String ?? ""
            texts.append(title.isEmpty ? text : title + " " + text)
        }
        _ = try encoder.embed(Array(texts.prefix(32)), task: .document)  // warm-up
        // Wall time, and CPU time of the process (all threads), which a busy machine distorts less.
        func cpuSeconds() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }
        let cpuStart = cpuSeconds()
        let start = DispatchTime.now().uptimeNanoseconds
        let vectors = try encoder.embed(texts, task: .document)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu = cpuSeconds() - cpuStart
        print("MiniLM encode: \(texts.count) texts in \(seconds) s (\(cpu) CPU s), \(Double(texts.count) / seconds) texts/s")
        if let out = env["SPARSEDB_MINILM_BENCH_OUT"] {
            let json: [String: Any] = [
                "texts": texts.count, "seconds": seconds, "cpu_seconds": cpu, "texts_per_s": Double(texts.count) / seconds, "embeddings": vectors,
            ]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: out))
        }
    }
}

/// A dense field filled with real MiniLM embeddings of a shared collection, through the text
/// pipeline (ingest from text, search by text), against brute force over the same embeddings.
@Suite struct DenseSearchOnRealEmbeddingsTests {
    @Test func denseFieldOnCranfieldMatchesBruteForce() throws {
        let modelPath = MiniLMTests.modelPath
        try #require(FileManager.default.fileExists(atPath: modelPath + "/model.safetensors"), "run tools/fetch-model.sh minilm")
        try withTemporaryDirectory { dir in
            let encoder = try TextEncoder(path: modelPath)
            let lines = try String(contentsOfFile: sharedDirectory + "/data/cranfield/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(400)
            let docs = try lines.map { line -> TextDocument in
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let title = o["title"] as? String ?? ""
                let text = o["text"] as? String ?? ""
                return TextDocument(id: o["_id"] as! String, text: title.isEmpty ? text : title + " " + text)
            }
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [.dense("minilm", dimensions: 384, metric: .cosine)]))
            try c.ingest(docs, encoder: encoder, options: IngestOptions(batchSize: 64))
            #expect(try c.count() == 400)
            // The rows as stored (batch composition changes the encoder's float rounding at the
            // 1e-8 level, so the oracle reads what the ingest wrote rather than re-encoding).
            var stored: [String: [Float]] = [:]
            for d in docs {
                guard case .dense(let row)? = try c.document(id: d.id)?.vectors["minilm"] else {
                    Issue.record("document \(d.id) has no stored row")
                    continue
                }
                stored[d.id] = row
            }
            // And they are the model's normalized embeddings (encoder parity is MiniLMTests').
            let reencoded = try encoder.embed(Array(docs.prefix(8)).map(\.text), task: .document)
            for (d, e) in zip(docs.prefix(8), reencoded) {
                let expected = denseStored(e, cosine: true, half: false)
                #expect(zip(stored[d.id]!, expected).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(d.id)")
            }
            let queries = try String(contentsOfFile: sharedDirectory + "/data/cranfield/queries.jsonl", encoding: .utf8).split(separator: "\n").prefix(25)
            for line in queries {
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let text = o["text"] as! String
                let q = try encoder.embed([text], task: .query)[0]
                for d in [384, 128] {
                    let got = try c.search(.dense(q), options: SearchOptions(k: 10, dimensions: d)).hits.map { ($0.id, $0.score) }
                    let scores = stored.mapValues { denseScore(q, $0, d: d, cosine: true) }
                    let problem = rankingMismatch(got, scores: scores, k: 10)
                    #expect(problem == nil, "query \(o["_id"]!) d=\(d): \(problem ?? "")")
                }
                // Text search goes through the field's recorded encoder.
                let byText = try c.search(text: text, encoder: try c.queryEncoder(model: nil), options: SearchOptions(k: 10)).hits.map(\.id)
                let byVector = try c.search(.dense(q), options: SearchOptions(k: 10)).hits.map(\.id)
                #expect(byText == byVector)
            }
        }
    }
}
