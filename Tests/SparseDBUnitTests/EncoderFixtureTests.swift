import Foundation
import SparseDB
import SparseDBCore
import SparseDBEncoders
import SparseDBTestSupport
import Testing

/// The encoder families on tiny seeded models (Tests/Fixtures) against sentence-transformers'
/// recorded outputs: self-contained, no ../shared and no downloaded model.

@Suite struct EncoderTests {
    static let families = ["splade", "splade-sum", "inference-free", "csr", "static"]

    func sparse(_ any: Any) -> [UInt32: Float] {
        var out: [UInt32: Float] = [:]
        for (k, v) in any as! [String: Any] { out[UInt32(k)!] = (v as! NSNumber).floatValue }
        return out
    }

    func maxDifference(_ a: [UInt32: Float], _ b: SparseVector) -> Float {
        var worst: Float = 0
        var seen = Set<UInt32>()
        for (d, w) in zip(b.dimensions, b.weights) {
            worst = max(worst, abs(w - (a[d] ?? 0)))
            seen.insert(d)
        }
        for (d, w) in a where !seen.contains(d) { worst = max(worst, abs(w)) }
        return worst
    }

    /// Every family matches sentence-transformers' outputs for its fixture within 1e-4 a dimension.
    @Test(arguments: families)
    func fixtureMatchesSentenceTransformers(family: String) throws {
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture(family, in: dir)
            let encoder = try TextEncoder(path: folder)
            let expected = try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(fixturesDirectory)/\(family).expected.json"))) as! [String: Any]
            let texts = expected["texts"] as! [String]
            for task in [TextEncoder.Task.query, .document] {
                let rows = expected[task.rawValue] as! [Any]
                if family == "static" {
                    #expect(!encoder.producesSparseVectors)
                    let got = try encoder.embed(texts, task: task)
                    for (i, row) in rows.enumerated() {
                        let want = (row as! [NSNumber]).map(\.floatValue)
                        let diff = zip(want, got[i]).map { abs($0 - $1) }.max() ?? 0
                        #expect(want.count == got[i].count && diff <= 1e-4, "\(family) \(task) text \(i): \(diff)")
                    }
                    // Matryoshka truncation keeps the leading dimensions.
                    #expect(try encoder.embed([texts[0]], task: task, truncateDimensions: 8)[0] == Array(got[0].prefix(8)))
                } else {
                    let got = try encoder.encode(texts, task: task)
                    for (i, row) in rows.enumerated() {
                        let diff = maxDifference(sparse(row), got[i])
                        #expect(diff <= 1e-4, "\(family) \(task) text \(i) '\(texts[i].prefix(30))': max diff \(diff)")
                    }
                }
            }
        }
    }

    @Test func familiesAreRecognised() throws {
        try withTemporaryDirectory { dir in
            let kinds: [String: TextEncoder.Kind] = [
                "splade": .splade, "splade-sum": .splade, "inference-free": .inferenceFree, "csr": .csr, "static": .staticEmbedding,
            ]
            for (family, kind) in kinds {
                #expect(try TextEncoder(path: materializeFixture(family, in: dir)).kind == kind)
            }
            let csr = try TextEncoder(path: dir + "/csr")
            #expect(csr.defaultMaxActiveDims == 8)
            #expect(try csr.encode(["a protein kinase"], task: .document, maxActiveDims: 3)[0].count <= 3)
        }
    }

    @Test func maxActiveDimsKeepsTheLargest() throws {
        try withTemporaryDirectory { dir in
            let encoder = try TextEncoder(path: materializeFixture("splade", in: dir))
            let full = try encoder.encode(["The capital of France is Paris."], task: .document)[0]
            let top = try encoder.encode(["The capital of France is Paris."], task: .document, maxActiveDims: 5)[0]
            #expect(top.count == 5)
            #expect(Set(top.weights) == Set(full.weights.sorted(by: >).prefix(5)))
        }
    }

    @Test func badModelFoldersNameTheFileAndTensor() throws {
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("splade", in: dir)
            try FileManager.default.removeItem(atPath: folder + "/tokenizer.json")
            let e1 = #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
            #expect(e1?.code == .model && e1?.message.contains("tokenizer.json") == true)
        }
        try withTemporaryDirectory { dir in
            // Wrong shape: rewrite one tensor's recipe with a wrong shape.
            let folder = try materializeFixture("splade", in: dir)
            let path = folder + "/model.safetensors"
            var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
            let file = try SafeTensorsFile(path: path)
            for (name, info) in file.tensors {
                var values = try file.floats(name)
                var shape = info.shape
                if name.hasSuffix("attention.self.query.weight") && name.contains("layer.0") {
                    values.removeLast(16)
                    shape = [shape[0] - 1, shape[1]]
                }
                tensors.append((name, "F32", shape, values.withUnsafeBytes { Array($0) }))
            }
            try writeSafeTensors(tensors, to: path)
            let e = #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
            #expect(e?.message.contains("model.safetensors") == true && e?.message.contains("layer.0.attention.self.query.weight") == true, "\(e?.message ?? "")")
        }
        try withTemporaryDirectory { dir in
            // Unsupported dtype for a float tensor.
            let folder = try materializeFixture("csr", in: dir)
            let path = folder + "/2_SparseAutoEncoder/model.safetensors"
            let file = try SafeTensorsFile(path: path)
            var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
            for (name, info) in file.tensors {
                if name == "pre_bias" {
                    tensors.append((name, "I32", info.shape, [UInt8](repeating: 0, count: info.elementCount * 4)))
                } else if info.dtype == .f32 {
                    tensors.append((name, "F32", info.shape, try file.floats(name).withUnsafeBytes { Array($0) }))
                } else {
                    tensors.append((name, "I64", info.shape, [UInt8](repeating: 0, count: info.elementCount * 8)))
                }
            }
            try writeSafeTensors(tensors, to: path)
            let e = #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
            #expect(e?.message.contains("pre_bias") == true && e?.message.contains("I32") == true, "\(e?.message ?? "")")
        }
        try withTemporaryDirectory { dir in
            let folder = try materializeFixture("static", in: dir)
            try #"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Mystery"}]"#.write(
                toFile: folder + "/modules.json", atomically: true, encoding: .utf8)
            let e = #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
            #expect(e?.message.contains("Mystery") == true && e?.message.contains("modules.json") == true)
        }
        try withTemporaryDirectory { dir in
            // Truncated and hostile weight files are errors, not crashes.
            let folder = try materializeFixture("splade", in: dir)
            let path = folder + "/model.safetensors"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            for cut in [0, 7, 8, 100, bytes.count / 2] {
                try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
                #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
            }
            var huge = bytes
            huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64.max.littleEndian) { Data($0) })
            try huge.write(to: URL(fileURLWithPath: path))
            #expect(throws: SparseDBError.self) { try TextEncoder(path: folder) }
        }
    }
}

@Suite struct SafeTensorsTests {
    /// F16 and BF16 tensors are widened to f32 exactly.
    @Test func halfPrecisionTensors() throws {
        try withTemporaryDirectory { dir in
            let values: [Float] = [0, 1, -2.5, 0.333251953125, 65504, -0.0009765625]
            let f16 = values.flatMap { v -> [UInt8] in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }
            let bf16 = values.flatMap { v -> [UInt8] in withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { Array($0) } }
            let path = dir + "/t.safetensors"
            try writeSafeTensors([("a", "F16", [2, 3], f16), ("b", "BF16", [6], bf16)], to: path)
            let file = try SafeTensorsFile(path: path)
            #expect(try file.floats("a", shape: [2, 3]) == values.map { Float(Float16($0)) })
            #expect(try file.floats("b") == values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
            #expect(throws: SparseDBError.self) { try file.floats("a", shape: [3, 2]) }
            #expect(throws: SparseDBError.self) { try file.floats("missing") }
        }
    }
}
