// sdb_collection_*, sdb_results_*, sdb_documents_*: see include/sparsedb.h.
import Foundation
import SparseDB

@_cdecl("sdb_collection_free")
public func sdb_collection_free(_ collection: OpaquePointer?) { release(collection, as: VectorCollection.self) }

/// `{"name", "dimensions", "fields": [{"name", "kind", "dimensions", ...options}], "attributes": [{"name", "type"}]}`: no I/O.
@_cdecl("sdb_collection_info_json")
public func sdb_collection_info_json(_ collection: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        try store(cString(try schemaInfo(c)), out, "info")
    }
}

@_cdecl("sdb_collection_statistics_json")
public func sdb_collection_statistics_json(_ collection: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try store(cString(String(decoding: try encoder.encode(try c.statistics()), as: UTF8.self)), out, "statistics")
    }
}

@_cdecl("sdb_collection_count")
public func sdb_collection_count(_ collection: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        try store(Int64(try c.count()), out, "count")
    }
}

@_cdecl("sdb_collection_compact")
public func sdb_collection_compact(_ collection: OpaquePointer?, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        try c.compact()
    }
}

@_cdecl("sdb_collection_upsert")
public func sdb_collection_upsert(
    _ collection: OpaquePointer?, _ count: Int64, _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?,
    _ fieldCount: Int64, _ fieldNames: UnsafePointer<UnsafePointer<CChar>?>?,
    _ indptrs: UnsafePointer<UnsafePointer<Int64>?>?, _ indices: UnsafePointer<UnsafePointer<UInt32>?>?,
    _ values: UnsafePointer<UnsafePointer<Float>?>?,
    _ payloadData: UnsafePointer<CChar>?, _ payloadOffsets: UnsafePointer<Int64>?, _ payloadPresent: UnsafePointer<UInt8>?,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        let n = try Input.count(count, "document count")
        let nf = try Input.count(fieldCount, "field count")
        let ids = try Input.strings(idData, idOffsets, count: n, "id")
        let payloads = try Input.payloads(payloadData, payloadOffsets, payloadPresent, count: n)
        guard nf >= 1 else { throw CAPIError.invalid("an upsert needs vectors of at least one field") }
        guard let indptrs, let indices, let values else { throw CAPIError.invalid("indptr, indices or values arrays are null") }
        var vectors = Array(repeating: [String: FieldVector](), count: n)
        for f in 0..<nf {
            let name = try fieldNames.map { try Input.optionalString($0[f], "field name \(f)") } ?? nil
            let field = name ?? VectorField.defaultName
            let rows = try Input.rows(count: n, indptr: indptrs[f], indices: indices[f], values: values[f]) {
                "document '\(ids[$0])'" + (name.map { " field '\($0)'" } ?? "")
            }
            for i in 0..<n { vectors[i][field] = .sparse(rows[i]) }
        }
        try c.upsert((0..<n).map { Document(id: ids[$0], payload: payloads[$0], vectors: vectors[$0]) })
    }
}

@_cdecl("sdb_collection_delete")
public func sdb_collection_delete(
    _ collection: OpaquePointer?, _ count: Int64, _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?,
    _ deleted: UnsafeMutablePointer<Int64>?, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        let ids = try Input.strings(idData, idOffsets, count: try Input.count(count, "id count"), "id")
        let missing = try c.delete(ids: ids)
        deleted?.pointee = Int64(ids.count - missing.count)
    }
}

// MARK: Documents

/// Rows of sparse vectors (CSR), with optional per-row ids, found flags and payloads: the
/// result of `sdb_collection_get` and `sdb_encoder_encode`; for `sdb_collection_get_documents`
/// also every field's rows (`fields`, read by `sdb_documents_field`) and the attribute values.
final class RowsBox {
    let indptr: OwnedBuffer<Int64>
    let indices: OwnedBuffer<UInt32>
    let values: OwnedBuffer<Float>
    let found: OwnedBuffer<UInt8>
    let payloadBytes: OwnedBuffer<UInt8>
    let payloadOffsets: OwnedBuffer<Int64>
    let payloadPresent: OwnedBuffer<UInt8>
    /// sdb_collection_get_documents: one entry per field of the collection, in schema order.
    var fields: [FieldRows] = []
    /// sdb_collection_get_documents: a JSON array, an object (or null) per row; else `[]`.
    var attributesJSON = ContiguousArray("[]".utf8CString)
    var rows: Int { indptr.count - 1 }

