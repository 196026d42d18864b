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
        let queries = try e.encode(texts, task: .query, maxActiveDims: try maxActiveDims(maxActive))
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
        if flags & ~UInt32(7) != 0 { throw CAPIError.invalid("unknown ingest flags \(flags)") }
        let n = try Input.count(count, "document count")
        let ids = try Input.strings(idData, idOffsets, count: n, "id")
        let texts = try Input.strings(textData, textOffsets, count: n, "text")
        let payloads = try Input.payloads(payloadData, payloadOffsets, payloadPresent, count: n)
        let field = try Input.optionalString(field, "field")
        guard batchSize >= 1, let batch = Int(exactly: batchSize) else { throw CAPIError.invalid("batch size must be at least 1, got \(batchSize)") }
        let options = IngestOptions(
            batchSize: batch, replace: flags & 1 != 0, maxActiveDims: try maxActiveDims(maxActive), allowModelMismatch: flags & 2 != 0,
            compact: flags & 4 == 0)
        let e: TextEncoder =
            encoder != nil ? try borrow(encoder, "encoder") : try c.queryEncoder(model: nil, field: field, allowMismatch: options.allowModelMismatch)
        let documents = (0..<n).map { TextDocument(id: ids[$0], text: texts[$0], payload: payloads[$0]) }
        let progress: IngestProgress
        if let field {
            var source = ArraySource(documents: documents)
            progress = try c.ingest(&source, encoders: [field: e], options: options)
        } else {
            progress = try c.ingest(documents, encoder: e, options: options)
        }
        progressOut?.pointee = cString(
            try json([
                "read": progress.read, "committed": progress.committed, "skipped": progress.skipped, "encode_seconds": progress.encodeSeconds,
                "write_seconds": progress.writeSeconds, "elapsed_seconds": progress.elapsedSeconds, "compacted": progress.compacted,
                "compact_seconds": progress.compactSeconds,
            ]))
    }
}
