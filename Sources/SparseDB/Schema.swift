import SparseDBCore
import SparseDBIndex

/// What a collection holds: named vector fields of several kinds, and payload attributes.
///
/// ```swift
/// let schema = CollectionSchema(fields: [
///     .sparse("splade", dimensions: 30_522),
///     .dense("minilm", dimensions: 384, metric: .cosine),
/// ])
/// let docs = try db.createCollection("docs", schema: schema)
/// ```
///
/// All fields of a collection share one internal document-id space: a document may carry any
/// subset of them.
public struct CollectionSchema: Sendable, Equatable {
    /// The vector fields, in declaration order.
    public var fields: [VectorField]
    /// Payload attributes indexed for filters.
    public var attributes: [AttributeField]

    /// A schema with these fields and attributes.
    public init(fields: [VectorField], attributes: [AttributeField] = []) {
        self.fields = fields
        self.attributes = attributes
    }

    /// One sparse field named `vector` over `dimensions` dimensions: the schema of
    /// ``Database/collection(_:creatingWithDimensions:)``.
    public static func sparse(dimensions: UInt32) -> CollectionSchema {
        CollectionSchema(fields: [.sparse(VectorField.defaultName, dimensions: dimensions)])
    }
}

/// A named vector field of a collection.
public struct VectorField: Sendable, Equatable {
    /// The name of the field that single-vector documents and queries use by default.
    public static let defaultName = "vector"

    /// How the field's vectors are stored and searched.
    public enum Kind: String, Sendable, CaseIterable {
        /// Learned sparse vectors (SPLADE and friends) in an inverted index over a vocabulary.
        case sparse
        /// k-sparse codes over a few thousand dimensions (CSR).
        case csr
        /// Fixed-length float rows (dense embeddings).
        case dense
    }

    /// The precision flat rows are stored in.
    public enum Precision: String, Sendable, CaseIterable {
        /// IEEE binary32: scores are exact for the values given.
        case float32 = "f32"
        /// IEEE binary16: half the bytes on disk (and, for dense fields, in memory too: a dense
        /// scan, bound by memory bandwidth, takes about half the time); values are rounded to
        /// half precision when stored, and scores are exact for the stored values.
        case float16 = "f16"
    }

    /// How dense rows are compared.
    public enum Metric: String, Sendable, CaseIterable {
        /// The dot product.
        case dot
        /// Cosine similarity: rows and queries are normalized (rows when stored).
        case cosine
    }

    /// How a CSR field is indexed.
    public enum CSRIndex: String, Sendable, CaseIterable {
        /// Fixed-width rows of k (dimension, value) slots, scanned exactly.
        case flat
        /// Posting lists over the code dimensions, searched like a sparse field.
        case inverted
        /// Chosen from k and the dimensions by the measured crossover (BENCHMARKS.md).
        case automatic
    }

    /// The field's name (1…200 bytes).
    public var name: String
    /// How the field's vectors are stored and searched.
    public var kind: Kind
    /// Sparse and CSR: valid dimension indices are `0..<dimensions`. Dense: the row length.
    public var dimensions: UInt32
    /// CSR: the number of active dimensions a code holds at most (k, 1…256).
    public var activeDimensions: Int?
    /// CSR: a code with more active dimensions keeps its k largest instead of being refused.
    public var keepLargest: Bool = false
    /// Dense and flat CSR: the precision of stored values.
    public var precision: Precision = .float32
    /// Dense: the similarity.
    public var metric: Metric = .dot
    /// CSR: the index structure.
    public var index: CSRIndex = .automatic

    /// A field of `kind` with default options.
    public init(name: String, kind: Kind, dimensions: UInt32) {
        self.name = name
        self.kind = kind
        self.dimensions = dimensions
    }

    /// A sparse field (inverted index) over `dimensions` dimensions.
    public static func sparse(_ name: String = defaultName, dimensions: UInt32) -> VectorField {
        VectorField(name: name, kind: .sparse, dimensions: dimensions)
    }

    /// A CSR field: codes of at most `activeDimensions` (k) nonzero values over `dimensions`
    /// dimensions (at most 65,536).
    public static func csr(
        _ name: String, dimensions: UInt32 = 4096, activeDimensions: Int, keepLargest: Bool = false, precision: Precision = .float32,
        index: CSRIndex = .automatic
    ) -> VectorField {
        var f = VectorField(name: name, kind: .csr, dimensions: dimensions)
        f.activeDimensions = activeDimensions
        f.keepLargest = keepLargest
        f.precision = precision
        f.index = index
        return f
    }

    /// A dense field of `dimensions` values per row.
    public static func dense(_ name: String, dimensions: UInt32, metric: Metric = .dot, precision: Precision = .float32) -> VectorField {
        var f = VectorField(name: name, kind: .dense, dimensions: dimensions)
        f.metric = metric
        f.precision = precision
        return f
    }

