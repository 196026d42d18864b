/// One block of a term's posting list: up to ``PostingBlock/maxCount`` (document, weight) pairs in
/// increasing document order, stored as
///
///     header (16 bytes, uncompressed) | payload (varint doc-id deltas + 8-bit impact codes, zstd when smaller)
///
/// The header carries what Block-Max WAND needs to skip the block without touching the payload
/// (count, last document, block-max weight) and a CRC-32C. Byte layout: format-spec.md §4.
enum PostingBlock {
    static let headerSize = 16
    /// Postings per block written by the engine.
    static let targetCount = 128
    /// Largest count the format can express (count − 1 is one byte).
    static let maxCount = 256
    static let flagZstd: UInt8 = 1

    /// The 8-bit impact code of `weight` in a block whose largest weight is `blockMax`:
    /// `ceil(weight / (blockMax / 255))`, clamped to 1…255, so that
    /// `(code − 1) · step < weight ≤ code · step` with `step = blockMax / 255`.
    @inline(__always)
    static func code(for weight: Float, blockMax: Float) -> UInt8 {
        let q = (weight * 255 / blockMax).rounded(.up)
        return UInt8(min(255, max(1, q)))
    }

    /// Encodes a block. `documents` strictly increasing, `weights` > 0, 1…maxCount entries.
    static func encode(
        key: [UInt8], documents: ArraySlice<UInt32>, weights: ArraySlice<Float>, codec: ZstdCodec
    ) throws -> [UInt8] {
        let count = documents.count
        guard count > 0 else { throw SparseDBError(.invalidInput, "a posting block cannot be empty") }
        guard count <= maxCount else { throw SparseDBError(.invalidInput, "a posting block holds at most \(maxCount) postings, got \(count)") }
        let first = documents.first!
        let last = documents.last!
        let blockMax = weights.max()!
        var payload = ByteWriter(capacity: count * 3)
        var previous = first
        for d in documents.dropFirst() {
            payload.varint(d &- previous)
            previous = d
        }
        for w in weights { payload.u8(code(for: w, blockMax: blockMax)) }
        var flags: UInt8 = 0
        var stored = payload.bytes
        // zstd's frame overhead makes tiny blocks bigger; keep whichever is smaller.
        if payload.bytes.count > 48 {
            let compressed = try payload.bytes.withUnsafeBytes { (b) throws in try codec.compress(b) }
            if compressed.count < payload.bytes.count {
                stored = compressed
                flags |= flagZstd
            }
        }
        var out = ByteWriter(capacity: headerSize + stored.count)
        out.u8(flags)
        out.u8(UInt8(count - 1))
        out.u16le(UInt16(payload.bytes.count))
        out.u32le(last &- first)
        out.f32le(blockMax)
        out.u32le(0)  // the checksum, filled in below
        out.append(stored)
        var bytes = out.bytes
        let crc = key.withUnsafeBytes { k in bytes.withUnsafeBytes { b in checksum(key: k, block: b) } }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(12..<16, with: $0) }
        return bytes
    }

    /// The CRC-32C a block's header stores: over its key, header bytes 0..<12 and stored payload.
    static func checksum(key: UnsafeRawBufferPointer, block: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32C.checksum(key)
        c = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[0..<12]), seed: c)
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[headerSize...]), seed: c)
    }

    /// The uncompressed header of a stored block.
    struct Header {
        var flags: UInt8
        var count: Int
        var decodedLength: Int
        var span: UInt32
        var blockMax: Float
        var crc: UInt32

        init(_ bytes: UnsafeRawBufferPointer) throws {
            var r = ByteReader(bytes)
            guard bytes.count >= PostingBlock.headerSize,
                let f = r.u8(), let c = r.u8(), let len = r.u16le(), let span = r.u32le(), let bm = r.f32le(),
                let crc = r.u32le()
            else { throw SparseDBError(.corrupt, "posting block shorter than its 16-byte header") }
            guard f & ~PostingBlock.flagZstd == 0 else { throw SparseDBError(.corrupt, "posting block has unknown flags \(f)") }
            guard bm.isFinite, bm > 0 else { throw SparseDBError(.corrupt, "posting block has an invalid block-max \(bm)") }
            flags = f
            count = Int(c) + 1
            decodedLength = Int(len)
            self.span = span
            blockMax = bm
            self.crc = crc
            guard decodedLength <= count * 6 else { throw SparseDBError(.corrupt, "posting block payload length \(decodedLength) is too large for \(count) postings") }
        }
    }

    /// Decodes a stored block into `documents` and `codes` (each with room for `maxCount`).
    /// `scratch` must have room for `maxCount * 6` bytes. Returns the number of postings.
    static func decode(
        _ bytes: UnsafeRawBufferPointer, firstDocument: UInt32, header: Header,
        documents: UnsafeMutablePointer<UInt32>, codes: UnsafeMutablePointer<UInt8>,
        scratch: UnsafeMutableRawBufferPointer, codec: ZstdCodec
    ) throws -> Int {
        let stored = UnsafeRawBufferPointer(rebasing: bytes[headerSize...])
        let payload: UnsafeRawBufferPointer
        if header.flags & flagZstd != 0 {
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<header.decodedLength])
            try codec.decompress(stored, into: target)
            payload = UnsafeRawBufferPointer(target)
        } else {
            guard stored.count == header.decodedLength else { throw SparseDBError(.corrupt, "posting block payload has \(stored.count) bytes, header says \(header.decodedLength)") }
            payload = stored
        }
        let n = header.count
        var r = ByteReader(payload)
        var doc = firstDocument
        documents[0] = doc
        for i in 1..<max(n, 1) {
            guard let delta = r.varint(), delta > 0 else { throw SparseDBError(.corrupt, "posting block has a bad document delta") }
            let (next, overflow) = doc.addingReportingOverflow(delta)
            guard !overflow else { throw SparseDBError(.corrupt, "posting block document id overflows") }
            doc = next
            documents[i] = doc
        }
        guard doc == firstDocument &+ header.span else { throw SparseDBError(.corrupt, "posting block's last document \(doc) disagrees with its header") }
        guard let codeBytes = r.bytes(n), r.isAtEnd else { throw SparseDBError(.corrupt, "posting block payload has the wrong length") }
        for i in 0..<n {
            let c = codeBytes[i]
            guard c > 0 else { throw SparseDBError(.corrupt, "posting block has a zero impact code") }
            codes[i] = c
        }
        return n
    }
}

