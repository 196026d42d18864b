import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBSearch
import SparseDBStorage

/// A named set of documents with vector fields, indexed for exact top-k by dot product.
///
/// Obtain one from ``Database/collection(_:)``, ``Database/createCollection(_:schema:)`` or
/// ``Database/collection(_:creatingWithDimensions:)``. Every mutation is one ACID write
/// transaction: all of a batch or nothing. Thread-safe.
public final class VectorCollection: Sendable {
    /// The collection's name.
    public let name: String
    /// Its fields and attributes.
    public let schema: CollectionSchema
    let database: Database
    let id: UInt32

    init(database: Database, record: CollectionRecord) throws {
        for field in record.fields { _ = try field.knownKind(collection: record.name) }
        self.database = database
        self.name = record.name
        self.id = record.id
        self.schema = CollectionSchema(record)
    }

    var env: LMDBEnvironment { database.env }

    /// Valid dimension indices of the only (or `vector`) sparse field are `0..<dimensions`.
    public var dimensions: UInt32 {
        (schema.fields.first { $0.name == VectorField.defaultName } ?? schema.fields[0]).dimensions
    }

    /// This collection's metadata in `txn`'s snapshot; `.notFound` when it was dropped (or
    /// dropped and made again: ids are never reused).
    func record(_ txn: borrowing Transaction) throws -> CollectionRecord {
        guard let record = try Catalog.loadCollection(txn, name: name), record.id == id else {
            throw SparseDBError(.notFound, "collection '\(name)' no longer exists")
        }
        return record
    }

    func currentRecord() throws -> CollectionRecord { try env.read { txn in try record(txn) } }

    /// Number of live documents.
    public func count() throws -> Int { Int(try currentRecord().liveDocuments) }

    /// Inserts `documents`, replacing any stored document with the same id, in one transaction.
    ///
    /// - Throws: `.invalidInput` (nothing is written) when a document has an empty or too long
    ///   id, an id that appears twice in the batch, a field the collection does not have, or a
    ///   vector that does not fit its field (a dimension out of range).
    public func upsert(_ documents: [Document]) throws {
        guard !documents.isEmpty else { return }
        try commit(documents, encoders: [:], allowMismatch: false)
    }

    /// The one write path of upserts: a transaction that inserts `documents` and, for fields
    /// whose vectors come from an encoder, checks it against the field's and records it on first use.
    func commit(_ documents: [Document], encoders: [String: TextEncoder], allowMismatch: Bool) throws {
        let codec = ZstdCodec(level: database.configuration.compressionLevel)
        try env.write { txn in
            var record = try record(txn)
            for (fieldName, encoder) in encoders {
                guard var field = record.field(named: fieldName) else { continue }
                try Self.checkEncoder(field, encoder, collection: name, allowMismatch: allowMismatch)
                if field.encoder == nil {
                    field.encoder = encoder.record
                    record.updateField(field)
                }
            }
            let indexDocuments = try documents.map { try $0.indexDocument(for: record) }
            try IndexWriter.upsert(txn, record: &record, documents: indexDocuments, codec: codec)
            try Catalog.saveCollection(txn, record)
        }
    }

    /// Deletes the documents with these ids in one transaction; returns the ids that did not exist.
    @discardableResult
    public func delete(ids: [String]) throws -> [String] {
        try env.write { txn in
            var record = try record(txn)
            let missing = try IndexWriter.delete(txn, record: &record, ids: ids)
            try Catalog.saveCollection(txn, record)
            return missing
        }
    }

    /// Removes deleted documents for good and re-packs every posting list into full blocks, in
    /// one transaction. Search results do not change.
    ///
    /// - Throws: `.corrupt`, before anything is written, when the data file's page structure is
    ///   damaged: the rewrite touches most pages, and LMDB, which trusts them, could corrupt its
    ///   own memory rewriting a damaged one (format-spec.md §14). The page walk costs about 0.8 s
    ///   of CPU per GB, a fraction of the rewrite.
    public func compact() throws {
        try database.checkPagesBeforeScanning()
        let codec = ZstdCodec(level: database.configuration.compactionCompressionLevel)
        try env.write { txn in
            var record = try record(txn)
            try IndexWriter.compact(txn, record: &record, codec: codec)
            try Catalog.saveCollection(txn, record)
        }
    }