    /// The index an automatic CSR field gets: posting lists when codes are sparse relative to the
    /// dimensions (k ≤ dimensions / 128), flat rows otherwise. Measured on this machine kind
    /// (BENCHMARKS.md, "Flat indexes: CSR and dense"), with dimension usage following a power law
    /// (the head dimensions in most rows, the inverted index's worst case): at k = 64 of 4,096
    /// the flat scan takes about 0.6x the inverted index's time, at k = 16 the two are even — and
    /// with codes spread more evenly, posting lists get shorter and favour the inverted index.
    static func automaticIndex(activeDimensions k: Int, dimensions: UInt32) -> CSRIndex {
        k * 128 <= Int(dimensions) ? .inverted : .flat
    }
}

/// A payload attribute that filters can test.
public struct AttributeField: Sendable, Equatable {
    /// The value type of an attribute.
    public enum ValueType: String, Sendable, CaseIterable {
        /// A string, or a list of strings.
        case keyword
        /// A 64-bit signed integer.
        case integer
        /// A 64-bit float.
        case float
        /// `true` or `false`.
        case bool
    }

    /// The attribute's name: the payload field it is read from.
    public var name: String
    /// Its value type.
    public var type: ValueType

    /// An attribute `name` of `type`.
    public init(name: String, type: ValueType) {
        self.name = name
        self.type = type
    }
}

extension CollectionSchema {
    /// The stored form of this schema (field and attribute ids assigned in order, from 1).
    func records(collection name: String) throws -> (fields: [FieldRecord], attributes: [AttributeRecord]) {
        guard !fields.isEmpty else { throw SparseDBError(.invalidInput, "collection '\(name)' needs at least one vector field") }
        var names = Set<String>()
        var fieldRecords: [FieldRecord] = []
        for (i, f) in fields.enumerated() {
            try CollectionRecord.checkName(f.name, what: "field")
            guard names.insert(f.name).inserted else { throw SparseDBError(.invalidInput, "field name '\(f.name)' is used twice") }
            guard f.dimensions > 0 else { throw SparseDBError(.invalidInput, "field '\(f.name)' needs at least one dimension") }
            var record = FieldRecord(id: UInt32(i + 1), name: f.name, kind: FieldKind(rawValue: f.kind.rawValue)!, dimensions: f.dimensions)
            switch f.kind {
            case .sparse: break
            case .csr:
                guard let k = f.activeDimensions, k >= 1, k <= 256 else {
                    throw SparseDBError(.invalidInput, "CSR field '\(f.name)' needs 1…256 active dimensions (k), got \(f.activeDimensions.map(String.init) ?? "none")")
                }
                guard f.dimensions <= 65_536 else { throw SparseDBError(.invalidInput, "CSR field '\(f.name)' has at most 65,536 dimensions") }
                record.activeDimensions = k
                record.keepLargest = f.keepLargest
                record.precision = f.precision.rawValue
                let index = f.index == .automatic ? VectorField.automaticIndex(activeDimensions: k, dimensions: f.dimensions) : f.index
                record.index = index.rawValue
                if index == .flat { record.rows = 0 }
            case .dense:
                guard f.dimensions <= 65_536 else { throw SparseDBError(.invalidInput, "dense field '\(f.name)' has at most 65,536 dimensions") }
                record.precision = f.precision.rawValue
                record.metric = f.metric.rawValue
                record.rows = 0
            }
            fieldRecords.append(record)
        }
        var attributeNames = Set<String>()
        var attributeRecords: [AttributeRecord] = []
        for (i, a) in attributes.enumerated() {
            try CollectionRecord.checkName(a.name, what: "attribute")
            guard attributeNames.insert(a.name).inserted else { throw SparseDBError(.invalidInput, "attribute name '\(a.name)' is used twice") }
            attributeRecords.append(AttributeRecord(id: UInt32(i + 1), name: a.name, type: a.type.rawValue))
        }
        return (fieldRecords, attributeRecords)
    }

    /// The public form of a stored schema.
    init(_ record: CollectionRecord) {
        fields = record.fields.map { f in
            var field = VectorField(name: f.name, kind: VectorField.Kind(rawValue: f.kind) ?? .sparse, dimensions: f.dimensions)
            field.activeDimensions = f.activeDimensions
            field.keepLargest = f.keepLargest ?? false
            field.precision = f.precision.flatMap(VectorField.Precision.init(rawValue:)) ?? .float32
            field.metric = f.metric.flatMap(VectorField.Metric.init(rawValue:)) ?? .dot
            field.index = f.index.flatMap(VectorField.CSRIndex.init(rawValue:)) ?? .automatic
            return field
        }
        attributes = record.attributes.map { a in
            AttributeField(name: a.name, type: AttributeField.ValueType(rawValue: a.type) ?? .keyword)
        }
    }
}
