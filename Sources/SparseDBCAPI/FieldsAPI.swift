// Every field kind, attributes and filters: sdb_database_create_collection_schema,
// sdb_collection_upsert_matrix, sdb_collection_search_matrix, sdb_collection_search_hybrid,
// sdb_collection_get_documents and their views. See include/sparsedb.h (ABI 2).
//
// The structs of the header (sdb_matrix, sdb_search_options, sdb_fusion_options) are read with
// explicit byte offsets (`load(fromByteOffset:as:)`), not through a Swift struct of the same
// shape: Swift does not promise C layout for its own structs, and this target does not import
// the header. Every member is 8 or 4 bytes at an offset the C rules give without padding.
import Foundation
import SparseDB

// MARK: Reading the structs

/// `sdb_matrix`: the rows of one field (sparse CSR rows, or dense rows of `width` floats).
struct MatrixArgument {
    var field: String?
    var indptr: UnsafePointer<Int64>?
    var indices: UnsafePointer<UInt32>?
    var values: UnsafePointer<Float>?
    var present: UnsafePointer<UInt8>?
    var width: Int

    static let size = 48

    init(_ base: UnsafeRawPointer, index: Int) throws {
        let p = base + index * Self.size
        field = try Input.optionalString(p.load(fromByteOffset: 0, as: UnsafePointer<CChar>?.self), "field name \(index)")
        indptr = p.load(fromByteOffset: 8, as: UnsafePointer<Int64>?.self)
        indices = p.load(fromByteOffset: 16, as: UnsafePointer<UInt32>?.self)
        values = p.load(fromByteOffset: 24, as: UnsafePointer<Float>?.self)
        present = p.load(fromByteOffset: 32, as: UnsafePointer<UInt8>?.self)
        let w = p.load(fromByteOffset: 40, as: Int64.self)
        guard w >= 0, w <= 65_536, let width = Int(exactly: w) else {
            throw CAPIError.invalid("matrix \(index): width must be 0 (sparse rows) or 1…65536 (dense rows), got \(w)")
        }
        self.width = width
    }

    /// The `n` rows as field vectors (nil where `present` says the row is absent). `label(i)`
    /// names row i in messages.
    func rows(_ n: Int, label: (Int) -> String) throws -> [FieldVector?] {
        guard n > 0 else { return [] }
        var out: [FieldVector?]
        if width > 0 {
            guard let values else { throw CAPIError.invalid("\(label(0)): dense values are null") }
            out = (0..<n).map { i in .dense(Array(UnsafeBufferPointer(start: values + i * width, count: width))) }
        } else {
            out = try Input.rows(count: n, indptr: indptr, indices: indices, values: values, label: label).map { .sparse($0) }
        }
        if let present {
            for i in 0..<n where present[i] == 0 { out[i] = nil }
        }
        return out
    }

    /// Row `i` of `n` as ``rows(_:label:)`` reads it (the same checks and messages), without the
    /// arrays of all rows: the one-query path's. Its `present` flag is not read here.
    func row(_ i: Int, of n: Int, label: (Int) -> String) throws -> FieldVector {
        if width > 0 {
            guard let values else { throw CAPIError.invalid("\(label(0)): dense values are null") }
            return .dense(Array(UnsafeBufferPointer(start: values + i * width, count: width)))
        }
        let p = try Input.offsets(indptr, count: n, "indptr")
        do { return .sparse(try Input.row(i, indptr: p, indices: indices, values: values)) } catch let e as SparseDBError {
            throw CAPIError(status: Status.of(e.code), message: "\(label(i)): \(e.message)")
        }
    }

    /// The label of row `i` in messages: "document 'x' field 'f'" or "query 3 field 'f'".
    func suffix() -> String { field.map { " field '\($0)'" } ?? "" }
}

/// `n` matrices (an array of `sdb_matrix`).
func matrices(_ pointer: UnsafeRawPointer?, count: Int64, _ what: String) throws -> [MatrixArgument] {
    let n = try Input.count(count, "\(what) count")
    guard n >= 1 else { throw CAPIError.invalid("\(what): at least one field is needed") }
    guard let pointer else { throw CAPIError.invalid("\(what) are null") }
    let list = try (0..<n).map { try MatrixArgument(pointer, index: $0) }
    var seen = Set<String>()
    for m in list where !seen.insert(m.field ?? VectorField.defaultName).inserted {
        throw CAPIError.invalid("\(what): field '\(m.field ?? VectorField.defaultName)' is given twice")
    }
    return list
}

