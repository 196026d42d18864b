import Foundation
import SparseDBCore
import SparseDBStorage

/// The `meta` table: the format record, the table registry and the collections' metadata
/// (format-spec.md §3–§4).
package enum Catalog {
    package static let magic: [UInt8] = Array("SPARSEDB".utf8)
    /// The format this code creates. Formats 2 and 3 differ only in how forward rows are kept
    /// (format-spec.md §8, §8a): format 2 writes them plain and one record each, format 3 packed
    /// and one record each, format 4 packed and in groups. Both older ones are read and written
    /// as they are, so that their releases can still open them; ``FormatUpgrade`` takes them (or
    /// format 1) to 4. A newer format is refused.
    package static let formatVersion: UInt32 = 4
    /// The oldest format opened without an upgrade.
    package static let oldestOpenedFormat: UInt32 = 2
    package static let formatKey: [UInt8] = Array("format".utf8)
    package static let nextCollectionKey: [UInt8] = Array("next-collection-id".utf8)
    package static let collectionKeyPrefix = "collection:"

    package static func collectionKey(_ name: String) -> [UInt8] { Array((collectionKeyPrefix + name).utf8) }

    package static func formatRecord(version: UInt32 = formatVersion) -> [UInt8] {
        var w = ByteWriter()
        w.append(magic)
        w.u32le(version)
        return w.bytes
    }

    /// The format version a `format` record states; `foreignFormat` when it is not SparseDB's.
    package static func version(ofFormatRecord record: [UInt8]?, path: String) throws -> UInt32 {
        guard let record else {
            throw SparseDBError(.foreignFormat, "\(path): LMDB environment without a SparseDB format record")
        }
        guard record.count == 12, Array(record.prefix(8)) == magic else {
            throw SparseDBError(.foreignFormat, "\(path): format record does not start with the SPARSEDB magic")
        }
        let version = record.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard version > 0 else { throw SparseDBError(.foreignFormat, "\(path): format version 0 is not a SparseDB format") }
        return version
    }

    // MARK: opening

    /// Prepares `env` for use: creates a new database (when `create` and the environment is
    /// empty), or checks an existing one — the format version and the table registry — and opens
    /// its tables into `env.tables`.
    ///
    /// - Throws: `.olderFormat` for a format-1 database (see ``FormatUpgrade``), `.newerFormat`
    ///   for a newer format or a table this code must know but does not, `.foreignFormat` for an
    ///   environment that is not SparseDB's, `.notFound` for an empty read-only environment.
    package static func open(_ env: LMDBEnvironment, create: Bool) throws {
        let path = env.path
        // Every write from here on records its transaction id (the creating one included).
        env.beforeCommit = { txn in try stampCommit(txn) }
        let mainNames = try env.read { txn in try txn.tableNames() }
        if mainNames.isEmpty {
            guard create, !env.isReadOnly else { throw SparseDBError(.notFound, "\(path): no SparseDB database here (empty environment)") }
            try env.write { txn in
                var refs: [TableRef] = []
                for table in Table.allCases { refs.append(TableRef(name: table.name, dbi: try txn.openTable(table.name, create: true))) }
                let meta = refs[Table.meta.rawValue]
                try txn.put(formatRecord(), forKey: formatKey, in: meta)
                for table in Table.allCases { try txn.put([table.registryFlags], forKey: TableRegistry.key(table.name), in: meta) }
            }
            try openKnownTables(env)
            return
        }
        guard mainNames.contains(Table.meta.name) else {
            throw SparseDBError(.foreignFormat, "\(path): LMDB environment holds tables \(mainNames.prefix(5)) but no SparseDB metadata")
        }
        let (version, registry) = try env.read { txn -> (UInt32, [String: UInt8]) in
            let meta = TableRef(name: "meta", dbi: try txn.openTable("meta", create: false))
            let version = try self.version(ofFormatRecord: try txn.value(formatKey, in: meta), path: path)
            var registry: [String: UInt8] = [:]
            try txn.scan(prefix: Array(TableRegistry.keyPrefix.utf8), in: meta) { k, v in
                registry[String(decoding: k.dropFirst(TableRegistry.keyPrefix.utf8.count), as: UTF8.self)] = v.first ?? 0
                return true
            }
            return (version, registry)
        }
        if version < oldestOpenedFormat {
            throw SparseDBError(
                .olderFormat,
                "\(path) was written by SparseDB format \(version); this SparseDB reads formats \(oldestOpenedFormat) to \(formatVersion). Upgrade it in place with `sparsedb upgrade --db \(path)` (Database.upgrade(path:)); back it up first if you may need the old version")
        }
        if version > formatVersion {
            throw SparseDBError(
                .newerFormat, "\(path): database format version \(version) is newer than this SparseDB supports (\(formatVersion)); upgrade SparseDB")
        }
        let known = Set(Table.allCases.map(\.name))
        for name in mainNames where !known.contains(name) && registry[name] == nil {
            throw SparseDBError(.foreignFormat, "\(path): holds table '\(name)', which is not a SparseDB table; SparseDB never writes into it")
        }
        for (name, flags) in registry where !known.contains(name) {
            if flags & TableRegistry.readersMustKnow != 0 {
                throw SparseDBError(.newerFormat, "\(path) holds table '\(name)' of a newer SparseDB, which this one cannot read; upgrade SparseDB")
            }
            if flags & TableRegistry.writersMustKnow != 0 && !env.isReadOnly {
                throw SparseDBError(
                    .newerFormat, "\(path) holds table '\(name)' of a newer SparseDB, which this one cannot keep up to date; open it read-only or upgrade SparseDB")
            }
        }
        let missing = Table.allCases.filter { !mainNames.contains($0.name) }
        if !missing.isEmpty && !env.isReadOnly {
            // Tables added after this database was made: create and register them.
            try env.write { txn in
                let meta = TableRef(name: "meta", dbi: try txn.openTable("meta", create: false))
                for table in missing {
                    _ = try txn.openTable(table.name, create: true)
                    try txn.put([table.registryFlags], forKey: TableRegistry.key(table.name), in: meta)
                }
            }
        }
        try openKnownTables(env)
        if let problem = try env.read({ txn in try commitStampProblem(txn) }) {
            throw SparseDBError(.corrupt, "\(path): \(problem)")
        }
    }

    /// The format version of the open database `txn` reads (its `format` record).
    package static func formatVersion(_ txn: borrowing Transaction) throws -> UInt32 {
        try version(ofFormatRecord: try txn.value(formatKey, in: txn.table(.meta)), path: "database")
    }

    /// How new forward rows are written in the database `txn` writes: packed from format 3 on.
    package static func forwardRowEncoding(_ txn: borrowing Transaction) throws -> Records.ForwardRowEncoding {
        try formatVersion(txn) >= 3 ? .packed : .plain
    }

    // MARK: the commit stamp (format-spec.md §3a)

    /// The `commit` table's one key.
    package static let lastCommitKey: [UInt8] = Array("last".utf8)

    /// Records the id of the write transaction `txn` as the last commit. Runs in every write
    /// transaction (``LMDBEnvironment/beforeCommit``).
    package static func stampCommit(_ txn: borrowing Transaction) throws {
        // Absent only in the instant before a writable open creates it (§3's missing tables).
        guard let dbi = try txn.openTable(Table.commit.name, create: false) else { return }
        var w = ByteWriter()
        w.u64le(UInt64(truncatingIfNeeded: txn.id))
        try txn.put(w.bytes, forKey: lastCommitKey, in: TableRef(name: Table.commit.name, dbi: dbi))
    }

    /// What is wrong with the snapshot `txn` reads, judged by the last commit it records: LMDB
    /// opens the meta page with the larger transaction id and checks nothing else, so one
    /// damaged byte of the *previous* meta page's id makes it open the snapshot before the last
    /// commit, with every table consistent. That snapshot's stamp is then older than the id LMDB
    /// reports. (A stamp newer than the id is harmless: a compacting copy restarts the ids.)
    /// Nil when sound, or when no write has stamped the database yet.
    package static func commitStampProblem(_ txn: borrowing Transaction) throws -> String? {
        guard txn.tables.count > Table.commit.rawValue else { return nil }
        guard let bytes = try txn.value(lastCommitKey, in: txn.table(.commit)) else { return nil }
        guard bytes.count == 8 else { return "the last-commit record of table 'commit' is \(bytes.count) bytes, not 8" }
        let stamp = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        let snapshot = UInt64(truncatingIfNeeded: txn.id)
        guard stamp < snapshot else { return nil }
        return "meta pages: LMDB opened transaction \(snapshot), but the newest commit in that snapshot is transaction \(stamp): a damaged meta page made LMDB open an older snapshot, and the commits after \(stamp) are missing from it. Do not write to this database (the next write would make the loss permanent); restore it from a copy (`sparsedb verify` reports this)"
    }

    /// Opens every known table that exists into `env.tables` (absent ones read as empty). Table
    /// handles opened in a committed transaction stay valid for the environment's lifetime.
    private static func openKnownTables(_ env: LMDBEnvironment) throws {
        env.tables = try env.read { txn in
            try Table.allCases.map { TableRef(name: $0.name, dbi: try txn.openTable($0.name, create: false)) }
        }
    }

    // MARK: collections

    /// The last decoded metadata of each collection name, with the exact bytes it was decoded
    /// from: every query reads the metadata, and decoding JSON costs more than a cached query.
    /// A hit is the same bytes (compared in place in LMDB's map, not copied or hashed: the
    /// record is a few hundred bytes); the bytes change with every write (the generation).
    /// Names, not databases, key it: two databases with a collection of one name alternate
    /// through one entry, each time decoding again, never mixing.
    private static let decoded = Locked<[String: (bytes: [UInt8], record: CollectionRecord)]>([:])

    package static func loadCollection(_ txn: borrowing Transaction, name: String) throws -> CollectionRecord? {
        let key = collectionKey(name)
        return try txn.withValue(key, in: txn.table(.meta)) { value -> CollectionRecord? in
            guard let value else { return nil }
            let hit = decoded.withLock { cache -> CollectionRecord? in
                guard let entry = cache[name], entry.bytes.count == value.count else { return nil }
                let same = entry.bytes.withUnsafeBytes { memcmp($0.baseAddress!, value.baseAddress!, value.count) == 0 }
                return same ? entry.record : nil
            }
            if let hit { return hit }
            let record: CollectionRecord
            do {
                let json = try key.withUnsafeBytes { k in Data(try Records.checkedBody(key: k, value, what: "metadata of collection '\(name)'")) }
                record = try JSONDecoder().decode(CollectionRecord.self, from: json)
            } catch let error as SparseDBError {
                throw error
            } catch {
                throw SparseDBError(.corrupt, "metadata of collection '\(name)' is not valid: \(error)")
            }
            guard record.name == name else { throw SparseDBError(.corrupt, "metadata stored under collection '\(name)' names '\(record.name)'") }
            let bytes = Array(value)
            decoded.withLock { cache in
                if cache.count >= 256 { cache.removeAll() }
                cache[name] = (bytes, record)
            }
            return record
        }
    }

    /// The bytes `saveCollection` stores for `record` (no generation change).
    package static func encode(_ record: CollectionRecord) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Records.sealed(key: collectionKey(record.name), body: Array(try encoder.encode(record)))
    }

    /// Saves the metadata of a changed collection, bumping its generation.
    package static func saveCollection(_ txn: borrowing Transaction, _ record: CollectionRecord) throws {
        var record = record
        record.generation &+= 1
        try txn.put(try encode(record), forKey: collectionKey(record.name), in: txn.table(.meta))
    }

    package static func collectionNames(_ txn: borrowing Transaction) throws -> [String] {
        var names: [String] = []
        try txn.scan(prefix: Array(collectionKeyPrefix.utf8), in: txn.table(.meta)) { k, _ in
            names.append(String(decoding: k.dropFirst(collectionKeyPrefix.utf8.count), as: UTF8.self))
            return true
        }
        return names
    }

    /// Takes the next collection id (ids are never reused, so caches keyed by them stay valid
    /// when a collection is dropped and another made with the same name).
    package static func takeCollectionId(_ txn: borrowing Transaction) throws -> UInt32 {
        let current = try txn.withValue(nextCollectionKey, in: txn.table(.meta)) { b -> UInt32 in
            guard let b else { return 1 }
            var r = ByteReader(b)
            guard let v = r.u32le(), r.isAtEnd, v >= 1 else { throw SparseDBError(.corrupt, "next-collection-id record is malformed") }
            return v
        }
        guard current < UInt32.max else { throw SparseDBError(.storage, "all 2^32 collection ids are used") }
        var w = ByteWriter()
        w.u32le(current + 1)
        try txn.put(w.bytes, forKey: nextCollectionKey, in: txn.table(.meta))
        return current
    }
}
