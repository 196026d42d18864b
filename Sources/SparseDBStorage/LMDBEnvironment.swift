import CLMDB
import CLMDBGuard
import CSparseDBKernels
import Foundation
import SparseDBCore

#if canImport(Glibc)
import Glibc
#endif

/// Every LMDB call's return code passes through here (one chokepoint, as swift-system does),
/// so that each failure becomes a typed error naming the operation.
@inline(__always)
package func lmdbCheck(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
    if rc != MDB_SUCCESS { throw lmdbError(rc, operation()) }
}

/// The typed error for LMDB return code `rc`, with what to do about it where there is something.
package func lmdbError(_ rc: Int32, _ operation: String) -> SparseDBError {
    if rc == SPARSEDB_LMDB_FAULT {
        // LMDB read outside the map or failed one of its assertions on a damaged page; the
        // guard (CLMDBGuard) turned the crash into this return code.
        let what = String(cString: sparsedb_lmdb_fault_description())
        return SparseDBError(
            .corrupt,
            "\(operation): LMDB stopped on a damaged page (\(what)); the database file's page structure is damaged: run `sparsedb verify` to see what is damaged, and restore the database from a copy",
            lmdbCode: rc)
    }
    let text = String(cString: mdb_strerror(rc))
    switch rc {
    case MDB_INVALID, MDB_VERSION_MISMATCH:
        return SparseDBError(.foreignFormat, "\(operation): \(text)", lmdbCode: rc)
    case MDB_CORRUPTED, MDB_PAGE_NOTFOUND:
        return SparseDBError(
            .corrupt, "\(operation): \(text); the database file is damaged: restore it from a copy (`sparsedb verify` names what is damaged)",
            lmdbCode: rc)
    case ENOENT:
        return SparseDBError(.notFound, "\(operation): \(text)", lmdbCode: rc)
    case ENOSPC, EDQUOT, EFBIG:
        return SparseDBError(
            .diskFull, "\(operation): \(text); nothing of this write was stored, committed data is intact: free some space and run it again",
            lmdbCode: rc)
    case MDB_PANIC:
        return SparseDBError(
            .storage, "\(operation): \(text); LMDB stopped this environment after a failed write: close the database and open it again",
            lmdbCode: rc)
    case MDB_READERS_FULL:
        return SparseDBError(
            .storage, "\(operation): \(text) (every LMDB reader slot is taken by live readers; raise Database.Configuration.maxReaders)",
            lmdbCode: rc)
    default:
        return SparseDBError(.storage, "\(operation): \(text)", lmdbCode: rc)
    }
}

