// sdb_encoder_*, sdb_vectors_*, text ingest and text search: see include/sparsedb.h.
import Foundation
import SparseDB

@_cdecl("sdb_encoder_open")
public func sdb_encoder_open(_ path: UnsafePointer<CChar>?, _ out: HandleOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let path = try Input.string(path, "model path")
        try store(retain(try TextEncoder(path: path)), out, "encoder")
    }
}

@_cdecl("sdb_encoder_free")
public func sdb_encoder_free(_ encoder: OpaquePointer?) { release(encoder, as: TextEncoder.self) }

func describe(_ e: TextEncoder) -> [String: Any] {
    [
        "name": e.name, "kind": e.kind.rawValue, "path": e.path, "checksum": e.checksum, "dimensions": e.dimensions,
        "default_max_active_dims": e.defaultMaxActiveDims as Any, "sparse": e.producesSparseVectors,
    ]
}

@_cdecl("sdb_encoder_info_json")
public func sdb_encoder_info_json(_ encoder: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let e: TextEncoder = try borrow(encoder, "encoder")
        try store(cString(json(describe(e))), out, "info")
    }
}

func task(_ value: Int32) throws -> TextEncoder.Task {
    switch value {
    case 0: .document
    case 1: .query
    default: throw CAPIError.invalid("unknown task \(value) (0 document, 1 query)")
    }
}

/// `maxActiveDims` as the C API passes it: 0 = the model's default.
func maxActiveDims(_ value: Int64) throws -> Int? {
    guard value >= 0, let v = Int(exactly: value) else { throw CAPIError.invalid("max_active_dims must be 0 (model default) or positive, got \(value)") }
    return v == 0 ? nil : v
}

@_cdecl("sdb_encoder_encode")
public func sdb_encoder_encode(
    _ encoder: OpaquePointer?, _ count: Int64, _ textData: UnsafePointer<CChar>?, _ textOffsets: UnsafePointer<Int64>?, _ task: Int32,
    _ maxActive: Int64, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let e: TextEncoder = try borrow(encoder, "encoder")
        let texts = try Input.strings(textData, textOffsets, count: try Input.count(count, "text count"), "text")
        guard e.producesSparseVectors else { throw CAPIError.invalid("model '\(e.name)' (\(e.kind.rawValue)) produces dense vectors") }
        let vectors = try e.encode(texts, task: try SparseDBCAPI.task(task), maxActiveDims: try maxActiveDims(maxActive))
        try store(retain(RowsBox(vectors: vectors, payloads: [])), out, "vectors")
    }
}

@_cdecl("sdb_encoder_embed")
public func sdb_encoder_embed(
    _ encoder: OpaquePointer?, _ count: Int64, _ textData: UnsafePointer<CChar>?, _ textOffsets: UnsafePointer<Int64>?, _ task: Int32,
    _ truncateDim: Int64, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let e: TextEncoder = try borrow(encoder, "encoder")
        let texts = try Input.strings(textData, textOffsets, count: try Input.count(count, "text count"), "text")
        guard !e.producesSparseVectors else { throw CAPIError.invalid("model '\(e.name)' (\(e.kind.rawValue)) produces sparse vectors: use sdb_encoder_encode") }
        guard truncateDim >= 0, let d = Int(exactly: truncateDim) else { throw CAPIError.invalid("truncate_dim must be 0 (all) or positive, got \(truncateDim)") }
        let rows = try e.embed(texts, task: try SparseDBCAPI.task(task), truncateDimensions: d == 0 ? nil : d)
        let width = rows.first?.count ?? (d == 0 ? e.dimensions : min(d, e.dimensions))
        let box = RowsBox(vectors: [], payloads: [])
        box.fields = [FieldRows(field: .dense("embedding", dimensions: UInt32(max(width, 1))), vectors: rows.map { .dense($0) })]
        try store(retain(box), out, "vectors")
    }
}

@_cdecl("sdb_vectors_dense_view")
public func sdb_vectors_dense_view(
    _ vectors: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?,
    _ values: UnsafeMutablePointer<UnsafePointer<Float>?>?
) {
    guard let vectors else { return }
    let box = Unmanaged<RowsBox>.fromOpaque(UnsafeRawPointer(vectors)).takeUnretainedValue()
    guard let rows = box.fields.first, rows.width > 0 else {
        count?.pointee = 0
        width?.pointee = 0
        values?.pointee = UnsafePointer(box.values.pointer)
        return
    }
    count?.pointee = Int64(rows.present.count)
    width?.pointee = Int64(rows.width)
    values?.pointee = UnsafePointer(rows.values.pointer)
}

@_cdecl("sdb_vectors_view")
public func sdb_vectors_view(
    _ vectors: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?, _ indptr: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ indices: UnsafeMutablePointer<UnsafePointer<UInt32>?>?, _ values: UnsafeMutablePointer<UnsafePointer<Float>?>?
) {
    sdb_documents_view(vectors, count, nil, indptr, indices, values, nil, nil, nil)
}