/// `sdb_search_options`. `allowing`: flags the caller handles itself, besides those of
/// `SearchArguments`.
func searchArguments(_ pointer: UnsafeRawPointer?, field: String?, allowing: UInt32 = 0) throws -> SearchArguments {
    guard let p = pointer else { throw CAPIError.invalid("search options are null") }
    let k = p.load(fromByteOffset: 0, as: Int64.self)
    let maxQueryTerms = p.load(fromByteOffset: 8, as: Int64.self)
    let maxActiveDims = p.load(fromByteOffset: 16, as: Int64.self)
    let truncate = p.load(fromByteOffset: 24, as: Int64.self)
    let heapFactor = p.load(fromByteOffset: 32, as: Double.self)
    let filterJSON = try Input.optionalString(p.load(fromByteOffset: 40, as: UnsafePointer<CChar>?.self), "filter")
    let algorithm = p.load(fromByteOffset: 48, as: Int32.self)
    let threads = p.load(fromByteOffset: 52, as: Int32.self)
    let flags = p.load(fromByteOffset: 56, as: UInt32.self)
    let candidates = p.load(fromByteOffset: 60, as: UInt32.self)  // ABI 5 (a reserved 0 before: 0 means k)
    var args = try SearchArguments(
        field: nil, k: k, algorithm: algorithm, maxQueryTerms: maxQueryTerms, heapFactor: Float(heapFactor), flags: flags & ~allowing,
        threads: threads)
    args.options.field = field
    guard maxActiveDims >= 0, truncate >= 0, let m = Int(exactly: maxActiveDims), let d = Int(exactly: truncate) else {
        throw CAPIError.invalid("max_active_dims and truncate_dim must be 0 (none) or positive")
    }
    args.options.maxActiveDims = m == 0 ? nil : m
    args.options.dimensions = d == 0 ? nil : d
    // Checked by SearchOptions.validate() with every search, as for a Swift caller: the same
    // code (SDB_INVALID_INPUT) and message, k ≤ candidates ≤ 2^20.
    args.options.candidates = candidates == 0 ? nil : Int(candidates)
    if let filterJSON { args.options.filter = try Filter(json: filterJSON) }
    return args
}

// MARK: Schemas