    /// Every field, payloads and attributes of documents (nil where absent); the CSR arrays of
    /// `sdb_documents_view` are empty rows.
    convenience init(documents: [Document?], schema: CollectionSchema) throws {
        self.init(vectors: documents.map { $0.map { _ in SparseVector() } }, payloads: documents.map { $0?.payload })
        fields = schema.fields.map { f in FieldRows(field: f, vectors: documents.map { $0?.vectors[f.name] }) }
        attributesJSON = ContiguousArray(try SparseDBCAPI.attributesJSON(documents).utf8CString)
    }

    init(vectors: [SparseVector?], payloads: [[UInt8]?]) {
        var p: [Int64] = [0]
        var d: [UInt32] = []
        var w: [Float] = []
        var found: [UInt8] = []
        for v in vectors {
            if let v {
                d.append(contentsOf: v.dimensions)
                w.append(contentsOf: v.weights)
            }
            p.append(Int64(d.count))
            found.append(v == nil ? 0 : 1)
        }
        var packed = PackedStrings()
        for payload in payloads {
            if let payload { packed.append(payload) } else { packed.appendAbsent() }
        }
        indptr = OwnedBuffer(p)
        indices = OwnedBuffer(d)
        values = OwnedBuffer(w)
        self.found = OwnedBuffer(found)
        payloadBytes = OwnedBuffer(packed.bytes)
        payloadOffsets = OwnedBuffer(packed.offsets)
        payloadPresent = OwnedBuffer(packed.present)
    }
}

@_cdecl("sdb_collection_get")
public func sdb_collection_get(
    _ collection: OpaquePointer?, _ field: UnsafePointer<CChar>?, _ count: Int64, _ idData: UnsafePointer<CChar>?,
    _ idOffsets: UnsafePointer<Int64>?, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let field = try Input.optionalString(field, "field")
        let ids = try Input.strings(idData, idOffsets, count: try Input.count(count, "id count"), "id")
        if let field, !c.schema.fields.contains(where: { $0.name == field }) {
            throw CAPIError.invalid("collection '\(c.name)' has no field '\(field)'")
        }
        var vectors: [SparseVector?] = []
        var payloads: [[UInt8]?] = []
        for id in ids {
            guard let doc = try c.document(id: id) else {
                vectors.append(nil)
                payloads.append(nil)
                continue
            }
            var v: SparseVector? = field == nil ? doc.vector : nil
            if let field, case .sparse(let s)? = doc.vectors[field] { v = s }
            vectors.append(v ?? SparseVector())
            payloads.append(doc.payload)
        }
        try store(retain(RowsBox(vectors: vectors, payloads: payloads)), out, "documents")
    }
}

@_cdecl("sdb_documents_view")
public func sdb_documents_view(
    _ documents: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?, _ found: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ indptr: UnsafeMutablePointer<UnsafePointer<Int64>?>?, _ indices: UnsafeMutablePointer<UnsafePointer<UInt32>?>?,
    _ values: UnsafeMutablePointer<UnsafePointer<Float>?>?, _ payloadData: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ payloadOffsets: UnsafeMutablePointer<UnsafePointer<Int64>?>?, _ payloadPresent: UnsafeMutablePointer<UnsafePointer<UInt8>?>?
) {
    guard let documents else { return }
    let box = Unmanaged<RowsBox>.fromOpaque(UnsafeRawPointer(documents)).takeUnretainedValue()
    count?.pointee = Int64(box.rows)
    found?.pointee = UnsafePointer(box.found.pointer)
    indptr?.pointee = UnsafePointer(box.indptr.pointer)
    indices?.pointee = UnsafePointer(box.indices.pointer)
    values?.pointee = UnsafePointer(box.values.pointer)
    payloadData?.pointee = UnsafeRawPointer(box.payloadBytes.pointer).assumingMemoryBound(to: CChar.self)
    payloadOffsets?.pointee = UnsafePointer(box.payloadOffsets.pointer)
    payloadPresent?.pointee = UnsafePointer(box.payloadPresent.pointer)
}

@_cdecl("sdb_documents_free")
public func sdb_documents_free(_ documents: OpaquePointer?) { release(documents, as: RowsBox.self) }

// MARK: Search

/// The hits of a batch of queries, flattened into one buffer (`sdb_results`): the layout
/// sparsedb.h gives for `sdb_results_packed`, whose sections `sdb_results_view` points into.
final class ResultsBox {
    let buffer: UnsafeMutableRawPointer
    let size: Int
    let queries: Int
    let hits: Int
    // Byte offsets of the sections in `buffer`.
    let offsets, scores, internalIds, idOffsets, payloadOffsets, statistics, present, idBytes, payloadBytes: Int
    /// Hybrid searches: each hit's exact score in each field searched, in the order the caller
    /// gave the fields (hits × fields, row-major; NaN where a query had no vector for the field).
    /// Empty otherwise.
    let fieldCount: Int
    let fieldScores: OwnedBuffer<Double>

