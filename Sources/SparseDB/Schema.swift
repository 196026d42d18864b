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

    /// The field's name (1…200 bytes).
    public var name: String
    /// How the field's vectors are stored and searched.
    public var kind: Kind
    /// Sparse and CSR: valid dimension indices are `0..<dimensions`. Dense: the row length.
    public var dimensions: UInt32

    /// A field of `kind`.
    public init(name: String, kind: Kind, dimensions: UInt32) {
        self.name = name
        self.kind = kind
        self.dimensions = dimensions
    }

    /// A sparse field (inverted index) over `dimensions` dimensions.
    public static func sparse(_ name: String = defaultName, dimensions: UInt32) -> VectorField {
        VectorField(name: name, kind: .sparse, dimensions: dimensions)
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
            switch f.kind {
            case .sparse: break
            case .csr, .dense:
                throw SparseDBError(.invalidInput, "field '\(f.name)': \(f.kind.rawValue) fields are not supported by this SparseDB")
            }
            fieldRecords.append(FieldRecord(id: UInt32(i + 1), name: f.name, kind: FieldKind(rawValue: f.kind.rawValue)!, dimensions: f.dimensions))
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
            VectorField(name: f.name, kind: VectorField.Kind(rawValue: f.kind) ?? .sparse, dimensions: f.dimensions)
        }
        attributes = record.attributes.map { a in
            AttributeField(name: a.name, type: AttributeField.ValueType(rawValue: a.type) ?? .keyword)
        }
    }
}
