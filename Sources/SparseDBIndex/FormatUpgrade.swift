import Foundation
import SparseDBCore
import SparseDBStorage

/// Upgrades a database of an older format to the current one, in place, inside one write
/// transaction: either the whole database is converted or — on any error, a crash or a kill —
/// nothing changes (format-spec.md §13).
///
/// Format 1 → 2: each collection gets one sparse field named `vector` (id 1) carrying its
/// dimensions, encoder record and postings; keys gain the field id after the collection id;
/// posting blocks keep their payload bytes but get the format-2 header with two checksums;
/// documents, id-map entries, term statistics and forward rows get their checksums. Every
/// format-1 checksum is checked on the way, so damage is reported instead of carried over.
package enum FormatUpgrade {
    /// Format-1 table names (format 2 uses different ones, so both can exist during the copy).
    static let format1Tables = ["meta", "documents", "ids", "postings", "terms", "forward", "tombstones"]

    /// The format version of the database in `env`, without opening it for use.
    package static func formatVersion(_ env: LMDBEnvironment) throws -> UInt32 {
        try env.read { txn in
            guard try txn.tableNames().contains("meta") else {
                throw SparseDBError(.foreignFormat, "\(env.path): no SparseDB metadata")
            }
            let meta = TableRef(name: "meta", dbi: try txn.openTable("meta", create: false))
            return try Catalog.version(ofFormatRecord: try txn.value(Catalog.formatKey, in: meta), path: env.path)
        }
    }

    /// Upgrades `env` (opened writable) to ``Catalog/formatVersion``; returns the version it had.
    /// A current database is left alone.
    @discardableResult
    package static func upgrade(_ env: LMDBEnvironment, compressionLevel: Int32 = 3) throws -> UInt32 {
        let version = try formatVersion(env)
        if version == Catalog.formatVersion { return version }
        switch version {
        case 1: try env.write { txn in try upgradeFormat1(txn, path: env.path) }
        case 2, 3:
            // Opened as for use first: the registry's rules and the commit stamp (§3a) are
            // checked — a database that LMDB opened at an older snapshot must be refused, not
            // rewritten and stamped, which would make the lost commits permanent — and every
            // write from here on is stamped.
            try Catalog.open(env, create: false)
            try env.write { txn in try upgradeRows(txn, from: version) }
        default:
            throw SparseDBError(.newerFormat, "\(env.path): format \(version) cannot be upgraded by this SparseDB (it reads formats \(Catalog.oldestOpenedFormat) to \(Catalog.formatVersion))")
        }
        return version
    }

    /// Formats 2 and 3 → 4. From format 2, every forward row of every inverted field is first
    /// rewritten packed (§8), its checksum and entries checked on the way (what format 3
    /// changed); then, from either, each field's rows are gathered into groups (§8a, what format
    /// 4 changed), each row's checksum checked again; then the format record says 4. Nothing
    /// else differs between the three formats.
    private static func upgradeRows(_ txn: borrowing Transaction, from version: UInt32) throws {
        for name in try Catalog.collectionNames(txn) {
            guard let record = try Catalog.loadCollection(txn, name: name) else { continue }
            for field in record.fields where field.isInverted {
                if version == 2 { try packRows(txn, collection: record.id, field: field) }
                try ForwardRows.regroup(txn, collection: record.id, field: field, from: .single, dropping: nil)
            }
        }
        try txn.put(Catalog.formatRecord(), forKey: Catalog.formatKey, in: txn.table(.meta))
    }

    /// Rewrites a field's plain single rows (format 2) as packed single rows (format 3).
    private static func packRows(_ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord) throws {
        let rows = txn.table(.forwardRow)
        let prefix = Keys.field(c, field.id)
        // A cursor must not walk a table that is being written: rows are read in runs, each run
        // rewritten before the next is read.
        var start: [UInt8]? = nil
        while true {
            var run: [(key: [UInt8], value: [UInt8])] = []
            try txn.scan(prefix: prefix, from: start, in: rows) { k, v in
                let vector = try Records.parseForwardRow(key: k, v, dimensions: field.dimensions)
                let key = [UInt8](k)
                run.append((key, Records.forwardRow(key: key, vector, encoding: .packed)))
                return run.count < 4096
            }
            guard let last = run.last else { break }
            for (key, value) in run { try txn.put(value, forKey: key, in: rows) }
            start = last.key + [0]
        }
    }

    /// Format-1 collection metadata (format 1's `CollectionInfo`).
    private struct Format1Collection: Decodable {
        var id: UInt32
        var name: String
        var dimensions: UInt32
        var nextDocument: UInt32
        var liveDocuments: UInt64
        var deletedDocuments: UInt64
        var postings: UInt64
        var encoder: EncoderRecord?
        var generation: UInt64?
    }

    private static func upgradeFormat1(_ txn: borrowing Transaction, path: String) throws {
        let names = try txn.tableNames()
        let missing = format1Tables.filter { !names.contains($0) }
        guard missing.isEmpty else { throw SparseDBError(.corrupt, "\(path): format-1 tables \(missing) are missing") }
        var old: [String: TableRef] = [:]
        for name in format1Tables { old[name] = TableRef(name: name, dbi: try txn.openTable(name, create: false)) }
        let meta = old["meta"]!
        var new: [TableRef] = []
        for table in Table.allCases {
            new.append(table == .meta ? meta : TableRef(name: table.name, dbi: try txn.openTable(table.name, create: true)))
        }
        // Transactions carry their tables; this one was begun before the format-2 tables existed.
        let v2 = Transaction(handle: txn.handle, tables: new, bounds: txn.bounds)

        // Collections.
        var collections: [Format1Collection] = []
        try txn.scan(prefix: Array(Catalog.collectionKeyPrefix.utf8), in: meta) { _, v in
            do { collections.append(try JSONDecoder().decode(Format1Collection.self, from: Data(v))) } catch {
                throw SparseDBError(.corrupt, "\(path): format-1 collection metadata is not valid: \(error)")
            }
            return true
        }
        var postingsPerCollection: [UInt32: UInt64] = [:]

        // Documents: flags u8 ‖ id length u16le ‖ id ‖ payload.
        try txn.scan(prefix: [], in: old["documents"]!) { k, v in
            guard k.count == 8 else { throw SparseDBError(.corrupt, "\(path): format-1 document key is malformed") }
            var r = ByteReader(v)
            guard let flags = r.u8(), flags <= 1, let n = r.u16le(), let idBytes = r.bytes(Int(n)),
                let id = String(validating: idBytes, as: UTF8.self)
            else { throw SparseDBError(.corrupt, "\(path): format-1 document record \(Keys.part(k, 1) ?? 0) is malformed") }
            let key = Array(k)
            try v2.putAppending(Records.document(key: key, externalId: id, payload: flags == 1 ? Array(r.rest()) : nil), forKey: key, in: v2.table(.document))
            return true
        }
        // Id map: doc u32le.
        try txn.scan(prefix: [], in: old["ids"]!) { k, v in
            guard v.count == 4, k.count > 4 else { throw SparseDBError(.corrupt, "\(path): format-1 id map entry is malformed") }
            let key = Array(k)
            try v2.putAppending(Records.externalId(key: key, document: UInt32(littleEndian: v.loadUnaligned(as: UInt32.self))), forKey: key, in: v2.table(.externalId))
            return true
        }
        try txn.scan(prefix: [], in: old["tombstones"]!) { k, _ in
            guard k.count == 8 else { throw SparseDBError(.corrupt, "\(path): format-1 tombstone key is malformed") }
            try v2.putAppending([], forKey: Array(k), in: v2.table(.tombstone))
            return true
        }
        // Term statistics: key cid ‖ term → cid ‖ field 1 ‖ term; value max f32 ‖ postings ‖ blocks.
        try txn.scan(prefix: [], in: old["terms"]!) { k, v in
            guard k.count == 8, let c = Keys.part(k, 0), let term = Keys.part(k, 1) else { throw SparseDBError(.corrupt, "\(path): format-1 term key is malformed") }
            var r = ByteReader(v)
            guard let m = r.f32le(), let p = r.u32le(), let b = r.u32le(), r.isAtEnd else {
                throw SparseDBError(.corrupt, "\(path): format-1 term record of term \(term) is malformed")
            }
            let key = Keys.term(c, 1, term)
            try v2.putAppending(Records.term(key: key, Records.TermStats(maxWeight: m, postings: p, blocks: b)), forKey: key, in: v2.table(.term))
            return true
        }
        // Posting blocks: 16-byte header (flags, count−1, length, span, block-max, CRC over
        // key ‖ header[0..<12] ‖ payload) → 20-byte header with two checksums; payload unchanged.
        try txn.scan(prefix: [], in: old["postings"]!) { k, v in
            guard k.count == 12, let c = Keys.part(k, 0), let term = Keys.part(k, 1), let first = Keys.part(k, 2), v.count >= 16 else {
                throw SparseDBError(.corrupt, "\(path): format-1 posting block is malformed")
            }
            var crc = CRC32C.checksum(k)
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: v[0..<12]), seed: crc)
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: v[16...]), seed: crc)
            guard crc == UInt32(littleEndian: v.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) else {
                throw SparseDBError(.corrupt, "\(path): format-1 posting block of term \(term) at document \(first) fails its checksum; nothing was changed")
            }
            var r = ByteReader(v)
            let flags = r.u8()!, countMinusOne = r.u8()!, length = r.u16le()!, span = r.u32le()!, blockMax = r.f32le()!
            let key = Keys.postingBlock(c, 1, term, first)
            let block = PostingBlock.assemble(
                key: key, flags: flags, count: Int(countMinusOne) + 1, decodedLength: Int(length), span: span, blockMax: blockMax,
                stored: UnsafeRawBufferPointer(rebasing: v[16...]))
            try v2.putAppending(block, forKey: key, in: v2.table(.postingBlock))
            postingsPerCollection[c, default: 0] += UInt64(countMinusOne) + 1
            return true
        }
        // Forward rows: count u32le ‖ CRC u32le ‖ varint gaps ‖ f32 weights.
        try txn.scan(prefix: [], in: old["forward"]!) { k, v in
            guard k.count == 8, let c = Keys.part(k, 0), let doc = Keys.part(k, 1), v.count >= 8 else {
                throw SparseDBError(.corrupt, "\(path): format-1 forward row is malformed")
            }
            let count = Int(UInt32(littleEndian: v.loadUnaligned(as: UInt32.self)))
            let crc = UInt32(littleEndian: v.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let body = UnsafeRawBufferPointer(rebasing: v[8...])
            guard CRC32C.checksum(body) == crc, count <= body.count / 5 else {
                throw SparseDBError(.corrupt, "\(path): format-1 forward row of document \(doc) fails its checksum; nothing was changed")
            }
            var r = ByteReader(body)
            var dims: [UInt32] = []
            var weights: [Float] = []
            var previous: UInt32 = 0
            // The row is checked as a format-2 reader checked it (increasing, in the collection's
            // range), so that a bad row stops the upgrade instead of being carried over.
            let limit = collections.first { $0.id == c }?.dimensions ?? 0
            for i in 0..<count {
                guard let gap = r.varint() else { throw SparseDBError(.corrupt, "\(path): format-1 forward row of document \(doc) is truncated") }
                let (next, overflow) = previous.addingReportingOverflow(gap)
                guard i == 0 || (gap > 0 && !overflow), next < limit else {
                    throw SparseDBError(.corrupt, "\(path): format-1 forward row of document \(doc) has a dimension out of order or out of range; nothing was changed")
                }
                previous = i == 0 ? gap : next
                dims.append(previous)
            }
            for _ in 0..<count {
                guard let w = r.f32le() else { throw SparseDBError(.corrupt, "\(path): format-1 forward row of document \(doc) is truncated") }
                weights.append(w)
            }
            let key = Keys.forwardRow(c, 1, doc)
            try v2.putAppending(Records.forwardRow(key: key, SparseVector(unchecked: dims, weights: weights), encoding: .packed), forKey: key, in: v2.table(.forwardRow))
            return true
        }

        // Metadata last: collection records, registry, format record; then drop the old tables.
        for info in collections {
            var field = FieldRecord(id: 1, name: "vector", kind: .sparse, dimensions: info.dimensions)
            field.encoder = info.encoder
            field.postings = info.postings
            guard postingsPerCollection[info.id, default: 0] == info.postings else {
                throw SparseDBError(
                    .corrupt,
                    "\(path): collection '\(info.name)' metadata says \(info.postings) postings, its blocks hold \(postingsPerCollection[info.id, default: 0]); nothing was changed")
            }
            var record = CollectionRecord(id: info.id, name: info.name, fields: [field])
            record.nextDocument = info.nextDocument
            record.liveDocuments = info.liveDocuments
            record.deletedDocuments = info.deletedDocuments
            record.generation = info.generation ?? 0
            try Catalog.saveCollection(v2, record)
            // Written above as format-3 single rows; format 4 keeps them in groups (§8a).
            try ForwardRows.regroup(v2, collection: info.id, field: field, from: .single, dropping: nil)
        }
        for table in Table.allCases { try v2.put([table.registryFlags], forKey: TableRegistry.key(table.name), in: meta) }
        try v2.put(Catalog.formatRecord(), forKey: Catalog.formatKey, in: meta)
        for name in format1Tables where name != "meta" { try txn.dropTable(old[name]!) }
    }
}
