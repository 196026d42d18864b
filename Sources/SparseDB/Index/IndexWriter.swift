/// A document as stored: external id, optional payload bytes, one sparse vector.
public struct Document: Sendable, Equatable {
    /// The caller's unique id (UTF-8, 1…500 bytes).
    public var id: String
    /// Opaque bytes stored with the document and returned with hits (the CLI stores JSON).
    public var payload: [UInt8]?
    /// The document's vector; zero weights are not indexed.
    public var vector: SparseVector

    /// A document with `id`, an optional `payload` and its `vector`.
    public init(id: String, payload: [UInt8]? = nil, vector: SparseVector) {
        self.id = id
        self.payload = payload
        self.vector = vector
    }
}

/// Mutations of one collection inside a write transaction. The caller owns the transaction, so a
/// throw anywhere here aborts the whole batch.
enum IndexWriter {
    static func validate(_ doc: Document, in info: CollectionInfo) throws {
        let idBytes = doc.id.utf8.count
        if idBytes == 0 { throw SparseDBError(.invalidInput, "document id is empty") }
        if idBytes > Schema.maxExternalIdBytes {
            throw SparseDBError(.invalidInput, "document id '\(doc.id.prefix(40))…' is \(idBytes) bytes; at most \(Schema.maxExternalIdBytes)")
        }
        if let last = doc.vector.dimensions.last, last >= info.dimensions {
            throw SparseDBError(.invalidInput, "document '\(doc.id)': dimension \(last) is out of range (collection '\(info.name)' has \(info.dimensions) dimensions)")
        }
        if let payload = doc.payload, payload.count > 64 << 20 {
            throw SparseDBError(.invalidInput, "document '\(doc.id)': payload of \(payload.count) bytes exceeds 64 MiB")
        }
    }

    /// Inserts or replaces `documents` (a later duplicate id in the batch wins).
    static func upsert(
        _ txn: borrowing Transaction, info: inout CollectionInfo, documents: [Document], codec: ZstdCodec
    ) throws {
        let t = txn.tables
        let c = info.id
        var postings: [UInt32: PendingList] = [:]
        var assigned: [String: UInt32] = [:]
        for doc in documents {
            try validate(doc, in: info)
            let idKey = Schema.idKey(c, doc.id)
            if let previous = assigned[doc.id] {
                try tombstone(txn, info: &info, document: previous)
            } else if let oldDoc = try documentId(txn, idKey: idKey) {
                try tombstone(txn, info: &info, document: oldDoc)
            }
            guard info.nextDocument < UInt32.max - 1 else {
                throw SparseDBError(.invalidInput, "collection '\(info.name)' has used all 2^32 document ids; run compact into a new collection")
            }
            let docId = info.nextDocument
            info.nextDocument += 1
            assigned[doc.id] = docId
            var idValue = ByteWriter()
            idValue.u32le(docId)
            try txn.put(idValue.bytes, forKey: idKey, in: t.ids)
            try txn.putAppending(Schema.documentRecord(externalId: doc.id, payload: doc.payload), forKey: Schema.documentKey(c, docId), in: t.documents)
            let v = doc.vector.droppingZeros()
            try txn.putAppending(Schema.forwardRecord(v), forKey: Schema.forwardKey(c, docId), in: t.forward)
            for (d, w) in zip(v.dimensions, v.weights) { postings[d, default: PendingList()].append(docId, w) }
            info.liveDocuments += 1
            info.postings += UInt64(v.count)
        }
        try writeLists(txn, collection: c, postings, codec: codec)
    }

    /// Postings of one term gathered in memory before they are written as blocks.
    struct PendingList {
        var documents: [UInt32] = []
        var weights: [Float] = []

        mutating func append(_ document: UInt32, _ weight: Float) {
            documents.append(document)
            weights.append(weight)
        }
    }

    /// Writes gathered lists in term order; returns the number of postings written.
    @discardableResult
    static func writeLists(_ txn: borrowing Transaction, collection c: UInt32, _ lists: [UInt32: PendingList], codec: ZstdCodec) throws -> UInt64 {
        var total: UInt64 = 0
        for term in lists.keys.sorted() {
            let list = lists[term]!
            total += UInt64(list.documents.count)
            try appendPostings(txn, collection: c, term: term, documents: list.documents, weights: list.weights, codec: codec)
        }
        return total
    }

