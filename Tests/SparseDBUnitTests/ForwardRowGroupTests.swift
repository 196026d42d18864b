import SparseDB
import SparseDBCore
import SparseDBIndex
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// Format 4's forward row groups (format-spec.md §8a), written and read through LMDB: every row
/// comes back byte for byte from a scan and from a lookup of its document, absent documents
/// (gaps, before, between and after groups, other fields) read as absent, the writer's grouping
/// rules hold, and every malformed group — with a valid checksum, so the structural checks
/// themselves are what refuses it — is a `.corrupt` error.
@Suite struct ForwardRowGroupTests {
    /// Sealed rows of random vectors for documents with random gaps (mostly 1, else 1…40, so
    /// some exceed the writer's 16), random sizes (1…3,000 entries) and two rows larger than a group.
    func rows(seed: UInt64, count: Int, field: UInt32) throws -> [(document: UInt32, sealed: [UInt8])] {
        var rng = SplitMix64(seed: seed)
        var doc: UInt32 = UInt32.random(in: 0..<50, using: &rng)
        var out: [(document: UInt32, sealed: [UInt8])] = []
        for i in 0..<count {
            let n = i == 7 || i == count - 1 ? 20_000 : Int.random(in: 1...3_000, using: &rng)
            var dims = Set<UInt32>()
            while dims.count < n { dims.insert(UInt32.random(in: 0..<60_000, using: &rng)) }
            let v = try SparseVector(dims.sorted().map { ($0, Float.random(in: 0.01...3, using: &rng)) })
            out.append((doc, Records.forwardRow(key: Keys.forwardRow(7, field, doc), v, encoding: .packed)))
            doc += UInt32.random(in: 0..<5, using: &rng) > 0 ? 1 : UInt32.random(in: 1...40, using: &rng)
        }
        return out
    }