/// A schema from its JSON form (sparsedb.h, sdb_database_create_collection_schema).
func schema(json text: String) throws -> CollectionSchema {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw CAPIError.invalid("schema is not a JSON object")
    }
    try onlyKeys(object, ["fields", "attributes"], "schema")
    guard let fieldList = object["fields"] as? [Any], !fieldList.isEmpty else {
        throw CAPIError.invalid("schema.fields must be a non-empty array")
    }
    var fields: [VectorField] = []
    for (i, any) in fieldList.enumerated() {
        let at = "schema.fields[\(i)]"
        guard let f = any as? [String: Any] else { throw CAPIError.invalid("\(at) must be an object") }
        try onlyKeys(f, ["name", "kind", "dimensions", "active_dimensions", "keep_largest", "precision", "metric", "index"], at)
        guard let name = f["name"] as? String else { throw CAPIError.invalid("\(at).name must be a string") }
        guard let kindName = f["kind"] as? String, let kind = VectorField.Kind(rawValue: kindName) else {
            throw CAPIError.invalid("\(at).kind must be one of sparse, csr, dense")
        }
        let dimensions = try integer(f["dimensions"], "\(at).dimensions", 1...Int(UInt32.max))
        var field = VectorField(name: name, kind: kind, dimensions: UInt32(dimensions))
        func option<T: RawRepresentable<String>>(_ key: String, _ type: T.Type, _ allowed: [VectorField.Kind]) throws -> T? {
            guard let raw = f[key], !(raw is NSNull) else { return nil }
            guard allowed.contains(kind) else { throw CAPIError.invalid("\(at).\(key) does not apply to a \(kind.rawValue) field") }
            guard let s = raw as? String, let v = T(rawValue: s) else { throw CAPIError.invalid("\(at).\(key): '\(raw)' is not a valid value") }
            return v
        }
        if let p = try option("precision", VectorField.Precision.self, [.csr, .dense]) { field.precision = p }
        if let m = try option("metric", VectorField.Metric.self, [.dense]) { field.metric = m }
        if let x = try option("index", VectorField.CSRIndex.self, [.csr]) { field.index = x }
        if let raw = f["active_dimensions"], !(raw is NSNull) {
            guard kind == .csr else { throw CAPIError.invalid("\(at).active_dimensions does not apply to a \(kind.rawValue) field") }
            field.activeDimensions = try integer(raw, "\(at).active_dimensions", 1...256)
        } else if kind == .csr {
            throw CAPIError.invalid("\(at): a csr field needs active_dimensions (k, 1…256)")
        }
        if let raw = f["keep_largest"], !(raw is NSNull) {
            guard kind == .csr else { throw CAPIError.invalid("\(at).keep_largest does not apply to a \(kind.rawValue) field") }
            guard let n = raw as? NSNumber, String(cString: n.objCType) == "c" else { throw CAPIError.invalid("\(at).keep_largest must be true or false") }
            field.keepLargest = n.boolValue
        }
        fields.append(field)
    }
    var attributes: [AttributeField] = []
    if let raw = object["attributes"], !(raw is NSNull) {
        guard let list = raw as? [Any] else { throw CAPIError.invalid("schema.attributes must be an array") }
        for (i, any) in list.enumerated() {
            let at = "schema.attributes[\(i)]"
            guard let a = any as? [String: Any], let name = a["name"] as? String else { throw CAPIError.invalid("\(at) must be {\"name\", \"type\"}") }
            try onlyKeys(a, ["name", "type"], at)
            guard let typeName = a["type"] as? String, let type = AttributeField.ValueType(rawValue: typeName) else {
                throw CAPIError.invalid("\(at): attribute '\(name)' needs a type: keyword, integer, float or bool")
            }
            attributes.append(AttributeField(name: name, type: type))
        }
    }
    return CollectionSchema(fields: fields, attributes: attributes)
}

private func onlyKeys(_ object: [String: Any], _ known: Set<String>, _ at: String) throws {
    if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
        throw CAPIError.invalid("\(at): unknown key '\(unknown)' (\(known.sorted().joined(separator: ", ")))")
    }
}

private func integer(_ raw: Any?, _ at: String, _ range: ClosedRange<Int>) throws -> Int {
    guard let n = raw as? NSNumber, !["c", "d", "f"].contains(String(cString: n.objCType)), range.contains(n.intValue) else {
        throw CAPIError.invalid("\(at) must be an integer from \(range.lowerBound) to \(range.upperBound)")
    }
    return n.intValue
}

/// The JSON of `sdb_collection_info_json`: name, default dimensions, fields with their options,
/// attributes (name → type, and their order).
func schemaInfo(_ c: VectorCollection) throws -> String {
    let fields: [[String: Any]] = c.schema.fields.map { f in
        var o: [String: Any] = ["name": f.name, "kind": f.kind.rawValue, "dimensions": Int(f.dimensions)]
        switch f.kind {
        case .sparse: break
        case .csr:
            o["active_dimensions"] = f.activeDimensions ?? 0
            o["keep_largest"] = f.keepLargest
            o["precision"] = f.precision.rawValue
            o["index"] = f.index.rawValue
        case .dense:
            o["metric"] = f.metric.rawValue
            o["precision"] = f.precision.rawValue
        }
        return o
    }
    let attributes: [[String: Any]] = c.schema.attributes.map { ["name": $0.name, "type": $0.type.rawValue] }
    return try json(["name": c.name, "dimensions": Int(c.dimensions), "fields": fields, "attributes": attributes])
}

// MARK: Attribute values

