import SparseDBCore
import SparseDBStorage

/// Where an inverted field's forward rows (format-spec.md §8) are stored, and the one way every
/// reader and writer reaches them.
///
/// Formats 2 and 3 keep one LMDB record per row, keyed by its document. Format 4 keeps *groups*
/// (§8a): one record per run of consecutive documents, keyed by the first, holding the same
/// sealed rows back to back behind a table of their ends. A row is ~500 bytes on SPLADE
/// vectors, so one record a row cost ~22 bytes of LMDB node and key and left ~360 bytes of
/// each 4 KiB page unfilled (7.3 rows a page): 77 MB of the 1 M corpus's 567 MB of rows. A
/// group fills 16 pages to within half a row. Each row inside keeps its own checksum, bound to
/// its own document's key, so a query reads and checks one row, not its group.
package enum ForwardRows {
    /// One record per row (formats 2 and 3) or groups of rows (format 4).
    package enum Layout: Sendable, Equatable {
        case single
        case grouped
    }

    /// The layout of the database `txn` reads.
    package static func layout(_ txn: borrowing Transaction) throws -> Layout {
        try Catalog.formatVersion(txn) >= 4 ? .grouped : .single
    }

    /// The largest group the writers make: 16 pages of 4 KiB less LMDB's 16-byte page header,
    /// so a full group wastes less than a row at the end of its last page. Readers accept any size.
    static let groupBytes = 16 * 4096 - 16
    /// Absent documents (no row in this field, or deleted) a writer keeps inside one group
    /// before starting another: each costs 4 bytes in the group's table.
    static let maxGap = 16
    /// At most this many documents in one group.
    static let maxSlots = 65_536

    // MARK: reading

    /// A checked group (§8a): the rows of documents `first ..< first + slots`.
    package struct Group {
        package let first: UInt32
        package let slots: Int
        /// `slots` × `u32le`: where each slot's row ends in `rows`.
        let ends: UnsafeRawBufferPointer
        let rows: UnsafeRawBufferPointer

        @inline(__always)
        func end(_ i: Int) -> Int { Int(UInt32(littleEndian: ends.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }

        /// The sealed row (§8) of document `first + i`, or nil when that document has none.
        package func row(_ i: Int) -> UnsafeRawBufferPointer? {
            let start = i == 0 ? 0 : end(i - 1)
            let stop = end(i)
            return stop > start ? UnsafeRawBufferPointer(rebasing: rows[start..<stop]) : nil
        }

        /// The last document the group covers.
        package var last: UInt32 { first &+ UInt32(slots - 1) }

        /// Calls `body` with each row's document (from `from` on), its own key (collection `c`,
        /// field `f`) and its sealed bytes; `body` returns false to stop. Returns false when
        /// stopped.
        package func forEachRow(
            collection c: UInt32, field f: UInt32, from: UInt32 = 0,
            _ body: (_ document: UInt32, _ key: UnsafeRawBufferPointer, _ row: UnsafeRawBufferPointer) throws -> Bool
        ) rethrows -> Bool {
            for i in 0..<slots {
                let doc = first &+ UInt32(i)
                guard doc >= from, let row = row(i) else { continue }
                if try !Keys.withForwardRow(c, f, doc, { try body(doc, $0, row) }) { return false }
            }
            return true
        }
    }

    /// Checks a group's key, checksum and table (not its rows: each is checked when read).
    package static func group(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Group {
        guard key.count == 12, let first = Keys.part(key, 2) else { throw SparseDBError(.corrupt, "forward row group key is malformed") }
        func damaged(_ what: String) -> SparseDBError {
            SparseDBError(.corrupt, "forward row group at document \(first) \(what)")
        }
        guard value.count >= 12 else { throw damaged("is truncated (\(value.count) bytes)") }
        let stored = UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
        let slots = Int(UInt32(littleEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        guard slots >= 1, slots <= maxSlots, 8 + 4 * slots <= value.count else { throw damaged("has a bad slot count (\(slots))") }
        guard Records.checksum(key: key, UnsafeRawBufferPointer(rebasing: value[4..<(8 + 4 * slots)])) == stored else {
            throw damaged("fails its checksum")
        }
        guard UInt64(first) + UInt64(slots) - 1 <= UInt64(UInt32.max) else { throw damaged("runs past document 2^32 - 1") }
        let g = Group(
            first: first, slots: slots, ends: UnsafeRawBufferPointer(rebasing: value[8..<(8 + 4 * slots)]),
            rows: UnsafeRawBufferPointer(rebasing: value[(8 + 4 * slots)...]))
        var previous = 0
        for i in 0..<slots {
            let e = g.end(i)
            guard e >= previous else { throw damaged("has a table that runs backwards at slot \(i)") }
            previous = e
        }
        guard previous == g.rows.count else { throw damaged("table ends at \(previous), its rows at \(g.rows.count)") }
        guard g.row(0) != nil, g.row(slots - 1) != nil else { throw damaged("starts or ends with an empty slot") }
        return g
    }

    /// Calls `body` with the key and sealed row of each document of the field from `first` on,
    /// in document order, checking groups on the way (each row's own checksum is the caller's
    /// to check, with that key). `body` returns false to stop.
    package static func scan(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, from first: UInt32 = 0, layout: Layout,
        _ body: (_ document: UInt32, _ key: UnsafeRawBufferPointer, _ row: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let prefix = Keys.field(c, f)
        let table = txn.table(.forwardRow)
        switch layout {
        case .single:
            try txn.scan(prefix: prefix, from: Keys.forwardRow(c, f, first), in: table) { k, v in
                guard k.count == 12, let doc = Keys.part(k, 2) else { throw SparseDBError(.corrupt, "forward row key is malformed") }
                return try body(doc, k, v)
            }
        case .grouped:
            var previousLast: UInt32? = nil
            try Keys.withForwardRow(c, f, first) { start in
                try txn.scan(prefix: prefix, fromFloorOf: start, in: table) { k, v in
                    let g = try group(key: k, v)
                    if let p = previousLast, g.first <= p {
                        throw SparseDBError(.corrupt, "forward row group at document \(g.first) overlaps the group before it")
                    }
                    previousLast = g.last
                    return try g.forEachRow(collection: c, field: f, from: first, body)
                }
            }
        }
    }

    /// Calls `body` with the key and sealed row of `document` in the field, or nil when it has
    /// none. One B-tree lookup.
    package static func withRow<R>(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, document: UInt32, layout: Layout,
        _ body: (_ key: UnsafeRawBufferPointer, _ row: UnsafeRawBufferPointer?) throws -> R
    ) throws -> R {
        try Keys.withForwardRow(c, f, document) { rowKey in
            switch layout {
            case .single:
                return try txn.withValue(rawKey: rowKey, in: txn.table(.forwardRow)) { try body(rowKey, $0) }
            case .grouped:
                var found: UnsafeRawBufferPointer? = nil
                try txn.scan(prefix: Keys.field(c, f), fromFloorOf: rowKey, in: txn.table(.forwardRow)) { k, v in
                    // The group at or before the document, or (when there is none) the first
                    // after it; either is checked, so a malformed one is an error, not "absent".
                    let g = try group(key: k, v)
                    if g.first <= document && document <= g.last { found = g.row(Int(document - g.first)) }
                    return false
                }
                // The group's bytes are LMDB's map, valid for the whole transaction.
                return try body(rowKey, found)
            }
        }
    }

    // MARK: writing

    /// Builds groups from rows given in increasing document order.
    package struct GroupBuilder {
        private var first: UInt32 = 0
        private var ends: [UInt32] = []
        private var rows: [UInt8] = []
        /// Finished groups: key and value.
        package var done: [(key: [UInt8], value: [UInt8])] = []
        let collection: UInt32
        let field: UInt32

        package init(collection: UInt32, field: UInt32) {
            self.collection = collection
            self.field = field
        }

        package mutating func add(document: UInt32, sealedRow row: UnsafeRawBufferPointer) throws {
            if !ends.isEmpty {
                let next = UInt64(first) + UInt64(ends.count)
                guard UInt64(document) >= next else {
                    throw SparseDBError(.corrupt, "forward row of document \(document) comes after document \(next - 1)'s")
                }
                let gap = UInt64(document) - next
                let grown = 8 + 4 * (ends.count + Int(gap) + 1) + rows.count + row.count
                if gap > UInt64(maxGap) || grown > groupBytes || ends.count + Int(gap) + 1 > maxSlots {
                    finish()
                } else {
                    for _ in 0..<gap { ends.append(UInt32(rows.count)) }
                }
            }
            if ends.isEmpty { first = document }
            rows.append(contentsOf: row)
            ends.append(UInt32(rows.count))
        }

        /// Seals the group being built, if any, into `done`.
        package mutating func finish() {
            guard !ends.isEmpty else { return }
            let key = Keys.forwardRow(collection, field, first)
            var w = ByteWriter(capacity: 8 + 4 * ends.count + rows.count)
            w.u32le(0)
            w.u32le(UInt32(ends.count))
            for e in ends { w.u32le(e) }
            let crc = w.bytes.withUnsafeBytes { Records.checksum(key: key, UnsafeRawBufferPointer(rebasing: $0[4...])) }
            w.bytes.withUnsafeMutableBytes { $0.storeBytes(of: crc.littleEndian, as: UInt32.self) }
            w.append(rows)
            done.append((key, w.bytes))
            ends.removeAll(keepingCapacity: true)
            rows.removeAll(keepingCapacity: true)
        }
    }

    /// Writes new documents' sealed rows (increasing documents, all after the field's stored
    /// ones): one record each in the `single` layout, groups in the `grouped` one.
    package static func append(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, rows: [(document: UInt32, sealed: [UInt8])], layout: Layout
    ) throws {
        let table = txn.table(.forwardRow)
        switch layout {
        case .single:
            for (doc, row) in rows { try txn.putAppending(row, forKey: Keys.forwardRow(c, f, doc), in: table) }
        case .grouped:
            var builder = GroupBuilder(collection: c, field: f)
            for (doc, row) in rows { try row.withUnsafeBytes { try builder.add(document: doc, sealedRow: $0) } }
            builder.finish()
            for (key, value) in builder.done { try txn.putAppending(value, forKey: key, in: table) }
        }
    }

    /// Rewrites a field's rows as full groups (§8a), reading them in the layout `old` (the
    /// format-3 → 4 upgrade reads single rows; compaction reads groups), without the rows of
    /// `deleted` documents. Every row's checksum is checked on the way, so damage is reported,
    /// not carried into the new groups. Rows are read in runs of about 16 MB, each run's records
    /// deleted and its full groups written before the next is read (a cursor must not walk a
    /// table that is being written); the new groups' keys all lie before the next run.
    package static func regroup(
        _ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, from old: Layout, dropping deleted: DocumentBitmap?
    ) throws {
        let f = field.id
        let prefix = Keys.field(c, f)
        let table = txn.table(.forwardRow)
        var builder = GroupBuilder(collection: c, field: f)
        var start: UInt32? = 0
        var previousLast: UInt32? = nil
        while let from = start {
            var oldKeys: [[UInt8]] = []
            var rows: [(UInt32, [UInt8])] = []
            var bytes = 0
            var nextStart: UInt32? = nil
            try txn.scan(prefix: prefix, from: Keys.forwardRow(c, f, from), in: table) { k, v in
                guard k.count == 12, let first = Keys.part(k, 2) else { throw SparseDBError(.corrupt, "forward row key is malformed") }
                var last = first
                func take(_ doc: UInt32, _ rowKey: UnsafeRawBufferPointer, _ row: UnsafeRawBufferPointer) throws {
                    _ = try Records.checkedForwardRow(key: rowKey, row)
                    if deleted?.contains(doc) != true { rows.append((doc, [UInt8](row))) }
                }
                switch old {
                case .single:
                    try take(first, k, v)
                case .grouped:
                    let g = try group(key: k, v)
                    if let p = previousLast, g.first <= p {
                        throw SparseDBError(.corrupt, "forward row group at document \(g.first) overlaps the group before it")
                    }
                    previousLast = g.last
                    last = g.last
                    _ = try g.forEachRow(collection: c, field: f) { doc, rowKey, row in
                        try take(doc, rowKey, row)
                        return true
                    }
                }
                oldKeys.append([UInt8](k))
                bytes += v.count
                nextStart = last == UInt32.max ? nil : last + 1
                return bytes < 16 << 20
            }
            if oldKeys.isEmpty { break }
            for key in oldKeys { try txn.delete(key, in: table) }
            for (doc, row) in rows { try row.withUnsafeBytes { try builder.add(document: doc, sealedRow: $0) } }
            // The group still being built may take rows from the next run; the finished ones go now.
            for (key, value) in builder.done { try txn.put(value, forKey: key, in: table) }
            builder.done.removeAll()
            start = nextStart
        }
        builder.finish()
        for (key, value) in builder.done { try txn.put(value, forKey: key, in: table) }
    }
}
