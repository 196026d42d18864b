import SparseDBCore
import SparseDBStorage

/// One block of a term's posting list: up to ``PostingBlock/maxCount`` (document, weight) pairs in
/// increasing document order, stored as
///
///     header (20 bytes, uncompressed) | payload (varint doc-id gaps + 8-bit impact codes, zstd when smaller)
///
/// The header carries what Block-Max WAND needs to skip the block without touching the payload
/// (count, last document, block-max weight) and two CRC-32Cs: one over the key and the header,
/// checked whenever the header is used (so a damaged block-max can never make a query skip a
/// block it should not), and one over the stored payload, checked when the block is decoded.
/// Byte layout: format-spec.md §9.
package enum PostingBlock {
    package static let headerSize = 20
    /// Postings per block written by the engine.
    package static let targetCount = 256
    /// Largest count the format can express (count − 1 is one byte).
    package static let maxCount = 256
    package static let flagZstd: UInt8 = 1

    /// The 8-bit impact code of `weight` in a block whose largest weight is `blockMax`:
    /// `ceil(weight / (blockMax / 255))`, clamped to 1…255, so that
    /// `(code − 1) · step < weight ≤ code · step` with `step = blockMax / 255`.
    @inline(__always)
    package static func code(for weight: Float, blockMax: Float) -> UInt8 {
        let q = (weight * 255 / blockMax).rounded(.up)
        return UInt8(min(255, max(1, q)))
    }

    /// Encodes a block. `documents` strictly increasing, `weights` > 0, 1…maxCount entries.
    package static func encode(
        key: [UInt8], documents: ArraySlice<UInt32>, weights: ArraySlice<Float>, codec: ZstdCodec
    ) throws -> [UInt8] {
        let count = documents.count
        guard count > 0, count <= maxCount else {
            throw SparseDBError(.invalidInput, "a posting block holds 1…\(maxCount) postings, got \(count)")
        }
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
        // zstd's frame overhead makes tiny blocks bigger; keep whichever is smaller. Level 0
        // means "store plain" (ingest's default: see `Database.Configuration.compressionLevel`).
        if payload.bytes.count > 48 && codec.level != 0 {
            let compressed = try payload.bytes.withUnsafeBytes { (b) throws in try codec.compress(b) }
            if compressed.count < payload.bytes.count {
                stored = compressed
                flags |= flagZstd
            }
        }
        return assemble(key: key, flags: flags, count: count, decodedLength: payload.bytes.count, span: last &- first, blockMax: blockMax, stored: stored)
    }

    /// Header fields and stored payload into a block value, with both checksums.
    package static func assemble(
        key: [UInt8], flags: UInt8, count: Int, decodedLength: Int, span: UInt32, blockMax: Float, stored: some Collection<UInt8>
    ) -> [UInt8] {
        var out = ByteWriter(capacity: headerSize + stored.count)
        out.u8(flags)
        out.u8(UInt8(count - 1))
        out.u16le(UInt16(decodedLength))
        out.u32le(span)
        out.f32le(blockMax)
        out.u32le(0)  // payload checksum, filled in below
        out.u32le(0)  // header checksum, filled in below
        out.append(stored)
        var bytes = out.bytes
        let payloadCRC = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        withUnsafeBytes(of: payloadCRC.littleEndian) { bytes.replaceSubrange(12..<16, with: $0) }
        let headerCRC = key.withUnsafeBytes { k in bytes.withUnsafeBytes { Records.checksum(key: k, UnsafeRawBufferPointer(rebasing: $0[0..<16])) } }
        withUnsafeBytes(of: headerCRC.littleEndian) { bytes.replaceSubrange(16..<20, with: $0) }
        return bytes
    }

    /// The uncompressed header of a stored block, checked against its checksum.
    package struct Header: Sendable {
        package var flags: UInt8
        package var count: Int
        package var decodedLength: Int
        package var span: UInt32
        package var blockMax: Float
        package var payloadCRC: UInt32

        /// Parses and checks the header of `bytes` stored under `key`.
        package init(key: UnsafeRawBufferPointer, _ bytes: UnsafeRawBufferPointer) throws {
            var r = ByteReader(bytes)
            guard bytes.count >= PostingBlock.headerSize,
                let f = r.u8(), let c = r.u8(), let len = r.u16le(), let span = r.u32le(), let bm = r.f32le(),
                let payloadCRC = r.u32le(), let headerCRC = r.u32le()
            else { throw SparseDBError(.corrupt, "posting block shorter than its \(PostingBlock.headerSize)-byte header") }
            guard Records.checksum(key: key, UnsafeRawBufferPointer(rebasing: bytes[0..<16])) == headerCRC else {
                throw SparseDBError(.corrupt, "posting block header fails its checksum")
            }
            guard f & ~PostingBlock.flagZstd == 0 else { throw SparseDBError(.corrupt, "posting block has unknown flags \(f)") }
            guard bm.isFinite, bm > 0, bm <= SparseVector.maxWeight else {
                throw SparseDBError(.corrupt, "posting block has an invalid block-max \(bm)")
            }
            flags = f
            count = Int(c) + 1
            decodedLength = Int(len)
            self.span = span
            blockMax = bm
            self.payloadCRC = payloadCRC
            guard decodedLength <= count * 6, decodedLength >= count else {
                throw SparseDBError(.corrupt, "posting block payload length \(decodedLength) does not fit \(count) postings")
            }
            guard span >= UInt32(count - 1) else { throw SparseDBError(.corrupt, "posting block span \(span) is shorter than its \(count) postings") }
        }
    }

    /// Decodes a stored block into `documents` and `codes` (each with room for `maxCount`),
    /// checking the payload checksum first. `scratch` must have room for `maxCount * 6` bytes.
    /// Returns the number of postings.
    package static func decode(
        _ bytes: UnsafeRawBufferPointer, firstDocument: UInt32, header: Header,
        documents: UnsafeMutablePointer<UInt32>, codes: UnsafeMutablePointer<UInt8>,
        scratch: UnsafeMutableRawBufferPointer, codec: ZstdCodec
    ) throws -> Int {
        let stored = UnsafeRawBufferPointer(rebasing: bytes[headerSize...])
        guard CRC32C.checksum(stored) == header.payloadCRC else {
            throw SparseDBError(.corrupt, "posting block payload fails its checksum")
        }
        let payload: UnsafeRawBufferPointer
        if header.flags & flagZstd != 0 {
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<header.decodedLength])
            try codec.decompress(stored, into: target)
            payload = UnsafeRawBufferPointer(target)
        } else {
            guard stored.count == header.decodedLength else {
                throw SparseDBError(.corrupt, "posting block payload has \(stored.count) bytes, header says \(header.decodedLength)")
            }
            payload = stored
        }
        let n = header.count
        var r = ByteReader(payload)
        var doc = firstDocument
        documents[0] = doc
        for i in 1..<max(n, 1) {
            guard let delta = r.varint(), delta > 0 else { throw SparseDBError(.corrupt, "posting block has a bad document gap") }
            let (next, overflow) = doc.addingReportingOverflow(delta)
            guard !overflow else { throw SparseDBError(.corrupt, "posting block document id overflows") }
            doc = next
            documents[i] = doc
        }
        guard doc == firstDocument &+ header.span else {
            throw SparseDBError(.corrupt, "posting block's last document \(doc) disagrees with its header")
        }
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
/// reader: a query, the cache loader, compaction or the verifier.
package final class BlockDecoder {
    package let documents = UnsafeMutablePointer<UInt32>.allocate(capacity: PostingBlock.maxCount)
    package let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: PostingBlock.maxCount)
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: PostingBlock.maxCount * 6, alignment: 8)
    package let codec: ZstdCodec

    package init(codec: ZstdCodec) { self.codec = codec }

    deinit {
        documents.deallocate()
        codes.deallocate()
        scratch.deallocate()
    }

    /// Checks and decodes `bytes` (a stored block under `key`, whose last part is the block's first
    /// document) into `documents` and `codes`; returns its header and posting count.
    package func decode(key: UnsafeRawBufferPointer, _ bytes: UnsafeRawBufferPointer) throws -> (header: PostingBlock.Header, count: Int) {
        guard let first = Keys.part(key, 3) else { throw SparseDBError(.corrupt, "posting key is truncated") }
        let header = try PostingBlock.Header(key: key, bytes)
        return (header, try decode(bytes, firstDocument: first, header: header))
    }

    /// Decodes with a header already parsed and checked.
    package func decode(_ bytes: UnsafeRawBufferPointer, firstDocument: UInt32, header: PostingBlock.Header) throws -> Int {
        try PostingBlock.decode(
            bytes, firstDocument: firstDocument, header: header, documents: documents, codes: codes, scratch: scratch, codec: codec)
    }
}
