import Foundation

/// Key and record encodings of every table (format-spec.md §2–§6). All keys of a collection start
/// with its 32-bit id, big-endian, so one collection's entries are contiguous and in order.
enum Schema {
    static let magic: [UInt8] = Array("SPARSEDB".utf8)
    static let formatVersion: UInt32 = 1
    static let formatKey: [UInt8] = Array("format".utf8)
    static let nextCollectionKey: [UInt8] = Array("next-collection-id".utf8)
    static let collectionKeyPrefix = "collection:"
    /// LMDB's default maximum key size is 511 bytes; ids are stored after a 4-byte prefix.
    static let maxExternalIdBytes = 500

    static func collectionKey(_ name: String) -> [UInt8] { Array((collectionKeyPrefix + name).utf8) }

    static func documentKey(_ c: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, doc) }
    static func forwardKey(_ c: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, doc) }
    static func tombstoneKey(_ c: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, doc) }
    static func termKey(_ c: UInt32, _ term: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, term) }
    static func postingKey(_ c: UInt32, _ term: UInt32, _ firstDoc: UInt32) -> [UInt8] {
        [UInt8](bigEndianKey: c, term, firstDoc)
    }
    static func idKey(_ c: UInt32, _ externalId: String) -> [UInt8] {
        [UInt8](bigEndianKey: c) + Array(externalId.utf8)
    }
    static func prefix(_ c: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c) }

    /// The `index`-th big-endian 32-bit part of a key (0 is the collection id), or nil when the
    /// key is too short.
    static func keyPart(_ key: UnsafeRawBufferPointer, _ index: Int) -> UInt32? {
        guard key.count >= 4 * (index + 1) else { return nil }
        return UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
    }

    static func formatRecord() -> [UInt8] {
        var w = ByteWriter()
        w.append(magic)
        w.u32le(formatVersion)
        return w.bytes
    }

    // MARK: documents

    static func documentRecord(externalId: String, payload: [UInt8]?) -> [UInt8] {
        var w = ByteWriter()
        let id = Array(externalId.utf8)
        w.u8(payload == nil ? 0 : 1)
        w.u16le(UInt16(id.count))
        w.append(id)
        if let payload { w.append(payload) }
        return w.bytes
    }

    static func parseDocumentRecord(_ bytes: UnsafeRawBufferPointer) throws -> (id: String, payload: [UInt8]?) {
        var r = ByteReader(bytes)
        guard let flags = r.u8(), flags <= 1, let n = r.u16le(), let idBytes = r.bytes(Int(n)) else {
            throw SparseDBError(.corrupt, "document record is truncated")
        }
        guard let id = String(validating: idBytes, as: UTF8.self) else {
            throw SparseDBError(.corrupt, "document record id is not UTF-8")
        }
        let payload = flags == 1 ? Array(UnsafeRawBufferPointer(rebasing: bytes[r.offset...])) : nil
        return (id, payload)
    }

    // MARK: forward rows

    /// `u32 count | u32 crc32c(rest) | varint dimension deltas | f32 weights`.
    static func forwardRecord(_ v: SparseVector) -> [UInt8] {
        var body = ByteWriter(capacity: v.count * 6)
        var previous: UInt32 = 0
        for (i, d) in v.dimensions.enumerated() {
            body.varint(i == 0 ? d : d - previous)
            previous = d
        }
        for w in v.weights { body.f32le(w) }
        var out = ByteWriter(capacity: body.bytes.count + 8)
        out.u32le(UInt32(v.count))
        out.u32le(CRC32C.checksum(body.bytes))
        out.append(body.bytes)
        return out.bytes
    }

    static func parseForwardRecord(_ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = false) throws -> SparseVector {
        var r = ByteReader(bytes)
        guard let n32 = r.u32le(), let crc = r.u32le() else { throw SparseDBError(.corrupt, "forward row is truncated") }
        let n = Int(n32)
        guard n <= bytes.count else { throw SparseDBError(.corrupt, "forward row count \(n) exceeds its size") }
        if verifyChecksum, CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[8...])) != crc {
            throw SparseDBError(.corrupt, "forward row checksum mismatch")
        }
        var dims = [UInt32](repeating: 0, count: n)
        var weights = [Float](repeating: 0, count: n)
        var previous: UInt32 = 0
        for i in 0..<n {
            guard let delta = r.varint() else { throw SparseDBError(.corrupt, "forward row is truncated") }
            previous = i == 0 ? delta : previous &+ delta
            dims[i] = previous
        }
        for i in 0..<n {
            guard let w = r.f32le() else { throw SparseDBError(.corrupt, "forward row is truncated") }
            weights[i] = w
        }
        guard r.isAtEnd else { throw SparseDBError(.corrupt, "forward row has trailing bytes") }
        return SparseVector(unchecked: dims, weights: weights)
    }

    // MARK: term statistics

    struct TermStats {
        var maxWeight: Float
        var postings: UInt32
        var blocks: UInt32
    }

    static func termRecord(_ s: TermStats) -> [UInt8] {
        var w = ByteWriter()
        w.f32le(s.maxWeight)
        w.u32le(s.postings)
        w.u32le(s.blocks)
        return w.bytes
    }

    static func parseTermRecord(_ bytes: UnsafeRawBufferPointer) throws -> TermStats {
        var r = ByteReader(bytes)
        guard let m = r.f32le(), let p = r.u32le(), let b = r.u32le(), r.isAtEnd else {
            throw SparseDBError(.corrupt, "term record has \(bytes.count) bytes, expected 12")
        }
        return TermStats(maxWeight: m, postings: p, blocks: b)
    }
}

/// The metadata of one collection, stored as a JSON object under `collection:NAME` in `meta`.
struct CollectionInfo: Codable, Equatable {
    var id: UInt32
    var name: String
    /// Valid dimension indices are 0..<dimensions.
    var dimensions: UInt32
    /// The next internal document id to assign.
    var nextDocument: UInt32 = 0
    var liveDocuments: UInt64 = 0
    var deletedDocuments: UInt64 = 0
    /// Postings stored (of live and deleted documents, until compaction).
    var postings: UInt64 = 0
    /// The encoder that produced the collection's vectors, when ingested from text.
    var encoder: EncoderRecord?
    /// Incremented by every committed change of the collection; tags decoded-postings cache entries.
    var generation: UInt64? = 0

    struct EncoderRecord: Codable, Equatable {
        var name: String
        var checksum: String
        var kind: String
        /// The folder it was loaded from, to find it again for text queries.
        var path: String?
    }
}
