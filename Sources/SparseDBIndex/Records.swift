import CSparseDBKernels
import SparseDBCore
import SparseDBStorage

/// Value encodings of the per-document and per-term tables (format-spec.md §5–§8). Every record
/// carries a CRC-32C over its key and its bytes, so a damaged byte — or a record that ended up
/// under the wrong key — is a typed `.corrupt` error wherever it is read, never a wrong answer.
package enum Records {
    // MARK: checksums

    /// CRC-32C of `key ‖ bytes`.
    @inline(__always)
    package static func checksum(key: UnsafeRawBufferPointer, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(bytes, seed: CRC32C.checksum(key))
    }

    package static func checksum(key: [UInt8], _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        key.withUnsafeBytes { checksum(key: $0, bytes) }
    }

    /// Checks a record laid out as `crc u32le ‖ body`, where crc = CRC-32C(key ‖ body); returns the body.
    package static func checkedBody(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, what: @autoclosure () -> String) throws
        -> UnsafeRawBufferPointer
    {
        guard value.count >= 4 else { throw SparseDBError(.corrupt, "\(what()) is truncated (\(value.count) bytes)") }
        let stored = UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
        let body = UnsafeRawBufferPointer(rebasing: value[4...])
        guard checksum(key: key, body) == stored else { throw SparseDBError(.corrupt, "\(what()) fails its checksum") }
        return body
    }

    /// `crc u32le ‖ body` for `key`.
    package static func sealed(key: [UInt8], body: [UInt8]) -> [UInt8] {
        var out = ByteWriter(capacity: body.count + 4)
        out.u32le(body.withUnsafeBytes { checksum(key: key, $0) })
        out.append(body)
        return out.bytes
    }

    // MARK: documents (§5)

    package struct StoredDocument {
        package var id: String
        package var payload: [UInt8]?
        package var attributes: [(id: UInt32, value: AttributeValue)] = []
    }

    private static let flagPayload: UInt8 = 1
    private static let flagAttributes: UInt8 = 2

    /// `crc ‖ flags u8 ‖ id length u16le ‖ id ‖ [attribute bytes u32le ‖ attribute values, when
    /// flag 2] ‖ payload (the rest, when flag 1)`.
    package static func document(key: [UInt8], externalId: String, payload: [UInt8]?, attributes: [(id: UInt32, value: AttributeValue)] = []) -> [UInt8] {
        var w = ByteWriter(capacity: 8 + externalId.utf8.count + (payload?.count ?? 0))
        let id = Array(externalId.utf8)
        w.u8((payload == nil ? 0 : flagPayload) | (attributes.isEmpty ? 0 : flagAttributes))
        w.u16le(UInt16(id.count))
        w.append(id)
        if !attributes.isEmpty {
            let block = Attributes.encode(attributes)
            w.u32le(UInt32(block.count))
            w.append(block)
        }
        if let payload { w.append(payload) }
        return sealed(key: key, body: w.bytes)
    }

    /// The attribute values of a stored document.
    package static func parseDocumentAttributes(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> [(id: UInt32, value: AttributeValue)] {
        try parseDocument(key: key, value, includePayload: false).attributes
    }

    /// A stored document: its id, its payload when `includePayload`, its attribute values when
    /// `includeAttributes` (a search hit needs only the id and payload: decoding the attributes
    /// was two thirds of a hit's lookup; the record's checksum, which covers them, is checked
    /// either way, and their length must still fit the record).
    package static func parseDocument(
        key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, includePayload: Bool = true, includeAttributes: Bool = true
    ) throws -> StoredDocument {
        let body = try checkedBody(key: key, value, what: "document record \(Keys.part(key, 1).map(String.init) ?? "?")")
        var r = ByteReader(body)
        guard let flags = r.u8(), flags & ~(flagPayload | flagAttributes) == 0, let n = r.u16le(), let idBytes = r.bytes(Int(n)) else {
            throw SparseDBError(.corrupt, "document record \(Keys.part(key, 1).map(String.init) ?? "?") is malformed")
        }
        guard let id = utf8String(idBytes) else {
            throw SparseDBError(.corrupt, "document record \(Keys.part(key, 1).map(String.init) ?? "?") has an id that is not UTF-8")
        }
        var attributes: [(id: UInt32, value: AttributeValue)] = []
        if flags & flagAttributes != 0 {
            guard let length = r.u32le(), let block = r.bytes(Int(length)) else {
                throw SparseDBError(.corrupt, "document record \(Keys.part(key, 1).map(String.init) ?? "?") has truncated attributes")
            }
            if includeAttributes {
                var a = ByteReader(block)
                attributes = try Attributes.decode(&a)
                guard a.isAtEnd else { throw SparseDBError(.corrupt, "document record has trailing attribute bytes") }
            }
        }
        let payload = flags & flagPayload != 0 && includePayload ? Array(r.rest()) : nil
        return StoredDocument(id: id, payload: payload, attributes: attributes)
    }

    /// `bytes` as a string, or nil when they are not UTF-8. Ids are nearly always ASCII, which
    /// `String(decoding:)` takes as is after one scan; `String(validating:)`, the general path,
    /// costs about 1,500 instructions per id (a search looks up k of them).
    @inline(__always)
    static func utf8String(_ bytes: UnsafeRawBufferPointer) -> String? {
        var high: UInt8 = 0
        for b in bytes { high |= b }
        if high < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    // MARK: external ids (§6)

    /// `doc u32le ‖ crc u32le` where crc = CRC-32C(key ‖ doc bytes).
    package static func externalId(key: [UInt8], document: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 8)
        w.u32le(document)
        let crc = w.bytes.withUnsafeBytes { checksum(key: key, $0) }
        w.u32le(crc)
        return w.bytes
    }

    package static func parseExternalId(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> UInt32 {
        guard value.count == 8 else { throw SparseDBError(.corrupt, "id map entry has \(value.count) bytes, expected 8") }
        let stored = UInt32(littleEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard checksum(key: key, UnsafeRawBufferPointer(rebasing: value[0..<4])) == stored else {
            throw SparseDBError(.corrupt, "id map entry '\(String(decoding: key.dropFirst(4), as: UTF8.self))' fails its checksum")
        }
        return UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
    }

    // MARK: term statistics (§7)

    package struct TermStats: Equatable, Sendable {
        /// ≥ every block-max of the term (an upper bound after deletions).
        package var maxWeight: Float
        package var postings: UInt32
        package var blocks: UInt32

        package init(maxWeight: Float, postings: UInt32, blocks: UInt32) {
            self.maxWeight = maxWeight
            self.postings = postings
            self.blocks = blocks
        }
    }

    /// `max weight f32le ‖ postings u32le ‖ blocks u32le ‖ crc u32le` (crc over key ‖ first 12 bytes).
    package static func term(key: [UInt8], _ s: TermStats) -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.f32le(s.maxWeight)
        w.u32le(s.postings)
        w.u32le(s.blocks)
        let crc = w.bytes.withUnsafeBytes { checksum(key: key, $0) }
        w.u32le(crc)
        return w.bytes
    }

    package static func parseTerm(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> TermStats {
        var r = ByteReader(value)
        guard value.count == 16, let m = r.f32le(), let p = r.u32le(), let b = r.u32le(), let crc = r.u32le() else {
            throw SparseDBError(.corrupt, "term record has \(value.count) bytes, expected 16")
        }
        guard checksum(key: key, UnsafeRawBufferPointer(rebasing: value[0..<12])) == crc else {
            throw SparseDBError(.corrupt, "term \(Keys.part(key, 2).map(String.init) ?? "?") statistics fail their checksum")
        }
        guard m.isFinite, m > 0, m <= SparseVector.maxWeight, b > 0, p >= b else {
            throw SparseDBError(.corrupt, "term \(Keys.part(key, 2).map(String.init) ?? "?") statistics are out of range")
        }
        return TermStats(maxWeight: m, postings: p, blocks: b)
    }

    // MARK: forward rows (§8)

    /// How a forward row's entries are stored (§8): `plain` (0) = varint dimension gaps, then
    /// little-endian f32 weights; `packed` (1) = Rice-coded gaps and exponents with the raw
    /// mantissas, about 4.4 bytes an entry instead of 5.4 on SPLADE rows. Format-3 databases
    /// write `packed`; format-2 ones keep writing `plain`, so that the releases that made them
    /// can still read them. Both are read everywhere, and both give the same weights bit for bit.
    package enum ForwardRowEncoding: UInt8, Sendable {
        case plain = 0
        case packed = 1
    }

    /// `crc ‖ encoding u8 ‖ count varint ‖` the entries in `encoding` (§8).
    package static func forwardRow(key: [UInt8], _ v: SparseVector, encoding: ForwardRowEncoding) -> [UInt8] {
        if encoding == .packed, v.count > 0, let body = packedBody(v) { return sealed(key: key, body: body) }
        var w = ByteWriter(capacity: v.count * 6 + 8)
        w.u8(ForwardRowEncoding.plain.rawValue)
        w.varint(UInt32(v.count))
        var previous: UInt32 = 0
        for (i, d) in v.dimensions.enumerated() {
            w.varint(i == 0 ? d : d - previous)
            previous = d
        }
        for x in v.weights { w.f32le(x) }
        return sealed(key: key, body: w.bytes)
    }

    /// The packed row's body — encoding, count, then the entries that `sparsedb_forward_row_pack`
    /// writes straight into the same buffer — or nil if they did not fit the bound the C code
    /// states (then the row is written plain: never the case by that bound).
    private static func packedBody(_ v: SparseVector) -> [UInt8]? {
        let n = v.count
        let capacity = 16 + 11 * n
        var w = ByteWriter(capacity: capacity + 6)
        w.u8(ForwardRowEncoding.packed.rawValue)
        w.varint(UInt32(n))
        let header = w.bytes.count
        w.bytes.append(contentsOf: repeatElement(0, count: capacity))
        var scratch = [UInt32](repeating: 0, count: 2 * n)
        let written = v.dimensions.withUnsafeBufferPointer { d in
            v.weights.withUnsafeBufferPointer { weights in
                scratch.withUnsafeMutableBufferPointer { s in
                    w.bytes.withUnsafeMutableBufferPointer { o in
                        sparsedb_forward_row_pack(d.baseAddress!, weights.baseAddress!, n, s.baseAddress!, o.baseAddress! + header, capacity)
                    }
                }
            }
        }
        guard written > 0 else { return nil }
        w.bytes.removeLast(capacity - written)
        return w.bytes
    }

    /// A checked forward row, ready to be walked without copying.
    package struct ForwardRow {
        package let encoding: ForwardRowEncoding
        /// The bytes after the count: plain, varint gaps then `count` f32 weights; packed, §8's
        /// packed payload.
        package let entries: UnsafeRawBufferPointer
        package let count: Int
    }

    package static func checkedForwardRow(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> ForwardRow {
        let body = try checkedBody(key: key, value, what: "forward row of document \(Keys.part(key, 2).map(String.init) ?? "?")")
        var r = ByteReader(body)
        guard let tag = r.u8(), let encoding = ForwardRowEncoding(rawValue: tag), let n32 = r.varint() else {
            throw SparseDBError(.corrupt, "forward row of document \(Keys.part(key, 2).map(String.init) ?? "?") is malformed")
        }
        let n = Int(n32)
        // Plain: each entry takes at least 5 bytes (a varint and a weight). Packed: at least 3
        // (24 bits), after a header of 5. Checked before anything is sized by `n`.
        let fits = encoding == .plain ? n <= r.remaining / 5 : (n == 0 ? r.remaining == 0 : r.remaining >= 5 && n <= (r.remaining - 5) * 8 / 24)
        guard fits else {
            throw SparseDBError(.corrupt, "forward row of \(body.count) bytes cannot hold \(n) entries")
        }
        return ForwardRow(encoding: encoding, entries: UnsafeRawBufferPointer(rebasing: body[r.offset...]), count: n)
    }

    /// Decodes a forward row into a vector (checked: sorted, in range of `dimensions`).
    package static func parseForwardRow(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, dimensions: UInt32) throws
        -> SparseVector
    {
        let row = try checkedForwardRow(key: key, value)
        var dims = [UInt32](repeating: 0, count: row.count)
        var weights = [Float](repeating: 0, count: row.count)
        switch row.encoding {
        case .plain:
            let weightsStart = row.entries.count - 4 * row.count
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: row.entries[..<weightsStart]))
            let stored = UnsafeRawBufferPointer(rebasing: row.entries[weightsStart...])
            var previous: UInt32 = 0
            for i in 0..<row.count {
                guard let gap = r.varint(), i == 0 || gap > 0 else { throw SparseDBError(.corrupt, "forward row has a bad dimension gap") }
                let (d, overflow) = previous.addingReportingOverflow(gap)
                guard !overflow else { throw SparseDBError(.corrupt, "forward row has dimension out of range") }
                previous = d
                dims[i] = d
                weights[i] = Float(bitPattern: UInt32(littleEndian: stored.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
            guard r.isAtEnd else { throw SparseDBError(.corrupt, "forward row has trailing bytes") }
        case .packed:
            let rc = dims.withUnsafeMutableBufferPointer { d in
                weights.withUnsafeMutableBufferPointer { w in
                    sparsedb_forward_row_unpack(
                        row.entries.baseAddress?.assumingMemoryBound(to: UInt8.self), row.entries.count, row.count, d.baseAddress, w.baseAddress)
                }
            }
            guard rc == 0 else { throw SparseDBError(.corrupt, "forward row's packed entries are malformed") }
        }
        if let last = dims.last, last >= dimensions { throw SparseDBError(.corrupt, "forward row has dimension out of range") }
        return SparseVector(unchecked: dims, weights: weights)
    }

    /// Exact dot product of `query` (sorted dimensions) with a checked forward row, merging while
    /// decoding; summed in double precision in increasing dimension order.
    ///
    /// The merge runs in C (`sparsedb_forward_row_dot`): it is exact rescoring's inner loop, once
    /// per row entry up to the query's last dimension, and Swift's bounds-checked reader made it
    /// about four times as many instructions. Same arithmetic in the same order, so the same bits.
    package static func dot(queryDimensions qd: UnsafeBufferPointer<UInt32>, queryWeights qw: UnsafeBufferPointer<Float>, row: ForwardRow)
        throws -> Double
    {
        guard row.count > 0, let d = qd.baseAddress, let w = qw.baseAddress else { return 0 }
        guard let entries = row.entries.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw SparseDBError(.corrupt, "forward row is truncated")
        }
        var sum = 0.0
        let qn = min(qd.count, qw.count)
        let rc: Int32
        switch row.encoding {
        case .plain:
            let gapBytes = row.entries.count - 4 * row.count
            rc = sparsedb_forward_row_dot(entries, gapBytes, entries + gapBytes, row.count, d, w, qn, &sum)
        case .packed:
            rc = sparsedb_forward_row_packed_dot(entries, row.entries.count, row.count, d, w, qn, &sum)
        }
        guard rc == 0 else { throw SparseDBError(.corrupt, "forward row is truncated or malformed") }
        return sum
    }

}
