import SparseDBCore
import SparseDBStorage

/// Checks every record of a collection and the references between them (format-spec.md §12):
///
/// - every record's checksum (documents, id map, term statistics, forward rows, block headers
///   and payloads) and structure;
/// - id map ↔ document records: every entry points at a live document that carries the same
///   external id, and every live document has exactly one entry;
/// - tombstones refer to stored documents; counts match the metadata;
/// - forward rows ↔ postings: every posting refers to a stored document, blocks of a term are in
///   order and do not overlap, term statistics match their blocks, and every document has as
///   many postings in a field as its forward row has weights.
package enum Verifier {
    package static func verify(_ txn: borrowing Transaction, record: CollectionRecord, codec: ZstdCodec, limit: Int = 1000) throws -> [String] {
        var problems: [String] = []
        let name = record.name
        func problem(_ s: String) { if problems.count < limit { problems.append("collection '\(name)': \(s)") } }
        let c = record.id
        let prefix = Keys.collection(c)

        var documents = DocumentBitmap(capacity: record.nextDocument)
        var externalIds: [UInt32: String] = [:]
        // Attribute values the records hold, as the index keys them: (attribute, document, value key).
        var expectedAttributes = Set<AttributeEntry>()
        try txn.scan(prefix: prefix, in: txn.table(.document)) { k, v in
            guard k.count == 8, let d = Keys.part(k, 1) else {
                problem("malformed document key of \(k.count) bytes")
                return true
            }
            if d >= record.nextDocument { problem("document \(d) is beyond the next id \(record.nextDocument)") }
            documents.insert(d)
            do {
                let stored = try Records.parseDocument(key: k, v, includePayload: false)
                externalIds[d] = stored.id
                for (aid, value) in stored.attributes {
                    guard let attribute = record.attributes.first(where: { $0.id == aid }), attribute.type == value.type.rawValue else {
                        problem("document \(d) has a value for attribute #\(aid), which the schema does not declare so")
                        continue
                    }
                    for key in Self.valueKeys(value) { expectedAttributes.insert(AttributeEntry(attribute: aid, document: d, value: key)) }
                }
            } catch { problem("document \(d): \(message(error))") }
            return true
        }
        do {
            var indexed = Set<AttributeEntry>()
            for (aid, entries) in try Attributes.indexedEntries(txn, record: record) {
                for (doc, key) in entries { indexed.insert(AttributeEntry(attribute: aid, document: doc, value: key)) }
            }
            func name(_ aid: UInt32) -> String { record.attributes.first { $0.id == aid }.map { "'\($0.name)'" } ?? "#\(aid)" }
            for e in indexed.subtracting(expectedAttributes).prefix(20) {
                problem("attribute index lists document \(e.document) (\(externalIds[e.document].map { "'\($0)'" } ?? "no record")) under attribute \(name(e.attribute)), which its record does not hold")
            }
            for e in expectedAttributes.subtracting(indexed).prefix(20) {
                problem("document \(e.document) ('\(externalIds[e.document] ?? "")'): its value of attribute \(name(e.attribute)) is missing from the attribute index")
            }
        } catch { problem("attribute index: \(message(error))") }
        var tombstones = DocumentBitmap(capacity: record.nextDocument)
        try txn.scan(prefix: prefix, in: txn.table(.tombstone)) { k, v in
            guard k.count == 8, v.isEmpty, let d = Keys.part(k, 1) else {
                problem("malformed tombstone record")
                return true
            }
            tombstones.insert(d)
            if !documents.contains(d) { problem("tombstone for unknown document \(d)") }
            return true
        }
        var mapped = DocumentBitmap(capacity: record.nextDocument)
        try txn.scan(prefix: prefix, in: txn.table(.externalId)) { k, v in
            let ext = String(decoding: k.dropFirst(4), as: UTF8.self)
            let d: UInt32
            do { d = try Records.parseExternalId(key: k, v) } catch {
                problem("id map entry '\(ext)': \(message(error))")
                return true
            }
            if !documents.contains(d) {
                problem("id '\(ext)' maps to missing document \(d)")
            } else if tombstones.contains(d) {
                problem("id '\(ext)' maps to deleted document \(d)")
            } else if let stored = externalIds[d], stored != ext {
                problem("id '\(ext)' maps to document \(d), which holds id '\(stored)'")
            }
            if mapped.contains(d) { problem("document \(d) is mapped by more than one id") }
            mapped.insert(d)
            return true
        }
        let live = documents.count - tombstones.count
        if UInt64(tombstones.count) != record.deletedDocuments {
            problem("metadata says \(record.deletedDocuments) deleted documents, \(tombstones.count) tombstones stored")
        }
        if UInt64(live) != record.liveDocuments {
            problem("metadata says \(record.liveDocuments) live documents, \(live) stored")
        }
        for d in documents.members where !tombstones.contains(d) && !mapped.contains(d) {
            problem("live document \(d) ('\(externalIds[d] ?? "?")') has no id map entry")
        }

        for field in record.fields {
            guard let kind = FieldKind(rawValue: field.kind) else {
                problem("field '\(field.name)' has kind '\(field.kind)' unknown to this SparseDB; not checked")
                continue
            }
            _ = kind
            if field.isInverted {
                try verifySparseField(txn, record: record, field: field, documents: documents, codec: codec, problem: problem)
            } else {
                try verifyFlatField(txn, record: record, field: field, documents: documents, problem: problem)
            }
        }
        return problems
    }

    private static func verifySparseField(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, documents: DocumentBitmap, codec: ZstdCodec,
        problem: (String) -> Void
    ) throws {
        let c = record.id
        let fieldPrefix = Keys.field(c, field.id)
        let label = "field '\(field.name)'"
        var rowCounts: [UInt32: Int] = [:]
        // A format-2 database holds plain rows only: the release that made it cannot read packed ones.
        let packedAllowed = try Catalog.formatVersion(txn) >= 3
        let layout = try ForwardRows.layout(txn)
        func checkRow(_ d: UInt32, key: UnsafeRawBufferPointer, _ v: UnsafeRawBufferPointer) {
            if !documents.contains(d) { problem("\(label): forward row for unknown document \(d)") }
            do { rowCounts[d] = try Records.parseForwardRow(key: key, v, dimensions: field.dimensions).count } catch {
                problem("\(label): forward row of document \(d): \(message(error))")
            }
            if !packedAllowed, v.count > 4, v[4] == Records.ForwardRowEncoding.packed.rawValue {
                problem("\(label): forward row of document \(d) is packed, which a format-2 database must not hold")
            }
        }
        var previousGroupLast: UInt32? = nil
        try txn.scan(prefix: fieldPrefix, in: txn.table(.forwardRow)) { k, v in
            guard k.count == 12, let d = Keys.part(k, 2) else {
                problem("\(label): malformed forward row key")
                return true
            }
            guard layout == .grouped else {
                checkRow(d, key: k, v)
                return true
            }
            // Format 4: a group of rows (§8a); each row checked with its own document's key.
            let g: ForwardRows.Group
            do { g = try ForwardRows.group(key: k, v) } catch {
                problem("\(label): \(message(error))")
                return true
            }
            if let p = previousGroupLast, g.first <= p { problem("\(label): forward row group at document \(g.first) overlaps the group before it") }
            previousGroupLast = g.last
            _ = g.forEachRow(collection: c, field: field.id) { doc, rowKey, row in
                checkRow(doc, key: rowKey, row)
                return true
            }
            return true
        }
        var postingsPerDoc: [UInt32: Int] = [:]
        var termTotals: [UInt32: Records.TermStats] = [:]
        var totalPostings: UInt64 = 0
        let decoder = BlockDecoder(codec: codec)
        var previousTerm: UInt32? = nil
        var previousLast: UInt32 = 0
        try txn.scan(prefix: fieldPrefix, in: txn.table(.postingBlock)) { k, v in
            guard k.count == 16, let term = Keys.part(k, 2), let first = Keys.part(k, 3) else {
                problem("\(label): malformed posting key")
                return true
            }
            if term >= field.dimensions { problem("\(label): term \(term) is out of range") }
            do {
                let (h, n) = try decoder.decode(key: k, v)
                if previousTerm == term && first <= previousLast {
                    problem("\(label): term \(term): block at document \(first) overlaps the previous block")
                }
                previousTerm = term
                previousLast = first &+ h.span
                for i in 0..<n {
                    let d = decoder.documents[i]
                    if !documents.contains(d) { problem("\(label): term \(term): posting for unknown document \(d)") }
                    postingsPerDoc[d, default: 0] += 1
                }
                var t = termTotals[term] ?? Records.TermStats(maxWeight: 0, postings: 0, blocks: 0)
                t.postings += UInt32(n)
                t.blocks += 1
                t.maxWeight = max(t.maxWeight, h.blockMax)
                termTotals[term] = t
                totalPostings += UInt64(n)
            } catch { problem("\(label): term \(term) block at document \(first): \(message(error))") }
            return true
        }
        var termsSeen = 0
        try txn.scan(prefix: fieldPrefix, in: txn.table(.term)) { k, v in
            termsSeen += 1
            guard k.count == 12, let term = Keys.part(k, 2) else {
                problem("\(label): malformed term key")
                return true
            }
            do {
                let s = try Records.parseTerm(key: k, v)
                guard let t = termTotals[term] else {
                    problem("\(label): term \(term) has statistics but no blocks")
                    return true
                }
                if s.postings != t.postings || s.blocks != t.blocks {
                    problem("\(label): term \(term): statistics say \(s.postings) postings in \(s.blocks) blocks, found \(t.postings) in \(t.blocks)")
                }
                if s.maxWeight < t.maxWeight { problem("\(label): term \(term): maximum weight \(s.maxWeight) is below a block maximum \(t.maxWeight)") }
            } catch { problem("\(label): term \(term): \(message(error))") }
            return true
        }
        if termsSeen != termTotals.count { problem("\(label): \(termTotals.count) terms have blocks but \(termsSeen) have statistics") }
        if totalPostings != field.postings { problem("\(label): metadata says \(field.postings) postings, blocks hold \(totalPostings)") }
        for (d, n) in rowCounts where (postingsPerDoc[d] ?? 0) != n {
            problem("\(label): document \(d) has \(n) weights but \(postingsPerDoc[d] ?? 0) postings")
        }
        for (d, n) in postingsPerDoc where rowCounts[d] == nil {
            problem("\(label): document \(d) has \(n) postings but no forward row")
        }
    }

    private static func verifyFlatField(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, documents: DocumentBitmap, problem: (String) -> Void
    ) throws {
        let label = "field '\(field.name)'"
        var rows: UInt64 = 0
        try txn.scan(prefix: Keys.field(record.id, field.id), in: txn.table(.flatChunk)) { k, v in
            guard k.count == 12 else {
                problem("\(label): malformed flat chunk key")
                return true
            }
            do {
                let chunk = try FlatStore.decode(key: k, v, field: field)
                rows += UInt64(chunk.count)
                for d in chunk.documents where !documents.contains(d) { problem("\(label): row for unknown document \(d)") }
            } catch { problem("\(label): \(message(error))") }
            return true
        }
        if rows != (field.rows ?? 0) { problem("\(label): metadata says \(field.rows ?? 0) rows, chunks hold \(rows)") }
    }

    struct AttributeEntry: Hashable {
        var attribute: UInt32
        var document: UInt32
        var value: [UInt8]
    }

    /// The index's keys of a value: each distinct keyword, the bool byte, the ordered number bits.
    static func valueKeys(_ value: AttributeValue) -> [[UInt8]] {
        switch value {
        case .keyword(let list), .keywordList(let list): return Set(list).map { Array($0.utf8) }
        case .bool(let v): return [Attributes.boolBytes(v)]
        case .integer, .float:
            var w = ByteWriter()
            w.u64be(Attributes.orderedBits(value))
            return [w.bytes]
        }
    }

    static func message(_ error: Error) -> String { (error as? SparseDBError)?.message ?? "\(error)" }
}
