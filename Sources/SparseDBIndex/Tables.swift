import SparseDBCore
import SparseDBStorage

/// The LMDB tables of a database (formats 2 to 4) (format-spec.md §2), in a registry: each table a
/// database holds is recorded in `meta` under `table:NAME` with flags that say whether a
/// SparseDB that does not know it may read or write the database. Adding a table therefore
/// never makes an older database unopenable: a writable open creates and registers the new
/// table, a read-only open reads it as empty.
package enum Table: Int, CaseIterable, Sendable {
    case meta
    case document
    case externalId
    case tombstone
    case term
    case postingBlock
    case forwardRow
    case flatChunk
    case attribute
    case commit

    package var name: String {
        switch self {
        case .meta: "meta"
        case .document: "document"
        case .externalId: "external-id"
        case .tombstone: "tombstone"
        case .term: "term"
        case .postingBlock: "posting-block"
        case .forwardRow: "forward-row"
        case .flatChunk: "flat-chunk"
        case .attribute: "attribute-index"
        case .commit: "commit"
        }
    }

    /// Registry flags written for this table (format-spec.md §3): every table of §2 must be
    /// known by readers and writers alike, except `commit`, which only writers must know (a
    /// reader that ignores it reads correctly; a writer that did not update it would make the
    /// next open report damage).
    package var registryFlags: UInt8 {
        self == .commit ? TableRegistry.writersMustKnow : TableRegistry.readersMustKnow | TableRegistry.writersMustKnow
    }
}

/// The registry's record format and rules.
package enum TableRegistry {
    /// A SparseDB that does not know this table must not open the database at all.
    package static let readersMustKnow: UInt8 = 1
    /// A SparseDB that does not know this table may open the database read-only only (writing
    /// without maintaining the table would break its invariants).
    package static let writersMustKnow: UInt8 = 2

    package static let keyPrefix = "table:"

    package static func key(_ name: String) -> [UInt8] { Array((keyPrefix + name).utf8) }
}

extension Transaction {
    /// The handle of `table` (absent tables of read-only environments read as empty).
    @inline(__always)
    package func table(_ table: Table) -> TableRef { tables[table.rawValue] }
}

/// Key layouts (format-spec.md §2). Integers in keys are big-endian, so that LMDB's byte order is
/// numeric order; every key of a collection starts with its id, and every key of a vector field
/// continues with the field's id, so that one collection's (one field's) entries are contiguous.
package enum Keys {
    /// LMDB's default maximum key size is 511 bytes; external ids follow a 4-byte prefix.
    package static let maxExternalIdBytes = 500

    package static func collection(_ c: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c) }
    package static func field(_ c: UInt32, _ f: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, f) }
    package static func document(_ c: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, doc) }
    package static func tombstone(_ c: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, doc) }
    package static func externalId(_ c: UInt32, _ id: String) -> [UInt8] { [UInt8](bigEndianKey: c) + Array(id.utf8) }
    package static func term(_ c: UInt32, _ f: UInt32, _ term: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, f, term) }
    package static func postingBlock(_ c: UInt32, _ f: UInt32, _ term: UInt32, _ firstDocument: UInt32) -> [UInt8] {
        [UInt8](bigEndianKey: c, f, term, firstDocument)
    }
    package static func forwardRow(_ c: UInt32, _ f: UInt32, _ doc: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, f, doc) }
    package static func flatChunk(_ c: UInt32, _ f: UInt32, _ chunk: UInt32) -> [UInt8] { [UInt8](bigEndianKey: c, f, chunk) }

    /// Calls `body` with the key of `document(c, doc)` in a stack buffer (no array allocated: a
    /// search reads one per hit).
    @inline(__always)
    package static func withDocument<R>(_ c: UInt32, _ doc: UInt32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // A homogeneous tuple of UInt32 is laid out as consecutive 4-byte elements.
        try Swift.withUnsafeBytes(of: (c.bigEndian, doc.bigEndian)) { try body($0) }
    }

    /// Calls `body` with the key of `forwardRow(c, f, doc)` in a stack buffer (rescoring reads one
    /// per candidate).
    @inline(__always)
    package static func withForwardRow<R>(_ c: UInt32, _ f: UInt32, _ doc: UInt32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: (c.bigEndian, f.bigEndian, doc.bigEndian)) { try body($0) }
    }

    /// The `index`-th big-endian 32-bit part of a key (0 is the collection id), or nil when the
    /// key is too short.
    @inline(__always)
    package static func part(_ key: UnsafeRawBufferPointer, _ index: Int) -> UInt32? {
        guard key.count >= 4 * (index + 1) else { return nil }
        return UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
    }
}