@_cdecl("sdb_vectors_free")
public func sdb_vectors_free(_ vectors: OpaquePointer?) { release(vectors, as: RowsBox.self) }

// MARK: Text through a collection

/// The encoder description recorded for a field, as JSON (`null` when it was not built from text).
@_cdecl("sdb_collection_encoder_json")
public func sdb_collection_encoder_json(_ collection: OpaquePointer?, _ field: UnsafePointer<CChar>?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        let d = try c.encoderDescription(field: try Input.optionalString(field, "field"))
        let value: Any = d.map { ["name": $0.name, "checksum": $0.checksum, "kind": $0.kind, "path": $0.path as Any] } ?? NSNull()
        try store(cString(json(value)), out, "encoder")
    }
}

@_cdecl("sdb_collection_query_encoder")
public func sdb_collection_query_encoder(
    _ collection: OpaquePointer?, _ model: UnsafePointer<CChar>?, _ field: UnsafePointer<CChar>?, _ allowMismatch: Int32, _ out: HandleOut,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let encoder = try c.queryEncoder(
            model: try Input.optionalString(model, "model"), field: try Input.optionalString(field, "field"), allowMismatch: allowMismatch != 0)
        try store(retain(encoder), out, "encoder")
    }
}

/// The public API checks an encoder against a field only when it loads it by path
/// (`queryEncoder(model:)`); an encoder already loaded is compared with the recorded description.
func checkQueryEncoder(_ c: VectorCollection, _ e: TextEncoder, field: String?) throws {
    guard let recorded = try c.encoderDescription(field: field) else { return }
    if recorded.checksum != e.checksum || recorded.kind != e.kind.rawValue {
        throw CAPIError(
            status: Status.modelMismatch,
            message:
                "collection '\(c.name)' was built with model '\(recorded.name)' (\(recorded.kind), checksum \(recorded.checksum)), not '\(e.name)' (\(e.kind.rawValue), checksum \(e.checksum)); use the same model or allow a mismatch explicitly"
        )
    }
}

@_cdecl("sdb_collection_search_text")
public func sdb_collection_search_text(
    _ collection: OpaquePointer?, _ encoder: OpaquePointer?, _ field: UnsafePointer<CChar>?, _ count: Int64,
    _ textData: UnsafePointer<CChar>?, _ textOffsets: UnsafePointer<Int64>?, _ k: Int64, _ algorithm: Int32, _ maxQueryTerms: Int64,
    _ heapFactor: Float, _ flags: UInt32, _ threads: Int32, _ maxActive: Int64, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let allowMismatch = flags & 2 != 0  // SDB_SEARCH_ALLOW_MODEL_MISMATCH
        let args = try SearchArguments(
            field: field, k: k, algorithm: algorithm, maxQueryTerms: maxQueryTerms, heapFactor: heapFactor, flags: flags & ~UInt32(2),
            threads: threads)
        let texts = try Input.strings(textData, textOffsets, count: try Input.count(count, "text count"), "query text")
        let e: TextEncoder
        if encoder != nil {
            e = try borrow(encoder, "encoder")
            if !allowMismatch { try checkQueryEncoder(c, e, field: args.options.field) }
        } else {
            e = try c.queryEncoder(model: nil, field: args.options.field, allowMismatch: allowMismatch)
        }
        for (i, text) in texts.enumerated() where text.allSatisfy(\.isWhitespace) {
            throw CAPIError.invalid(texts.count > 1 ? "query \(i): the query text is empty" : "the query text is empty")
        }
        // One batched encoder call (parallel over the texts), then the searches.
        let queries = try e.fieldVectors(texts, task: .query, maxActiveDims: try maxActiveDims(maxActive))
        let options = args.options
        let results = try runQueries(texts.count, threads: args.threads) { i in try c.search(queries[i], options: options) }
        try store(retain(ResultsBox(results)), out, "results")
    }
}

/// Text documents handed to `VectorCollection.ingest`.
struct ArraySource: TextDocumentSource {
    let documents: [TextDocument]
    var position = 0
    mutating func next() throws -> TextDocument? {
        guard position < documents.count else { return nil }
        position += 1
        return documents[position - 1]
    }
}

@_cdecl("sdb_collection_ingest")
public func sdb_collection_ingest(
    _ collection: OpaquePointer?, _ encoder: OpaquePointer?, _ field: UnsafePointer<CChar>?, _ count: Int64,
    _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?, _ textData: UnsafePointer<CChar>?,
    _ textOffsets: UnsafePointer<Int64>?, _ payloadData: UnsafePointer<CChar>?, _ payloadOffsets: UnsafePointer<Int64>?,
    _ payloadPresent: UnsafePointer<UInt8>?, _ batchSize: Int64, _ maxActive: Int64, _ flags: UInt32, _ progressOut: StringOut,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        progressOut?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let field = try Input.optionalString(field, "field")
        let e: TextEncoder? = encoder != nil ? try borrow(encoder, "encoder") : nil
        try ingest(
            c, fields: [(field, e)], count: count, idData: idData, idOffsets: idOffsets, textData: textData, textOffsets: textOffsets,
            payloadData: payloadData, payloadOffsets: payloadOffsets, payloadPresent: payloadPresent, attributesJSON: nil,
            batchSize: batchSize, maxActive: maxActive, flags: flags, progressOut: progressOut)
    }
}

