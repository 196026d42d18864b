import SparseDBCore
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

@Suite struct PostingBlockTests {
    let codec = ZstdCodec()

    func encode(_ docs: [UInt32], _ weights: [Float], term: UInt32 = 7) throws -> (key: [UInt8], bytes: [UInt8]) {
        let key = Keys.postingBlock(1, 1, term, docs[0])
        return (key, try PostingBlock.encode(key: key, documents: docs[...], weights: weights[...], codec: codec))
    }

    func decode(key: [UInt8], _ bytes: [UInt8]) throws -> ([UInt32], [UInt8], PostingBlock.Header) {
        let decoder = BlockDecoder(codec: codec)
        return try key.withUnsafeBytes { k in
            try bytes.withUnsafeBytes { b in
                let (h, n) = try decoder.decode(key: k, b)
                return (Array(UnsafeBufferPointer(start: decoder.documents, count: n)), Array(UnsafeBufferPointer(start: decoder.codes, count: n)), h)
            }
        }
    }

    /// Level 0 (ingest's default) stores a block plain; a zstd level compresses the same
    /// compressible block; both decode to the same postings.
    @Test func levelZeroStoresBlocksPlain() throws {
        let docs = (0..<UInt32(256)).map { $0 * 3 }
        let weights = [Float](repeating: 1.5, count: 256)
        let key = Keys.postingBlock(1, 1, 7, docs[0])
        var decoded: [[UInt32]] = []
        for (level, flags) in [(Int32(0), UInt8(0)), (19, PostingBlock.flagZstd)] {
            let bytes = try PostingBlock.encode(key: key, documents: docs[...], weights: weights[...], codec: ZstdCodec(level: level))
            #expect(bytes[0] == flags, "level \(level)")
            decoded.append(try decode(key: key, bytes).0)
        }
        #expect(decoded == [docs, docs])
    }

    @Test func emptyBlockIsRefused() {
        #expect(throws: SparseDBError.self) { try PostingBlock.encode(key: [], documents: [][...], weights: [][...], codec: codec) }
    }

    /// Block sizes around the writer's 128 and the format's 256, including 129.
    @Test(arguments: [1, 2, 127, 128, 129, 255, 256])
    func roundTripsAndBoundsHold(count: Int) throws {
        var rng = SplitMix64(seed: UInt64(count))
        var docs: [UInt32] = []
        var d: UInt32 = UInt32.random(in: 0..<1000, using: &rng)
        for _ in 0..<count {
            docs.append(d)
            d += UInt32.random(in: 1..<5000, using: &rng)
        }
        let weights = (0..<count).map { _ in Float.random(in: 0.001..<8, using: &rng) }
        let (key, bytes) = try encode(docs, weights)
        let (decoded, codes, header) = try decode(key: key, bytes)
        #expect(decoded == docs)
        #expect(header.count == count)
        #expect(header.blockMax == weights.max())
        #expect(header.span == docs.last! - docs.first!)
        let step = header.blockMax / 255
        for i in 0..<count {
            // The interval the search relies on: (code − 1)·step < w ≤ code·step (up to rounding).
            #expect(Float(codes[i]) * step >= weights[i] * (1 - 1e-6))
            #expect(Float(codes[i] - 1) * step <= weights[i])
        }
    }

    @Test func largestDocumentIds() throws {
        let docs: [UInt32] = [UInt32.max - 3, UInt32.max - 2, UInt32.max - 1]
        let (key, bytes) = try encode(docs, [1, 2, 3])
        #expect(try decode(key: key, bytes).0 == docs)
    }

    @Test func tooManyPostingsAreRefused() {
        let docs = (0..<UInt32(257)).map { $0 }
        #expect(throws: SparseDBError.self) {
            try PostingBlock.encode(key: [], documents: docs[...], weights: [Float](repeating: 1, count: 257)[...], codec: codec)
        }
    }

    /// Every single-byte change anywhere in a block — header (block-max included) or payload —
    /// is caught by one of its two checksums, and so is the same block under another key.
    @Test func everyByteFlipIsDetected() throws {
        var rng = SplitMix64(seed: 3)
        let docs = (0..<UInt32(128)).map { $0 * 3 + 1 }
        let weights = (0..<128).map { _ in Float.random(in: 0.01..<4, using: &rng) }
        let (key, bytes) = try encode(docs, weights)
        for i in 0..<bytes.count {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var copy = bytes
                copy[i] ^= flip
                #expect(throws: SparseDBError.self, "byte \(i) ^ \(flip)") { try decode(key: key, copy) }
            }
        }
        let otherKey = Keys.postingBlock(1, 1, 8, docs[0])
        #expect(throws: SparseDBError.self) { try decode(key: otherKey, bytes) }
    }

    @Test func truncatedAndRandomBlocksAreErrorsNotCrashes() throws {
        var rng = SplitMix64(seed: 42)
        let docs = (0..<UInt32(128)).map { $0 * 3 }
        let (key, bytes) = try encode(docs, [Float](repeating: 1.5, count: 128))
        for cut in [0, 5, 15, 16, 19, 20, bytes.count - 1] {
            #expect(throws: SparseDBError.self) { try decode(key: key, Array(bytes.prefix(cut))) }
        }
        for _ in 0..<500 {
            let garbage = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? decode(key: key, garbage)
        }
    }
}