/// Per-document attribute values from a JSON array of `n` objects (or nulls), checked against
/// the collection's declared attributes (the CLI's rules: a keyword is a string or a list of
/// strings, an integer an integral number, a float a finite number, a bool true or false; null
/// or a missing key leaves the attribute out).
func attributeValues(json text: String?, count n: Int, ids: [String], collection c: VectorCollection) throws -> [[String: AttributeValue]] {
    guard let text else { return Array(repeating: [:], count: n) }
    guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
        throw CAPIError.invalid("attributes must be a JSON array (one object or null per document)")
    }
    guard list.count == n else { throw CAPIError.invalid("\(list.count) attribute objects for \(n) documents") }
    let declared = Dictionary(uniqueKeysWithValues: c.schema.attributes.map { ($0.name, $0.type) })
    return try list.enumerated().map { i, any in
        if any is NSNull { return [:] }
        guard let object = any as? [String: Any] else { throw CAPIError.invalid("document '\(ids[i])': attributes must be an object or null") }
        var out: [String: AttributeValue] = [:]
        for (name, raw) in object where !(raw is NSNull) {
            guard let type = declared[name] else {
                let known = c.schema.attributes.map(\.name).joined(separator: ", ")
                throw CAPIError.invalid(
                    "document '\(ids[i])': collection '\(c.name)' declares no attribute '\(name)' (attributes: \(known.isEmpty ? "none" : known))")
            }
            out[name] = try attributeValue(raw, type: type) {
                CAPIError.invalid("document '\(ids[i])': attribute '\(name)' is \(type.rawValue), got \(describe(raw))")
            }
        }
        return out
    }
}

private func attributeValue(_ raw: Any, type: AttributeField.ValueType, wrong: () -> CAPIError) throws -> AttributeValue {
    let number = raw as? NSNumber
    let objCType = number.map { String(cString: $0.objCType) }
    switch type {
    case .keyword:
        if number == nil, let s = raw as? String { return .keyword(s) }
        if let list = raw as? [Any] {
            return .keywords(
                try list.map { item in
                    guard !(item is NSNumber), let s = item as? String else { throw wrong() }
                    return s
                })
        }
        throw wrong()
    case .integer:
        guard let number, let objCType, objCType != "c" else { throw wrong() }
        switch objCType {
        case "d", "f":
            // An integral number written with a fraction or exponent (2000.0, 2e3). Only below
            // 2^53, where doubles hold every integer: a larger one may be the rounding of another
            // integer literal (JSONSerialization reads some large integers as doubles).
            let d = number.doubleValue
            guard d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else { throw wrong() }
            return .integer(Int64(d))
        case "Q", "L", "I", "S", "C":
            // Unsigned: JSONSerialization's type for integers above Int64.max, which int64Value
            // would wrap around to negative numbers.
            guard number.uint64Value <= UInt64(Int64.max) else { throw wrong() }
            return .integer(Int64(number.uint64Value))
        default:
            return .integer(number.int64Value)
        }
    case .float:
        guard let number, objCType != "c", number.doubleValue.isFinite else { throw wrong() }
        return .float(number.doubleValue)
    case .bool:
        guard let number, objCType == "c" else { throw wrong() }
        return .bool(number.boolValue)
    }
}

private func describe(_ raw: Any) -> String {
    if let n = raw as? NSNumber {
        switch String(cString: n.objCType) {
        case "c": return n.boolValue ? "true" : "false"
        default: return "\(n)"
        }
    }
    if let s = raw as? String { return "\"\(s.prefix(40))\"" }
    if raw is [Any] { return "a list" }
    if raw is [String: Any] { return "an object" }
    return "\(type(of: raw))"
}

// MARK: Upsert

@_cdecl("sdb_collection_upsert_matrix")
public func sdb_collection_upsert_matrix(
    _ collection: OpaquePointer?, _ count: Int64, _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?,
    _ fieldCount: Int64, _ fields: UnsafeRawPointer?,
    _ payloadData: UnsafePointer<CChar>?, _ payloadOffsets: UnsafePointer<Int64>?, _ payloadPresent: UnsafePointer<UInt8>?,
    _ attributesJSON: UnsafePointer<CChar>?, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        let c: VectorCollection = try borrow(collection, "collection")
        let n = try Input.count(count, "document count")
        let ids = try Input.strings(idData, idOffsets, count: n, "id")
        let payloads = try Input.payloads(payloadData, payloadOffsets, payloadPresent, count: n)
        let given = fieldCount == 0 ? [] : try matrices(fields, count: fieldCount, "fields")
        let attributes = try attributeValues(json: try Input.optionalString(attributesJSON, "attributes"), count: n, ids: ids, collection: c)
        var vectors = Array(repeating: [String: FieldVector](), count: n)
        for m in given {
            let name = m.field ?? VectorField.defaultName
            let rows = try m.rows(n) { "document '\(ids[$0])'" + m.suffix() }
            for i in 0..<n { if let v = rows[i] { vectors[i][name] = v } }
        }
        try c.upsert((0..<n).map { Document(id: ids[$0], payload: payloads[$0], vectors: vectors[$0], attributes: attributes[$0]) })
    }
}