    /// How fragmented the posting lists are: stored blocks divided by the blocks a compaction
    /// would write (1 = fully packed). Each ingest batch adds a partial block to every term it
    /// touches, so many small batches raise it; ``compact()`` brings it back to 1.
    public func fragmentation() throws -> Double {
        try env.read { txn in
            var blocks = 0
            var packed = 0
            try txn.scan(prefix: Keys.collection(id), in: txn.table(.term)) { k, v in
                let stats = try Records.parseTerm(key: k, v)
                blocks += Int(stats.blocks)
                packed += (Int(stats.postings) + PostingBlock.targetCount - 1) / PostingBlock.targetCount
                return true
            }
            return packed == 0 ? 1 : Double(blocks) / Double(packed)
        }
    }

    /// Compacts when ``fragmentation()`` exceeds `threshold`; returns whether it did.
    @discardableResult
    public func compactIfFragmented(threshold: Double = 2) throws -> Bool {
        guard try fragmentation() > threshold else { return false }
        try compact()
        return true
    }

    /// The stored document with external id `id`, or `nil`.
    public func document(id externalId: String) throws -> Document? {
        try env.read { txn in
            let record = try record(txn)
            guard let doc = try IndexWriter.documentId(txn, idKey: Keys.externalId(id, externalId)) else { return nil }
            return try loadDocument(txn, record: record, doc)
        }
    }

    /// Which of `ids` are stored.
    public func existingIds(_ ids: [String]) throws -> Set<String> {
        try env.read { txn in
            var found = Set<String>()
            for externalId in ids where try IndexWriter.documentId(txn, idKey: Keys.externalId(id, externalId)) != nil {
                found.insert(externalId)
            }
            return found
        }
    }

    /// Document `doc`'s stored record: id, payload when `includePayload`, attribute values only
    /// when `includeAttributes` (search hits need none).
    func storedDocument(_ txn: borrowing Transaction, _ doc: UInt32, includePayload: Bool, includeAttributes: Bool = false) throws
        -> Records.StoredDocument
    {
        try Keys.withDocument(id, doc) { k in
            try txn.withValue(rawKey: k, in: txn.table(.document)) { b throws in
                guard let b else { throw SparseDBError(.corrupt, "document \(doc) of '\(name)' has no record") }
                return try Records.parseDocument(key: k, b, includePayload: includePayload, includeAttributes: includeAttributes)
            }
        }
    }

    func loadDocument(_ txn: borrowing Transaction, record: CollectionRecord, _ doc: UInt32) throws -> Document {
        let stored = try storedDocument(txn, doc, includePayload: true, includeAttributes: true)
        var vectors: [String: FieldVector] = [:]
        for field in record.fields where field.isFlat {
            let key = Keys.flatChunk(id, field.id, FlatStore.chunkIndex(doc))
            let chunk = try key.withUnsafeBytes { k in
                try txn.withValue(key, in: txn.table(.flatChunk)) { b throws in try b.map { try FlatStore.decode(key: k, $0, field: field) } }
            }
            guard let chunk, let r = chunk.documents.firstIndex(of: doc) else { continue }
            let row = chunk.values[(r * chunk.width)..<((r + 1) * chunk.width)]
            if chunk.layout.isCSR {
                let dims = chunk.dimensions[(r * chunk.width)..<((r + 1) * chunk.width)]
                let used = zip(dims, row).filter { $0.1 != 0 }
                vectors[field.name] = .sparse(SparseVector(unchecked: used.map { UInt32($0.0) }, weights: used.map(\.1)))
            } else {
                vectors[field.name] = .dense(Array(row))
            }
        }
        let layout = try ForwardRows.layout(txn)
        for field in record.fields where field.isInverted {
            let vector = try ForwardRows.withRow(txn, collection: id, field: field.id, document: doc, layout: layout) { k, b throws in
                try b.map { try Records.parseForwardRow(key: k, $0, dimensions: field.dimensions) }
            }
            if let vector { vectors[field.name] = .sparse(vector) }
        }
        var attributes: [String: AttributeValue] = [:]
        for (aid, value) in stored.attributes {
            if let a = record.attributes.first(where: { $0.id == aid }) { attributes[a.name] = AttributeValue(value) }
        }
        return Document(id: stored.id, payload: stored.payload, vectors: vectors, attributes: attributes)
    }

    /// Counts and sizes of this collection.
    ///
    /// Scans the collection's tables; the data file's page structure is checked first (as
    /// ``Database/statistics()`` does), so a damaged file is a `.corrupt` error that says to run
    /// `sparsedb verify`, not a crash inside LMDB.
    public func statistics() throws -> CollectionStatistics {
        try database.checkPagesBeforeScanning()
        return try scanStatistics()
    }