    @Test func rowsComeBackFromScansAndLookups() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let one = try rows(seed: 1, count: 400, field: 1)
            let two = try rows(seed: 2, count: 300, field: 2)
            // Field 1 in two batches (the second's groups go after the first's), field 2 in one.
            try db.env.write { txn in
                try ForwardRows.append(txn, collection: 7, field: 1, rows: Array(one.prefix(150)), layout: .grouped)
                try ForwardRows.append(txn, collection: 7, field: 2, rows: two, layout: .grouped)
            }
            try db.env.write { txn in try ForwardRows.append(txn, collection: 7, field: 1, rows: Array(one.dropFirst(150)), layout: .grouped) }
            try db.env.read { txn in
                for (field, expected) in [(UInt32(1), one), (2, two)] {
                    var seen: [(UInt32, [UInt8])] = []
                    try ForwardRows.scan(txn, collection: 7, field: field, layout: .grouped) { doc, key, row in
                        #expect(Array(key) == Keys.forwardRow(7, field, doc))
                        seen.append((doc, Array(row)))
                        return true
                    }
                    #expect(seen.map(\.0) == expected.map(\.document))
                    #expect(seen.map(\.1) == expected.map(\.sealed))
                    // From the middle of the field: the rows from that document on.
                    let middle = expected[expected.count / 2].document
                    var fromMiddle: [UInt32] = []
                    try ForwardRows.scan(txn, collection: 7, field: field, from: middle - 1, layout: .grouped) { doc, _, _ in
                        fromMiddle.append(doc)
                        return true
                    }
                    #expect(fromMiddle == expected.map(\.document).filter { $0 >= middle - 1 })
                    // Every document from before the first to after the last: its row or nothing.
                    let byDocument = Dictionary(uniqueKeysWithValues: expected.map { ($0.document, $0.sealed) })
                    for doc in 0...(expected.last!.document + 20) {
                        let got = try ForwardRows.withRow(txn, collection: 7, field: field, document: doc, layout: .grouped) { key, row in
                            #expect(Array(key) == Keys.forwardRow(7, field, doc))
                            return row.map { Array($0) }
                        }
                        #expect(got == byDocument[doc], "field \(field) document \(doc)")
                    }
                }
                // Field 1's second batch starts new groups (an ingest never extends a stored one).
                try checkGrouping(txn, field: 1, batchStarts: [one[150].document])
                try checkGrouping(txn, field: 2)
                // Nothing for a field or collection with no rows.
                for (c, f) in [(UInt32(7), UInt32(3)), (6, 1), (8, 1)] {
                    #expect(try ForwardRows.withRow(txn, collection: c, field: f, document: 100, layout: .grouped) { $1 == nil })
                }
            }
        }
    }

    /// The writer's rules (§8a), from the groups themselves: at most 65,520 bytes unless one row,
    /// at most 16 empty slots in a row, and maximal — each group's next row would not have fit
    /// (too large, or more than 16 documents away) unless it starts a batch.
    func checkGrouping(_ txn: borrowing Transaction, field: UInt32, batchStarts: Set<UInt32> = []) throws {
        var previous: (last: UInt32, bytes: Int)? = nil
        try txn.scan(prefix: Keys.field(7, field), in: txn.table(.forwardRow)) { k, v in
            let g = try ForwardRows.group(key: k, v)
            #expect(v.count <= 65_520 || g.slots == 1, "a group of \(g.slots) rows takes \(v.count) bytes")
            var run = 0
            for i in 0..<g.slots {
                run = g.row(i) == nil ? run + 1 : 0
                #expect(run <= 16)
            }
            if let p = previous {
                #expect(g.first > p.last)
                if batchStarts.contains(g.first) {
                    previous = (g.last, v.count)
                    return true
                }
                let gap = Int(g.first - p.last - 1)
                let grown = p.bytes + 4 * (gap + 1) + g.row(0)!.count
                #expect(gap > 16 || grown > 65_520, "group at \(g.first) would have fit in the one before")
            }
            previous = (g.last, v.count)
            return true
        }
    }

    /// Compaction's regrouping: the rows of deleted documents dropped, the others byte for byte,
    /// in full groups; from single rows (the upgrade) too.
    @Test(arguments: [ForwardRows.Layout.single, .grouped])
    func regroupDropsDeletedRows(from layout: ForwardRows.Layout) throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            // ~20 MB of rows: more than one of regroup's 16 MB runs.
            let all = try rows(seed: 3, count: 3_000, field: 1)
            var rng = SplitMix64(seed: 4)
            var deleted = DocumentBitmap(capacity: all.last!.document + 1)
            for r in all where UInt32.random(in: 0..<3, using: &rng) == 0 { deleted.insert(r.document) }
            // Written in many small batches, so the groups are small before regrouping.
            for start in stride(from: 0, to: all.count, by: 7) {
                try db.env.write { txn in
                    try ForwardRows.append(txn, collection: 7, field: 1, rows: Array(all[start..<min(start + 7, all.count)]), layout: layout)
                }
            }
            let before = try db.env.read { txn in try txn.tableStats(txn.table(.forwardRow)).entries }
            try db.env.write { txn in
                try ForwardRows.regroup(txn, collection: 7, field: FieldRecord(id: 1, name: "v", kind: .sparse, dimensions: 60_000), from: layout, dropping: deleted)
            }
            let kept = all.filter { !deleted.contains($0.document) }
            try db.env.read { txn in
                var seen: [(UInt32, [UInt8])] = []
                try ForwardRows.scan(txn, collection: 7, field: 1, layout: .grouped) { doc, _, row in
                    seen.append((doc, Array(row)))
                    return true
                }
                #expect(seen.map(\.0) == kept.map(\.document))
                #expect(seen.map(\.1) == kept.map(\.sealed))
                #expect(try txn.tableStats(txn.table(.forwardRow)).entries < before)
                try checkGrouping(txn, field: 1)
            }
        }
    }

    /// A group value with a valid checksum over whatever table it has.
    func sealedGroup(key: [UInt8], slots: UInt32, ends: [UInt32], rows: [UInt8], tableSlots: Int? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.u32le(0)
        w.u32le(slots)
        for e in ends { w.u32le(e) }
        let covered = 8 + 4 * (tableSlots ?? ends.count)
        if covered <= w.bytes.count + rows.count {
            w.append(rows)
            let crc = Records.checksum(key: key, w.bytes.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[4..<min(covered, w.bytes.count)]) })
            w.bytes.withUnsafeMutableBytes { $0.storeBytes(of: crc.littleEndian, as: UInt32.self) }
        } else {
            w.append(rows)
        }
        return w.bytes
    }

    @Test func malformedGroupsAreCorrupt() throws {
        let key = Keys.forwardRow(1, 1, 10)
        let row = Records.forwardRow(key: Keys.forwardRow(1, 1, 10), try SparseVector([(3, 1), (9, 2)]), encoding: .packed)
        let n = UInt32(row.count)
        let good = sealedGroup(key: key, slots: 2, ends: [n, 2 * n], rows: row + row)
        func parse(_ k: [UInt8], _ v: [UInt8]) throws -> ForwardRows.Group {
            try k.withUnsafeBytes { k in try v.withUnsafeBytes { try ForwardRows.group(key: k, $0) } }
        }
        let g = try parse(key, good)
        #expect(g.first == 10 && g.slots == 2 && g.last == 11)
        var flipped = good
        flipped[9] ^= 1
        let bad: [(String, [UInt8], [UInt8])] = [
            ("truncated", key, Array(good.prefix(11))),
            ("no slots", key, sealedGroup(key: key, slots: 0, ends: [], rows: row)),
            ("too many slots", key, sealedGroup(key: key, slots: 65_537, ends: [n], rows: row, tableSlots: 1)),
            ("table past the value", key, sealedGroup(key: key, slots: 3, ends: [n, 2 * n], rows: [], tableSlots: 2)),
            ("checksum", key, flipped),
            ("another key", Keys.forwardRow(1, 1, 11), good),
            ("short key", Array(key.prefix(8)), good),
            ("backwards", key, sealedGroup(key: key, slots: 3, ends: [n, n - 1, 2 * n], rows: row + row)),
            ("ends before the rows", key, sealedGroup(key: key, slots: 2, ends: [n, 2 * n - 1], rows: row + row)),
            ("ends after the rows", key, sealedGroup(key: key, slots: 2, ends: [n, 2 * n + 1], rows: row + row)),
            ("empty first slot", key, sealedGroup(key: key, slots: 2, ends: [0, n], rows: row)),
            ("empty last slot", key, sealedGroup(key: key, slots: 2, ends: [n, n], rows: row)),
            ("past 2^32 - 1", Keys.forwardRow(1, 1, .max), sealedGroup(key: Keys.forwardRow(1, 1, .max), slots: 2, ends: [n, 2 * n], rows: row + row)),
        ]
        for (what, k, v) in bad {
            let e = #expect(throws: SparseDBError.self, "\(what)") { _ = try parse(k, v) }
            #expect(e?.code == .corrupt, "\(what): \(String(describing: e))")
        }
        // Overlapping groups are refused by a scan (and by verify); a lookup reads one group, the
        // one at or before the document. A stored group that fails its checksum is an error for
        // a lookup, never an absent row.
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let later = Keys.forwardRow(1, 1, 11)
            let rowAt11 = Records.forwardRow(key: later, try SparseVector([(3, 1)]), encoding: .packed)
            try db.env.write { txn in
                try txn.put(good, forKey: key, in: txn.table(.forwardRow))
                try txn.put(sealedGroup(key: later, slots: 1, ends: [UInt32(rowAt11.count)], rows: rowAt11), forKey: later, in: txn.table(.forwardRow))
            }
            try db.env.read { txn in
                let e = #expect(throws: SparseDBError.self) {
                    try ForwardRows.scan(txn, collection: 1, field: 1, layout: .grouped) { _, _, _ in true }
                }
                #expect(e?.code == .corrupt && e?.message.contains("overlaps") == true)
                let found = try ForwardRows.withRow(txn, collection: 1, field: 1, document: 11, layout: .grouped) { $1.map { Array($0) } }
                #expect(found == rowAt11)
            }
            try db.env.write { txn in try txn.put(flipped, forKey: key, in: txn.table(.forwardRow)) }
            try db.env.read { txn in
                let e = #expect(throws: SparseDBError.self) {
                    try ForwardRows.withRow(txn, collection: 1, field: 1, document: 10, layout: .grouped) { _, _ in () }
                }
                #expect(e?.code == .corrupt)
            }
        }
    }
}
