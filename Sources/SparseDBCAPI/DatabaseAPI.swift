// sdb_database_*, sdb_error_*, sdb_string_free, versions: see include/sparsedb.h.
import Foundation
import SparseDB

public typealias ErrorOut = UnsafeMutablePointer<OpaquePointer?>?
public typealias HandleOut = UnsafeMutablePointer<OpaquePointer?>?
public typealias StringOut = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

/// Bumped whenever a signature or a documented layout of sparsedb.h changes.
let abiVersion: Int32 = 5
let versionString: StaticString = "0.1.0"

@_cdecl("sdb_abi_version")
public func sdb_abi_version() -> Int32 { abiVersion }

@_cdecl("sdb_version")
public func sdb_version() -> UnsafePointer<CChar> {
    UnsafeRawPointer(versionString.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: Errors and strings

@_cdecl("sdb_error_code")
public func sdb_error_code(_ error: OpaquePointer?) -> Int32 {
    guard let error else { return Status.ok }
    return Unmanaged<ErrorBox>.fromOpaque(UnsafeRawPointer(error)).takeUnretainedValue().status
}

@_cdecl("sdb_error_message")
public func sdb_error_message(_ error: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let error else { return nil }
    let box = Unmanaged<ErrorBox>.fromOpaque(UnsafeRawPointer(error)).takeUnretainedValue()
    // The array is immutable and lives as long as the box: its storage address is stable.
    return box.message.withUnsafeBufferPointer { $0.baseAddress }
}

@_cdecl("sdb_error_lmdb_code")
public func sdb_error_lmdb_code(_ error: OpaquePointer?) -> Int32 {
    guard let error else { return 0 }
    return Unmanaged<ErrorBox>.fromOpaque(UnsafeRawPointer(error)).takeUnretainedValue().lmdbCode
}

@_cdecl("sdb_error_free")
public func sdb_error_free(_ error: OpaquePointer?) { release(error, as: ErrorBox.self) }

@_cdecl("sdb_string_free")
public func sdb_string_free(_ string: UnsafeMutablePointer<CChar>?) { free(string) }

// MARK: Database

@_cdecl("sdb_database_open")
public func sdb_database_open(
    _ path: UnsafePointer<CChar>?, _ flags: UInt32, _ postingCacheBytes: Int64, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        guard let out else { throw CAPIError.invalid("database out-pointer is null") }
        out.pointee = nil
        let path = try Input.string(path, "path")
        var configuration = Database.Configuration()
        if flags & ~UInt32(3) != 0 { throw CAPIError.invalid("unknown open flags \(flags)") }
        if flags & 1 != 0 { configuration = .readOnlyExisting }  // SDB_OPEN_READ_ONLY
        if flags & 2 != 0 { configuration.createIfMissing = false }  // SDB_OPEN_NO_CREATE
        if postingCacheBytes >= 0 {
            guard let bytes = Int(exactly: postingCacheBytes) else { throw CAPIError.invalid("posting cache size is too large") }
            configuration.postingCacheBytes = bytes
        }
        out.pointee = retain(try Database(path: path, configuration: configuration))
    }
}

@_cdecl("sdb_database_close")
public func sdb_database_close(_ db: OpaquePointer?) {
    guard let db else { return }
    Unmanaged<Database>.fromOpaque(UnsafeRawPointer(db)).takeUnretainedValue().close()
}

@_cdecl("sdb_database_free")
public func sdb_database_free(_ db: OpaquePointer?) { release(db, as: Database.self) }

@_cdecl("sdb_database_collection_names")
public func sdb_database_collection_names(_ db: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let db: Database = try borrow(db, "database")
        try store(cString(json(try db.collectionNames())), out, "names")
    }
}

@_cdecl("sdb_database_collection")
public func sdb_database_collection(_ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: HandleOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let db: Database = try borrow(db, "database")
        let name = try Input.string(name, "collection name")
        try store(retain(try db.collection(name)), out, "collection")
    }
}

@_cdecl("sdb_database_create_collection")
public func sdb_database_create_collection(
    _ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ fieldCount: Int64, _ fieldNames: UnsafePointer<UnsafePointer<CChar>?>?,
    _ dimensions: UnsafePointer<UInt32>?, _ flags: UInt32, _ out: HandleOut, _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let db: Database = try borrow(db, "database")
        let name = try Input.string(name, "collection name")
        let n = try Input.count(fieldCount, "field count")
        guard n >= 1 else { throw CAPIError.invalid("a collection needs at least one field") }
        guard let dimensions else { throw CAPIError.invalid("dimensions are null") }
        if flags & ~UInt32(1) != 0 { throw CAPIError.invalid("unknown create flags \(flags)") }
        var fields: [VectorField] = []
        for i in 0..<n {
            let fieldName = try fieldNames.map { try Input.string($0[i], "field name \(i)") } ?? VectorField.defaultName
            fields.append(.sparse(fieldName, dimensions: dimensions[i]))
        }
        let schema = CollectionSchema(fields: fields)
        let collection = flags & 1 != 0  // SDB_CREATE_EXIST_OK
            ? try db.collection(name, creatingWith: schema) : try db.createCollection(name, schema: schema)
        try store(retain(collection), out, "collection")
    }
}

@_cdecl("sdb_database_create_collection_schema")
public func sdb_database_create_collection_schema(
    _ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ schemaJSON: UnsafePointer<CChar>?, _ flags: UInt32, _ out: HandleOut,
    _ error: ErrorOut
) -> Int32 {
    guarded(error) {
        out?.pointee = nil
        let db: Database = try borrow(db, "database")
        let name = try Input.string(name, "collection name")
        let schema = try schema(json: try Input.string(schemaJSON, "schema"))
        if flags & ~UInt32(1) != 0 { throw CAPIError.invalid("unknown create flags \(flags)") }
        let collection = flags & 1 != 0  // SDB_CREATE_EXIST_OK
            ? try db.collection(name, creatingWith: schema) : try db.createCollection(name, schema: schema)
        try store(retain(collection), out, "collection")
    }
}

@_cdecl("sdb_database_drop_collection")
public func sdb_database_drop_collection(_ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let db: Database = try borrow(db, "database")
        try db.dropCollection(try Input.string(name, "collection name"))
    }
}

@_cdecl("sdb_database_statistics_json")
public func sdb_database_statistics_json(_ db: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let db: Database = try borrow(db, "database")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try store(cString(String(decoding: try encoder.encode(try db.statistics()), as: UTF8.self)), out, "statistics")
    }
}

@_cdecl("sdb_database_verify_json")
public func sdb_database_verify_json(_ db: OpaquePointer?, _ out: StringOut, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let db: Database = try borrow(db, "database")
        try store(cString(json(try db.verify())), out, "problems")
    }
}

@_cdecl("sdb_database_write_compacted_copy")
public func sdb_database_write_compacted_copy(_ db: OpaquePointer?, _ target: UnsafePointer<CChar>?, _ error: ErrorOut) -> Int32 {
    guarded(error) {
        let db: Database = try borrow(db, "database")
        try db.writeCompactedCopy(to: try Input.string(target, "target directory"))
    }
}