// MARK: Search

@_cdecl("sdb_collection_search_matrix")
public func sdb_collection_search_matrix(
    _ collection: OpaquePointer?, _ queries: UnsafeRawPointer?, _ count: Int64, _ options: UnsafeRawPointer?, _ out: HandleOut,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let n = try Input.count(count, "query count")
        let m = try matrices(queries, count: 1, "queries")[0]
        let args = try searchArguments(options, field: m.field)
        let rows = try m.rows(n) { "query \($0)" }
        let options = args.options
        let results = try runQueries(n, threads: args.threads) { i in
            guard let q = rows[i] else { return SearchResult(hits: []) }
            return try c.search(q, options: options)
        }
        try store(retain(ResultsBox(results)), out, "results")
    }
}

@_cdecl("sdb_collection_search_hybrid")
public func sdb_collection_search_hybrid(
    _ collection: OpaquePointer?, _ fieldCount: Int64, _ queries: UnsafeRawPointer?, _ count: Int64, _ options: UnsafeRawPointer?,
    _ fusion: UnsafeRawPointer?, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let n = try Input.count(count, "query count")
        let given = try matrices(queries, count: fieldCount, "queries")
        let args = try searchArguments(options, field: nil)
        guard let fusion else { throw CAPIError.invalid("fusion options are null") }
        var f = FusionOptions()
        switch fusion.load(fromByteOffset: 0, as: Int32.self) {
        case 0: f.method = .rrf
        case 1: f.method = .weighted
        case let other: throw CAPIError.invalid("unknown fusion method \(other) (0 rrf, 1 weighted)")
        }
        let depth = fusion.load(fromByteOffset: 8, as: Int64.self)
        if depth != 0 {
            guard let d = Int(exactly: depth) else { throw CAPIError.invalid("fusion depth is out of range") }
            f.depth = d
        }
        let constant = fusion.load(fromByteOffset: 16, as: Double.self)
        if !(constant < 0) { f.rrfConstant = constant }  // negative: the default (60); NaN is refused by the engine
        let names = given.map { $0.field ?? VectorField.defaultName }
        if let weights = fusion.load(fromByteOffset: 24, as: UnsafePointer<Double>?.self) {
            for (i, name) in names.enumerated() where !weights[i].isNaN { f.weights[name] = weights[i] }
        }
        let rows = try given.map { m in try m.rows(n) { "query \($0)" + m.suffix() } }
        let options = args.options
        let fusionOptions = f
        let results = try runQueries(n, threads: args.threads) { i in
            var q: [String: FieldVector] = [:]
            for (j, name) in names.enumerated() { if let v = rows[j][i] { q[name] = v } }
            return SearchResult(hits: try c.search(hybrid: q, fusion: fusionOptions, options: options).hits)
        }
        try store(retain(ResultsBox(results, fieldNames: names)), out, "results")
    }
}

// MARK: Documents

@_cdecl("sdb_collection_get_documents")
public func sdb_collection_get_documents(
    _ collection: OpaquePointer?, _ count: Int64, _ idData: UnsafePointer<CChar>?, _ idOffsets: UnsafePointer<Int64>?, _ out: HandleOut,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let c: VectorCollection = try borrow(collection, "collection")
        let ids = try Input.strings(idData, idOffsets, count: try Input.count(count, "id count"), "id")
        let docs = try c.documents(ids: ids)
        try store(retain(RowsBox(documents: docs, schema: c.schema)), out, "documents")
    }
}

@_cdecl("sdb_documents_field_count")
public func sdb_documents_field_count(_ documents: OpaquePointer?) -> Int64 {
    guard let documents else { return 0 }
    return Int64(Unmanaged<RowsBox>.fromOpaque(UnsafeRawPointer(documents)).takeUnretainedValue().fields.count)
}

