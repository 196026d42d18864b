import CLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Every LMDB call's return code passes through here (one chokepoint, as swift-system does),
/// so that each failure becomes a typed error naming the operation.
@inline(__always)
func lmdbCheck(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
    if rc != MDB_SUCCESS {
        let text = String(cString: mdb_strerror(rc))
        throw SparseDBError(rc == MDB_MAP_FULL ? .storage : lmdbCode(rc), "\(operation()): \(text)", lmdbCode: rc)
    }
}

private func lmdbCode(_ rc: Int32) -> SparseDBError.Code {
    switch rc {
    case MDB_INVALID, MDB_VERSION_MISMATCH: .foreignFormat
    case MDB_CORRUPTED, MDB_PAGE_NOTFOUND: .corrupt
    case ENOENT: .notFound
    default: .storage
    }
}

/// A reader–writer lock guarding the memory map: transactions hold it shared, growing the map
/// holds it exclusively (LMDB requires that no transaction is active while the map size changes).
final class MapLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    init() { pthread_rwlock_init(lock, nil) }
    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }
    func shared<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
    func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// The named LMDB databases of one environment (see format-spec.md §2).
struct Tables: Sendable {
    var meta: MDB_dbi = 0
    var documents: MDB_dbi = 0
    var ids: MDB_dbi = 0
    var postings: MDB_dbi = 0
    var terms: MDB_dbi = 0
    var forward: MDB_dbi = 0
    var tombstones: MDB_dbi = 0

    static let names = ["meta", "documents", "ids", "postings", "terms", "forward", "tombstones"]
}

/// Owner of one LMDB environment (`MDB_env`). One per database directory per process.
///
/// Transactions are closure-scoped: ``read(_:)`` and ``write(_:)`` begin, hand the closure a
/// ``Transaction`` that is valid only during the call, and commit on return / abort on throw.
final class LMDBEnvironment: @unchecked Sendable {
    let handle: OpaquePointer
    let path: String
    let isReadOnly: Bool
    private(set) var tables = Tables()
    private let mapLock = MapLock()
    private let growthLock = NSLock()
    private(set) var mapSize: Int
    /// Decoded posting lists shared by every query on this environment.
    var postingCache = PostingCache(budget: 0)
    /// zstd contexts reused by queries.
    let codecs = CodecPool()