@_cdecl("sdb_collection_ingest_fields")
public func sdb_collection_ingest_fields(
    _ collection: OpaquePointer?, _ fieldCount: Int64, _ fieldNames: UnsafePointer<UnsafePointer<CChar>?>?,
    _ encoders: UnsafePointer<OpaquePointer?>?, _ count: Int64,
    _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?, _ textData: UnsafePointer<CChar>?,
    _ textOffsets: UnsafePointer<Int64>?, _ payloadData: UnsafePointer<CChar>?, _ payloadOffsets: UnsafePointer<Int64>?,
    _ payloadPresent: UnsafePointer<UInt8>?, _ attributesJSON: UnsafePointer<CChar>?, _ batchSize: Int64, _ maxActive: Int64,
    _ flags: UInt32, _ progressOut: StringOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        progressOut?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let nf = try Input.count(fieldCount, "field count")
        guard nf >= 1 else { throw CAPIError.invalid("an ingest needs at least one field") }
        guard let encoders else { throw CAPIError.invalid("encoders are null") }
        var fields: [(String?, TextEncoder?)] = []
        for i in 0..<nf {
            let name = try fieldNames.map { try Input.optionalString($0[i], "field name \(i)") } ?? nil
            let e: TextEncoder? = encoders[i] != nil ? try borrow(encoders[i], "encoder") : nil
            fields.append((name, e))
        }
        try ingest(
            c, fields: fields, count: count, idData: idData, idOffsets: idOffsets, textData: textData, textOffsets: textOffsets,
            payloadData: payloadData, payloadOffsets: payloadOffsets, payloadPresent: payloadPresent,
            attributesJSON: try Input.optionalString(attributesJSON, "attributes"), batchSize: batchSize, maxActive: maxActive, flags: flags,
            progressOut: progressOut)
    }
}

/// The ingest both entry points share: `fields` are (field name or nil for the only one, encoder
/// or nil for the field's recorded one).
private func ingest(
    _ c: VectorCollection, fields: [(String?, TextEncoder?)], count: Int64, idData: UnsafePointer<CChar>?, idOffsets: UnsafePointer<Int64>?,
    textData: UnsafePointer<CChar>?, textOffsets: UnsafePointer<Int64>?, payloadData: UnsafePointer<CChar>?,
    payloadOffsets: UnsafePointer<Int64>?, payloadPresent: UnsafePointer<UInt8>?, attributesJSON: String?, batchSize: Int64,
    maxActive: Int64, flags: UInt32, progressOut: StringOut
) throws {
    if flags & ~UInt32(7) != 0 { throw CAPIError.invalid("unknown ingest flags \(flags)") }
    let n = try Input.count(count, "document count")
    let ids = try Input.strings(idData, idOffsets, count: n, "id")
    let texts = try Input.strings(textData, textOffsets, count: n, "text")
    let payloads = try Input.payloads(payloadData, payloadOffsets, payloadPresent, count: n)
    let attributes = try attributeValues(json: attributesJSON, count: n, ids: ids, collection: c)
    guard batchSize >= 1, let batch = Int(exactly: batchSize) else { throw CAPIError.invalid("batch size must be at least 1, got \(batchSize)") }
    let options = IngestOptions(
        batchSize: batch, replace: flags & 1 != 0, maxActiveDims: try maxActiveDims(maxActive), allowModelMismatch: flags & 2 != 0,
        compact: flags & 4 == 0)
    var encoders: [String: TextEncoder] = [:]
    for (field, encoder) in fields {
        let name = try field ?? c.schema.fields.first { $0.name == VectorField.defaultName }?.name
            ?? (c.schema.fields.count == 1 ? c.schema.fields[0].name : nil)
            ?? { throw CAPIError.invalid("collection '\(c.name)' has several fields: name the one to ingest into") }()
        guard encoders[name] == nil else { throw CAPIError.invalid("field '\(name)' is given twice") }
        encoders[name] = try encoder ?? c.queryEncoder(model: nil, field: name, allowMismatch: options.allowModelMismatch)
    }
    let documents = (0..<n).map { TextDocument(id: ids[$0], text: texts[$0], payload: payloads[$0], attributes: attributes[$0]) }
    var source = ArraySource(documents: documents)
    let progress = try c.ingest(&source, encoders: encoders, options: options)
    progressOut?.pointee = cString(
        try json([
            "read": progress.read, "committed": progress.committed, "skipped": progress.skipped, "encode_seconds": progress.encodeSeconds,
            "write_seconds": progress.writeSeconds, "elapsed_seconds": progress.elapsedSeconds, "compacted": progress.compacted,
            "compact_seconds": progress.compactSeconds,
        ]))
}