@_cdecl("sdb_documents_field")
public func sdb_documents_field(
    _ documents: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ width: UnsafeMutablePointer<Int64>?, _ indptr: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ indices: UnsafeMutablePointer<UnsafePointer<UInt32>?>?, _ values: UnsafeMutablePointer<UnsafePointer<Float>?>?,
    _ present: UnsafeMutablePointer<UnsafePointer<UInt8>?>?
) -> Int32 {
    guard let documents else { return Status.invalidInput }
    let box = Unmanaged<RowsBox>.fromOpaque(UnsafeRawPointer(documents)).takeUnretainedValue()
    guard index >= 0, index < Int64(box.fields.count) else { return Status.invalidInput }
    let f = box.fields[Int(index)]
    name?.pointee = f.name.withUnsafeBufferPointer { $0.baseAddress }
    width?.pointee = Int64(f.width)
    indptr?.pointee = UnsafePointer(f.indptr.pointer)
    indices?.pointee = UnsafePointer(f.indices.pointer)
    values?.pointee = UnsafePointer(f.values.pointer)
    present?.pointee = UnsafePointer(f.present.pointer)
    return Status.ok
}

@_cdecl("sdb_documents_attributes_json")
public func sdb_documents_attributes_json(_ documents: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let documents else { return nil }
    let box = Unmanaged<RowsBox>.fromOpaque(UnsafeRawPointer(documents)).takeUnretainedValue()
    return box.attributesJSON.withUnsafeBufferPointer { $0.baseAddress }
}

/// One field's rows of a documents result: CSR rows (width 0) or dense rows of `width` values.
final class FieldRows {
    /// NUL-terminated UTF-8 (stable storage for the box's lifetime).
    let name: ContiguousArray<CChar>
    let width: Int
    let indptr: OwnedBuffer<Int64>
    let indices: OwnedBuffer<UInt32>
    let values: OwnedBuffer<Float>
    let present: OwnedBuffer<UInt8>

    init(field: VectorField, vectors: [FieldVector?]) {
        name = ContiguousArray(field.name.utf8CString)
        let dense = field.kind == .dense
        width = dense ? Int(field.dimensions) : 0
        var p: [Int64] = [0]
        var d: [UInt32] = []
        var w: [Float] = []
        var present: [UInt8] = []
        for v in vectors {
            switch v {
            case .sparse(let s)? where !dense:
                d.append(contentsOf: s.dimensions)
                w.append(contentsOf: s.weights)
                present.append(1)
            case .dense(let row)? where dense && row.count == width:
                w.append(contentsOf: row)
                present.append(1)
            default:
                if dense { w.append(contentsOf: repeatElement(0, count: width)) }
                present.append(0)
            }
            p.append(Int64(d.count))
        }
        indptr = OwnedBuffer(dense ? [0] : p)
        indices = OwnedBuffer(d)
        values = OwnedBuffer(w)
        self.present = OwnedBuffer(present)
    }
}

extension VectorCollection {
    /// The documents with these ids, in one read snapshot per id (nil where absent).
    func documents(ids: [String]) throws -> [Document?] {
        try ids.map { try document(id: $0) }
    }
}

/// JSON values of attribute values (keywords as strings or lists, numbers, booleans).
func attributesJSON(_ docs: [Document?]) throws -> String {
    let list: [Any] = docs.map { doc -> Any in
        guard let doc else { return NSNull() }
        var o: [String: Any] = [:]
        for (name, value) in doc.attributes {
            switch value {
            case .keyword(let s): o[name] = s
            case .keywords(let l): o[name] = l
            case .integer(let v): o[name] = NSNumber(value: v)
            case .float(let v): o[name] = NSNumber(value: v)
            case .bool(let v): o[name] = NSNumber(value: v)
            }
        }
        return o
    }
    return try json(list)
}

// MARK: One query into the caller's buffer

/// The layout `sdb_collection_search_into` writes (sparsedb.h): the sizes of one query's hits and
/// the writing of them, in one place.
struct HitsLayout {
    let hits: Int
    let idBytes: Int
    let payloadBytes: Int
    let payloadCount: Int
    // Byte offsets of the sections.
    let scores, idOffsets, payloadOffsets, present, idData, payloadData, size: Int