/// A reader–writer lock guarding the memory map: transactions hold it shared; growing the map
/// and closing the environment hold it exclusively (LMDB requires that no transaction is active
/// while the map size changes). Writer-preferring, so that a steady stream of searches cannot
/// starve a map growth.
///
/// `@unchecked Sendable`: the pthread lock is created in `init`, destroyed in `deinit`, and used
/// only through `shared` and `exclusive`, which pthread makes thread-safe.
package final class MapLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    package init() {
        let rc = sparsedb_rwlock_init_writer_preferring(lock)
        precondition(rc == 0, "pthread_rwlock_init failed: \(rc)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    package func shared<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    package func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// A named LMDB table as seen by one environment: its handle, or `nil` when a read-only
/// environment lacks it (an older database that never had this table): it then reads as empty.
package struct TableRef: Sendable {
    package let name: String
    package let dbi: MDB_dbi?

    package init(name: String, dbi: MDB_dbi?) {
        self.name = name
        self.dbi = dbi
    }
}

/// Owner of one LMDB environment (`MDB_env`). One per database directory per process.
///
/// Transactions are closure-scoped: ``read(_:)`` and ``write(_:)`` begin, hand the closure a
/// ``Transaction`` that is valid only during the call, and commit on return / abort on throw.
/// Never nest them (a read inside a read on one thread can deadlock with a waiting map growth).
///
/// `@unchecked Sendable`: `handle` is only used inside `mapLock` (shared for transactions,
/// exclusive for growth and close); `tables` is written once by the opener before the
/// environment is shared; `closed` and `mapBase` are guarded by `mapLock` (written under the
/// exclusive side, when no transaction can be reading them).
package final class LMDBEnvironment: @unchecked Sendable {
    package let handle: OpaquePointer
    package let path: String
    package let isReadOnly: Bool
    /// The table handles, set once by whoever opens the environment (the index layer).
    package var tables: [TableRef] = []
    /// Runs in every write transaction just before it commits (and is part of it). Set once, by
    /// the layer that owns the tables, before the first write: the catalog records the
    /// transaction's id there (format-spec.md §3a), so that an open can tell when LMDB shows an
    /// older snapshot than the last commit.
    package var beforeCommit: ((borrowing Transaction) throws -> Void)?
    private let mapLock = MapLock()
    private var closed = false
    /// Stale reader slots reclaimed when the environment was opened (slots of killed processes).
    package private(set) var staleReadersCleared: Int32 = 0
    /// The data file's descriptor and LMDB's page size, for ``MapBounds``.
    private let dataFD: Int32
    private let pageSize: Int
    /// Where the data file is mapped; changes when the map is resized (LMDB maps it again).
    private var mapBase: UInt?

    /// Opens (creating when writable) the environment in directory `path`.
    ///
    /// Before anything reads the memory map, the data file's size is checked against the last
    /// page the environment's meta page records: a truncated file would otherwise crash the
    /// process (SIGBUS) on the first access past its end.
    package init(path: String, mapSize: Int, readOnly: Bool, maxReaders: UInt32, maxTables: UInt32 = 32) throws {
        let dataFile = path + "/data.mdb"
        let existingSize = Self.fileSize(dataFile)
        var env: OpaquePointer?
        try lmdbCheck(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw SparseDBError(.storage, "mdb_env_create returned no handle") }
        do {
            // Faults inside LMDB calls on damaged pages become errors (CLMDBGuard); installed
            // once per process, before the first page is read.
            if sparsedb_lmdb_guard_install(env) != 0 {
                throw SparseDBError(.storage, "installing the SIGSEGV/SIGBUS handlers that turn LMDB's faults on damaged pages into errors failed")
            }
            try lmdbCheck(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize(\(mapSize))")
            try lmdbCheck(mdb_env_set_maxdbs(env, maxTables), "mdb_env_set_maxdbs")
            try lmdbCheck(mdb_env_set_maxreaders(env, maxReaders), "mdb_env_set_maxreaders")
            // NOTLS: read transactions are not bound to an OS thread, so Swift tasks may hop threads.
            var flags = UInt32(MDB_NOTLS)
            if readOnly { flags |= UInt32(MDB_RDONLY) }
            if existingSize == 0 {
                throw SparseDBError(
                    .corrupt,
                    "\(dataFile) is empty (0 bytes): the file was truncated, or creating the database was interrupted; restore it from a copy, or remove the directory to start anew")
            }
            if let existingSize, existingSize > 0, existingSize < 2 * 4096 {
                throw SparseDBError(
                    .corrupt, "\(dataFile) is only \(existingSize) bytes, shorter than LMDB's two meta pages: the file was truncated; restore it from a copy")
            }
            try lmdbCheck(mdb_env_open(env, path, flags, 0o644), "opening LMDB environment at \(path)")
            if let existingSize, existingSize > 0 {
                var info = MDB_envinfo()
                var stat = MDB_stat()
                mdb_env_info(env, &info)
                mdb_env_stat(env, &stat)
                let needed = (info.me_last_pgno + 1) * Int(stat.ms_psize)
                let actual = Self.fileSize(dataFile) ?? 0
                if actual < needed {
                    throw SparseDBError(
                        .corrupt,
                        "\(dataFile) is \(actual) bytes but its last page ends at byte \(needed): the file was truncated; restore it from a copy")
                }
            }
            // Reader slots of processes that died without closing (kill -9) are never freed by
            // LMDB on its own; they pin old pages and eventually exhaust the table.
            var dead: Int32 = 0
            mdb_reader_check(env, &dead)
            staleReadersCleared = dead
            var fd: Int32 = -1
            try lmdbCheck(mdb_env_get_fd(env, &fd), "mdb_env_get_fd")
            var stat = MDB_stat()
            try lmdbCheck(mdb_env_stat(env, &stat), "mdb_env_stat")
            dataFD = fd
            pageSize = Int(stat.ms_psize)
            mapBase = Self.mapAddress(of: fd)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.isReadOnly = readOnly
    }

    deinit {
        if !closed { mdb_env_close(handle) }
    }

    /// Closes the environment once every transaction in flight has ended; later transactions
    /// throw `.closed`.
    package func close() {
        mapLock.exclusive {
            guard !closed else { return }
            closed = true
            mdb_env_close(handle)
        }
    }

    package var isClosed: Bool { mapLock.shared { closed } }

    /// The table handle for `name` from ``tables``.
    package func table(named name: String) -> TableRef {
        tables.first { $0.name == name } ?? TableRef(name: name, dbi: nil)
    }

    /// Runs `body` in a read-only snapshot (MVCC). Many readers may run at once from many threads.
    ///
    /// The transaction and every pointer obtained from it are valid only during the closure; do
    /// not store or return them.
    package func read<R>(_ body: (borrowing Transaction) throws -> R) throws -> R {
        try runTransaction(readOnly: true, body)
    }

    /// Runs `body` in the write transaction: commit (and fsync) on return, abort on throw.
    ///
    /// When the map is full, the transaction is aborted, the map grows and `body` runs again,
    /// so `body` must not have effects outside the transaction.
    package func write<R>(_ body: (borrowing Transaction) throws -> R) throws -> R {
        guard !isReadOnly else { throw SparseDBError(.invalidInput, "\(path) is open read-only") }
        while true {
            do {
                return try runTransaction(readOnly: false, body)
            } catch let full as MapFull {
                try grow(from: full.mapSize)
            }
        }
    }

    /// Thrown inside ``runTransaction`` when a write filled the map; carries the map size then.
    private struct MapFull: Error { var mapSize: Int }

    /// Doubles the map, unless another writer already grew it past `failedSize`. Holds the
    /// exclusive lock, so no transaction is active while LMDB changes the size.
    package func grow(from failedSize: Int) throws {
        try mapLock.exclusive {
            guard !closed else { throw SparseDBError(.closed, "\(path): the database is closed") }
            var info = MDB_envinfo()
            mdb_env_info(handle, &info)
            guard info.me_mapsize <= failedSize else { return }
            let (doubled, overflow) = failedSize.multipliedReportingOverflow(by: 2)
            guard !overflow else { throw SparseDBError(.storage, "\(path): the memory map cannot grow past \(failedSize) bytes") }
            try lmdbCheck(mdb_env_set_mapsize(handle, doubled), "growing the map to \(doubled) bytes")
            mapBase = Self.mapAddress(of: dataFD)
        }
    }

    /// The current map size in bytes.
    package var mapSize: Int {
        mapLock.shared {
            var info = MDB_envinfo()
            if !closed { mdb_env_info(handle, &info) }
            return info.me_mapsize
        }
    }

    private enum Attempt<R> {
        case done(R)
        /// Another process grew the map (`MDB_MAP_RESIZED`): adopt its size and begin again.
        case adoptResizedMap
        /// The reader table is full: reclaim stale slots, then begin once more.
        case readersFull
    }

    private func runTransaction<R>(readOnly: Bool, _ body: (borrowing Transaction) throws -> R) throws -> R {
        var reclaimedReaders = false
        while true {
            let attempt: Attempt<R> = try mapLock.shared {
                guard !closed else { throw SparseDBError(.closed, "\(path): the database is closed") }
                var raw: OpaquePointer?
                let rc = mdb_txn_begin(handle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &raw)
                if rc == MDB_MAP_RESIZED { return .adoptResizedMap }
                if rc == MDB_READERS_FULL && !reclaimedReaders { return .readersFull }
                try lmdbCheck(rc, readOnly ? "beginning a read transaction" : "beginning a write transaction")
                guard let raw else { throw SparseDBError(.storage, "mdb_txn_begin returned no transaction") }
                let txn = Transaction(handle: raw, tables: tables, bounds: bounds(readOnly: readOnly))
                let result: R
                do {
                    result = try body(txn)
                    if !readOnly, let beforeCommit { try beforeCommit(txn) }
                } catch let error as SparseDBError where error.lmdbCode == MDB_MAP_FULL {
                    var info = MDB_envinfo()
                    mdb_env_info(handle, &info)
                    mdb_txn_abort(raw)
                    throw MapFull(mapSize: info.me_mapsize)
                } catch {
                    mdb_txn_abort(raw)
                    throw error
                }
                // mdb_txn_commit frees the transaction whether it succeeds or fails, so a failed
                // commit (a full disk) must not be aborted again. Committing (not aborting) a
                // read-only transaction keeps table handles it opened valid for the environment.
                let commit = sparsedb_guarded_txn_commit(raw)
                if commit == SPARSEDB_LMDB_FAULT {
                    // A commit that faulted (a damaged free-list page) did not free the transaction
                    // and wrote no meta page: aborting it leaves the last commit as it was.
                    mdb_txn_abort(raw)
                    throw lmdbError(commit, "committing the transaction")
                }
                if commit == MDB_MAP_FULL {
                    var info = MDB_envinfo()
                    mdb_env_info(handle, &info)
                    throw MapFull(mapSize: info.me_mapsize)
                }
                if commit == EIO && outOfSpace() {
                    // LMDB reports a short write as EIO; that is what a full disk (or a file-size
                    // limit) looks like mid-commit.
                    throw lmdbError(ENOSPC, "committing the transaction")
                }
                try lmdbCheck(commit, "committing the transaction")
                return .done(result)
            }
            switch attempt {
            case .done(let result):
                return result
            case .adoptResizedMap:
                try mapLock.exclusive {
                    guard !closed else { return }
                    try lmdbCheck(mdb_env_set_mapsize(handle, 0), "adopting the map size another process set")
                    mapBase = Self.mapAddress(of: dataFD)
                }
            case .readersFull:
                reclaimedReaders = true
                mapLock.shared {
                    var dead: Int32 = 0
                    if !closed { mdb_reader_check(handle, &dead) }
                }
            }
        }
    }

    /// Where a transaction that has just begun may find its values: the pages in use by the
    /// newest snapshot, which is the transaction's own or a later one (pages in use only grow).
    /// Called under the shared side of `mapLock`.
    private func bounds(readOnly: Bool) -> MapBounds {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        let used = min((info.me_last_pgno + 1) * pageSize, info.me_mapsize)
        return MapBounds(base: mapBase, used: UInt(used), mapped: UInt(info.me_mapsize), readOnly: readOnly, fd: dataFD, pageSize: pageSize)
    }

    /// Reclaims reader slots of dead processes; returns how many.
    @discardableResult
    package func clearStaleReaders() -> Int32 {
        mapLock.shared {
            var dead: Int32 = 0
            if !closed { mdb_reader_check(handle, &dead) }
            return dead
        }
    }

    /// Bytes of the data file actually used (last page number × page size).
    package func usedBytes() -> Int {
        mapLock.shared {
            guard !closed else { return 0 }
            var info = MDB_envinfo()
            var stat = MDB_stat()
            mdb_env_info(handle, &info)
            mdb_env_stat(handle, &stat)
            return (info.me_last_pgno + 1) * Int(stat.ms_psize)
        }
    }

    /// Writes a copy of every table, read from one snapshot, into a new environment in the empty
    /// directory `target`: each table's entries are inserted again in key order (`MDB_APPEND`),
    /// so the B-tree pages of the copy are full. LMDB's own compacting copy (`mdb_env_copy2`)
    /// keeps each page as it is, so a table whose pages were left half full — entries inserted
    /// out of key order, values rewritten smaller — stays that size; this copy does not.
    ///
    /// The copy is written in transactions of about 32 MiB; `beforeCommit` is installed on the
    /// new environment (the catalog's commit stamp, so the copy's last transaction is stamped).
    /// The table named `last` is copied after all others, in one transaction: a copy cut short
    /// (a kill, a crash, a full disk) lacks it — for SparseDB, the `meta` table, without which the
    /// copy is refused as not a database rather than opened with tables missing. On an error the
    /// directory may hold a partial copy: the caller removes it.
    package func copyPacked(to target: String, last: String, beforeCommit: ((borrowing Transaction) throws -> Void)?) throws {
        let used = usedBytes()
        let copy = try LMDBEnvironment(path: target, mapSize: used + used / 4 + (16 << 20), readOnly: false, maxReaders: 8)
        defer { copy.close() }
        copy.beforeCommit = beforeCommit
        try read { txn in
            let names = try txn.tableNames()
            for name in names.filter({ $0 != last }) + names.filter({ $0 == last }) {
                guard let dbi = try txn.openTable(name, create: false) else { continue }
                var chunk: [(key: [UInt8], value: [UInt8])] = []
                var bytes = 0
                func flush() throws {
                    try copy.write { out in
                        let table = TableRef(name: name, dbi: try out.openTable(name, create: true))
                        for entry in chunk { try out.put(entry.value, forKey: entry.key, in: table, flags: UInt32(MDB_APPEND)) }
                    }
                    chunk.removeAll(keepingCapacity: true)
                    bytes = 0
                }
                try txn.scan(prefix: [], in: TableRef(name: name, dbi: dbi)) { k, v in
                    chunk.append(([UInt8](k), [UInt8](v)))
                    bytes += k.count + v.count + 16
                    if bytes >= 32 << 20 && name != last { try flush() }
                    return true
                }
                try flush()  // also creates an empty table
            }
        }
    }

    /// Whether the data file's file system is (nearly) full, or the file is at the process's
    /// file-size limit: the likely cause of a failed write.
    private func outOfSpace() -> Bool {
        var fs = statvfs()
        if statvfs(path, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 64 << 20 { return true }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
            let size = Self.fileSize(path + "/data.mdb"), UInt64(size) + (64 << 20) > UInt64(limit.rlim_cur)
        {
            return true
        }
        return false
    }

    package static func fileSize(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }
}
