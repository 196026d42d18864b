import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import SparseDBSearch
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

    @Test func floatsNarrowToTheNearestHalf() {
        var values: [Float] = [
            0, -0, 1, -1, 65504, -65504, 65519.996, 65520, 65536, 1e9, .infinity, -.infinity, .nan,
            0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1.8p-25, 0x1.8p-24, 0x1.4p-24, 0x1p-14, 0x1.ff8p-15, 0x1.ffcp-15, 0x1.ffep-15,
            1.00048828125, 1.000732421875, 2047.5, 2048.5, 4095.5, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0x1p-30,
        ]
        // Every binade of the half range and around it, densely (ties included), and random bit patterns.
        for e in -27...16 {
            for m in stride(from: 0, to: 1 << 23, by: 4093) { values.append(Float(sign: .plus, exponent: e, significand: 1 + Float(m) * 0x1p-23)) }
            for m in stride(from: 0, to: 1 << 10, by: 1) { values.append(Float(sign: .minus, exponent: e, significand: 1 + (Float(m) + 0.5) * 0x1p-10)) }
        }
        // The midpoint of every pair of adjacent halves (ties: round to even), both signs, and
        // the floats one step either side of it.
        for h in UInt16(0)..<0x7bff {
            let mid = (Double(Float16(bitPattern: h)) + Double(Float16(bitPattern: h + 1))) / 2
            let m = Float(mid)  // exact: a midpoint of halves needs 12 significant bits
            for x in [m, m.nextUp, m.nextDown] { values += [x, -x] }
        }
        var rng = SplitMix64(seed: 99)
        for _ in 0..<200_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        var narrow = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in narrow.withUnsafeMutableBufferPointer { sparsedb_f32_to_f16(v.baseAddress, $0.baseAddress, v.count) } }
        var wrong: [Float] = []
        for (i, x) in values.enumerated() {
            let expected = Float16(x)
            let portable = Float16(bitPattern: sparsedb_float_to_half_portable(x))
            let simd = Float16(bitPattern: narrow[i])
            let ok = expected.isNaN ? portable.isNaN && simd.isNaN : portable.bitPattern == expected.bitPattern && simd.bitPattern == expected.bitPattern
            if !ok { wrong.append(x) }
        }
        #expect(wrong.isEmpty, "\(wrong.count) floats narrowed wrongly, e.g. \(wrong.prefix(6).map { "\($0) (\(String($0.bitPattern, radix: 16)))" })")
    }

    /// The half-precision copy an f32 field is scanned through: each value rounded to the nearest
    /// half (Swift's `Float16`), each norm and residual at or above the exact one (computed here
    /// in double from the rows and Swift's rounding) and within a relative 10⁻⁵ of it; rows a
    /// copy cannot serve are refused.
    @Test(arguments: [1, 7, 40, 256, 300, 1024])
    func halfCopiesBoundTheirDistanceToTheRows(width: Int) {
        var rng = SplitMix64(seed: UInt64(width))
        let count = 9
        var rows = (0..<count * width).map { _ in Float.random(in: -3...3, using: &rng) }
        for j in 0..<width { rows[2 * width + j] = Float(Float16(rows[2 * width + j])) }  // row 2 exact in half precision
        for j in 0..<width { rows[3 * width + j] = 0 }  // row 3 zero
        rows[4 * width] = 60_000.5  // large, still within half range
        func copy(_ rows: [Float]) -> (fits: Bool, halves: [UInt16], norms: [Float], residuals: [Float]) {
            let n = rows.count / width
            var halves = [UInt16](repeating: 0, count: rows.count)
            var norms = [Float](repeating: -1, count: n)
            var residuals = [Float](repeating: -1, count: n)
            let fits = rows.withUnsafeBufferPointer { r in
                halves.withUnsafeMutableBufferPointer { h in
                    norms.withUnsafeMutableBufferPointer { nn in
                        residuals.withUnsafeMutableBufferPointer { e in
                            sparsedb_half_copy(r.baseAddress, n, width, h.baseAddress, nn.baseAddress, e.baseAddress) != 0
                        }
                    }
                }
            }
            return (fits, halves, norms, residuals)
        }
        let made = copy(rows)
        #expect(made.fits)
        for r in 0..<count {
            var copy2 = 0.0
            var residual2 = 0.0
            for j in 0..<width {
                let x = rows[r * width + j]
                let h = Float16(x)
                #expect(made.halves[r * width + j] == h.bitPattern, "row \(r) value \(j): \(x)")
                copy2 += Double(h) * Double(h)
                residual2 += (Double(x) - Double(h)) * (Double(x) - Double(h))
            }
            let (norm, residual) = (copy2.squareRoot(), residual2.squareRoot())
            #expect(Double(made.norms[r]) >= norm && Double(made.norms[r]) <= norm * (1 + 1e-5), "row \(r): norm \(made.norms[r]), exact \(norm)")
            #expect(Double(made.residuals[r]) >= residual && Double(made.residuals[r]) <= residual * (1 + 1e-5), "row \(r): residual \(made.residuals[r]), exact \(residual)")
        }
        #expect(made.residuals[2] == 0 && made.residuals[3] == 0 && made.norms[3] == 0)
        // Beyond ±65504 (rounding past it), and rows of tiny values, have no copy.
        for bad: Float in [65520, -70_000, 1e9] {
            var r = rows
            r[5 * width + width / 2] = bad
            #expect(!copy(r).fits, "\(bad)")
        }
        var tiny = rows
        for j in 0..<width { tiny[6 * width + j] = Float.random(in: -1...1, using: &rng) * 1e-6 }
        #expect(!copy(tiny).fits)
        // A row whose largest value dominates keeps its copy even when its small values underflow.
        var mixed = rows
        for j in 0..<width { mixed[7 * width + j] = j == 0 ? 1 : 1e-9 }
        #expect(copy(mixed).fits)
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

/// Which decoded dense chunks are scanned through a half-precision copy (`ScanChunk`): an f32
/// chunk the flat cache keeps, whose values allow it; and the stored rows of a copied chunk read
/// back at rescoring only when they are the record the chunk was decoded from.
@Suite struct HalfCopyChoiceTests {
    static func chunk(_ layout: FlatStore.Layout, rows: Int = 256, width: Int = 24, seed: UInt64 = 3) -> FlatStore.Chunk {
        var rng = SplitMix64(seed: seed)
        var chunk = FlatStore.Chunk(layout: layout, width: width)
        chunk.documents = (0..<UInt32(rows)).map { 256 + $0 }
        let values = (0..<rows * width).map { _ in Float.random(in: -2...2, using: &rng) }
        if layout == .denseF16 { chunk.halves = values.map { Float16($0).bitPattern } } else { chunk.values = values }
        return chunk
    }

    @Test func aCachedF32ChunkIsScannedThroughACopyWhereItsValuesAllow() {
        let cache = FlatCache(budget: 64 << 20)
        let plain = Self.chunk(.denseF32)
        let copied = ScanChunk(plain, checksum: 7, cache: cache)
        #expect(copied.isHalf && copied.rescoresFromStore && copied.residuals.count == 256 && copied.residuals.allSatisfy { $0 > 0 })
        // Not for a cache that keeps nothing, nor when the caller says no (a field larger than the cache).
        for scan in [ScanChunk(plain, checksum: 7, cache: FlatCache(budget: 0)), ScanChunk(plain, checksum: 7, cache: nil),
                     ScanChunk(plain, checksum: 7, cache: cache, halfCopy: false)] {
            #expect(!scan.isHalf && !scan.rescoresFromStore && scan.residuals.isEmpty)
        }
        // Nor for values that round past 65504, or rows of tiny values.
        var big = plain
        big.values[300] = 65_520
        var tiny = plain
        for j in 0..<24 { tiny.values[24 * 9 + j] *= 1e-6 }
        for c in [big, tiny] {
            let scan = ScanChunk(c, checksum: 7, cache: cache)
            #expect(!scan.isHalf && !scan.rescoresFromStore && scan.residuals.isEmpty)
        }
        // An f16 field's rows are its own: half, no residual, rescored from memory.
        let half = ScanChunk(Self.chunk(.denseF16), checksum: 7, cache: cache)
        #expect(half.isHalf && !half.rescoresFromStore && half.residuals.isEmpty)
    }

    @Test func storedRowsAreReadOnlyFromTheRecordTheScanDecoded() throws {
        var chunk = Self.chunk(.denseF32, rows: 5, width: 3)
        let key = Keys.flatChunk(1, 1, 1)
        let stored = FlatStore.encode(key: key, chunk)
        let crc = stored.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let rows = try stored.withUnsafeBytes { v in
            try FlatStore.storedF32Rows(v, rows: 5, width: 3, checksum: crc, label: "chunk").withMemoryRebound(to: Float.self) { Array($0) }
        }
        #expect(rows == chunk.values)
        // Another checksum, row count or width; a truncated record; the record of another layout.
        chunk.documents.append(261)
        chunk.values += [1, 2, 3]
        let grown = FlatStore.encode(key: key, chunk)
        var half = Self.chunk(.denseF16, rows: 5, width: 6)
        half.values = half.halves.map { Float(Float16(bitPattern: $0)) }
        let otherLayout = FlatStore.encode(key: key, half)
        for (value, n, width, checksum) in [
            (stored, 5, 3, crc &+ 1), (stored, 4, 3, crc), (stored, 5, 4, crc), (Array(stored.dropLast()), 5, 3, crc), (grown, 5, 3, crc),
            (otherLayout, 5, 3, otherLayout.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }),
        ] {
            let error = #expect(throws: SparseDBError.self) {
                try value.withUnsafeBytes { v in _ = try FlatStore.storedF32Rows(v, rows: n, width: width, checksum: checksum, label: "chunk") }
            }
            #expect(error?.code == .corrupt)
        }
    }
}

