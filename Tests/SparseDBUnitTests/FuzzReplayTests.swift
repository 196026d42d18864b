import Foundation
import SparseDBCore
import SparseDBFuzzing
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// The fuzz targets' seed corpora (Fuzz/corpus, with any crash inputs kept there as
/// regressions) replayed through the same harnesses the libFuzzer binaries call: the short runs
/// of the test command. The long runs are `tools/fuzz.sh` (Fuzz/README.md).
@Suite struct FuzzReplayTests {
    static let corpus = repositoryDirectory + "/Fuzz/corpus"
    static let targets = ["FuzzVectorLine", "FuzzCorpusLine", "FuzzPostingBlock", "FuzzRecords", "FuzzSafeTensors", "FuzzTokenizerJSON", "FuzzTokenizer"]

    /// The harness of `target`; the tokenizer is the fixture one (unit tests use no model).
    static func harness(_ target: String) throws -> FuzzHarness {
        switch target {
        case "FuzzVectorLine": return FuzzTargets.vectorLine
        case "FuzzCorpusLine": return FuzzTargets.corpusLine
        case "FuzzPostingBlock": return FuzzTargets.postingBlock
        case "FuzzRecords": return FuzzTargets.records
        case "FuzzSafeTensors": return FuzzTargets.safeTensors
        case "FuzzTokenizerJSON": return FuzzTargets.tokenizerJSON
        default:
            let tokenizer = try TokenizerUnderTest(path: fixturesDirectory + "/splade/tokenizer.json")
            return { (data) throws(FuzzFinding) in try FuzzTargets.tokenizer(data, with: tokenizer) }
        }
    }

    /// Every seed runs without a finding, some are accepted (they reach past the first check),
    /// and the corpus stays small.
    @Test(arguments: targets)
    func seedCorpusReplays(target: String) throws {
        let directory = Self.corpus + "/" + target
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(names.count >= 3)
        let harness = try Self.harness(target)
        var accepted = 0
        var bytes = 0
        for name in names {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            bytes += data.count
            do throws(FuzzFinding) {
                if try data.withUnsafeBytes({ b in Result { () throws(FuzzFinding) in try harness(b) } }).get() { accepted += 1 }
            } catch {
                Issue.record("\(target)/\(name): \(error)")
            }
        }
        #expect(accepted > 0, "no seed of \(target) is accepted")
        #expect(bytes <= 16 << 10, "the seed corpus of \(target) has grown to \(bytes) bytes")
    }

    /// A finding is reported as one: a harness that throws something other than SparseDBError
    /// from the parser, or breaks an invariant, fails the replay.
    @Test func findingsAreReported() throws {
        let status = replayMain("FuzzCorpusLine", { _ throws(FuzzFinding) in throw FuzzFinding("planted") }, arguments: [Self.corpus + "/FuzzCorpusLine"])
        #expect(status == 1)
        #expect(replayMain("FuzzCorpusLine", FuzzTargets.corpusLine, arguments: [Self.corpus + "/FuzzCorpusLine"]) == 0)
    }

    // MARK: the seed generator

    /// Regenerates the `seed-*` files of Fuzz/corpus from ../shared and the fixtures (other files
    /// there — regression inputs — are kept):
    /// `SPARSEDB_WRITE_FUZZ_SEEDS=1 swift test --filter FuzzReplayTests/writeSeeds`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SPARSEDB_WRITE_FUZZ_SEEDS"] == "1"))
    func writeSeeds() throws {
        try FuzzSeeds().write(to: Self.corpus)
    }
}

/// Small seeds from real data: the shortest lines of the reference vectors and corpora, blocks
/// and records encoded by the engine's own writers, a safetensors file from the fixture recipe,
/// the fixture tokenizer cut to a small vocabulary.
struct FuzzSeeds {
    var seeds: [String: [(name: String, bytes: [UInt8])]] = [:]

    init() throws {
        try vectorLines()
        try corpusLines()
        try postingBlocks()
        try records()
        try safeTensors()
        try tokenizerFiles()
        try tokenizerTexts()
    }