    init(_ results: [SearchResult], fieldNames names: [String] = []) {
        fieldCount = names.count
        var fieldScores: [Double] = []
        if !names.isEmpty {
            for r in results {
                for hit in r.hits { for name in names { fieldScores.append(hit.fieldScores[name] ?? .nan) } }
            }
        }
        self.fieldScores = OwnedBuffer(fieldScores)
        var ids = PackedStrings()
        var payloads = PackedStrings()
        var offsets: [Int64] = [0]
        var scores: [Double] = []
        var internalIds: [UInt32] = []
        var statistics: [Int64] = []
        for r in results {
            for hit in r.hits {
                scores.append(hit.score)
                internalIds.append(hit.internalId)
                ids.append(hit.id.utf8)
                if let p = hit.payload { payloads.append(p) } else { payloads.appendAbsent() }
            }
            offsets.append(Int64(scores.count))
            let s = r.statistics
            for v in [s.terms, s.postingsDecoded, s.blocksDecoded, s.blocksSkipped, s.blocksDecompressed, s.documentsScored, s.candidatesRescored] {
                statistics.append(Int64(v))
            }
        }
        queries = results.count
        hits = scores.count
        func padded(_ n: Int) -> Int { (n + 7) & ~7 }
        var at = 32
        func section(_ bytes: Int) -> Int {
            defer { at += padded(bytes) }
            return at
        }
        self.offsets = section(8 * offsets.count)
        self.scores = section(8 * hits)
        self.internalIds = section(4 * hits)
        self.idOffsets = section(8 * ids.offsets.count)
        self.payloadOffsets = section(8 * payloads.offsets.count)
        self.statistics = section(8 * statistics.count)
        self.present = section(hits)
        self.idBytes = section(ids.bytes.count)
        self.payloadBytes = section(payloads.bytes.count)
        size = at
        buffer = .allocate(byteCount: size, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let header: [Int64] = [Int64(queries), Int64(hits), Int64(ids.bytes.count), Int64(payloads.bytes.count)]
        func write<T>(_ values: [T], at offset: Int) {
            values.withUnsafeBytes { b in
                if let base = b.baseAddress { (buffer + offset).copyMemory(from: base, byteCount: b.count) }
            }
        }
        write(header, at: 0)
        write(offsets, at: self.offsets)
        write(scores, at: self.scores)
        write(internalIds, at: self.internalIds)
        write(ids.offsets, at: self.idOffsets)
        write(payloads.offsets, at: self.payloadOffsets)
        write(statistics, at: self.statistics)
        write(payloads.present, at: self.present)
        write(ids.bytes, at: self.idBytes)
        write(payloads.bytes, at: self.payloadBytes)
    }

    deinit { buffer.deallocate() }

    func pointer<T>(_ offset: Int, _: T.Type) -> UnsafePointer<T> {
        UnsafePointer((buffer + offset).assumingMemoryBound(to: T.self))
    }
}

/// Options shared by vector and text search.
struct SearchArguments {
    var options: SearchOptions
    /// 0 = one per core (resolved by `runQueries` only for batches: asking is not free).
    var threads: Int

    init(
        field: UnsafePointer<CChar>?, k: Int64, algorithm: Int32, maxQueryTerms: Int64, heapFactor: Float, flags: UInt32, threads: Int32
    ) throws {
        if flags & ~UInt32(1) != 0 { throw CAPIError.invalid("unknown search flags \(flags)") }
        guard let k = Int(exactly: k) else { throw CAPIError.invalid("k is out of range") }
        guard maxQueryTerms >= 0, let m = Int(exactly: maxQueryTerms) else {
            throw CAPIError.invalid("max_query_terms must be 0 (all) or positive, got \(maxQueryTerms)")
        }
        guard threads >= 0 else { throw CAPIError.invalid("threads must be 0 (all cores) or positive, got \(threads)") }
        options = SearchOptions(
            k: k, algorithm: try Input.algorithm(algorithm), field: try Input.optionalString(field, "field"),
            maxQueryTerms: m == 0 ? nil : m, heapFactor: heapFactor, includePayloads: flags & 1 == 0)  // SDB_SEARCH_NO_PAYLOADS
        self.threads = Int(threads)
    }
}

/// Runs `search(i)` for every query, on up to `threads` threads; the first failure (by query
/// index) is thrown with the query's index in front of its message.
func runQueries(_ n: Int, threads: Int, _ search: @Sendable (Int) throws -> SearchResult) throws -> [SearchResult] {
    let slots = UnsafeMutableBufferPointer<Result<SearchResult, Error>?>.allocate(capacity: n)
    slots.initialize(repeating: nil)
    defer {
        _ = slots.deinitialize()
        slots.deallocate()
    }
    let workers = n <= 1 ? 1 : min(threads == 0 ? ProcessInfo.processInfo.activeProcessorCount : threads, n)
    if workers <= 1 {
        for i in 0..<n { slots[i] = Result { try search(i) } }
    } else {
        // Each worker owns the slots i ≡ w (mod workers): no two threads write the same slot, and
        // concurrentPerform returns only after every worker has finished.
        nonisolated(unsafe) let shared = slots
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: n, by: workers) { shared[i] = Result { try search(i) } }
        }
    }
    return try (0..<n).map { i in
        switch slots[i]! {
        case .success(let r): return r
        case .failure(let e as SparseDBError) where n > 1:
            throw CAPIError(status: Status.of(e.code), message: "query \(i): \(e.message)")
        case .failure(let e): throw e
        }
    }
}