    init(_ hits: [SearchHit]) {
        var idBytes = 0
        var payloadBytes = 0
        var payloadCount = 0
        hits.withUnsafeBufferPointer { hp in  // read in place, as in write
            for i in 0..<hp.count {
                idBytes += hp[i].id.utf8.count + 1  // each id is followed by a NUL
                if let n = hp[i].payload?.count {
                    payloadBytes += n
                    payloadCount += 1
                }
            }
        }
        func padded(_ n: Int) -> Int { (n + 7) & ~7 }
        let h = hits.count
        self.hits = h
        self.idBytes = idBytes
        self.payloadBytes = payloadBytes
        self.payloadCount = payloadCount
        scores = 48
        idOffsets = scores + 8 * h
        payloadOffsets = idOffsets + 8 * (h + 1)
        present = payloadOffsets + 8 * (h + 1)
        idData = present + padded(h)
        payloadData = idData + padded(idBytes)
        size = payloadData + payloadBytes
    }

    /// Writes `hits` (the ones this layout was made of) at `buffer`, which holds `size` bytes;
    /// `engineNanoseconds` goes to header[4].
    func write(_ hits: [SearchHit], engineNanoseconds: Int64, to buffer: UnsafeMutableRawPointer) {
        buffer.storeBytes(of: Int64(self.hits), toByteOffset: 0, as: Int64.self)
        buffer.storeBytes(of: Int64(idBytes), toByteOffset: 8, as: Int64.self)
        buffer.storeBytes(of: Int64(payloadBytes), toByteOffset: 16, as: Int64.self)
        buffer.storeBytes(of: Int64(payloadCount), toByteOffset: 24, as: Int64.self)
        buffer.storeBytes(of: engineNanoseconds, toByteOffset: 32, as: Int64.self)
        buffer.storeBytes(of: Int64(0), toByteOffset: 40, as: Int64.self)
        var idAt = 0
        var payloadAt = 0
        buffer.storeBytes(of: Int64(0), toByteOffset: idOffsets, as: Int64.self)
        buffer.storeBytes(of: Int64(0), toByteOffset: payloadOffsets, as: Int64.self)
        // The hits are read in place (not copied out of the array one by one, which retains and
        // releases each hit's id, payload and field scores: half of this loop's instructions).
        hits.withUnsafeBufferPointer { hp in
            for i in 0..<hp.count {
                buffer.storeBytes(of: hp[i].score, toByteOffset: scores + 8 * i, as: Double.self)
                let written = hp[i].id.utf8.withContiguousStorageIfAvailable { b in
                    if let base = b.baseAddress { (buffer + idData + idAt).copyMemory(from: base, byteCount: b.count) }
                    return b.count
                }
                if let written {
                    idAt += written
                } else {  // a bridged or lazily stored string: copied unit by unit
                    for unit in hp[i].id.utf8 {
                        buffer.storeBytes(of: unit, toByteOffset: idData + idAt, as: UInt8.self)
                        idAt += 1
                    }
                }
                buffer.storeBytes(of: UInt8(0), toByteOffset: idData + idAt, as: UInt8.self)
                idAt += 1
                // The id's end (its NUL excluded) is where the next one starts minus one: offsets[i + 1]
                // is the start of id i + 1, so id i is id_data[offsets[i] ..< offsets[i + 1] - 1].
                buffer.storeBytes(of: Int64(idAt), toByteOffset: idOffsets + 8 * (i + 1), as: Int64.self)
                var isPresent: UInt8 = 0
                if let count = hp[i].payload?.withUnsafeBytes({ b -> Int in
                    if let base = b.baseAddress { (buffer + payloadData + payloadAt).copyMemory(from: base, byteCount: b.count) }
                    return b.count
                }) {
                    payloadAt += count
                    isPresent = 1
                }
                buffer.storeBytes(of: Int64(payloadAt), toByteOffset: payloadOffsets + 8 * (i + 1), as: Int64.self)
                buffer.storeBytes(of: isPresent, toByteOffset: present + i, as: UInt8.self)
            }
        }
    }
}

/// A parsed filter (`sdb_filter`): parsing its JSON costs more than a small search, so a binding
/// that runs many queries with one filter parses it once.
final class FilterBox {
    let filter: Filter

    init(_ filter: Filter) { self.filter = filter }
}

@_cdecl("sdb_filter_parse")
public func sdb_filter_parse(_ json: UnsafePointer<CChar>?, _ out: HandleOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let box = FilterBox(try Filter(json: try Input.string(json, "filter")))
        try store(retain(box), out, "filter")
    }
}

@_cdecl("sdb_filter_free")
public func sdb_filter_free(_ filter: OpaquePointer?) { release(filter, as: FilterBox.self) }

