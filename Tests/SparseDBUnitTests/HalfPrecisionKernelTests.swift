import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import Foundation
import SparseDBTestSupport
import Testing

/// The f16 widening and the dense kernels (flat_scan.c), both the F16C/AVX2 code this machine
/// runs and the portable code other CPUs run, against Swift's own `Float16` conversion and a
/// double-precision dot product.
@Suite struct HalfPrecisionKernelTests {
    /// Whether two f32 values are the same bit pattern, or both NaN.
    static func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

    @Test func everyHalfWidensExactly() {
        let all = (0...UInt16.max).map { $0 }
        var wide = [Float](repeating: 0, count: all.count)
        all.withUnsafeBufferPointer { h in wide.withUnsafeMutableBufferPointer { sparsedb_f16_to_f32(h.baseAddress, $0.baseAddress, h.count) } }
        var wrong: [UInt16] = []
        for h in all {
            let expected = Float(Float16(bitPattern: h))
            if !Self.same(sparsedb_half_to_float_portable(h), expected) || !Self.same(wide[Int(h)], expected) { wrong.append(h) }
        }
        #expect(wrong.isEmpty, "half patterns widened wrongly: \(wrong.prefix(8))")
    }

    /// Scores of f16 rows (stride wider than the row) within the documented bound of the exact
    /// products, from the f16 kernel's two code paths and from the f32 kernel over the same rows
    /// widened, and the returned maximum exactly the largest score. The dimensions cover the
    /// kernels' 32-wide loop (1,024, 63, 56, 45, 37), their 8-wide loop once or more (8, 45, 56,
    /// 63) and scalar tails (63, 45, 37, 5).
    @Test(arguments: [1024, 63, 56, 45, 37, 8, 5, 0])
    func denseRowsScoreWithinTheBound(dimensions: Int) {
        let count = 53
        let stride = dimensions + 3
        var rng = SplitMix64(seed: UInt64(dimensions) + 1)
        let rows = (0..<count * stride).map { _ in Float16(Float.random(in: -2...2, using: &rng)).bitPattern }
        let wide = rows.map { Float(Float16(bitPattern: $0)) }
        let query = (0..<max(dimensions, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
        for path in ["f16", "f16 portable", "f32"] {
            var scores = [Float](repeating: .nan, count: count)
            let top = query.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { out in
                    switch path {
                    case "f16": rows.withUnsafeBufferPointer { sparsedb_dense_scores_f16($0.baseAddress, count, stride, q.baseAddress, dimensions, out.baseAddress) }
                    case "f16 portable":
                        rows.withUnsafeBufferPointer { sparsedb_dense_scores_f16_portable($0.baseAddress, count, stride, q.baseAddress, dimensions, out.baseAddress) }
                    default: wide.withUnsafeBufferPointer { sparsedb_dense_scores($0.baseAddress, count, stride, q.baseAddress, dimensions, out.baseAddress) }
                    }
                }
            }
            for r in 0..<count {
                var exact = 0.0
                var magnitude = 0.0
                for j in 0..<dimensions {
                    let p = Double(Float(Float16(bitPattern: rows[r * stride + j]))) * Double(query[j])
                    exact += p
                    magnitude += abs(p)
                }
                let bound = Double(dimensions) * 0x1p-24 * magnitude * 1.01 + 1e-30
                #expect(abs(Double(scores[r]) - exact) <= bound, "\(path) d=\(dimensions) row \(r): \(scores[r]) vs \(exact)")
            }
            #expect(top == scores.max(), "\(path) d=\(dimensions): returned \(top), largest \(String(describing: scores.max()))")
        }
    }
}

/// `FlatStore.decode(keepingHalves:)`, the scan's decode of dense f16 chunks: the same values as
/// the widening decode, and the same refusal of a stored value that is not finite (sealed with a
/// valid checksum, so only the value check can catch it).
@Suite struct HalfChunkDecodeTests {
    static func field(dimensions: UInt32) -> FieldRecord {
        var f = FieldRecord(id: 1, name: "e", kind: .dense, dimensions: dimensions)
        f.precision = "f16"
        f.metric = "dot"
        return f
    }

    @Test func keptHalvesEqualTheWidenedValues() throws {
        let field = Self.field(dimensions: 37)
        var chunk = FlatStore.Chunk(layout: .denseF16, width: 37)
        var rng = SplitMix64(seed: 5)
        chunk.documents = [512, 513, 600, 767]
        chunk.values = (0..<4 * 37).map { _ in Float(Float16(Float.random(in: -70_000...70_000, using: &rng) / 1.07)) }
        chunk.values[3] = 0x1p-24  // the smallest subnormal
        chunk.values[4] = -65504
        let key = Keys.flatChunk(1, 1, 2)
        let stored = FlatStore.encode(key: key, chunk)
        let (wide, kept) = try key.withUnsafeBytes { k in
            try stored.withUnsafeBytes { v in
                (try FlatStore.decode(key: k, v, field: field), try FlatStore.decode(key: k, v, field: field, keepingHalves: true))
            }
        }
        #expect(wide.halves.isEmpty && kept.values.isEmpty)
        #expect(kept.documents == chunk.documents && wide.documents == chunk.documents)
        #expect(kept.halves.map { Float(Float16(bitPattern: $0)) } == wide.values)
        #expect(wide.values == chunk.values)
    }

    @Test(arguments: [Float.infinity, -.infinity, .nan, 70_000])
    func aNonFiniteStoredHalfIsCorrupt(bad: Float) throws {
        let field = Self.field(dimensions: 8)
        var chunk = FlatStore.Chunk(layout: .denseF16, width: 8)
        chunk.documents = [0, 1]
        chunk.values = (0..<16).map { Float($0) / 4 }
        chunk.values[13] = bad  // encoded as f16: infinity (70,000 rounds past 65,504) or NaN
        let key = Keys.flatChunk(1, 1, 0)
        let stored = FlatStore.encode(key: key, chunk)
        for keep in [false, true] {
            let error = #expect(throws: SparseDBError.self) {
                try key.withUnsafeBytes { k in try stored.withUnsafeBytes { v in _ = try FlatStore.decode(key: k, v, field: field, keepingHalves: keep) } }
            }
            #expect(error?.code == .corrupt, "keepingHalves \(keep): \(String(describing: error))")
        }
    }
}