    /// Writes new blocks for `term`. New document ids are larger than every stored one, so new
    /// blocks go after the term's existing blocks; a partially filled last block is left as it
    /// is (compaction re-packs), which keeps ingest from re-reading stored blocks.
    static func appendPostings(
        _ txn: borrowing Transaction, collection c: UInt32, term: UInt32, documents: [UInt32], weights: [Float],
        codec: ZstdCodec
    ) throws {
        let t = txn.tables
        let termKey = Schema.termKey(c, term)
        var stats = try txn.withValue(termKey, in: t.terms) { b throws -> Schema.TermStats in
            guard let b else { return Schema.TermStats(maxWeight: 0, postings: 0, blocks: 0) }
            return try Schema.parseTermRecord(b)
        }
        var start = 0
        while start < documents.count {
            let end = min(start + PostingBlock.targetCount, documents.count)
            let key = Schema.postingKey(c, term, documents[start])
            let block = try PostingBlock.encode(key: key, documents: documents[start..<end], weights: weights[start..<end], codec: codec)
            try txn.putAppending(block, forKey: key, in: t.postings)
            stats.blocks += 1
            start = end
        }
        stats.postings += UInt32(documents.count)
        stats.maxWeight = max(stats.maxWeight, weights.max() ?? 0)
        try txn.putAppending(Schema.termRecord(stats), forKey: termKey, in: t.terms)
    }

    /// The deleted (tombstoned, not yet compacted) documents of collection `c`.
    static func tombstones(_ txn: borrowing Transaction, collection c: UInt32) throws -> Set<UInt32> {
        var set = Set<UInt32>()
        try txn.scan(prefix: Schema.prefix(c), in: txn.tables.tombstones) { k, _ in
            if let d = Schema.keyPart(k, 1) { set.insert(d) }
            return true
        }
        return set
    }

    /// The internal id the id map holds for `idKey`, if any.
    static func documentId(_ txn: borrowing Transaction, idKey: [UInt8]) throws -> UInt32? {
        try txn.withValue(idKey, in: txn.tables.ids) { b throws -> UInt32? in
            guard let b else { return nil }
            var r = ByteReader(b)
            guard let d = r.u32le(), r.isAtEnd else { throw SparseDBError(.corrupt, "id map entry is not 4 bytes") }
            return d
        }
    }

    /// Marks a document deleted: its id is freed at once, its postings are skipped at query time
    /// and removed by compaction.
    static func tombstone(_ txn: borrowing Transaction, info: inout CollectionInfo, document: UInt32) throws {
        try txn.put([], forKey: Schema.tombstoneKey(info.id, document), in: txn.tables.tombstones)
        info.liveDocuments -= 1
        info.deletedDocuments += 1
    }

    /// Deletes documents by external id; returns the ids that were not found.
    static func delete(_ txn: borrowing Transaction, info: inout CollectionInfo, ids: [String]) throws -> [String] {
        var missing: [String] = []
        for id in ids {
            let key = Schema.idKey(info.id, id)
            guard let doc = try documentId(txn, idKey: key) else {
                missing.append(id)
                continue
            }
            try txn.delete(key, in: txn.tables.ids)
            try tombstone(txn, info: &info, document: doc)
        }
        return missing
    }

    /// Rewrites the collection's posting lists from the forward store of its live documents:
    /// removes deleted documents for good and packs every list into full blocks. Works in
    /// dimension ranges so memory stays bounded by `postingsPerPass`.
    static func compact(
        _ txn: borrowing Transaction, info: inout CollectionInfo, codec: ZstdCodec, postingsPerPass: Int = 32 << 20
    ) throws {
        let t = txn.tables
        let c = info.id
        let prefix = Schema.prefix(c)
        let deleted = try tombstones(txn, collection: c)
        // Plan dimension ranges from the current term statistics.
        var ranges: [(lo: UInt32, hi: UInt32)] = []
        var lo: UInt32 = 0
        var inRange = 0
        try txn.scan(prefix: prefix, in: t.terms) { k, v in
            let term = Schema.keyPart(k, 1) ?? 0
            let stats = try Schema.parseTermRecord(v)
            if inRange > 0 && inRange + Int(stats.postings) > postingsPerPass {
                ranges.append((lo, term))
                lo = term
                inRange = 0
            }
            inRange += Int(stats.postings)
            return true
        }
        ranges.append((lo, UInt32.max))
        try txn.deleteAll(prefix: prefix, in: t.postings)
        try txn.deleteAll(prefix: prefix, in: t.terms)
        var total: UInt64 = 0
        for range in ranges {
            var lists: [UInt32: PendingList] = [:]
            try txn.scan(prefix: prefix, in: t.forward) { k, v in
                guard let doc = Schema.keyPart(k, 1) else { throw SparseDBError(.corrupt, "forward key is truncated") }
                if deleted.contains(doc) { return true }
                let vec = try Schema.parseForwardRecord(v)
                for (d, w) in zip(vec.dimensions, vec.weights) where d >= range.lo && d < range.hi {
                    lists[d, default: PendingList()].append(doc, w)
                }
                return true
            }
            total += try writeLists(txn, collection: c, lists, codec: codec)
        }
        for doc in deleted {
            try txn.delete(Schema.documentKey(c, doc), in: t.documents)
            try txn.delete(Schema.forwardKey(c, doc), in: t.forward)
            try txn.delete(Schema.tombstoneKey(c, doc), in: t.tombstones)
        }
        info.deletedDocuments = 0
        info.postings = total
    }
}
