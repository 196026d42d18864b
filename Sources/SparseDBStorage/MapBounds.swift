import CLMDB
import Foundation
import SparseDBCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a transaction's values may lie in LMDB's memory map, so that a value whose size or
/// position was damaged on disk is a typed `.corrupt` error instead of a SIGBUS or SIGSEGV when
/// the engine reads it (RELIABILITY.md, finding 2).
///
/// LMDB computes a value's address and length from the bytes of its page and hands them out
/// unchecked; the data file is mapped read-only (far larger than the file), so a damaged length
/// runs past the end of the file and the first read there kills the process. Every value of a
/// snapshot lies in that snapshot's pages, i.e. in the first `(last page + 1) × page size` bytes
/// of the file, which is what ``contains(_:_:)`` checks (two subtractions and two comparisons).
/// The last page is read once, when the transaction begins, from the newest meta page (the
/// snapshot's own or a later one: the last page never goes down); before calling a value
/// damaged, the slow path reads it again, in case a concurrent commit was rewriting that meta
/// page at the first reading.
///
/// A write transaction also reads pages it wrote itself: dirty pages live in the heap (this
/// engine never uses `MDB_WRITEMAP`), and dirty pages LMDB spilled to the file lie past the last
/// page of the snapshot it began on. For those the slow path accepts heap addresses and, inside
/// the map, anything within the file's current length.
package struct MapBounds: Sendable {
    /// Address of the memory map; `nil` when it could not be found, and then nothing is checked.
    let base: UInt?
    /// Bytes of the data file in use by the snapshot (at most the map's size).
    let used: UInt
    /// Bytes mapped.
    let mapped: UInt
    let readOnly: Bool
    /// The data file, for the write transactions' slow path.
    let fd: Int32
    /// LMDB's page size, for the slow path's second reading of the last page.
    let pageSize: Int

    /// Whether `count` bytes at `pointer` lie in the used part of the data file. False for
    /// anything else, including a write transaction's own pages (see `checkSlowly`).
    @inline(__always)
    func contains(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> Bool {
        guard let base else { return true }
        // Wraps around for addresses below the map, which then fail the first comparison.
        let offset = UInt(bitPattern: pointer) &- base
        return offset <= used && UInt(bitPattern: count) <= used &- offset
    }

    /// Throws `.corrupt` unless `count` bytes at `pointer` are a value LMDB may legitimately
    /// return in this transaction; `key` names it in the error.
    @inline(__always)
    func check(_ pointer: UnsafeMutableRawPointer?, _ count: Int, txn: OpaquePointer, table: TableRef, key: [UInt8]) throws {
        if !contains(pointer, count) {
            try key.withUnsafeBytes { try checkSlowly(pointer, count, txn: txn, table: table.name, key: $0, what: "value") }
        }
    }

    /// The same for a key and value a cursor returned (the value is named by its key).
    @inline(__always)
    func check(
        _ pointer: UnsafeMutableRawPointer?, _ count: Int, txn: OpaquePointer, table: TableRef, key: UnsafeRawBufferPointer?, what: StaticString
    ) throws {
        if !contains(pointer, count) { try checkSlowly(pointer, count, txn: txn, table: table.name, key: key, what: what) }
    }

    @inline(never)
    private func checkSlowly(
        _ pointer: UnsafeMutableRawPointer?, _ count: Int, txn: OpaquePointer, table: String, key: UnsafeRawBufferPointer?,
        what: StaticString
    ) throws {
        guard let base else { return }
        let offset = UInt(bitPattern: pointer) &- base
        var info = MDB_envinfo()
        if let env = mdb_txn_env(txn), mdb_env_info(env, &info) == MDB_SUCCESS {
            let again = UInt(min((info.me_last_pgno + 1) * pageSize, info.me_mapsize))
            if offset <= again && UInt(bitPattern: count) <= again &- offset { return }
        }
        if !readOnly {
            // Outside the map: a dirty page in the heap, written by this transaction.
            if offset >= mapped { return }
            // Inside the map past the snapshot's pages: pages this transaction allocated and LMDB
            // spilled to the file; they are read back from the map, within the file's length.
            var st = stat()
            if fstat(fd, &st) == 0 {
                let end = min(UInt(clamping: st.st_size), mapped)
                if offset <= end && UInt(bitPattern: count) <= end &- offset { return }
            }
        }
        var place = "table '\(table)'"
        if let key { place += ", key \(Self.hex(key))" }
        let at =
            offset < mapped
            ? "at byte \(offset) of data.mdb, which runs past the \(used) bytes the snapshot uses"
            : "at an address outside the data file's memory map"
        throw SparseDBError(
            .corrupt,
            "\(place): LMDB returned a \(what) of \(UInt(bitPattern: count)) bytes \(at); the database file is damaged: run `sparsedb verify` to see what is damaged, and restore the database from a copy"
        )
    }

    /// Up to 32 bytes of `key` in hexadecimal (keys are binary: collection, field and document ids).
    static func hex(_ key: UnsafeRawBufferPointer) -> String {
        let digits = key.prefix(32).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "0x" + digits + (key.count > 32 ? "… (\(key.count) bytes)" : "")
    }
}

extension LMDBEnvironment {
    /// The address at which the data file `fd` is mapped in this process, from `/proc/self/maps`
    /// (LMDB does not expose it: `MDB_envinfo.me_mapaddr` is the fixed address recorded in the
    /// meta page, `NULL` unless `MDB_FIXEDMAP`); `nil` when it cannot be found.
    static func mapAddress(of fd: Int32) -> UInt? {
        var st = stat()
        guard fstat(fd, &st) == 0, let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
        // glibc's encoding of dev_t (the major and minor macros of <sys/sysmacros.h>).
        let dev = UInt64(st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
        let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
        // Lines are "start-end perms offset major:minor inode path", numbers in hexadecimal but
        // the inode. The map is the one mapping of the file at offset 0.
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, UInt64(fields[4]) == UInt64(st.st_ino), UInt64(fields[2], radix: 16) == 0 else { continue }
            let device = fields[3].split(separator: ":")
            guard device.count == 2, UInt64(device[0], radix: 16) == major, UInt64(device[1], radix: 16) == minor,
                let dash = fields[0].firstIndex(of: "-")
            else { continue }
            return UInt(fields[0][..<dash], radix: 16)
        }
        return nil
    }
}