@Suite struct RecordTests {
    /// Flips every bit position's worth of one byte at a time; each must fail the record's check.
    func expectEveryFlipDetected(_ value: [UInt8], _ parse: ([UInt8]) throws -> Void, _ what: String) {
        for i in 0..<value.count {
            var copy = value
            copy[i] ^= 0x5A
            #expect(throws: SparseDBError.self, "\(what): byte \(i)") { try parse(copy) }
        }
    }

    @Test func documentRecords() throws {
        let key = Keys.document(3, 77)
        let value = Records.document(key: key, externalId: "doc-é", payload: Array("{\"a\":1}".utf8))
        let parsed = try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseDocument(key: k, $0) } }
        #expect(parsed.id == "doc-é" && parsed.payload == Array("{\"a\":1}".utf8))
        expectEveryFlipDetected(value, { v in _ = try key.withUnsafeBytes { k in try v.withUnsafeBytes { try Records.parseDocument(key: k, $0) } } }, "document")
        // The same record under another document's key is refused too.
        let other = Keys.document(3, 78)
        #expect(throws: SparseDBError.self) { try other.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseDocument(key: k, $0) } } }
    }

    @Test func externalIdEntries() throws {
        let key = Keys.externalId(3, "abc")
        let value = Records.externalId(key: key, document: 12345)
        #expect(try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseExternalId(key: k, $0) } } == 12345)
        expectEveryFlipDetected(value, { v in _ = try key.withUnsafeBytes { k in try v.withUnsafeBytes { try Records.parseExternalId(key: k, $0) } } }, "id map")
    }

    @Test func termRecords() throws {
        let key = Keys.term(3, 1, 2054)
        let stats = Records.TermStats(maxWeight: 2.5, postings: 300, blocks: 3)
        let value = Records.term(key: key, stats)
        #expect(try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseTerm(key: k, $0) } } == stats)
        expectEveryFlipDetected(value, { v in _ = try key.withUnsafeBytes { k in try v.withUnsafeBytes { try Records.parseTerm(key: k, $0) } } }, "term")
    }

    @Test(arguments: [Records.ForwardRowEncoding.plain, .packed])
    func forwardRows(encoding: Records.ForwardRowEncoding) throws {
        let key = Keys.forwardRow(3, 1, 9)
        let v = try SparseVector([(0, 0.5), (7, 1.25), (30_000, 3), (1 << 20, 0.001)])
        let value = Records.forwardRow(key: key, v, encoding: encoding)
        #expect(value[4] == encoding.rawValue)
        #expect(try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: 1 << 24) } } == v)
        expectEveryFlipDetected(value, { b in _ = try key.withUnsafeBytes { k in try b.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: 1 << 24) } } }, "forward row")
        let q = try SparseVector([(7, 2), (1 << 20, 1000)])
        #expect(try rowDot(key: key, value, q) == v.dot(q))
        // A dimension past the field's size is refused.
        #expect(throws: SparseDBError.self) { try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: 1 << 20) } } }
    }

    func rowDot(key: [UInt8], _ value: [UInt8], _ q: SparseVector) throws -> Double {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { b in
                try q.dimensions.withUnsafeBufferPointer { qd in
                    try q.weights.withUnsafeBufferPointer { qw in try Records.dot(queryDimensions: qd, queryWeights: qw, row: try Records.checkedForwardRow(key: k, b)) }
                }
            }
        }
    }

    func parseRow(key: [UInt8], _ value: [UInt8], dimensions: UInt32 = .max) throws -> SparseVector {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: dimensions) } }
    }

    /// The packed encoding gives back every weight bit for bit and every score bit for bit (the
    /// oracle: the same row plain, and `SparseVector.dot` over the original vector), on the real
    /// SPLADE rows of a shared collection and on rows built to hit its edges.
    @Test func packedRowsRoundTripBitForBit() throws {
        var vectors = try readVectors(referencePath("scifact", "doc_vectors.jsonl"), limit: 300).map(\.vector)
        let queries = try readVectors(referencePath("scifact", "query_vectors.jsonl"), limit: 20).map(\.vector)
        var rng = SplitMix64(seed: 21)
        func randomWeight() -> Float {
            // Any finite non-zero float: random sign, exponent and mantissa, subnormals included.
            while true {
                let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                if f.isFinite && f != 0 { return f }
            }
        }
        // The codec stores any bits: rows beyond what a field accepts (negative, huge) too.
        vectors.append(SparseVector(unchecked: [0], weights: [1]))
        vectors.append(SparseVector(unchecked: [UInt32.max - 1], weights: [2.5]))
        vectors.append(SparseVector(unchecked: [0, 1, UInt32.max - 1], weights: [1e-30, 3e38, -7]))
        vectors.append(SparseVector(unchecked: [5, 6, 4_000_000_000], weights: [.leastNonzeroMagnitude, -.greatestFiniteMagnitude, 1]))
        for _ in 0..<300 {
            let n = Int(rng.next() % 400) + 1
            let spread = UInt64(1) << (rng.next() % 33)  // gaps from dense runs to the whole 32-bit range
            var dims = Set<UInt32>()
            while dims.count < n { dims.insert(UInt32(truncatingIfNeeded: rng.next() % min(spread * UInt64(n), UInt64(UInt32.max - 1)))) }
            let sorted = dims.sorted()
            vectors.append(SparseVector(unchecked: sorted, weights: sorted.map { _ in randomWeight() }))
        }
        var packedBytes = 0, plainBytes = 0
        for (i, v) in vectors.enumerated() {
            let key = Keys.forwardRow(1, 1, UInt32(i))
            let plain = Records.forwardRow(key: key, v, encoding: .plain)
            let packed = Records.forwardRow(key: key, v, encoding: .packed)
            #expect(packed[4] == Records.ForwardRowEncoding.packed.rawValue, "row \(i) fell back to plain")
            let back = try parseRow(key: key, packed)
            #expect(back.dimensions == v.dimensions, "row \(i)")
            #expect(back.weights.map(\.bitPattern) == v.weights.map(\.bitPattern), "row \(i)")
            for q in queries + [v] {
                let a = try rowDot(key: key, packed, q), b = try rowDot(key: key, plain, q)
                #expect(a.bitPattern == b.bitPattern && a.bitPattern == v.dot(q).bitPattern, "row \(i)")
            }
            if i < 300 {
                packedBytes += packed.count
                plainBytes += plain.count
            }
        }
        // SPLADE rows get smaller (about 15 %; the bound leaves room, the point is the direction).
        #expect(packedBytes * 10 < plainBytes * 9, "packed \(packedBytes) vs plain \(plainBytes)")
    }

    /// Damaged packed rows are errors, never crashes or other vectors, even with a valid checksum.
    @Test func malformedPackedRowsAreRefused() throws {
        let key = Keys.forwardRow(1, 1, 1)
        let v = try SparseVector([(3, 0.5), (40, 1.5), (41, 2), (9_000, 0.25)])
        let good = Records.forwardRow(key: key, v, encoding: .packed)
        let body = Array(good[4...])  // encoding, count (1 byte), then the payload
        #expect(body[0] == 1 && body[1] == 4)
        func refused(_ b: [UInt8], _ what: String) {
            let value = Records.sealed(key: key, body: b)
            #expect(throws: SparseDBError.self, "\(what)") { _ = try parseRow(key: key, value) }
        }
        var b = body; b[2] = 32; refused(b, "gap parameter 32")
        b = body; b[3] = 10; refused(b, "exponent parameter 10")
        b = body; b[4] = 0; b[5] = 2; refused(b, "top exponent 512")
        refused(Array(body.dropLast()), "truncated stream")
        refused(body + [0], "a trailing byte")
        b = body; b[1] = 5; refused(b, "one entry more than the stream holds")
        b = body; b[1] = 200; refused(b, "a count no stream of this size can hold")
        refused([1, 0, 0], "count 0 with a payload")
        // Non-zero padding after the last entry: the stream's length in bits, from §8's rules.
        let gapK = UInt32(body[2]), expK = UInt32(body[3]), top = UInt32(body[4]) | UInt32(body[5]) << 8
        func rice(_ x: UInt32, _ k: UInt32) -> Int { Int(x >> k) + 1 + Int(k) }
        var bits = 0
        for i in 0..<v.count {
            if i > 0 { bits += rice(v.dimensions[i] - v.dimensions[i - 1] - 1, gapK) }
            bits += rice(top - (v.weights[i].bitPattern >> 23), expK) + 23
        }
        let streamStart = 7  // encoding, count, 4 header bytes, first dimension (3: one byte)
        #expect(body.count == streamStart + (bits + 7) / 8)
        #expect(bits % 8 != 0, "this row's stream should end inside a byte")
        b = body
        b[b.count - 1] |= UInt8(1 << (bits % 8))
        refused(b, "a padding bit set")
        // An empty row round-trips in both encodings.
        let empty = try SparseVector([])
        #expect(try parseRow(key: key, Records.forwardRow(key: key, empty, encoding: .packed)) == empty)
    }
}
