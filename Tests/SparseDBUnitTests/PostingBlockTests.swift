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

    @Test func forwardRows() throws {
        let key = Keys.forwardRow(3, 1, 9)
        let v = try SparseVector([(0, 0.5), (7, 1.25), (30_000, 3), (1 << 20, 0.001)])
        let value = Records.forwardRow(key: key, v)
        #expect(try key.withUnsafeBytes { k in try value.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: 1 << 24) } } == v)
        expectEveryFlipDetected(value, { b in _ = try key.withUnsafeBytes { k in try b.withUnsafeBytes { try Records.parseForwardRow(key: k, $0, dimensions: 1 << 24) } } }, "forward row")
        let q = try SparseVector([(7, 2), (1 << 20, 1000)])
        let dot = try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { b in
                try q.dimensions.withUnsafeBufferPointer { qd in
                    try q.weights.withUnsafeBufferPointer { qw in try Records.dot(queryDimensions: qd, queryWeights: qw, row: try Records.checkedForwardRow(key: k, b)) }
                }
            }
        }
        #expect(dot == v.dot(q))
    }
}