    func write(to directory: String) throws {
        for (target, files) in seeds {
            let dir = directory + "/" + target
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for old in try FileManager.default.contentsOfDirectory(atPath: dir) where old.hasPrefix("seed-") {
                try FileManager.default.removeItem(atPath: dir + "/" + old)
            }
            for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: dir + "/seed-" + name)) }
        }
    }

    mutating func add(_ target: String, _ name: String, _ bytes: [UInt8]) { seeds[target, default: []].append((name, bytes)) }
    mutating func add(_ target: String, _ name: String, _ text: String) { add(target, name, Array(text.utf8)) }

    /// The `n` shortest lines of a JSON Lines file (ties: first in the file).
    static func shortestLines(_ path: String, _ n: Int, minimum: Int = 0) throws -> [String] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        return Array(lines.filter { $0.utf8.count >= minimum }.enumerated().sorted { ($0.1.utf8.count, $0.0) < ($1.1.utf8.count, $1.0) }.prefix(n).map(\.1))
    }

    static func vectors(_ collection: String, limit: Int) throws -> [(id: String, vector: SparseVector)] {
        try readVectors(referencePath(collection, "doc_vectors.jsonl"), limit: limit)
    }

    mutating func vectorLines() throws {
        add("FuzzVectorLine", "scifact-doc", try Self.shortestLines(referencePath("scifact", "doc_vectors.jsonl"), 1)[0])
        add("FuzzVectorLine", "cranfield-query", try Self.shortestLines(referencePath("cranfield", "query_vectors.jsonl"), 1)[0])
        add("FuzzVectorLine", "nfcorpus-query", try Self.shortestLines(referencePath("nfcorpus", "query_vectors.jsonl"), 1)[0])
        add("FuzzVectorLine", "payload-escapes",
            #"{"_id": "d\u00e9-1", "vector": {"0": 0, "30521": 1e-3, "7": 1E+2}, "title": "x \"y\"", "tags": [1, {"a": null}], "n": -0.5e-7, "ok": true}"#)
        add("FuzzVectorLine", "empty-vector", #"{"vector":{},"_id":"e"}"#)
    }

    mutating func corpusLines() throws {
        for c in ["cranfield", "nfcorpus", "scifact"] {
            add("FuzzCorpusLine", "\(c)-doc", try Self.shortestLines("\(sharedDirectory)/data/\(c)/corpus.jsonl", 1, minimum: 60)[0])
        }
        add("FuzzCorpusLine", "nfcorpus-query", try Self.shortestLines("\(sharedDirectory)/data/nfcorpus/queries.jsonl", 1)[0])
        add("FuzzCorpusLine", "escapes-nested",
            #"{"_id": "q\ud83d\ude00", "title": "\u00c9t\u00e9", "text": "a\tb\/c", "meta": {"k": [1, 2.5e3, null, true, false]}}"#)
    }

    /// The postings of scifact's most frequent dimension among its first 300 documents, as the
    /// writer blocks them (128, then the rest), under the harness's fixed key.
    mutating func postingBlocks() throws {
        let docs = try Self.vectors("scifact", limit: 300)
        var frequency: [UInt32: Int] = [:]
        for (_, v) in docs { for d in v.dimensions { frequency[d, default: 0] += 1 } }
        let term = frequency.max { ($0.value, $1.key) < ($1.value, $0.key) }!.key
        var postings: [(UInt32, Float)] = []
        for (i, (_, v)) in docs.enumerated() {
            if let j = v.dimensions.firstIndex(of: term) { postings.append((1000 + UInt32(i) * 3, v.weights[j])) }
        }
        let codec = ZstdCodec()
        func block(_ p: ArraySlice<(UInt32, Float)>, firstDocument: UInt32? = nil, key c: UInt32 = 1, _ f: UInt32 = 2, _ t: UInt32 = 2054) throws -> (key: [UInt8], bytes: [UInt8]) {
            let shift = (firstDocument ?? p.first!.0) &- p.first!.0
            let documents = p.map { $0.0 &+ shift }
            let key = Keys.postingBlock(c, f, t, documents[0])
            return (key, try PostingBlock.encode(key: key, documents: documents[...], weights: p.map(\.1)[...], codec: codec))
        }
        let full = try block(postings.prefix(128), firstDocument: 1000)  // compressed
        add("FuzzPostingBlock", "term-128-zstd", [0] + full.bytes)
        let rest = try block(postings.dropFirst(128).prefix(9), firstDocument: 1000)  // plain
        add("FuzzPostingBlock", "term-9-plain", [0] + rest.bytes)
        let one = try block(postings.prefix(1), firstDocument: 1000)
        add("FuzzPostingBlock", "one-posting-resealed", [1] + one.bytes)
        let keyed = try block(postings.dropFirst(40).prefix(20), key: 3, 1, 7)
        add("FuzzPostingBlock", "own-key", [2, UInt8(keyed.key.count)] + keyed.key + keyed.bytes)
        let top = try block([(UInt32.max - 2, 0.5), (UInt32.max, 9.5)], firstDocument: UInt32.max - 2, key: 1, 2, 2054)
        add("FuzzPostingBlock", "largest-ids-own-key", [3, UInt8(top.key.count)] + top.key + top.bytes)
    }

    /// One valid record per decoder under the harness's fixed keys (mode byte `which << 2`),
    /// the same bodies for sealing (mode bit 0), and one with its own key (bit 1).
    mutating func records() throws {
        let corpus = try Self.shortestLines("\(sharedDirectory)/data/scifact/corpus.jsonl", 1)[0]
        let object = try JSONSerialization.jsonObject(with: Data(corpus.utf8)) as! [String: Any]
        let payload = Array(try JSONSerialization.data(withJSONObject: object.filter { $0.key != "_id" }, options: [.sortedKeys]))
        let document = Records.document(key: Keys.document(1, 42), externalId: "doc-42", payload: payload)
        add("FuzzRecords", "document", [0 << 2] + document)
        add("FuzzRecords", "document-no-payload-sealed", [0 << 2 | 1] + Array(Records.document(key: [], externalId: "d", payload: nil).dropFirst(4)))
        add("FuzzRecords", "external-id", [1 << 2] + Records.externalId(key: Keys.externalId(1, "doc-42"), document: 42))
        add("FuzzRecords", "term", [2 << 2] + Records.term(key: Keys.term(1, 2, 2054), .init(maxWeight: 2.5, postings: 300, blocks: 3)))
        let vector = try Self.vectors("scifact", limit: 300).min { $0.vector.count < $1.vector.count }!.vector
        add("FuzzRecords", "forward-row", [3 << 2] + Records.forwardRow(key: Keys.forwardRow(1, 2, 42), vector, encoding: .plain))
        add("FuzzRecords", "forward-row-packed", [3 << 2] + Records.forwardRow(key: Keys.forwardRow(1, 2, 42), vector, encoding: .packed))
        let wide = try SparseVector([(0, 1), (2054, 0.5), (1 << 20, 2), (UInt32.max - 1, 3)] as [(UInt32, Float)])
        add("FuzzRecords", "forward-row-wide-sealed", [4 << 2 | 1] + Array(Records.forwardRow(key: [], wide, encoding: .plain).dropFirst(4)))
        add("FuzzRecords", "forward-row-wide-packed-sealed", [4 << 2 | 1] + Array(Records.forwardRow(key: [], wide, encoding: .packed).dropFirst(4)))
        let key = Keys.forwardRow(9, 1, 7)
        add("FuzzRecords", "forward-row-own-key", [3 << 2 | 2, UInt8(key.count)] + key + Records.forwardRow(key: key, try SparseVector([(5, 1), (6, 2)] as [(UInt32, Float)]), encoding: .plain))
        // A group (format 4) of three real rows at documents 42, 43 and 46, under the harness's key.
        var group = ForwardRows.GroupBuilder(collection: 1, field: 2)
        for (doc, v) in zip([42, 43, 46] as [UInt32], try Self.vectors("scifact", limit: 3).map(\.vector)) {
            try Records.forwardRow(key: Keys.forwardRow(1, 2, doc), v, encoding: .packed).withUnsafeBytes { try group.add(document: doc, sealedRow: $0) }
        }
        group.finish()
        add("FuzzRecords", "forward-row-group", [5 << 2] + group.done[0].value)
    }

    /// Tensors of the splade fixture recipe in each float dtype, an I64 tensor, metadata: as a
    /// whole file (mode 1) and as header + NUL + data (mode 0, the harness frames it).
    mutating func safeTensors() throws {
        let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturesDirectory + "/splade/model.safetensors.recipe.json"))) as! [[String: Any]]
        func values(_ name: String) -> [Float] {
            let t = list.first { $0["name"] as? String == name }!
            let count = (t["shape"] as! [NSNumber]).map(\.intValue).reduce(1, *)
            return recipeValues(seed: (t["seed"] as! NSNumber).uint64Value, count: count, mean: (t["mean"] as! NSNumber).doubleValue, scale: (t["scale"] as! NSNumber).doubleValue)
        }
        let bias = values("bert.embeddings.LayerNorm.bias")
        let weight = values("bert.embeddings.LayerNorm.weight")
        let tokenType = values("bert.embeddings.token_type_embeddings.weight")
        func bytes<T>(_ a: [T]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }
        let tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = [
            ("bert.embeddings.LayerNorm.bias", "F32", [16], bytes(bias)),
            ("bert.embeddings.LayerNorm.weight", "F16", [2, 8], bytes(weight.map { Float16($0).bitPattern })),
            ("bert.embeddings.token_type_embeddings.weight", "BF16", [2, 16], bytes(tokenType.map { UInt16($0.bitPattern >> 16) })),
            ("pooler.dense.bias", "F64", [4], bytes(bias.prefix(4).map(Double.init))),
            ("position_ids", "I64", [1, 4], bytes([Int64](0..<4))),
            ("empty", "F32", [0, 3], []),
        ]
        try withTemporaryDirectory { dir in
            try writeSafeTensors(tensors, to: dir + "/m.safetensors")
            add("FuzzSafeTensors", "fixture-file", [1] + Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors"))))
        }
        var header = #"{"__metadata__":{"format":"pt"},"#
        var offset = 0
        var data: [UInt8] = []
        for t in tensors.prefix(3) {
            header += #""\#(t.name)":{"dtype":"\#(t.dtype)","shape":\#(t.shape),"data_offsets":[\#(offset),\#(offset + t.bytes.count)]},"#
            offset += t.bytes.count
            data += t.bytes
        }
        header = String(header.dropLast()) + "}"
        add("FuzzSafeTensors", "framed-header", [0] + Array(header.utf8) + [0] + data)
        add("FuzzSafeTensors", "framed-i8-bool", [0] + Array(#"{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"BOOL","shape":[],"data_offsets":[2,3]}}"#.utf8) + [0, 1, 255, 1])
    }

    /// The fixture tokenizer cut to its special tokens, ASCII and a few other characters
    /// (renumbered densely), in variants of its options.
    mutating func tokenizerFiles() throws {
        let path = fixturesDirectory + "/splade/tokenizer.json"
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var model = root["model"] as! [String: Any]
        let vocab = (model["vocab"] as! [String: NSNumber]).sorted { $0.value.intValue < $1.value.intValue }
        var kept = vocab.filter { $0.value.intValue < 5 || ($0.key.unicodeScalars.count == 1 && $0.key.unicodeScalars.first!.isASCII && $0.key.first!.isLetter) }.map(\.key)
        let other = vocab.filter { !$0.key.unicodeScalars.first!.isASCII }.map(\.key)
        kept += stride(from: 0, to: other.count, by: max(1, other.count / 12)).map { other[$0] }
        kept += ["##s", "##ing", "the", "capital", "of"]
        model["vocab"] = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        root["model"] = model
        root["post_processor"] = nil
        root["decoder"] = nil
        func json(_ o: [String: Any]) throws -> [UInt8] { Array(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) }
        add("FuzzTokenizerJSON", "fixture-trimmed", try json(root))
        var truncated = root
        truncated["truncation"] = ["max_length": 8, "direction": "Right", "strategy": "LongestFirst", "stride": 0]
        truncated["normalizer"] = ["type": "BertNormalizer", "clean_text": false, "handle_chinese_chars": false, "strip_accents": true, "lowercase": false]
        add("FuzzTokenizerJSON", "truncation-normalizer", try json(truncated))
        add("FuzzTokenizerJSON", "minimal",
            ###"{"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":5,"vocab":{"[UNK]":0,"a":1,"##b":2}},"added_tokens":[{"id":3,"content":"<x>"}]}"###)
    }

    mutating func tokenizerTexts() throws {
        let corpus = try Self.shortestLines("\(sharedDirectory)/data/scifact/corpus.jsonl", 1)[0]
        let object = try JSONSerialization.jsonObject(with: Data(corpus.utf8)) as! [String: Any]
        let text = ((object["title"] as? String ?? "") + " " + (object["text"] as? String ?? "")).prefix(400)
        add("FuzzTokenizer", "scifact-doc", [0] + Array(text.utf8))
        let query = try Self.shortestLines("\(sharedDirectory)/data/nfcorpus/queries.jsonl", 1)[0]
        add("FuzzTokenizer", "nfcorpus-query-max8", [5 << 1] + Array(((try JSONSerialization.jsonObject(with: Data(query.utf8)) as! [String: Any])["text"] as! String).utf8))
        let mixed = "[CLS] Naïve café, ŒUVRE ǅ ß — 東京タワー 😀 ﬁne\u{200B}zero\u{0}nul\tend [MASK]##s unaffable"
        add("FuzzTokenizer", "mixed-utf8-max128", [6 << 1] + Array(mixed.utf8))
        add("FuzzTokenizer", "mixed-utf16", [1] + Array(mixed.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        add("FuzzTokenizer", "long-word-invalid-utf8-max2", [3 << 1] + Array(String(repeating: "a", count: 120).utf8) + [0x20, 0xC3, 0x28, 0xFF, 0xE2, 0x82])
    }
}