/// The kernels of the `postingsPerTerm` search (cached_rows.c).
@Suite struct CachedRowKernelTests {
    /// The pruned-lists search's k-th largest lower end (step 3) against sorting: ties,
    /// infinities, k = 1, k = n and one between.
    @Test func kthLargestIsTheSortedOne() {
        var rng = SplitMix64(seed: 43)
        for trial in 0..<300 {
            let n = Int.random(in: 1...400, using: &rng)
            let values: [Double] = (0..<n).map { _ in
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: -.infinity
                case 1: Double(Int.random(in: 0..<3, using: &rng))
                default: Double.random(in: -5...5, using: &rng)
                }
            }
            for k in Set([1, n, Int.random(in: 1...n, using: &rng)]) {
                #expect(QueryEngine.kthLargest(k, of: values) == values.sorted(by: >)[k - 1], "trial \(trial): k = \(k) of \(n)")
            }
        }
    }

    /// Rows of 0 to 100 entries (every tail of the 16- and 8-wide loops), at random places in a
    /// chunk, scored by both paths against double-precision sums of the widened halves: within
    /// the f32 summation bound (n · 2⁻²³ of the sum of |products|).
    @Test func rowsScoreAsTheirHalvesSay() {
        var rng = SplitMix64(seed: 41)
        let dims = 30_522
        var query = [Float](repeating: 0, count: dims)
        for _ in 0..<400 { query[Int.random(in: 0..<dims, using: &rng)] = Float.random(in: -2...3, using: &rng) }
        var storage: [UInt16] = []
        var offsets: [UInt32] = [0]
        var expected: [Double] = []
        var magnitude: [Double] = []
        for r in 0..<303 {
            let n = r % 101
            let d = Array(Set((0..<n).map { _ in UInt16(Int.random(in: 0..<dims, using: &rng)) })).sorted()
            let w = d.map { _ in Float16(Float.random(in: -4...4, using: &rng)) }
            storage += d
            storage += w.map(\.bitPattern)
            offsets.append(UInt32(storage.count))
            expected.append(zip(d, w).reduce(0) { $0 + Double(query[Int($1.0)]) * Double(Float($1.1)) })
            magnitude.append(zip(d, w).reduce(0) { $0 + abs(Double(query[Int($1.0)]) * Double(Float($1.1))) })
        }
        let rows = (0..<303).map { _ in UInt32(Int.random(in: 0..<303, using: &rng)) }.sorted()
        var fast = [Float](repeating: .nan, count: rows.count)
        var portable = [Float](repeating: .nan, count: rows.count)
        var fastMagnitudes = [Float](repeating: .nan, count: rows.count)
        var portableMagnitudes = [Float](repeating: .nan, count: rows.count)
        sparsedb_cached_rows_scores(query, storage, offsets, rows, rows.count, &fast, &fastMagnitudes)
        sparsedb_cached_rows_scores_portable(query, storage, offsets, rows, rows.count, &portable, &portableMagnitudes)
        for (i, r) in rows.enumerated() {
            // The documented bound: n · 2⁻²⁴ of the magnitude (a product's rounding included).
            let n = Double(offsets[Int(r) + 1] - offsets[Int(r)]) / 2
            let bound = (n + 1) * 0x1p-24 * magnitude[Int(r)] + 1e-30
            #expect(abs(Double(fast[i]) - expected[Int(r)]) <= bound, "row \(r)")
            #expect(abs(Double(portable[i]) - expected[Int(r)]) <= bound, "row \(r), portable")
            #expect(abs(Double(fastMagnitudes[i]) - magnitude[Int(r)]) <= bound, "row \(r) magnitude")
            #expect(abs(Double(portableMagnitudes[i]) - magnitude[Int(r)]) <= bound, "row \(r) magnitude, portable")
        }
    }

    /// The indices of the n largest, ties at the cut in index order, against sorting: values
    /// with many ties, spread over many binades and packed into one histogram bucket.
    @Test func largestIndicesAreTheSortedOnes() {
        var rng = SplitMix64(seed: 43)
        for count in [1, 2, 5, 100, 3000] {
            for shape in 0..<3 {
                let values: [Float] = (0..<count).map { _ in
                    switch shape {
                    case 0: return Float(Int.random(in: 0...5, using: &rng))
                    case 1: return Float.random(in: 0..<1, using: &rng) * pow(2, Float(Int.random(in: -30...30, using: &rng)))
                    default: return 1 + Float(Int.random(in: 0..<100, using: &rng)) * 0x1p-23
                    }
                }
                for n in Set([0, 1, count / 2, count - 1, count, count + 3]) where n >= 0 {
                    var chosen = [UInt32](repeating: .max, count: max(n, 1))
                    let got = sparsedb_largest_indices(values, count, n, &chosen)
                    let expected = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(n).sorted()
                    #expect(got == min(n, count), "count \(count), shape \(shape), n \(n)")
                    #expect(chosen.prefix(got).map(Int.init) == expected, "count \(count), shape \(shape), n \(n)")
                }
            }
        }
    }

    /// Rank n of values with many ties, against sorting.
    @Test func nthLargestIsTheSortedValue() {
        var rng = SplitMix64(seed: 42)
        for count in [1, 2, 3, 7, 64, 129, 1000, 5000] {
            for _ in 0..<20 {
                let values = (0..<count).map { _ in Float(Int.random(in: 0...(count / 3 + 1), using: &rng)) * 0.25 }
                let n = Int.random(in: 0..<count, using: &rng)
                var work = values
                let got = sparsedb_nth_largest(&work, count, n)
                #expect(got == values.sorted(by: >)[n], "count \(count), rank \(n)")
                #expect(work.sorted() == values.sorted(), "a permutation")
            }
        }
    }
}
