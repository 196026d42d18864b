import CLMDB
import Foundation

/// Reading and writing the `meta` table: the format record and the collections' metadata.
enum Catalog {
    /// Decoded metadata by its exact bytes: every query reads the metadata, and decoding JSON
    /// costs more than a cached query; the bytes change with every write (the generation).
    private static let decoded = LockedBox<[[UInt8]: CollectionInfo]>([:])

    static func loadInfo(_ txn: borrowing Transaction, name: String) throws -> CollectionInfo? {
        guard let bytes = try txn.value(Schema.collectionKey(name), in: txn.tables.meta) else { return nil }
        if let hit = decoded.withValue({ $0[bytes] }) { return hit }
        let info: CollectionInfo
        do {
            info = try JSONDecoder().decode(CollectionInfo.self, from: Data(bytes))
        } catch {
            throw SparseDBError(.corrupt, "metadata of collection '\(name)' is not valid: \(error)")
        }
        decoded.withValue { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[bytes] = info
        }
        return info
    }

    /// Saves the metadata of a changed collection (bumping its generation).
    static func saveInfo(_ txn: borrowing Transaction, _ info: CollectionInfo) throws {
        var info = info
        info.generation = (info.generation ?? 0) &+ 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try txn.put(Array(try encoder.encode(info)), forKey: Schema.collectionKey(info.name), in: txn.tables.meta)
    }

    static func collectionNames(_ txn: borrowing Transaction) throws -> [String] {
        var names: [String] = []
        try txn.scan(prefix: Array(Schema.collectionKeyPrefix.utf8), in: txn.tables.meta) { k, _ in
            names.append(String(decoding: k, as: UTF8.self).dropFirst(Schema.collectionKeyPrefix.count).description)
            return true
        }
        return names
    }

    static func nextCollectionId(_ txn: borrowing Transaction) throws -> UInt32 {
        let current = try txn.withValue(Schema.nextCollectionKey, in: txn.tables.meta) { b -> UInt32 in
            guard let b else { return 1 }
            var r = ByteReader(b)
            return r.u32le() ?? 1
        }
        var w = ByteWriter()
        w.u32le(current + 1)
        try txn.put(w.bytes, forKey: Schema.nextCollectionKey, in: txn.tables.meta)
        return current
    }

    /// Checks the format record: absent in a new database (then written when `create`),
    /// otherwise magic and version must be ours.
    static func checkFormat(_ txn: borrowing Transaction, path: String) throws {
        let record = try txn.value(Schema.formatKey, in: txn.tables.meta)
        guard let record else {
            throw SparseDBError(.foreignFormat, "\(path): LMDB environment without a SparseDB format record")
        }
        guard record.count == 12, Array(record.prefix(8)) == Schema.magic else {
            throw SparseDBError(.foreignFormat, "\(path): format record does not start with the SPARSEDB magic")
        }
        let version = record.withUnsafeBytes { b in UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        if version > Schema.formatVersion {
            throw SparseDBError(
                .newerFormat,
                "\(path): database format version \(version) is newer than this SparseDB supports (\(Schema.formatVersion)); upgrade SparseDB")
        }
        if version == 0 {
            throw SparseDBError(.foreignFormat, "\(path): format version 0 is not a SparseDB format")
        }
    }
}

extension LMDBEnvironment {
    /// Opens the tables of a SparseDB database: creates them (and the format record) in an empty
    /// environment when `create`, refuses an environment that holds anything else.
    func prepareSparseDB(create: Bool) throws {
        // Is this environment empty, ours, or someone else's? Look at the main (unnamed) table:
        // named tables appear there as keys.
        var mainNames: [String] = []
        try read { txn in
            var dbi: MDB_dbi = 0
            try lmdbCheck(mdb_dbi_open(txn.handle, nil, 0, &dbi), "opening the main table")
            try txn.scan(prefix: [], in: dbi) { k, _ in
                mainNames.append(String(decoding: k, as: UTF8.self))
                return true
            }
        }
        if mainNames.isEmpty {
            guard create else { throw SparseDBError(.notFound, "\(path): no SparseDB database here (empty environment)") }
            try openTables(create: true)
            try write { txn in try txn.put(Schema.formatRecord(), forKey: Schema.formatKey, in: txn.tables.meta) }
            return
        }
        guard mainNames.contains("meta") else {
            throw SparseDBError(.foreignFormat, "\(path): LMDB environment holds tables \(mainNames.prefix(5)) but no SparseDB metadata")
        }
        let missing = Tables.names.filter { !mainNames.contains($0) }
        try read { txn in
            var dbi: MDB_dbi = 0
            try lmdbCheck(mdb_dbi_open(txn.handle, "meta", 0, &dbi), "opening table 'meta'")
            let t = Tables(meta: dbi)
            let probe = Transaction(handle: txn.handle, tables: t)
            try Catalog.checkFormat(probe, path: path)
        }
        guard missing.isEmpty else { throw SparseDBError(.corrupt, "\(path): tables \(missing) are missing") }
        try openTables(create: false)
    }
}