    /// ``statistics()`` without the page check, for a caller that has just made it.
    func scanStatistics() throws -> CollectionStatistics {
        try env.read { txn in
            let record = try record(txn)
            var fields: [FieldStatistics] = []
            for field in record.fields {
                var terms = 0
                var blocks = 0
                var postingBytes = 0
                var forwardBytes = 0
                let prefix = Keys.field(id, field.id)
                try txn.scan(prefix: prefix, in: txn.table(.term)) { _, _ in
                    terms += 1
                    return true
                }
                try txn.scan(prefix: prefix, in: txn.table(.postingBlock)) { _, v in
                    blocks += 1
                    postingBytes += v.count
                    return true
                }
                try txn.scan(prefix: prefix, in: txn.table(.forwardRow)) { _, v in
                    forwardBytes += v.count
                    return true
                }
                var flatBytes = 0
                if field.isFlat {
                    try txn.scan(prefix: prefix, in: txn.table(.flatChunk)) { _, v in
                        flatBytes += v.count
                        return true
                    }
                }
                fields.append(
                    FieldStatistics(
                        name: field.name, kind: field.kind, dimensions: field.dimensions, postings: field.postings, terms: terms,
                        postingBlocks: blocks, postingBytes: postingBytes,
                        bytesPerPosting: field.postings > 0 ? Double(postingBytes) / Double(field.postings) : 0, forwardBytes: forwardBytes,
                        encoder: field.encoder?.name, index: field.kind == "csr" ? (field.isInverted ? "inverted" : "flat") : nil,
                        activeDimensions: field.activeDimensions, metric: field.metric, precision: field.precision, flatBytes: flatBytes))
            }
            return CollectionStatistics(
                name: name, documents: record.liveDocuments, deletedDocuments: record.deletedDocuments, fields: fields,
                attributes: Dictionary(uniqueKeysWithValues: record.attributes.map { ($0.name, $0.type) }))
        }
    }

    /// Checks every stored structure of this collection; returns the problems found.
    public func verify() throws -> [String] {
        let codec = ZstdCodec()
        return try env.read { txn in try Verifier.verify(txn, record: try record(txn), codec: codec) }
    }
}

/// Counts and sizes of a database (`sparsedb stats`).
public struct DatabaseStatistics: Sendable, Codable {
    /// The database directory.
    public var path: String
    /// The on-disk format version (format-spec.md).
    public var formatVersion: Int
    /// Size of `data.mdb`.
    public var bytesOnDisk: Int = 0
    /// Pages in use × page size (the rest of the file is free pages LMDB reuses).
    public var bytesUsed: Int = 0
    /// The current size of the memory map.
    public var mapSize: Int = 0
    /// One entry per collection, by name.
    public var collections: [CollectionStatistics] = []
}

/// Counts and sizes of one collection.
public struct CollectionStatistics: Sendable, Codable {
    /// The collection's name.
    public var name: String
    /// Live documents.
    public var documents: UInt64
    /// Deleted documents not yet removed by compaction.
    public var deletedDocuments: UInt64
    /// One entry per vector field.
    public var fields: [FieldStatistics]
    /// The declared payload attributes: name → type (keyword, integer, float, bool).
    public var attributes: [String: String] = [:]

    /// The postings of all fields.
    public var postings: UInt64 { fields.reduce(0) { $0 + $1.postings } }
}

/// Counts and sizes of one vector field.
public struct FieldStatistics: Sendable, Codable {
    /// The field's name.
    public var name: String
    /// `sparse`, `csr` or `dense`.
    public var kind: String
    /// Dimensions of the field.
    public var dimensions: UInt32
    /// Postings stored (deleted documents' included until compaction).
    public var postings: UInt64
    /// Terms (dimensions) with postings.
    public var terms: Int
    /// Posting blocks stored.
    public var postingBlocks: Int
    /// Bytes of the stored posting blocks (values only, headers included).
    public var postingBytes: Int
    /// `postingBytes / postings`.
    public var bytesPerPosting: Double
    /// Bytes of the forward rows (float weights for exact rescoring).
    public var forwardBytes: Int
    /// Name of the model the field was built with, if built from text.
    public var encoder: String?
    /// csr: `flat` or `inverted`; nil for other kinds.
    public var index: String? = nil
    /// csr: the most active dimensions a code holds.
    public var activeDimensions: Int? = nil
    /// dense: `dot` or `cosine`.
    public var metric: String? = nil
    /// csr and dense: `f32` or `f16`.
    public var precision: String? = nil
    /// Bytes of the flat index's row chunks (csr flat and dense fields).
    public var flatBytes: Int = 0
}
