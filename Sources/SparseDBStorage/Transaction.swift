import CLMDB
import CLMDBGuard
import Foundation
import SparseDBCore

/// A transaction handle lent to a ``LMDBEnvironment/read(_:)`` or ``LMDBEnvironment/write(_:)``
/// closure. Non-copyable so it cannot escape by copy; valid only during that closure.
package struct Transaction: ~Copyable {
    package let handle: OpaquePointer
    package let tables: [TableRef]
    /// Where the values this transaction hands out may lie (a damaged size is an error, not a crash).
    package let bounds: MapBounds

    package init(handle: OpaquePointer, tables: [TableRef], bounds: MapBounds) {
        self.handle = handle
        self.tables = tables
        self.bounds = bounds
    }

    /// The id of the snapshot this transaction reads (LMDB's transaction id).
    package var id: Int { mdb_txn_id(handle) }

    /// Calls `body` with the stored bytes for `key`, or `nil` when absent.
    ///
    /// - warning: The pointer is LMDB's memory map; it is valid only inside `body`.
    package func withValue<R>(_ key: [UInt8], in table: TableRef, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        try key.withUnsafeBytes { k in try withValue(rawKey: k, in: table, body) }
    }

    /// The same for a key in the caller's memory (a stack buffer: the hot lookups of a query,
    /// one per hit and per rescored row, then allocate no key array).
    ///
    /// - warning: The pointer is LMDB's memory map; it is valid only inside `body`.
    @inline(__always)
    package func withValue<R>(rawKey key: UnsafeRawBufferPointer, in table: TableRef, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        guard let dbi = table.dbi else { return try body(nil) }
        var out = MDB_val()
        var mk = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = sparsedb_guarded_get(handle, dbi, &mk, &out)
        if rc == MDB_NOTFOUND { return try body(nil) }
        try lmdbCheck(rc, "reading from table '\(table.name)'")
        try bounds.check(out.mv_data, out.mv_size, txn: handle, table: table, key: key, what: "value")
        return try body(UnsafeRawBufferPointer(start: out.mv_data, count: out.mv_size))
    }

    /// The stored bytes for `key`, copied out, or `nil` when absent.
    package func value(_ key: [UInt8], in table: TableRef) throws -> [UInt8]? {
        try withValue(key, in: table) { $0.map { Array($0) } }
    }

    private func writable(_ table: TableRef) throws -> MDB_dbi {
        guard let dbi = table.dbi else {
            throw SparseDBError(.storage, "table '\(table.name)' does not exist in this database (opened read-only)")
        }
        return dbi
    }

    package func put(_ value: [UInt8], forKey key: [UInt8], in table: TableRef, flags: UInt32 = 0) throws {
        let dbi = try writable(table)
        let rc = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v -> Int32 in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                return sparsedb_guarded_put(handle, dbi, &mk, &mv, flags)
            }
        }
        try lmdbCheck(rc, "writing to table '\(table.name)'")
    }

    /// Puts a key that is usually larger than every key in the table (increasing document ids,
    /// a compaction's ordered rewrite). `MDB_APPEND` then fills pages completely instead of
    /// splitting them in half; when the key is not the largest, it falls back to a normal put.
    package func putAppending(_ value: [UInt8], forKey key: [UInt8], in table: TableRef) throws {
        do {
            try put(value, forKey: key, in: table, flags: UInt32(MDB_APPEND))
        } catch let error as SparseDBError where error.lmdbCode == MDB_KEYEXIST {
            try put(value, forKey: key, in: table)
        }
    }

    /// Deletes `key`; returns whether it existed.
    @discardableResult
    package func delete(_ key: [UInt8], in table: TableRef) throws -> Bool {
        let dbi = try writable(table)
        let rc = key.withUnsafeBytes { k -> Int32 in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return sparsedb_guarded_del(handle, dbi, &mk)
        }
        if rc == MDB_NOTFOUND { return false }
        try lmdbCheck(rc, "deleting from table '\(table.name)'")
        return true
    }

    /// Visits, in key order, every entry whose key starts with `prefix` (from `start` when given,
    /// which must itself start with `prefix`). `body` returns false to stop.
    ///
    /// - warning: Both buffers point into LMDB's map and are valid only during `body`.
    package func scan(
        prefix: [UInt8], from start: [UInt8]? = nil, in table: TableRef,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try (start ?? prefix).withUnsafeBytes { try scan(prefix: prefix, rawStart: $0, floor: false, in: table, body) }
    }

    /// Like ``scan(prefix:from:in:_:)``, but starting at the *last* entry under `prefix` whose key
    /// is at most `start` (the entry that may cover `start`, when entries are keyed by the first
    /// of a range, as forward-row groups are), or at the first entry after it when there is none.
    ///
    /// - warning: Both buffers point into LMDB's map and are valid only during `body`.
    package func scan(
        prefix: [UInt8], fromFloorOf start: UnsafeRawBufferPointer, in table: TableRef,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try scan(prefix: prefix, rawStart: start, floor: true, in: table, body)
    }

    private func scan(
        prefix: [UInt8], rawStart first: UnsafeRawBufferPointer, floor: Bool, in table: TableRef,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        guard let dbi = table.dbi else { return }
        var cursor: OpaquePointer?
        try lmdbCheck(sparsedb_guarded_cursor_open(handle, dbi, &cursor), "opening a cursor on table '\(table.name)'")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        func position(_ op: MDB_cursor_op) -> Int32 {
            key = MDB_val(mv_size: first.count, mv_data: UnsafeMutableRawPointer(mutating: first.baseAddress))
            // LMDB refuses a zero-length key, so an empty start means "from the first entry".
            return sparsedb_guarded_cursor_get(cursor, &key, &value, Int32(bitPattern: (first.isEmpty ? MDB_FIRST : op).rawValue))
        }
        var rc = position(MDB_SET_RANGE)
        if floor && !first.isEmpty {
            // Step back one entry unless the key was found exactly; keep that entry only if it
            // is under the prefix (else start again at the first entry after `start`).
            if rc == MDB_SUCCESS { try bounds.check(key.mv_data, key.mv_size, txn: handle, table: table, key: nil, what: "key") }
            let exact = rc == MDB_SUCCESS && key.mv_size == first.count && memcmp(key.mv_data, first.baseAddress!, first.count) == 0
            if !exact {
                if rc != MDB_SUCCESS && rc != MDB_NOTFOUND { try lmdbCheck(rc, "reading table '\(table.name)'") }
                let back = sparsedb_guarded_cursor_get(cursor, &key, &value, Int32(bitPattern: (rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV).rawValue))
                if back != MDB_SUCCESS && back != MDB_NOTFOUND { try lmdbCheck(back, "reading table '\(table.name)'") }
                if back == MDB_SUCCESS { try bounds.check(key.mv_data, key.mv_size, txn: handle, table: table, key: nil, what: "key") }
                let under = back == MDB_SUCCESS && key.mv_size >= prefix.count
                    && (prefix.isEmpty || memcmp(key.mv_data, prefix, prefix.count) == 0)
                rc = under ? MDB_SUCCESS : position(MDB_SET_RANGE)
            }
        }
        while rc == MDB_SUCCESS {
            try bounds.check(key.mv_data, key.mv_size, txn: handle, table: table, key: nil, what: "key")
            let k = UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)
            guard Self.hasPrefix(k, prefix) else { return }
            try bounds.check(value.mv_data, value.mv_size, txn: handle, table: table, key: k, what: "value")
            if try !body(k, UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)) { return }
            rc = sparsedb_guarded_cursor_get(cursor, &key, &value, Int32(bitPattern: MDB_NEXT.rawValue))
        }
        if rc != MDB_NOTFOUND { try lmdbCheck(rc, "reading table '\(table.name)'") }
    }

    @inline(__always)
    package static func hasPrefix(_ key: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        guard key.count >= prefix.count else { return false }
        if prefix.isEmpty { return true }
        return prefix.withUnsafeBytes { p in memcmp(p.baseAddress!, key.baseAddress!, p.count) == 0 }
    }

    /// Deletes every entry whose key starts with `prefix`; returns how many.
    @discardableResult
    package func deleteAll(prefix: [UInt8], in table: TableRef) throws -> Int {
        guard let dbi = table.dbi else { return 0 }
        var cursor: OpaquePointer?
        try lmdbCheck(sparsedb_guarded_cursor_open(handle, dbi, &cursor), "opening a cursor on table '\(table.name)'")
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        var count = 0
        var rc: Int32 = prefix.withUnsafeBytes { k -> Int32 in
            key = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return sparsedb_guarded_cursor_get(cursor, &key, &value, Int32(bitPattern: (k.isEmpty ? MDB_FIRST : MDB_SET_RANGE).rawValue))
        }
        while rc == MDB_SUCCESS {
            try bounds.check(key.mv_data, key.mv_size, txn: handle, table: table, key: nil, what: "key")
            let k = UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)
            guard Self.hasPrefix(k, prefix) else { break }
            try lmdbCheck(sparsedb_guarded_cursor_del(cursor, 0), "deleting from table '\(table.name)'")
            count += 1
            // After a delete the cursor sits on the next entry; GET_CURRENT reads it.
            rc = sparsedb_guarded_cursor_get(cursor, &key, &value, Int32(bitPattern: MDB_GET_CURRENT.rawValue))
        }
        if rc != MDB_NOTFOUND && rc != MDB_SUCCESS && rc != EINVAL { try lmdbCheck(rc, "reading table '\(table.name)'") }
        return count
    }

    /// Number of entries and bytes of pages of one table.
    package func tableStats(_ table: TableRef) throws -> (entries: Int, bytes: Int) {
        guard let dbi = table.dbi else { return (0, 0) }
        var s = MDB_stat()
        try lmdbCheck(mdb_stat(handle, dbi, &s), "reading statistics of table '\(table.name)'")
        let pages = s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages
        return (s.ms_entries, pages * Int(s.ms_psize))
    }

    /// The names of the named tables (the main table's keys).
    package func tableNames() throws -> [String] {
        var dbi: MDB_dbi = 0
        try lmdbCheck(sparsedb_guarded_dbi_open(handle, nil, 0, &dbi), "opening the main table")
        var names: [String] = []
        try scan(prefix: [], in: TableRef(name: "(main)", dbi: dbi)) { k, _ in
            names.append(String(decoding: k, as: UTF8.self))
            return true
        }
        return names
    }

    /// Opens (creating it when `create`) the named table; `nil` when absent and not created.
    package func openTable(_ name: String, create: Bool) throws -> MDB_dbi? {
        var dbi: MDB_dbi = 0
        let rc = sparsedb_guarded_dbi_open(handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi)
        if rc == MDB_NOTFOUND && !create { return nil }
        try lmdbCheck(rc, "opening table '\(name)'")
        return dbi
    }

    /// Deletes the named table and its contents.
    package func dropTable(_ table: TableRef) throws {
        guard let dbi = table.dbi else { return }
        try lmdbCheck(sparsedb_guarded_drop(handle, dbi, 1), "dropping table '\(table.name)'")
    }

    /// A read handle that outlives one closure call but not the transaction: for query
    /// structures that fetch stored blocks lazily while the read closure is still running.
    package func lender(_ table: TableRef) -> ValueLender { ValueLender(txn: handle, table: table, bounds: bounds) }
}

/// Reads values of one table within a transaction that is still running, from objects that
/// cannot hold the non-copyable ``Transaction`` (a query's term cursors).
///
/// - warning: Valid only while the read closure that made it runs; the values it lends point
///   into LMDB's map and are valid only inside the closure passed to ``withValue(_:_:)``.
package struct ValueLender {
    let txn: OpaquePointer
    package let table: TableRef
    let bounds: MapBounds

    package func withValue<R>(_ key: [UInt8], _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        guard let dbi = table.dbi else { return try body(nil) }
        var out = MDB_val()
        let rc = key.withUnsafeBytes { k -> Int32 in
            var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return sparsedb_guarded_get(txn, dbi, &mk, &out)
        }
        if rc == MDB_NOTFOUND { return try body(nil) }
        try lmdbCheck(rc, "reading from table '\(table.name)'")
        try bounds.check(out.mv_data, out.mv_size, txn: txn, table: table, key: key)
        return try body(UnsafeRawBufferPointer(start: out.mv_data, count: out.mv_size))
    }
}
