import SparseDBCore
import SparseDBStorage

/// The value types of payload attributes (format-spec.md §4).
package enum AttributeType: String, Sendable, CaseIterable {
    case keyword, integer, float, bool
}

/// A document's value of one attribute.
package enum AttributeValue: Sendable, Equatable, Hashable {
    /// One string (stored as a list of one; older files also stored lists this way).
    case keyword([String])
    /// A list of strings, whatever its length (membership tests); kept apart from `keyword` so
    /// that a list of one reads back as a list.
    case keywordList([String])
    case integer(Int64)
    case float(Double)
    case bool(Bool)

    package var type: AttributeType {
        switch self {
        case .keyword, .keywordList: .keyword
        case .integer: .integer
        case .float: .float
        case .bool: .bool
        }
    }
}

/// Attribute values in document records and the attribute index (format-spec.md §6a):
///
/// - keyword and bool values: per (attribute, value), bitmap chunks of the documents holding it
///   (chunk c covers documents c·2¹⁶ ..< (c+1)·2¹⁶; a chunk is a sorted list of 16-bit offsets,
///   or an 8 KiB bitmap when that is smaller), so a filter reads a few KiB per value;
/// - integer and float values: one empty-valued key per (attribute, value, document), in value
///   order, so a range is one cursor walk.
package enum Attributes {
    /// The longest keyword value, in UTF-8 bytes (keys must stay under LMDB's 511 bytes).
    package static let maxKeywordBytes = 256
    /// The most keywords one document may list for one attribute.
    package static let maxKeywords = 1024
    static let chunkShift: UInt32 = 16

    // MARK: document record block

    /// `u16le count ‖ count × (u32le attribute id ‖ u8 type ‖ value)`, with values: keyword (tag 0)
    /// and keyword list (tag 4) = `u16le n ‖ n × (u16le length ‖ UTF-8)`, integer = `i64le`,
    /// float = `f64le`, bool = `u8`.
    package static func encode(_ values: [(id: UInt32, value: AttributeValue)]) -> [UInt8] {
        var w = ByteWriter()
        w.u16le(UInt16(values.count))
        for (id, value) in values.sorted(by: { $0.id < $1.id }) {
            w.u32le(id)
            switch value {
            case .keyword(let list), .keywordList(let list):
                if case .keywordList = value { w.u8(4) } else { w.u8(0) }
                w.u16le(UInt16(list.count))
                for s in list {
                    let b = Array(s.utf8)
                    w.u16le(UInt16(b.count))
                    w.append(b)
                }
            case .integer(let v):
                w.u8(1)
                w.u64le(UInt64(bitPattern: v))
            case .float(let v):
                w.u8(2)
                w.f64le(v)
            case .bool(let v):
                w.u8(3)
                w.u8(v ? 1 : 0)
            }
        }
        return w.bytes
    }

    package static func decode(_ r: inout ByteReader) throws -> [(id: UInt32, value: AttributeValue)] {
        func bad() -> SparseDBError { SparseDBError(.corrupt, "document record has malformed attribute values") }
        guard let count = r.u16le() else { throw bad() }
        var out: [(UInt32, AttributeValue)] = []
        for _ in 0..<count {
            guard let id = r.u32le(), let tag = r.u8() else { throw bad() }
            switch tag {
            case 0, 4:
                guard let n = r.u16le() else { throw bad() }
                var list: [String] = []
                for _ in 0..<n {
                    guard let len = r.u16le(), let b = r.bytes(Int(len)), let s = String(validating: b, as: UTF8.self) else { throw bad() }
                    list.append(s)
                }
                out.append((id, tag == 4 ? .keywordList(list) : .keyword(list)))
            case 1:
                guard let v = r.u64le() else { throw bad() }
                out.append((id, .integer(Int64(bitPattern: v))))
            case 2:
                guard let v = r.f64le(), v.isFinite else { throw bad() }
                out.append((id, .float(v)))
            case 3:
                guard let v = r.u8(), v <= 1 else { throw bad() }
                out.append((id, .bool(v == 1)))
            default:
                throw bad()
            }
        }
        return out
    }

    /// Checks a value against its declared type; messages name the document and attribute.
    package static func check(_ value: AttributeValue, attribute: AttributeRecord, document: String) throws {
        guard value.type.rawValue == attribute.type else {
            throw SparseDBError(
                .invalidInput, "document '\(document)': attribute '\(attribute.name)' is \(attribute.type), got a \(value.type.rawValue)")
        }
        switch value {
        case .keyword(let list), .keywordList(let list):
            guard list.count <= maxKeywords else {
                throw SparseDBError(.invalidInput, "document '\(document)': attribute '\(attribute.name)' lists \(list.count) keywords; at most \(maxKeywords)")
            }
            for s in list where s.utf8.count > maxKeywordBytes {
                throw SparseDBError(
                    .invalidInput, "document '\(document)': a keyword of attribute '\(attribute.name)' is \(s.utf8.count) bytes; at most \(maxKeywordBytes)")
            }
        case .float(let v):
            guard v.isFinite else { throw SparseDBError(.invalidInput, "document '\(document)': attribute '\(attribute.name)' is \(v)") }
        case .integer, .bool:
            break
        }
    }

    // MARK: index keys

    /// `cid ‖ aid ‖ u16be length ‖ value bytes` — the prefix of a keyword's (or bool's) chunks.
    package static func setPrefix(_ c: UInt32, _ a: UInt32, _ value: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u32be(c)
        w.u32be(a)
        w.u16be(UInt16(value.count))
        w.append(value)
        return w.bytes
    }

    package static func setKey(_ c: UInt32, _ a: UInt32, _ value: [UInt8], chunk: UInt32) -> [UInt8] {
        var w = ByteWriter()
        w.append(setPrefix(c, a, value))
        w.u32be(chunk)
        return w.bytes
    }

    /// The key bytes of a bool value.
    package static func boolBytes(_ v: Bool) -> [UInt8] { [v ? 1 : 0] }

    /// Order-preserving 8 bytes of a number: integers with the sign bit flipped; floats with the
    /// sign bit flipped when positive and all bits flipped when negative (−0 is stored as +0).
    package static func orderedBits(_ value: AttributeValue) -> UInt64 {
        switch value {
        case .integer(let v): return UInt64(bitPattern: v) ^ (1 << 63)
        case .float(let v):
            let bits = (v == 0 ? 0.0 : v).bitPattern
            return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        default: return 0
        }
    }

    package static func numberKey(_ c: UInt32, _ a: UInt32, _ bits: UInt64, doc: UInt32) -> [UInt8] {
        var w = ByteWriter()
        w.u32be(c)
        w.u32be(a)
        w.u64be(bits)
        w.u32be(doc)
        return w.bytes
    }

    package static func numberPrefix(_ c: UInt32, _ a: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, a) }

    // MARK: bitmap chunks

    /// The documents of one chunk as 16-bit offsets, sorted.
    package static func decodeChunk(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> [UInt16] {
        let body = try Records.checkedBody(key: key, value, what: "attribute index chunk")
        var r = ByteReader(body)
        guard let kind = r.u8() else { throw SparseDBError(.corrupt, "attribute index chunk is empty") }
        var out: [UInt16] = []
        switch kind {
        case 0:
            guard let n = r.u16le(), r.remaining == 2 * Int(n) else { throw SparseDBError(.corrupt, "attribute index chunk has a bad length") }
            var previous: Int = -1
            for _ in 0..<n {
                let v = r.u16le()!
                guard Int(v) > previous else { throw SparseDBError(.corrupt, "attribute index chunk is not sorted") }
                previous = Int(v)
                out.append(v)
            }
        case 1:
            guard r.remaining == 8192 else { throw SparseDBError(.corrupt, "attribute index bitmap has \(r.remaining) bytes") }
            for w in 0..<1024 {
                var word = r.u64le()!
                while word != 0 {
                    out.append(UInt16(w * 64 + word.trailingZeroBitCount))
                    word &= word - 1
                }
            }
        default:
            throw SparseDBError(.corrupt, "attribute index chunk has unknown kind \(kind)")
        }
        return out
    }

    /// The sealed chunk of `offsets` (sorted): a list, or a bitmap when smaller.
    package static func encodeChunk(key: [UInt8], _ offsets: [UInt16]) -> [UInt8] {
        var w = ByteWriter()
        if offsets.count * 2 + 3 <= 8193 {
            w.u8(0)
            w.u16le(UInt16(offsets.count))
            for o in offsets { w.u16le(o) }
        } else {
            w.u8(1)
            var words = [UInt64](repeating: 0, count: 1024)
            for o in offsets { words[Int(o) >> 6] |= 1 << UInt64(o & 63) }
            for word in words { w.u64le(word) }
        }
        return Records.sealed(key: key, body: w.bytes)
    }

    // MARK: maintenance

    /// Adds documents' values to the index. `added` holds, per attribute, (document, value) in
    /// increasing document order; new documents always have the largest ids.
    package static func add(
        _ txn: borrowing Transaction, collection c: UInt32, record: CollectionRecord, added: [UInt32: [(doc: UInt32, value: AttributeValue)]]
    ) throws {
        for (aid, entries) in added.sorted(by: { $0.key < $1.key }) {
            var sets: [[UInt8]: [UInt32]] = [:]
            for (doc, value) in entries {
                switch value {
                case .keyword(let list), .keywordList(let list):
                    for s in Set(list) { sets[Array(s.utf8), default: []].append(doc) }
                case .bool(let v):
                    sets[boolBytes(v), default: []].append(doc)
                case .integer, .float:
                    try txn.put([], forKey: numberKey(c, aid, orderedBits(value), doc: doc), in: txn.table(.attribute))
                }
            }
            for (value, docs) in sets {
                var start = 0
                while start < docs.count {
                    let chunk = docs[start] >> chunkShift
                    var end = start
                    while end < docs.count && docs[end] >> chunkShift == chunk { end += 1 }
                    let key = setKey(c, aid, value, chunk: chunk)
                    var offsets = try key.withUnsafeBytes { k in
                        try txn.withValue(key, in: txn.table(.attribute)) { b throws -> [UInt16] in try b.map { try decodeChunk(key: k, $0) } ?? [] }
                    }
                    for d in docs[start..<end] {
                        let o = UInt16(d & 0xFFFF)
                        if let last = offsets.last, last >= o { continue }  // already present (cannot happen for new ids)
                        offsets.append(o)
                    }
                    try txn.put(encodeChunk(key: key, offsets), forKey: key, in: txn.table(.attribute))
                    start = end
                }
            }
        }
    }

    /// Rebuilds the collection's attribute index from the document records of its live documents.
    package static func rebuild(_ txn: borrowing Transaction, record: CollectionRecord, deleted: DocumentBitmap) throws {
        let c = record.id
        try txn.deleteAll(prefix: Keys.collection(c), in: txn.table(.attribute))
        guard !record.attributes.isEmpty else { return }
        var added: [UInt32: [(doc: UInt32, value: AttributeValue)]] = [:]
        try txn.scan(prefix: Keys.collection(c), in: txn.table(.document)) { k, v in
            guard let doc = Keys.part(k, 1) else { throw SparseDBError(.corrupt, "document key is malformed") }
            if deleted.contains(doc) { return true }
            for (aid, value) in try Records.parseDocumentAttributes(key: k, v) { added[aid, default: []].append((doc, value)) }
            return true
        }
        try add(txn, collection: c, record: record, added: added)
    }

    /// Every (attribute, value, document) the index holds, for `verify`.
    package static func indexedEntries(_ txn: borrowing Transaction, record: CollectionRecord) throws -> [UInt32: [(doc: UInt32, key: [UInt8])]] {
        var out: [UInt32: [(doc: UInt32, key: [UInt8])]] = [:]
        let types = Dictionary(uniqueKeysWithValues: record.attributes.map { ($0.id, AttributeType(rawValue: $0.type)) })
        try txn.scan(prefix: Keys.collection(record.id), in: txn.table(.attribute)) { k, v in
            guard let aid = Keys.part(k, 1), let type = types[aid] ?? nil else { throw SparseDBError(.corrupt, "attribute index key names no attribute") }
            switch type {
            case .integer, .float:
                guard k.count == 20, v.isEmpty, let doc = Keys.part(k, 4) else { throw SparseDBError(.corrupt, "attribute index number key is malformed") }
                out[aid, default: []].append((doc, Array(k[8..<16])))
            case .keyword, .bool:
                guard k.count >= 14 else { throw SparseDBError(.corrupt, "attribute index key is truncated") }
                let len = Int(UInt16(k[8]) << 8 | UInt16(k[9]))
                guard k.count == 14 + len else { throw SparseDBError(.corrupt, "attribute index key has a bad length") }
                let chunk = UInt32(bigEndian: k.loadUnaligned(fromByteOffset: 10 + len, as: UInt32.self))
                for o in try decodeChunk(key: k, v) {
                    out[aid, default: []].append((chunk << chunkShift | UInt32(o), Array(k[10..<(10 + len)])))
                }
            }
            return true
        }
        return out
    }
}
