import Testing

@testable import SparseDB

@Suite struct PostingBlockTests {
    func roundTrip(_ docs: [UInt32], _ weights: [Float]) throws -> ([UInt32], [UInt8], PostingBlock.Header) {
        let codec = ZstdCodec()
        let key = Schema.postingKey(1, 7, docs[0])
        let bytes = try PostingBlock.encode(key: key, documents: docs[...], weights: weights[...], codec: codec)
        return try bytes.withUnsafeBytes { b in
            let h = try PostingBlock.Header(b)
            #expect(key.withUnsafeBytes { PostingBlock.checksum(key: $0, block: b) } == h.crc)
            let d = UnsafeMutablePointer<UInt32>.allocate(capacity: PostingBlock.maxCount)
            let c = UnsafeMutablePointer<UInt8>.allocate(capacity: PostingBlock.maxCount)
            let s = UnsafeMutableRawBufferPointer.allocate(byteCount: PostingBlock.maxCount * 6, alignment: 8)
            defer { d.deallocate(); c.deallocate(); s.deallocate() }
            let n = try PostingBlock.decode(b, firstDocument: docs[0], header: h, documents: d, codes: c, scratch: s, codec: codec)
            return (Array(UnsafeBufferPointer(start: d, count: n)), Array(UnsafeBufferPointer(start: c, count: n)), h)
        }
    }

    @Test func emptyBlockIsRefused() {
        #expect(throws: SparseDBError.self) {
            try PostingBlock.encode(key: [], documents: [][...], weights: [][...], codec: ZstdCodec())
        }
    }

    @Test(arguments: [1, 2, 127, 128, 129 - 1, 256])
    func roundTripsAndBoundsHold(count: Int) throws {
        var rng = SplitMix64(seed: UInt64(count))
        var docs: [UInt32] = []
        var d: UInt32 = UInt32.random(in: 0..<1000, using: &rng)
        for _ in 0..<count {
            docs.append(d)
            d += UInt32.random(in: 1..<5000, using: &rng)
        }
        let weights = (0..<count).map { _ in Float.random(in: 0.001..<8, using: &rng) }
        let (decoded, codes, header) = try roundTrip(docs, weights)
        #expect(decoded == docs)
        #expect(header.blockMax == weights.max())
        let step = header.blockMax / 255
        for i in 0..<count {
            // The interval the search relies on: (code − 1)·step < w ≤ code·step (up to rounding).
            #expect(Float(codes[i]) * step >= weights[i] * (1 - 1e-6))
            #expect(Float(codes[i] - 1) * step <= weights[i])
        }
    }

    @Test func largestDocumentIds() throws {
        let docs: [UInt32] = [UInt32.max - 3, UInt32.max - 2, UInt32.max - 1]
        let (decoded, _, _) = try roundTrip(docs, [1, 2, 3])
        #expect(decoded == docs)
    }

    @Test func tooManyPostingsAreRefused() {
        let docs = (0..<UInt32(257)).map { $0 }
        #expect(throws: SparseDBError.self) {
            try PostingBlock.encode(key: [], documents: docs[...], weights: [Float](repeating: 1, count: 257)[...], codec: ZstdCodec())
        }
    }

    @Test func corruptBlocksAreErrorsNotCrashes() throws {
        let codec = ZstdCodec()
        let docs = (0..<UInt32(128)).map { $0 * 3 }
        var bytes = try PostingBlock.encode(key: [], documents: docs[...], weights: [Float](repeating: 1.5, count: 128)[...], codec: codec)
        var rng = SplitMix64(seed: 42)
        let d = UnsafeMutablePointer<UInt32>.allocate(capacity: PostingBlock.maxCount)
        let c = UnsafeMutablePointer<UInt8>.allocate(capacity: PostingBlock.maxCount)
        let s = UnsafeMutableRawBufferPointer.allocate(byteCount: PostingBlock.maxCount * 6, alignment: 8)
        defer { d.deallocate(); c.deallocate(); s.deallocate() }
        // Truncations and random byte flips must throw or decode, never trap.
        for cut in [0, 5, 15, 16, bytes.count - 1] {
            let t = Array(bytes.prefix(cut))
            _ = try? t.withUnsafeBytes { b in
                let h = try PostingBlock.Header(b)
                return try PostingBlock.decode(b, firstDocument: 0, header: h, documents: d, codes: c, scratch: s, codec: codec)
            }
        }
        for _ in 0..<500 {
            var copy = bytes
            let i = Int.random(in: 0..<copy.count, using: &rng)
            copy[i] ^= UInt8.random(in: 1...255, using: &rng)
            _ = try? copy.withUnsafeBytes { b in
                let h = try PostingBlock.Header(b)
                return try PostingBlock.decode(b, firstDocument: 0, header: h, documents: d, codes: c, scratch: s, codec: codec)
            }
        }
        bytes[1] = 0  // count 1 but payload for 128
        #expect(throws: SparseDBError.self) {
            try bytes.withUnsafeBytes { b in
                let h = try PostingBlock.Header(b)
                return try PostingBlock.decode(b, firstDocument: 0, header: h, documents: d, codes: c, scratch: s, codec: codec)
            }
        }
    }
}