/// SDB_SEARCH_TIME_ENGINE (sdb_collection_search_into only).
let searchTimeEngine: UInt32 = 4

/// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), as `sparsedb bench` measures it.
func threadCPUNanoseconds() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
}

@_cdecl("sdb_collection_search_into")
public func sdb_collection_search_into(
    _ collection: OpaquePointer?, _ query: UnsafeRawPointer?, _ options: UnsafeRawPointer?, _ filter: OpaquePointer?,
    _ buffer: UnsafeMutableRawPointer?, _ capacity: Int64, _ error: ErrorOut
) -> Int32 {
    guarded(error) { try searchInto(collection, query, options, filter, buffer, capacity) }
}

/// `sdb_search_call`'s layout (sparsedb.h): seven 8-byte fields, then a reserved one.
enum SearchCallLayout {
    static let collection = 0, query = 8, options = 16, filter = 24, buffer = 32, capacity = 40, error = 48
}

@_cdecl("sdb_collection_search_call")
public func sdb_collection_search_call(_ call: UnsafeMutableRawPointer?) -> Int32 {
    guard let call else { return Status.invalidInput }
    let error = (call + SearchCallLayout.error).assumingMemoryBound(to: OpaquePointer?.self)
    return guarded(error) {
        try searchInto(
            call.load(fromByteOffset: SearchCallLayout.collection, as: OpaquePointer?.self),
            call.load(fromByteOffset: SearchCallLayout.query, as: UnsafeRawPointer?.self),
            call.load(fromByteOffset: SearchCallLayout.options, as: UnsafeRawPointer?.self),
            call.load(fromByteOffset: SearchCallLayout.filter, as: OpaquePointer?.self),
            call.load(fromByteOffset: SearchCallLayout.buffer, as: UnsafeMutableRawPointer?.self),
            call.load(fromByteOffset: SearchCallLayout.capacity, as: Int64.self))
    }
}

/// The body of `sdb_collection_search_into` and `sdb_collection_search_call`.
@inline(__always)
func searchInto(
    _ collection: OpaquePointer?, _ query: UnsafeRawPointer?, _ options: UnsafeRawPointer?, _ filter: OpaquePointer?,
    _ buffer: UnsafeMutableRawPointer?, _ capacity: Int64
) throws {
    let c: VectorCollection = try borrow(collection, "collection")
    guard let buffer else { throw CAPIError.invalid("result buffer is null") }
    guard capacity >= 48 else { throw CAPIError.invalid("result buffer capacity must be at least 48 bytes, got \(capacity)") }
    guard let query else { throw CAPIError.invalid("query is null") }
    let m = try MatrixArgument(query, index: 0)
    var args = try searchArguments(options, field: m.field, allowing: searchTimeEngine)
    let timed = options.map { $0.load(fromByteOffset: 56, as: UInt32.self) & searchTimeEngine != 0 } ?? false
    if let filter {
        guard args.options.filter == nil else { throw CAPIError.invalid("give a filter handle or options->filter_json, not both") }
        args.options.filter = Unmanaged<FilterBox>.fromOpaque(UnsafeRawPointer(filter)).takeUnretainedValue().filter
    }
    // One row, read as sdb_collection_search_matrix reads its rows (the same checks and
    // messages); no thread fan-out, no result array: one query is searched on this thread.
    guard m.present?[0] != 0 else {
        buffer.initializeMemory(as: Int64.self, repeating: 0, count: 6)
        return
    }
    let q = try m.row(0, of: 1, label: { "query \($0)" })
    let start = timed ? threadCPUNanoseconds() : 0
    let hits = try c.search(q, options: args.options).hits
    let engine = timed ? threadCPUNanoseconds() - start : 0
    let layout = HitsLayout(hits)
    if layout.size <= capacity {
        layout.write(hits, engineNanoseconds: engine, to: buffer)
    } else {
        // Too large for the caller's buffer: hand over a result object instead (rare: many or
        // large payloads), so that the search is never run twice.
        buffer.storeBytes(of: Int64(-1), toByteOffset: 0, as: Int64.self)
        buffer.storeBytes(of: Int64(layout.size), toByteOffset: 8, as: Int64.self)
        buffer.storeBytes(of: retain(ResultsBox([SearchResult(hits: hits)])), toByteOffset: 16, as: OpaquePointer.self)
    }
}