@_cdecl("sdb_collection_search")
public func sdb_collection_search(
    _ collection: OpaquePointer?, _ field: UnsafePointer<CChar>?, _ count: Int64, _ indptr: UnsafePointer<Int64>?,
    _ indices: UnsafePointer<UInt32>?, _ values: UnsafePointer<Float>?, _ k: Int64, _ algorithm: Int32, _ maxQueryTerms: Int64,
    _ heapFactor: Float, _ flags: UInt32, _ threads: Int32, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let n = try Input.count(count, "query count")
        let args = try SearchArguments(
            field: field, k: k, algorithm: algorithm, maxQueryTerms: maxQueryTerms, heapFactor: heapFactor, flags: flags, threads: threads)
        let queries = try Input.rows(count: n, indptr: indptr, indices: indices, values: values) { "query \($0)" }
        let options = args.options
        let results = try runQueries(n, threads: args.threads) { i in try c.search(queries[i], options: options) }
        try store(retain(ResultsBox(results)), out, "results")
    }
}

@_cdecl("sdb_results_view")
public func sdb_results_view(
    _ results: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?, _ offsets: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ scores: UnsafeMutablePointer<UnsafePointer<Double>?>?, _ internalIds: UnsafeMutablePointer<UnsafePointer<UInt32>?>?,
    _ idData: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ idOffsets: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ payloadData: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ payloadOffsets: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ payloadPresent: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ statistics: UnsafeMutablePointer<UnsafePointer<Int64>?>?
) {
    guard let results else { return }
    let box = Unmanaged<ResultsBox>.fromOpaque(UnsafeRawPointer(results)).takeUnretainedValue()
    count?.pointee = Int64(box.queries)
    offsets?.pointee = box.pointer(box.offsets, Int64.self)
    scores?.pointee = box.pointer(box.scores, Double.self)
    internalIds?.pointee = box.pointer(box.internalIds, UInt32.self)
    idData?.pointee = box.pointer(box.idBytes, CChar.self)
    idOffsets?.pointee = box.pointer(box.idOffsets, Int64.self)
    payloadData?.pointee = box.pointer(box.payloadBytes, CChar.self)
    payloadOffsets?.pointee = box.pointer(box.payloadOffsets, Int64.self)
    payloadPresent?.pointee = box.pointer(box.present, UInt8.self)
    statistics?.pointee = box.pointer(box.statistics, Int64.self)
}

@_cdecl("sdb_results_packed")
public func sdb_results_packed(_ results: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafeRawPointer?>?, _ size: UnsafeMutablePointer<Int64>?) {
    guard let results else { return }
    let box = Unmanaged<ResultsBox>.fromOpaque(UnsafeRawPointer(results)).takeUnretainedValue()
    data?.pointee = UnsafeRawPointer(box.buffer)
    size?.pointee = Int64(box.size)
}

@_cdecl("sdb_results_field_scores")
public func sdb_results_field_scores(
    _ results: OpaquePointer?, _ fieldCount: UnsafeMutablePointer<Int64>?, _ scores: UnsafeMutablePointer<UnsafePointer<Double>?>?
) {
    guard let results else { return }
    let box = Unmanaged<ResultsBox>.fromOpaque(UnsafeRawPointer(results)).takeUnretainedValue()
    fieldCount?.pointee = Int64(box.fieldCount)
    scores?.pointee = UnsafePointer(box.fieldScores.pointer)
}

@_cdecl("sdb_results_free")
public func sdb_results_free(_ results: OpaquePointer?) { release(results, as: ResultsBox.self) }