/// Decode buffers for one block at a time (documents, codes, and zstd scratch), owned by one
/// reader: a query cursor, the cache loader or the verifier.
final class BlockDecoder {
    let documents = UnsafeMutablePointer<UInt32>.allocate(capacity: PostingBlock.maxCount)
    let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: PostingBlock.maxCount)
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: PostingBlock.maxCount * 6, alignment: 8)
    let codec: ZstdCodec

    init(codec: ZstdCodec) { self.codec = codec }

    deinit {
        documents.deallocate()
        codes.deallocate()
        scratch.deallocate()
    }

    /// Decodes `bytes` (a stored block whose key holds `firstDocument`) into `documents` and
    /// `codes`; returns its header and posting count.
    func decode(_ bytes: UnsafeRawBufferPointer, firstDocument: UInt32) throws -> (header: PostingBlock.Header, count: Int) {
        let header = try PostingBlock.Header(bytes)
        return (header, try decode(bytes, firstDocument: firstDocument, header: header))
    }

    /// Decodes with a header already parsed.
    func decode(_ bytes: UnsafeRawBufferPointer, firstDocument: UInt32, header: PostingBlock.Header) throws -> Int {
        try PostingBlock.decode(bytes, firstDocument: firstDocument, header: header, documents: documents, codes: codes, scratch: scratch, codec: codec)
    }
}