    /// Opens (creating when asked) the environment in directory `path`.
    init(path: String, mapSize: Int, readOnly: Bool, maxReaders: UInt32 = 126) throws {
        var env: OpaquePointer?
        try lmdbCheck(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw SparseDBError(.storage, "mdb_env_create returned no handle") }
        do {
            try lmdbCheck(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize(\(mapSize))")
            try lmdbCheck(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs")
            try lmdbCheck(mdb_env_set_maxreaders(env, maxReaders), "mdb_env_set_maxreaders")
            // NOTLS: read transactions are not bound to an OS thread, so Swift tasks may hop threads.
            var flags = UInt32(MDB_NOTLS)
            if readOnly { flags |= UInt32(MDB_RDONLY) }
            try lmdbCheck(mdb_env_open(env, path, flags, 0o644), "opening LMDB environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.isReadOnly = readOnly
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        self.mapSize = max(mapSize, info.me_mapsize)
    }

    deinit { mdb_env_close(handle) }

    /// Opens (or creates, in a write transaction) the named tables. Called once after `init`.
    func openTables(create: Bool) throws {
        var t = Tables()
        let flags = create ? UInt32(MDB_CREATE) : 0
        try runTransaction(flags: create ? 0 : UInt32(MDB_RDONLY)) { (txn: borrowing Transaction) throws in
            var dbis: [MDB_dbi] = []
            for name in Tables.names {
                var dbi: MDB_dbi = 0
                try lmdbCheck(mdb_dbi_open(txn.handle, name, flags, &dbi), "opening table '\(name)'")
                dbis.append(dbi)
            }
            t = Tables(meta: dbis[0], documents: dbis[1], ids: dbis[2], postings: dbis[3], terms: dbis[4],
                       forward: dbis[5], tombstones: dbis[6])
        }
        tables = t
    }

    /// Runs `body` in a read-only snapshot (MVCC). Many readers may run at once from many threads.
    ///
    /// The transaction and every pointer obtained from it are valid only during the closure; do
    /// not store or return them.
    func read<R>(_ body: (borrowing Transaction) throws -> R) throws -> R {
        try runTransaction(flags: UInt32(MDB_RDONLY), body)
    }

    /// Runs `body` in the write transaction: commit (and fsync) on return, abort on throw.
    ///
    /// When the map is full, the transaction is aborted, the map is doubled and `body` runs
    /// again, so `body` must not have effects outside the transaction. Never call `write` from
    /// inside `read` or `write`.
    func write<R>(_ body: (borrowing Transaction) throws -> R) throws -> R {
        while true {
            do {
                return try runTransaction(flags: 0, body)
            } catch let error as SparseDBError where error.lmdbCode == MDB_MAP_FULL {
                try grow()
            }
        }
    }

    private func grow() throws {
        let newSize = mapSize * 2
        try mapLock.exclusive { () throws in
            try lmdbCheck(mdb_env_set_mapsize(handle, newSize), "growing the map to \(newSize) bytes")
        }
        mapSize = newSize
    }

    private func runTransaction<R, E: Error>(
        flags: UInt32, _ body: (borrowing Transaction) throws(E) -> R
    ) throws -> R {
        while true {
            let outcome: R? = try mapLock.shared { () throws -> R? in
                var raw: OpaquePointer?
                let rc = mdb_txn_begin(handle, nil, flags, &raw)
                if rc == MDB_MAP_RESIZED { return nil }  // another process grew the map; adopt it below
                try lmdbCheck(rc, "mdb_txn_begin")
                let txn = Transaction(handle: raw!, tables: tables)
                do {
                    let result = try body(txn)
                    // Committing (not aborting) a read-only transaction keeps table handles it
                    // opened valid for the environment's lifetime.
                    try lmdbCheck(mdb_txn_commit(raw), "committing the transaction")
                    return result
                } catch {
                    mdb_txn_abort(raw)
                    throw error
                }
            }
            if let outcome { return outcome }
            try mapLock.exclusive { () throws in
                try lmdbCheck(mdb_env_set_mapsize(handle, 0), "adopting the grown map size")
            }
            var info = MDB_envinfo()
            mdb_env_info(handle, &info)
            mapSize = info.me_mapsize
        }
    }

    /// Bytes of the data file actually used (last page number × page size).
    func usedBytes() -> Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

}

/// A transaction handle lent to a ``LMDBEnvironment/read(_:)`` or ``LMDBEnvironment/write(_:)``
/// closure. Non-copyable so it cannot escape by copy; valid only during that closure.
struct Transaction: ~Copyable {
    let handle: OpaquePointer
    let tables: Tables

    /// Calls `body` with the stored bytes for `key`, or `nil` when absent.
    ///
    /// - warning: The pointer is LMDB's memory map; it is valid only inside `body`.
    func withValue<R>(_ key: [UInt8], in dbi: MDB_dbi, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        var out = MDB_val()
        let rc = key.withUnsafeBytes { k -> Int32 in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_get(handle, dbi, &mk, &out)
        }
        if rc == MDB_NOTFOUND { return try body(nil) }
        try lmdbCheck(rc, "mdb_get")
        return try body(UnsafeRawBufferPointer(start: out.mv_data, count: out.mv_size))
    }

    /// The stored bytes for `key`, copied out, or `nil` when absent.
    func value(_ key: [UInt8], in dbi: MDB_dbi) throws -> [UInt8]? {
        try withValue(key, in: dbi) { $0.map { Array($0) } }
    }

    func put(_ value: [UInt8], forKey key: [UInt8], in dbi: MDB_dbi, flags: UInt32 = 0) throws {
        let rc = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v -> Int32 in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                return mdb_put(handle, dbi, &mk, &mv, flags)
            }
        }
        try lmdbCheck(rc, "mdb_put")
    }

    /// Puts a key that is usually larger than every key in the table (increasing document ids,
    /// a compaction's ordered rewrite). `MDB_APPEND` then fills pages completely instead of
    /// splitting them in half; when the key is not the largest, it falls back to a normal put.
    func putAppending(_ value: [UInt8], forKey key: [UInt8], in dbi: MDB_dbi) throws {
        do {
            try put(value, forKey: key, in: dbi, flags: UInt32(MDB_APPEND))
        } catch let error as SparseDBError where error.lmdbCode == MDB_KEYEXIST {
            try put(value, forKey: key, in: dbi)
        }
    }

    /// Deletes `key`; returns whether it existed.
    @discardableResult
    func delete(_ key: [UInt8], in dbi: MDB_dbi) throws -> Bool {
        let rc = key.withUnsafeBytes { k -> Int32 in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_del(handle, dbi, &mk, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try lmdbCheck(rc, "mdb_del")
        return true
    }

    /// Visits, in key order, every entry whose key starts with `prefix` (from `start` when given,
    /// which must itself start with `prefix`). `body` returns false to stop.
    ///
    /// - warning: Both buffers point into LMDB's map and are valid only during `body`.
    func scan(
        prefix: [UInt8], from start: [UInt8]? = nil, in dbi: MDB_dbi,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(handle, dbi, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        let first = start ?? prefix
        var key = MDB_val()
        var value = MDB_val()
        var rc = first.withUnsafeBytes { k -> Int32 in
            key = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            // LMDB refuses a zero-length key, so an empty start means "from the first entry".
            return mdb_cursor_get(cursor, &key, &value, k.isEmpty ? MDB_FIRST : MDB_SET_RANGE)
        }
        while rc == MDB_SUCCESS {
            let k = UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)
            guard k.count >= prefix.count, prefix.withUnsafeBytes({ p in memcmp(p.baseAddress!, k.baseAddress!, p.count) == 0 || p.count == 0 })
            else { return }
            if try !body(k, UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)) { return }
            rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try lmdbCheck(rc, "mdb_cursor_get") }
    }

    /// Deletes every entry whose key starts with `prefix`; returns how many.
    @discardableResult
    func deleteAll(prefix: [UInt8], in dbi: MDB_dbi) throws -> Int {
        var keys: [[UInt8]] = []
        try scan(prefix: prefix, in: dbi) { k, _ in
            keys.append(Array(k))
            return true
        }
        for k in keys { try delete(k, in: dbi) }
        return keys.count
    }

    /// Number of entries and bytes of pages of one table.
    func tableStats(_ dbi: MDB_dbi) throws -> (entries: Int, bytes: Int) {
        var s = MDB_stat()
        try lmdbCheck(mdb_stat(handle, dbi, &s), "mdb_stat")
        let pages = s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages
        return (s.ms_entries, pages * Int(s.ms_psize))
    }
}
