import Foundation
import SparseDB
import SparseDBCore
import SparseDBEncoders
import SparseDBTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile model folders, built from the tiny fixtures: each must be refused when the model is
/// loaded with a `.model` error naming the file and the key (or tensor), never a crash, a huge
/// allocation, a hang or silently wrong vectors. One test per class of damage; these run in the
/// release build too (`swift test -c release --filter HostileModelTests`).
@Suite struct HostileModelTests {
    // MARK: helpers

    /// Loading `folder` fails with a `.model` error whose message contains every one of `parts`.
    func expectRefused(_ folder: String, _ parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: SparseDBError.self, sourceLocation: sourceLocation) {
            let encoder = try TextEncoder(path: folder)
            // Should it load, make it run, so a crash or an empty vector shows up here.
            if encoder.producesSparseVectors {
                _ = try encoder.encode(["hello world the capital of france"], task: .document)
            } else {
                _ = try encoder.embed(["hello world the capital of france"], task: .document)
            }
        }
        #expect(error?.code == .model, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        for part in parts {
            #expect(error?.message.contains(part) == true, "'\(part)' not in: \(error?.message ?? "no error")", sourceLocation: sourceLocation)
        }
    }

    func readJSON(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    func writeJSON(_ object: Any, _ path: String) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    /// Edits the JSON object in `path`.
    func edit(_ path: String, _ change: (inout [String: Any]) -> Void) throws {
        var object = try readJSON(path)
        change(&object)
        try writeJSON(object, path)
    }

    /// Runs `body` on a fresh copy of fixture `family` (weights materialized) for each case.
    func eachCase<T>(_ family: String, _ cases: [T], _ body: (String, T) throws -> Void) throws {
        for c in cases {
            try withTemporaryDirectory { dir in try body(try materializeFixture(family, in: dir), c) }
        }
    }

    // MARK: token ids

    /// A negative or huge id in tokenizer.json (vocab or added_tokens) used to index the
    /// embedding table unchecked: SIGSEGV in the release build. Ids must lie in 0..<(number of
    /// tokens), and below the rows of the table they index, for every family.
    @Test func tokenIdsOutsideTheTables() throws {
        let vocabCases: [(family: String, file: String, id: Any)] = [
            ("splade", "tokenizer.json", -5), ("splade", "tokenizer.json", 2_000_000_000), ("splade", "tokenizer.json", 3_000_000_000),
            ("splade", "tokenizer.json", 7.5), ("splade", "tokenizer.json", "12"),
            ("static", "tokenizer.json", -1), ("inference-free", "query_0_SparseStaticEmbedding/tokenizer.json", -1),
            ("inference-free", "document_0_MLMTransformer/tokenizer.json", 1_000_000), ("csr", "tokenizer.json", -3),
        ]
        for c in vocabCases {
            try withTemporaryDirectory { dir in
                let folder = try materializeFixture(c.family, in: dir)
                try edit(folder + "/" + c.file) { t in
                    var model = t["model"] as! [String: Any]
                    var vocab = model["vocab"] as! [String: Any]
                    vocab["hostile"] = c.id
                    model["vocab"] = vocab
                    t["model"] = model
                }
                expectRefused(folder, [c.file, "'model.vocab'", "'hostile'"])
            }
        }
        // An added token whose id the tokenizer allows (ids are dense) but the embedding table has no row for.
        for family in ["splade", "static", "csr"] {
            try withTemporaryDirectory { dir in
                let folder = try materializeFixture(family, in: dir)
                try edit(folder + "/tokenizer.json") { t in
                    var added = t["added_tokens"] as! [[String: Any]]
                    added.append(["id": 1000, "content": "<extra>", "special": true, "normalized": false])
                    t["added_tokens"] = added
                }
                expectRefused(folder, ["tokenizer.json", "'added_tokens[5].id'", "rows"])
            }
        }
        for id in [-7, Int(Int32.max) + 1] {
            try withTemporaryDirectory { dir in
                let folder = try materializeFixture("splade", in: dir)
                try edit(folder + "/tokenizer.json") { t in
                    var added = t["added_tokens"] as! [[String: Any]]
                    added[4]["id"] = id
                    t["added_tokens"] = added
                }
                expectRefused(folder, ["tokenizer.json", "'added_tokens[4].id'", "[MASK]"])
            }
        }
    }

    // MARK: config.json

    /// `num_hidden_layers: 1e12` used to preallocate 176 TB of layers (SIGABRT); a smaller wrong
    /// count silently dropped layers. The count must equal the layers stored.
    @Test func layerCountMustMatchTheStoredLayers() throws {
        try eachCase("splade", [1e12, 1, 3, 0, -2, 2.5] as [Double]) { folder, n in
            try edit(folder + "/config.json") { $0["num_hidden_layers"] = n }
            expectRefused(folder, ["config.json", "'num_hidden_layers'"])
        }
        try eachCase("inference-free", [1e12, 1, 3] as [Double]) { folder, n in
            try edit(folder + "/document_0_MLMTransformer/config.json") { $0["n_layers"] = n }
            expectRefused(folder, ["document_0_MLMTransformer/config.json", "'n_layers'"])
        }
    }

    /// Every dimension in config.json is range-checked, then must agree with the stored tensors.
    @Test func configDimensionsMustMatchTheTensors() throws {
        let cases: [(key: String, value: Any)] = [
            ("hidden_size", 1e12), ("hidden_size", 32), ("hidden_size", -16), ("hidden_size", "16"), ("hidden_size", true),
            ("num_attention_heads", 0), ("num_attention_heads", 3), ("num_attention_heads", 1e12),
            ("intermediate_size", 64), ("intermediate_size", 1e15), ("vocab_size", 999), ("vocab_size", -1000),
            ("max_position_embeddings", 128), ("max_position_embeddings", 1), ("max_position_embeddings", 1e12),
            ("type_vocab_size", 5), ("type_vocab_size", 0),
        ]
        try eachCase("splade", cases) { folder, c in
            try edit(folder + "/config.json") { $0[c.key] = c.value }
            expectRefused(folder, ["config.json", "'\(c.key)'"])
        }
        let distil: [(key: String, value: Any)] = [("dim", 32), ("n_heads", 5), ("hidden_dim", 16), ("vocab_size", 1e9), ("max_position_embeddings", 63)]
        try eachCase("inference-free", distil) { folder, c in
            try edit(folder + "/document_0_MLMTransformer/config.json") { $0[c.key] = c.value }
            expectRefused(folder, ["config.json", "'\(c.key)'"])
        }
    }

    /// A negative `layer_norm_eps` made every LayerNorm NaN and the vectors silently empty.
    @Test func layerNormEpsMustBeSmallAndPositive() throws {
        try eachCase("splade", [-1.0, -1e-12, 0.0, 1.0, 5.0] as [Double]) { folder, eps in
            try edit(folder + "/config.json") { $0["layer_norm_eps"] = eps }
            expectRefused(folder, ["config.json", "'layer_norm_eps'"])
        }
        try eachCase("csr", ["1e-12", "NaN"]) { folder, eps in
            let path = folder + "/config.json"
            let text = try String(contentsOfFile: path, encoding: .utf8)
                .replacingOccurrences(of: "\"layer_norm_eps\": 1e-12", with: "\"layer_norm_eps\": \(eps == "NaN" ? "NaN" : "\"1e-12\"")")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            // JSON has no NaN: the parser refuses the file before the key is read.
            expectRefused(folder, eps == "NaN" ? ["config.json", "not valid JSON"] : ["config.json", "'layer_norm_eps'"])
        }
    }

    // MARK: module configurations

    /// CSR: `k` within 1...hidden_dim, `input_dim` the transformer's width, `hidden_dim` the
    /// stored matrix's rows.
    @Test func sparseAutoEncoderSettings() throws {
        let cases: [(key: String, value: Any)] = [
            ("k", 0), ("k", -1), ("k", 65), ("k", 1e12), ("k", 2.5), ("input_dim", 32), ("input_dim", -16),
            ("hidden_dim", 128), ("hidden_dim", 1e12), ("hidden_dim", 0), ("normalize", "yes"),
        ]
        try eachCase("csr", cases) { folder, c in
            try edit(folder + "/2_SparseAutoEncoder/config.json") { $0[c.key] = c.value }
            expectRefused(folder, ["2_SparseAutoEncoder/config.json", "'\(c.key)'"])
        }
    }

    /// Pooling configurations: a single supported mode, the transformer's width, typed values.
    @Test func poolingConfigurations() throws {
        // CSR needs CLS pooling; combined modes, other widths and bad types are refused.
        let csr: [(config: [String: Any], key: String)] = [
            (["embedding_dimension": 16, "pooling_mode": "mean"], "mean"),
            (["embedding_dimension": 16, "pooling_mode": ["cls", "mean"]], "pooling modes"),
            (["embedding_dimension": 32, "pooling_mode": "cls"], "'embedding_dimension'"),
            (["embedding_dimension": 16, "pooling_mode": 7], "'pooling_mode'"),
            (["word_embedding_dimension": 16, "pooling_mode_cls_token": "true"], "'pooling_mode_cls_token'"),
            (["word_embedding_dimension": 16, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true], "pooling modes"),
        ]
        try eachCase("csr", csr) { folder, c in
            try writeJSON(c.config, folder + "/1_Pooling/config.json")
            expectRefused(folder, ["1_Pooling/config.json", c.key])
        }
        // Dense (Transformer + Pooling): only cls and mean are implemented.
        let dense: [(config: [String: Any], key: String)] = [
            (["embedding_dimension": 16, "pooling_mode": "max"], "max"),
            (["embedding_dimension": 16, "pooling_mode": "mean_sqrt_len_tokens"], "mean_sqrt_len_tokens"),
            (["embedding_dimension": 16, "pooling_mode": "weightedmean"], "weightedmean"),
            (["embedding_dimension": 16, "pooling_mode": "lasttoken"], "lasttoken"),
            (["word_embedding_dimension": 16, "pooling_mode_max_tokens": true], "'pooling_mode_max_tokens'"),
            (["word_embedding_dimension": 16, "pooling_mode_weightedmean_tokens": true], "'pooling_mode_weightedmean_tokens'"),
            (["embedding_dimension": 16, "pooling_mode": "mean", "include_prompt": 1], "'include_prompt'"),
        ]
        try eachCase("csr", dense) { folder, c in
            try makeDense(folder)
            try writeJSON(c.config, folder + "/1_Pooling/config.json")
            expectRefused(folder, ["1_Pooling/config.json", c.key])
        }
        // Leaving the prompt out of pooling is not implemented: refused when there is a prompt.
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("csr", in: dir)
            try makeDense(folder)
            try writeJSON(["embedding_dimension": 16, "pooling_mode": "mean", "include_prompt": false], folder + "/1_Pooling/config.json")
            #expect(try TextEncoder(path: folder).kind == .dense)  // no prompt: fine
            try edit(folder + "/config_sentence_transformers.json") { $0["prompts"] = ["query": "query: ", "document": ""] }
            expectRefused(folder, ["1_Pooling/config.json", "'include_prompt'"])
        }
        // SpladePooling.
        let splade: [(key: String, value: Any)] = [
            ("pooling_strategy", "mean"), ("pooling_strategy", 7), ("activation_function", "gelu"), ("embedding_dimension", 999),
        ]
        try eachCase("splade", splade) { folder, c in
            try edit(folder + "/1_SpladePooling/config.json") { $0[c.key] = c.value }
            expectRefused(folder, ["1_SpladePooling/config.json", "'\(c.key)'"])
        }
    }

    /// Turns the CSR fixture into a dense Transformer + Pooling (+ Normalize) model.
    func makeDense(_ folder: String) throws {
        try writeJSON(
            [
                ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
                ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
                ["idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"],
            ], folder + "/modules.json")
    }

    /// Sequence lengths: `max_seq_length`, `model_max_length` and tokenizer.json's truncation
    /// `max_length` — negative, zero, too small for [CLS]/[SEP], or huge — are refused (a
    /// negative truncation used to trap in `prefix`; a negative `max_seq_length` was ignored).
    @Test func sequenceLengths() throws {
        try eachCase("splade", [-1, 0, 1, 65, 1_000_000_000_000] as [Int]) { folder, n in
            try edit(folder + "/sentence_bert_config.json") { $0["max_seq_length"] = n }
            expectRefused(folder, ["sentence_bert_config.json", "'max_seq_length'"])
        }
        try eachCase("csr", [-5, 0, 1e12, 2.5, "48"] as [Any]) { folder, n in
            try edit(folder + "/tokenizer_config.json") { $0["model_max_length"] = n }
            expectRefused(folder, ["tokenizer_config.json", "'model_max_length'"])
        }
        try eachCase("static", [-1, 0, 1e12] as [Double]) { folder, n in
            try edit(folder + "/tokenizer.json") { $0["truncation"] = ["max_length": n, "strategy": "LongestFirst", "stride": 0] }
            expectRefused(folder, ["tokenizer.json", "'truncation.max_length'"])
        }
        // transformers' "no limit" sentinel is accepted, and leaves the position table as the limit.
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("csr", in: dir)
            try edit(folder + "/tokenizer_config.json") { $0["model_max_length"] = 1e30 }
            let encoder = try TextEncoder(path: folder)
            #expect(encoder.tokenize(String(repeating: "the ", count: 200), task: .document).count == 64)
        }
    }

    /// StaticEmbedding: a 2-D table of width ≥ 1 with a row for every token id (a zero width
    /// used to divide by zero when encoding).
    @Test func staticEmbeddingTable() throws {
        let shapes: [[Int]] = [[1000, 0], [0, 32], [1000], [10, 32], [1000, 2, 16]]
        try eachCase("static", shapes) { folder, shape in
            let count = shape.reduce(1, *)
            try writeSafeTensors([("embedding.weight", "F32", shape, [UInt8](repeating: 0, count: count * 4))], to: folder + "/model.safetensors")
            expectRefused(folder, ["model.safetensors", "'embedding.weight'"])
        }
        // IDF weights: one per token.
        try eachCase("inference-free", [[10], [1000, 1]] as [[Int]]) { folder, shape in
            let path = folder + "/query_0_SparseStaticEmbedding/model.safetensors"
            try writeSafeTensors([("weight", "F32", shape, [UInt8](repeating: 0, count: shape.reduce(1, *) * 4))], to: path)
            expectRefused(folder, ["query_0_SparseStaticEmbedding/model.safetensors", "'weight'"])
        }
    }

    // MARK: safetensors

    /// Writes a safetensors file with a hand-made header (which may lie) and `body` bytes.
    func writeRaw(header: String, body: Int, to path: String) throws {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        out += json
        out += [UInt8](repeating: 0, count: body)
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// A header whose JSON lies about dtype, shape or offsets is refused, naming the tensor.
    @Test func safeTensorsHeaderLies() throws {
        let cases: [(header: String, body: Int, mention: String)] = [
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}"#, 16, "'t'"),  // dtype/shape vs bytes
            (#"{"t": {"dtype": "F64", "shape": [4], "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}"#, 16, "'t'"),  // past the end
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0.5, 16.5]}}"#, 17, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1e30]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [1e30], "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F64", "shape": [2147483648, 1073741824], "data_offsets": [0, 16]}}"#, 16, "'t'"),  // bytes overflow
            (#"{"t": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}}"#, 16, "'t'"),
            (#"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}"#, 16, "'t'"),
            (#"[1, 2, 3]"#, 0, "not a JSON object"),
            (String(repeating: "[", count: 600) + String(repeating: "]", count: 600), 0, "not valid JSON"),
            (#"{"t": {"#, 0, "not valid JSON"),
        ]
        try eachCase("static", cases) { folder, c in
            let path = folder + "/model.safetensors"
            try writeRaw(header: c.header, body: c.body, to: path)
            expectRefused(folder, ["model.safetensors", c.mention])
        }
        // A header length beyond the file.
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            var bytes = withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) }
            bytes += Array("{}      ".utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
            expectRefused(folder, ["model.safetensors", "header length"])
        }
        // A tensor of the right shape but a dtype that is not float.
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            try writeSafeTensors([("embedding.weight", "I32", [1000, 32], [UInt8](repeating: 0, count: 128_000))], to: folder + "/model.safetensors")
            expectRefused(folder, ["model.safetensors", "'embedding.weight'", "I32"])
        }
    }

    // MARK: tokenizer.json

    /// tokenizer.json that is huge, deeply nested or holds non-string tokens or wrongly typed
    /// settings (an empty added token used to trap on the first text).
    @Test func tokenizerFileShape() throws {
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/tokenizer.json"))
            try handle.truncate(atOffset: 65 << 20)  // sparse: nothing is written
            try handle.close()
            expectRefused(folder, ["tokenizer.json", "bytes"])
        }
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            let nested = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            let path = folder + "/tokenizer.json"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try text.replacingOccurrences(of: "\"padding\": null", with: "\"padding\": \(nested)").write(toFile: path, atomically: true, encoding: .utf8)
            #expect(text.contains("\"padding\": null"))
            expectRefused(folder, ["tokenizer.json", "not valid JSON"])
        }
        let cases: [(change: (inout [String: Any]) -> Void, mention: String)] = [
            ({ t in var a = t["added_tokens"] as! [[String: Any]]; a[0]["content"] = 42; t["added_tokens"] = a }, "'added_tokens[0].content'"),
            ({ t in var a = t["added_tokens"] as! [[String: Any]]; a[0]["content"] = ""; t["added_tokens"] = a }, "'added_tokens[0].content'"),
            ({ t in var a = t["added_tokens"] as! [Any]; a[1] = "[UNK]"; t["added_tokens"] = a }, "'added_tokens[1]'"),
            ({ t in t["added_tokens"] = ["[PAD]": 0] }, "'added_tokens'"),
            ({ t in var m = t["model"] as! [String: Any]; m["vocab"] = ["[UNK]", "a"]; t["model"] = m }, "'model.vocab'"),
            ({ t in var m = t["model"] as! [String: Any]; m["unk_token"] = 100; t["model"] = m }, "'model.unk_token'"),
            ({ t in var m = t["model"] as! [String: Any]; m["unk_token"] = "<unk>"; t["model"] = m }, "'model.unk_token'"),
            ({ t in var m = t["model"] as! [String: Any]; m["max_input_chars_per_word"] = -1; t["model"] = m }, "'model.max_input_chars_per_word'"),
            ({ t in var m = t["model"] as! [String: Any]; m["continuing_subword_prefix"] = ["#"]; t["model"] = m }, "'model.continuing_subword_prefix'"),
            ({ t in var m = t["model"] as! [String: Any]; m["type"] = "BPE"; t["model"] = m }, "'model.type'"),
            ({ t in var n = t["normalizer"] as! [String: Any]; n["lowercase"] = "yes"; t["normalizer"] = n }, "'normalizer.lowercase'"),
            ({ t in t["truncation"] = ["max_length": 8, "direction": "Left"] }, "'truncation.direction'"),
        ]
        try eachCase("static", Array(cases.indices)) { folder, i in
            try edit(folder + "/tokenizer.json", cases[i].change)
            expectRefused(folder, ["tokenizer.json", cases[i].mention])
        }
        // Transformer inputs need [CLS] and [SEP].
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("splade", in: dir)
            try edit(folder + "/tokenizer.json") { t in
                var a = t["added_tokens"] as! [[String: Any]]
                a.remove(at: 2)
                t["added_tokens"] = a
                var m = t["model"] as! [String: Any]
                var v = m["vocab"] as! [String: Any]
                v["[CLS]"] = nil
                v["[cls]"] = 2
                m["vocab"] = v
                t["model"] = m
            }
            expectRefused(folder, ["tokenizer.json", "'[CLS]'"])
        }
        // Prompts must be strings (a number used to drop every prompt silently).
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("splade", in: dir)
            try edit(folder + "/config_sentence_transformers.json") { $0["prompts"] = ["query": 5, "document": ""] }
            expectRefused(folder, ["config_sentence_transformers.json", "'prompts.query'"])
        }
    }

    // MARK: folders and links

    /// modules.json and router_config.json may only name folders inside the model folder, and
    /// those must exist (Normalize excepted: it has no files).
    @Test func moduleFoldersStayInside() throws {
        for path in ["../../etc", "/etc", "1_Pooling/../../..", "1_Missing"] {
            try withTemporaryDirectory { dir in
                let folder = try materializeFixture("csr", in: dir)
                try edit(folder + "/modules.json", index: 1) { $0["path"] = path }
                expectRefused(folder, ["modules.json", "'path' of module 1", path])
            }
        }
        try withTemporaryDirectory { dir in
            // A module folder that is a symlink to a folder elsewhere.
            let folder = try materializeFixture("csr", in: dir)
            let outside = dir + "/elsewhere"
            try FileManager.default.moveItem(atPath: folder + "/1_Pooling", toPath: outside)
            try FileManager.default.createSymbolicLink(atPath: folder + "/1_Pooling", withDestinationPath: outside)
            expectRefused(folder, ["modules.json", "'path' of module 1", "outside the model folder"])
        }
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("csr", in: dir)
            try edit(folder + "/modules.json", index: 1) { $0["path"] = 5 }
            expectRefused(folder, ["modules.json", "'path' of module 1"])
        }
        for name in ["../query_0_SparseStaticEmbedding", "/tmp", "missing_module"] {
            try withTemporaryDirectory { dir in
                let folder = try materializeFixture("inference-free", in: dir)
                try edit(folder + "/router_config.json") { r in
                    var types = r["types"] as! [String: Any]
                    var structure = r["structure"] as! [String: Any]
                    types[name] = types["query_0_SparseStaticEmbedding"]
                    structure["query"] = [name]
                    r["types"] = types
                    r["structure"] = structure
                }
                expectRefused(folder, ["router_config.json", name])
            }
        }
        // Normalize without a folder is fine (all-MiniLM-L6-v2 ships none).
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("csr", in: dir)
            try makeDense(folder)
            try writeJSON(["embedding_dimension": 16, "pooling_mode": "mean"], folder + "/1_Pooling/config.json")
            let encoder = try TextEncoder(path: folder)
            #expect(encoder.kind == .dense && !encoder.producesSparseVectors && encoder.dimensions == 16)
        }
    }

    func edit(_ path: String, index: Int, _ change: (inout [String: Any]) -> Void) throws {
        var list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [[String: Any]]
        change(&list[index])
        try writeJSON(list, path)
    }

    /// Symlink loops and special files: errors (or, for the fingerprint, skipped), never a hang.
    @Test func symlinkLoopsAndSpecialFiles() throws {
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            let fm = FileManager.default
            try fm.removeItem(atPath: folder + "/tokenizer.json")
            try fm.createSymbolicLink(atPath: folder + "/tokenizer.json", withDestinationPath: folder + "/loop.json")
            try fm.createSymbolicLink(atPath: folder + "/loop.json", withDestinationPath: folder + "/tokenizer.json")
            expectRefused(folder, ["tokenizer.json", "symbolic link loop"])
        }
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("csr", in: dir)
            // A module folder that links to itself.
            try FileManager.default.removeItem(atPath: folder + "/1_Pooling")
            try FileManager.default.createSymbolicLink(atPath: folder + "/1_Pooling", withDestinationPath: "1_Pooling")
            expectRefused(folder, ["modules.json", "1_Pooling"])
        }
        try withTemporaryDirectory { dir in
            // A FIFO as a configuration file: reading it would block forever.
            let folder = try materializeFixture("csr", in: dir)
            try FileManager.default.removeItem(atPath: folder + "/2_SparseAutoEncoder/config.json")
            #expect(mkfifo(folder + "/2_SparseAutoEncoder/config.json", 0o600) == 0)
            expectRefused(folder, ["2_SparseAutoEncoder/config.json", "not a regular file"])
        }
        try withTemporaryDirectory { dir in
            // Loops and special files the model does not use are left alone by the fingerprint.
            let folder = try materializeFixture("static", in: dir)
            let reference = try TextEncoder(path: folder).checksum
            try FileManager.default.createSymbolicLink(atPath: folder + "/up", withDestinationPath: ".")
            try FileManager.default.createSymbolicLink(atPath: folder + "/self.json", withDestinationPath: "self.json")
            #expect(mkfifo(folder + "/pipe.json", 0o600) == 0)
            let encoder = try TextEncoder(path: folder)
            #expect(encoder.checksum == reference)
            #expect(try encoder.embed(["hello"], task: .query)[0].count == 32)
        }
    }
}
