import SparseDBCore
import SparseDBIndex

/// The vector a document carries in one field.
public enum FieldVector: Sendable, Equatable {
    /// For `sparse` and `csr` fields.
    case sparse(SparseVector)
    /// For `dense` fields: exactly the field's dimensions, finite values.
    case dense([Float])
}

/// A document as stored: an external id, an optional payload, and vectors by field name.
public struct Document: Sendable, Equatable {
    /// The caller's unique id (UTF-8, 1…500 bytes).
    public var id: String
    /// Opaque bytes stored with the document and returned with hits (the CLI stores JSON).
    public var payload: [UInt8]?
    /// The document's vectors, by field name. A document may carry any subset of the fields.
    public var vectors: [String: FieldVector]
    /// Values of the collection's declared attributes, by name (filters test them); a document
    /// may leave any of them out (it then matches no test on that attribute).
    public var attributes: [String: AttributeValue]

    /// A document with vectors for several fields.
    public init(id: String, payload: [UInt8]? = nil, vectors: [String: FieldVector], attributes: [String: AttributeValue] = [:]) {
        self.id = id
        self.payload = payload
        self.vectors = vectors
        self.attributes = attributes
    }

    /// A document with one sparse vector, for a collection with one vector field (whatever its
    /// name) or a field named `vector`.
    public init(id: String, payload: [UInt8]? = nil, vector: SparseVector, attributes: [String: AttributeValue] = [:]) {
        self.init(id: id, payload: payload, vectors: [VectorField.defaultName: .sparse(vector)], attributes: attributes)
    }

    /// The sparse vector of the document's only field, or of field `vector`.
    public var vector: SparseVector? {
        if case .sparse(let v)? = vectors[VectorField.defaultName] ?? (vectors.count == 1 ? vectors.first?.value : nil) { return v }
        return nil
    }
}

/// A text document for ingestion through an encoder.
public struct TextDocument: Sendable {
    /// The caller's unique id.
    public var id: String
    /// The text to encode (BEIR convention for a corpus: title + " " + text).
    public var text: String
    /// Opaque bytes stored with the document.
    public var payload: [UInt8]?
    /// Values of the collection's declared attributes, by name.
    public var attributes: [String: AttributeValue]

    /// A text document with `id`, its `text`, an optional `payload` and attribute values.
    public init(id: String, text: String, payload: [UInt8]? = nil, attributes: [String: AttributeValue] = [:]) {
        self.id = id
        self.text = text
        self.payload = payload
        self.attributes = attributes
    }
}

extension Document {
    /// The writer's form of this document for `record`'s schema: field names resolved to ids.
    func indexDocument(for record: CollectionRecord) throws -> IndexDocument {
        var fields: [(field: UInt32, value: FieldValue)] = []
        for (name, vector) in vectors.sorted(by: { $0.key < $1.key }) {
            var field = record.field(named: name)
            if field == nil, name == VectorField.defaultName, vectors.count == 1, record.fields.count == 1 { field = record.fields[0] }
            guard let field else {
                throw SparseDBError(
                    .invalidInput, "document '\(id)': collection '\(record.name)' has no field '\(name)' (fields: \(record.fields.map(\.name).joined(separator: ", ")))")
            }
            switch vector {
            case .sparse(let v): fields.append((field.id, .sparse(v)))
            case .dense(let v): fields.append((field.id, .dense(v)))
            }
        }
        var values: [(id: UInt32, value: SparseDBIndex.AttributeValue)] = []
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            guard let attribute = record.attributes.first(where: { $0.name == name }) else {
                let known = record.attributes.map(\.name).joined(separator: ", ")
                throw SparseDBError(
                    .invalidInput, "document '\(id)': collection '\(record.name)' declares no attribute '\(name)' (attributes: \(known.isEmpty ? "none" : known))")
            }
            values.append((attribute.id, value.stored))
        }
        return IndexDocument(id: id, payload: payload, fields: fields, attributes: values)
    }
}
