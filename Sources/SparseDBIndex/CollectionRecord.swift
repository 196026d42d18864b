import Foundation
import SparseDBCore

/// The kinds of vector field a collection can hold (format-spec.md §4).
package enum FieldKind: String, Sendable, CaseIterable {
    /// An inverted index over a vocabulary (SPLADE and other learned sparse vectors).
    case sparse
    /// k-sparse codes over a few thousand dimensions (CSR).
    case csr
    /// Fixed-length float rows.
    case dense
}

/// The model that produced a field's vectors, when they came from text.
package struct EncoderRecord: Codable, Equatable, Sendable {
    /// The model folder's name.
    package var name: String
    /// CRC-32C fingerprint of the folder's JSON and safetensors files (8 hex digits).
    package var checksum: String
    /// `splade`, `inference-free`, `csr`, `static` or `dense`.
    package var kind: String
    /// The folder it was loaded from, to find it again for text queries.
    package var path: String?

    package init(name: String, checksum: String, kind: String, path: String?) {
        self.name = name
        self.checksum = checksum
        self.kind = kind
        self.path = path
    }
}

/// One vector field of a collection, as stored in its metadata.
package struct FieldRecord: Codable, Equatable, Sendable {
    /// ≥ 1; follows the collection id in every key of the field's tables.
    package var id: UInt32
    package var name: String
    /// A ``FieldKind`` raw value; kept as text so that a database written by a newer SparseDB with
    /// a kind this one does not know still opens (only that collection is refused).
    package var kind: String
    /// Valid dimension indices are `0..<dimensions` (sparse, csr); the row length (dense).
    package var dimensions: UInt32
    /// Postings stored in the field's inverted lists (deleted documents' included until compaction).
    package var postings: UInt64 = 0
    /// Incremented by every compaction of the field. Posting blocks never change between two
    /// compactions (ingest only appends blocks), so in-memory caches of decoded blocks are keyed
    /// by it and survive every other write.
    package var epoch: UInt64 = 1
    /// The encoder that produced the field's vectors, when ingested from text.
    package var encoder: EncoderRecord?
    /// csr: the number of active dimensions a row holds at most (k, 1…256).
    package var activeDimensions: Int?
    /// csr: a document with more active dimensions keeps its k largest instead of being refused.
    package var keepLargest: Bool?
    /// Flat rows: `f32` (absent: f32) or `f16`.
    package var precision: String?
    /// dense: `dot` (absent: dot) or `cosine` (rows are stored normalized).
    package var metric: String?
    /// csr: `flat` (fixed-width rows scanned) or `inverted` (posting lists, as a sparse field).
    package var index: String?
    /// Flat fields: rows stored (deleted documents' included until compaction).
    package var rows: UInt64?

    package init(id: UInt32, name: String, kind: FieldKind, dimensions: UInt32) {
        self.id = id
        self.name = name
        self.kind = kind.rawValue
        self.dimensions = dimensions
    }

    /// The field's kind, or a clear error when it was written by a newer SparseDB.
    /// Whether the field's vectors live in posting lists and forward rows (sparse, and csr
    /// with an inverted index).
    package var isInverted: Bool { kind == FieldKind.sparse.rawValue || (kind == FieldKind.csr.rawValue && index == "inverted") }

    /// Whether the field's vectors live in flat chunks of fixed-width rows (dense, and csr with
    /// a flat index).
    package var isFlat: Bool { kind == FieldKind.dense.rawValue || (kind == FieldKind.csr.rawValue && index != "inverted") }

    /// Whether stored rows are half precision.
    package var isHalfPrecision: Bool { precision == "f16" }

    /// Whether dense rows (and queries) are normalized: cosine similarity as a dot product.
    package var isCosine: Bool { metric == "cosine" }

    package func knownKind(collection: String) throws -> FieldKind {
        guard let k = FieldKind(rawValue: kind) else {
            throw SparseDBError(
                .newerFormat, "field '\(name)' of collection '\(collection)' has kind '\(kind)', which this SparseDB does not know; upgrade SparseDB")
        }
        return k
    }
}

/// A payload attribute declared by a collection's schema (indexed for filters).
package struct AttributeRecord: Codable, Equatable, Sendable {
    package var id: UInt32
    package var name: String
    /// `keyword`, `integer`, `float` or `bool`.
    package var type: String

    package init(id: UInt32, name: String, type: String) {
        self.id = id
        self.name = name
        self.type = type
    }
}

/// The metadata of one collection — its schema and counters — stored under `collection:NAME` in
/// `meta` as a checksummed JSON object (format-spec.md §4). Readers ignore keys they do not know.
package struct CollectionRecord: Codable, Equatable, Sendable {
    package var id: UInt32
    package var name: String
    package var fields: [FieldRecord]
    package var attributes: [AttributeRecord] = []
    /// The next internal document id to assign; ids are never reused.
    package var nextDocument: UInt32 = 0
    package var liveDocuments: UInt64 = 0
    /// Tombstoned, not yet compacted.
    package var deletedDocuments: UInt64 = 0
    /// Incremented by every committed change of the collection.
    package var generation: UInt64 = 0

    package init(id: UInt32, name: String, fields: [FieldRecord], attributes: [AttributeRecord] = []) {
        self.id = id
        self.name = name
        self.fields = fields
        self.attributes = attributes
    }

    package func field(named name: String) -> FieldRecord? { fields.first { $0.name == name } }

    package mutating func updateField(_ field: FieldRecord) {
        if let i = fields.firstIndex(where: { $0.id == field.id }) { fields[i] = field }
    }

    /// The names allowed for collections, fields and attributes: 1…200 bytes of UTF-8 without
    /// control characters.
    package static func checkName(_ name: String, what: String) throws {
        guard !name.isEmpty, name.utf8.count <= 200, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw SparseDBError(.invalidInput, "\(what) name '\(name.prefix(40))' must be 1…200 bytes without control characters")
        }
    }
}
