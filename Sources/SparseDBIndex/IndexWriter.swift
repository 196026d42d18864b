import SparseDBCore
import SparseDBStorage

/// The value of one vector field of a document.
package enum FieldValue: Sendable, Equatable {
    case sparse(SparseVector)
    case dense([Float])
}

/// A document as the writer receives it: external id, payload, and a value per field it carries.
package struct IndexDocument: Sendable {
    package var id: String
    package var payload: [UInt8]?
    /// (field id, value), at most one per field.
    package var fields: [(field: UInt32, value: FieldValue)]
    /// (attribute id, value), at most one per attribute.
    package var attributes: [(id: UInt32, value: AttributeValue)]

    package init(id: String, payload: [UInt8]?, fields: [(field: UInt32, value: FieldValue)], attributes: [(id: UInt32, value: AttributeValue)] = []) {
        self.id = id
        self.payload = payload
        self.fields = fields
        self.attributes = attributes
    }
}

/// A set of internal document ids as a bitmap: the deleted documents of a snapshot (and, later,
/// the documents a filter admits). Membership is one load and a mask, cheap enough for the
/// per-posting paths of the traversals.
///
/// `public` with an `@inlinable` membership test, not `package`: Swift 6.3 does not inline
/// `@inlinable package` code across modules. This target is not a product, so nothing outside
/// this package can import it.
public struct DocumentBitmap: Sendable {
    @usableFromInline var words: [UInt64]
    public private(set) var count = 0

    public init(capacity: UInt32 = 0) { words = [UInt64](repeating: 0, count: (Int(capacity) + 63) / 64) }

    public mutating func insert(_ doc: UInt32) {
        let w = Int(doc >> 6)
        if w >= words.count { words.append(contentsOf: repeatElement(0, count: w - words.count + 1)) }
        let bit = UInt64(1) << UInt64(doc & 63)
        if words[w] & bit == 0 {
            words[w] |= bit
            count += 1
        }
    }

    @inlinable
    public func contains(_ doc: UInt32) -> Bool {
        let w = Int(doc >> 6)
        return w < words.count && words[w] & (UInt64(1) << UInt64(doc & 63)) != 0
    }

    /// Word `w` of the set: bit `i` stands for document `64·w + i` (0 past the last stored word).
    @inlinable
    public func word(_ w: Int) -> UInt64 { w < words.count ? words[w] : 0 }

    public var isEmpty: Bool { count == 0 }

    /// Documents in both sets.
    public mutating func formIntersection(_ other: DocumentBitmap) {
        if words.count > other.words.count { words.removeLast(words.count - other.words.count) }
        for i in words.indices { words[i] &= other.words[i] }
        recount()
    }

    /// Documents in either set.
    public mutating func formUnion(_ other: DocumentBitmap) {
        if words.count < other.words.count { words.append(contentsOf: repeatElement(0, count: other.words.count - words.count)) }
        for i in other.words.indices { words[i] |= other.words[i] }
        recount()
    }

    /// Documents of `0..<limit` not in this set.
    public func complement(below limit: UInt32) -> DocumentBitmap {
        var out = DocumentBitmap(capacity: limit)
        for i in out.words.indices {
            var word = ~(i < words.count ? words[i] : 0)
            let first = UInt32(i * 64)
            if first + 64 > limit { word &= limit > first ? (UInt64(1) << UInt64(limit - first)) &- 1 : 0 }
            out.words[i] = word
        }
        out.recount()
        return out
    }

    /// Whether any document of `lo ..< hi` is in the set.
    @inlinable
    public func intersects(_ lo: UInt32, _ hi: UInt32) -> Bool {
        var d = lo
        while d < hi {
            let w = Int(d >> 6)
            if w >= words.count { return false }
            if d & 63 == 0 && hi - d >= 64 {
                if words[w] != 0 { return true }
                d += 64
            } else {
                if words[w] & (UInt64(1) << UInt64(d & 63)) != 0 { return true }
                d += 1
            }
        }
        return false
    }

    private mutating func recount() { count = words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The smallest member ≥ `doc`, or `UInt32.max` when there is none.
    @inlinable
    public func firstMember(from doc: UInt32) -> UInt32 {
        var w = Int(doc >> 6)
        guard w < words.count else { return UInt32.max }
        var word = words[w] & (UInt64.max << UInt64(doc & 63))
        while word == 0 {
            w += 1
            guard w < words.count else { return UInt32.max }
            word = words[w]
        }
        return UInt32(w * 64 + word.trailingZeroBitCount)
    }

    /// The members in increasing order.
    public var members: [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(count)
        for (i, var word) in words.enumerated() {
            while word != 0 {
                let b = word.trailingZeroBitCount
                out.append(UInt32(i * 64 + b))
                word &= word - 1
            }
        }
        return out
    }
}

/// Mutations of one collection inside a write transaction. The caller owns the transaction, so a
/// throw anywhere here aborts the whole batch and nothing of it is written.
package enum IndexWriter {
    /// Checks a document against the collection's schema; the messages name the document.
    package static func validate(_ doc: IndexDocument, in record: CollectionRecord) throws {
        let idBytes = doc.id.utf8.count
        if idBytes == 0 { throw SparseDBError(.invalidInput, "document id is empty") }
        if idBytes > Keys.maxExternalIdBytes {
            throw SparseDBError(
                .invalidInput, "document id '\(doc.id.prefix(40))…' is \(idBytes) bytes; at most \(Keys.maxExternalIdBytes)")
        }
        if let payload = doc.payload, payload.count > 64 << 20 {
            throw SparseDBError(.invalidInput, "document '\(doc.id)': payload of \(payload.count) bytes exceeds 64 MiB")
        }
        var seenAttributes = Set<UInt32>()
        for (aid, value) in doc.attributes {
            guard let attribute = record.attributes.first(where: { $0.id == aid }) else {
                throw SparseDBError(.invalidInput, "document '\(doc.id)': collection '\(record.name)' has no attribute #\(aid)")
            }
            guard seenAttributes.insert(aid).inserted else {
                throw SparseDBError(.invalidInput, "document '\(doc.id)': attribute '\(attribute.name)' given twice")
            }
            try Attributes.check(value, attribute: attribute, document: doc.id)
        }
        var seen = Set<UInt32>()
        for (fid, value) in doc.fields {
            guard let field = record.fields.first(where: { $0.id == fid }) else {
                throw SparseDBError(.invalidInput, "document '\(doc.id)': collection '\(record.name)' has no field #\(fid)")
            }
            guard seen.insert(fid).inserted else {
                throw SparseDBError(.invalidInput, "document '\(doc.id)': field '\(field.name)' given twice")
            }
            switch (try field.knownKind(collection: record.name), value) {
            case (.sparse, .sparse(let v)), (.csr, .sparse(let v)):
                if let last = v.dimensions.last, last >= field.dimensions {
                    throw SparseDBError(
                        .invalidInput,
                        "document '\(doc.id)': dimension \(last) is out of range (field '\(field.name)' of '\(record.name)' has \(field.dimensions) dimensions)")
                }
                if field.kind == FieldKind.csr.rawValue { _ = try FlatStore.csrRow(v, field: field, document: doc.id) }
            case (.dense, .dense(let v)):
                _ = try FlatStore.denseRow(v, field: field, document: doc.id)
            case (let kind, _):
                throw SparseDBError(.invalidInput, "document '\(doc.id)': field '\(field.name)' is \(kind.rawValue) and does not take this vector")
            }
        }
    }

    /// Inserts `documents`, replacing any stored document with the same id. The batch must not
    /// hold an id twice (a duplicate is refused, whatever the batch size, so that which version
    /// wins never depends on how the input was cut into batches).
    package static func upsert(
        _ txn: borrowing Transaction, record: inout CollectionRecord, documents: [IndexDocument], codec: ZstdCodec
    ) throws {
        let c = record.id
        var seen = Set<String>()
        seen.reserveCapacity(documents.count)
        for doc in documents {
            try validate(doc, in: record)
            guard seen.insert(doc.id).inserted else {
                throw SparseDBError(.invalidInput, "document id '\(doc.id)' appears more than once in one batch")
            }
        }
        let rowEncoding = try Catalog.forwardRowEncoding(txn)
        let rowLayout = try ForwardRows.layout(txn)
        var rows: [UInt32: [(document: UInt32, sealed: [UInt8])]] = [:]  // field → new rows, in document order
        var pending: [UInt32: PendingPostings] = [:]  // field → postings in arrival order
        var flat: [UInt32: FlatStore.PendingRows] = [:]  // field → rows
        var attributes: [UInt32: [(doc: UInt32, value: AttributeValue)]] = [:]  // attribute → values
        for doc in documents {
            let idKey = Keys.externalId(c, doc.id)
            if let old = try documentId(txn, idKey: idKey) {
                try checkDocument(txn, collection: c, document: old, hasId: doc.id)
                try tombstone(txn, record: &record, document: old)
            }
            guard record.nextDocument < UInt32.max - 1 else {
                throw SparseDBError(.invalidInput, "collection '\(record.name)' has used all 2^32 document ids")
            }
            let docId = record.nextDocument
            record.nextDocument += 1
            try txn.put(Records.externalId(key: idKey, document: docId), forKey: idKey, in: txn.table(.externalId))
            let docKey = Keys.document(c, docId)
            try txn.putAppending(
                Records.document(key: docKey, externalId: doc.id, payload: doc.payload, attributes: doc.attributes), forKey: docKey, in: txn.table(.document))
            for (aid, value) in doc.attributes { attributes[aid, default: []].append((docId, value)) }
            for (fid, value) in doc.fields {
                guard let field = record.fields.first(where: { $0.id == fid }) else { continue }
                if field.isFlat {
                    // Appended in place (`default:` subscript): copying the rows out and back
                    // copied the whole batch once per document, quadratic in the batch size.
                    try FlatStore.addRow(value, field: field, document: docId, externalId: doc.id, to: &flat[fid, default: FlatStore.PendingRows()])
                    var updated = field
                    updated.rows = (updated.rows ?? 0) + 1
                    record.updateField(updated)
                    continue
                }
                guard case .sparse(var vector) = value else { continue }
                if field.kind == FieldKind.csr.rawValue, let k = field.activeDimensions, vector.count > k { vector = vector.keepingLargest(k) }
                let v = vector.droppingZeros()
                rows[fid, default: []].append((docId, Records.forwardRow(key: Keys.forwardRow(c, fid, docId), v, encoding: rowEncoding)))
                // Mutated in place: copying the field's postings out and back would copy them
                // all once per document (quadratic in the batch size).
                pending[fid, default: PendingPostings()].append(document: docId, v)
                if var field = record.fields.first(where: { $0.id == fid }) {
                    field.postings += UInt64(v.count)
                    record.updateField(field)
                }
            }
            record.liveDocuments += 1
        }
        for fid in rows.keys.sorted() {
            try ForwardRows.append(txn, collection: c, field: fid, rows: rows.removeValue(forKey: fid)!, layout: rowLayout)
        }
        for fid in pending.keys.sorted() {
            try writeGrouped(txn, collection: c, field: fid, pending.removeValue(forKey: fid)!, codec: codec)
        }
        for fid in flat.keys.sorted() {
            guard let field = record.fields.first(where: { $0.id == fid }) else { continue }
            try FlatStore.append(txn, collection: c, field: field, rows: flat[fid]!)
        }
        if !attributes.isEmpty { try Attributes.add(txn, collection: c, record: record, added: attributes) }
    }

    /// Postings of one term gathered in memory before they are written as blocks.
    package struct PendingList {
        package var documents: [UInt32] = []
        package var weights: [Float] = []

        package init() {}

        package mutating func append(_ document: UInt32, _ weight: Float) {
            documents.append(document)
            weights.append(weight)
        }
    }

    /// One field's postings of a batch in arrival order (so documents increase within every
    /// term), grouped by term only when written. Appending a document is three bulk copies; a
    /// list per term made every posting a dictionary lookup and an append to another term's
    /// arrays, each a likely cache miss (about half of an ingest's time at 1 M documents).
    package struct PendingPostings {
        var terms: [UInt32] = []
        var documents: [UInt32] = []
        var weights: [Float] = []

        package init() {}

        package mutating func append(document: UInt32, _ v: SparseVector) {
            terms.append(contentsOf: v.dimensions)
            weights.append(contentsOf: v.weights)
            documents.append(contentsOf: repeatElement(document, count: v.dimensions.count))
        }
    }

    /// Writes a batch's postings of one field term by term, in term order: a stable radix sort
    /// by term (16 bits a pass; one pass when every term is below 65,536, as vocabularies are)
    /// keeps each term's documents in increasing order. Returns the number of postings written.
    @discardableResult
    package static func writeGrouped(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, _ postings: PendingPostings, codec: ZstdCodec
    ) throws -> UInt64 {
        var p = postings
        let n = p.terms.count
        guard n > 0 else { return 0 }
        let largest = p.terms.max() ?? 0
        var sorted = PendingPostings()
        sorted.terms = [UInt32](repeating: 0, count: n)
        sorted.documents = [UInt32](repeating: 0, count: n)
        sorted.weights = [Float](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 65537)
        var shift: UInt32 = 0
        repeat {
            counts.withUnsafeMutableBufferPointer { count in
                for i in 0..<count.count { count[i] = 0 }
                p.terms.withUnsafeBufferPointer { t in
                    for term in t { count[Int((term &>> shift) & 0xFFFF) &+ 1] &+= 1 }
                }
                for b in 0..<65536 { count[b &+ 1] &+= count[b] }
                p.terms.withUnsafeBufferPointer { t in
                    p.documents.withUnsafeBufferPointer { d in
                        p.weights.withUnsafeBufferPointer { w in
                            sorted.terms.withUnsafeMutableBufferPointer { st in
                                sorted.documents.withUnsafeMutableBufferPointer { sd in
                                    sorted.weights.withUnsafeMutableBufferPointer { sw in
                                        for i in 0..<n {
                                            let bucket = Int((t[i] &>> shift) & 0xFFFF)
                                            let to = count[bucket]
                                            count[bucket] = to &+ 1
                                            st[to] = t[i]
                                            sd[to] = d[i]
                                            sw[to] = w[i]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            swap(&p, &sorted)
            shift += 16
        } while shift < 32 && largest &>> shift != 0
        var start = 0
        while start < n {
            let term = p.terms[start]
            var end = start + 1
            while end < n && p.terms[end] == term { end += 1 }
            try appendPostings(
                txn, collection: c, field: f, term: term, documents: p.documents[start..<end], weights: p.weights[start..<end], codec: codec)
            start = end
        }
        return UInt64(n)
    }

    /// Writes gathered lists in term order; returns the number of postings written.
    @discardableResult
    package static func writeLists(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, _ lists: [UInt32: PendingList], codec: ZstdCodec
    ) throws -> UInt64 {
        var total: UInt64 = 0
        for term in lists.keys.sorted() {
            let list = lists[term]!
            total += UInt64(list.documents.count)
            try appendPostings(txn, collection: c, field: f, term: term, documents: list.documents[...], weights: list.weights[...], codec: codec)
        }
        return total
    }

    /// Writes new blocks for `term`. New document ids are larger than every stored one, so new
    /// blocks go after the term's existing blocks; a partially filled last block is left as it
    /// is (compaction re-packs). Stored blocks are therefore never rewritten between two
    /// compactions, which is what lets caches of decoded blocks survive ingest (format-spec.md §11).
    package static func appendPostings(
        _ txn: borrowing Transaction, collection c: UInt32, field f: UInt32, term: UInt32, documents: ArraySlice<UInt32>,
        weights: ArraySlice<Float>, codec: ZstdCodec
    ) throws {
        let termKey = Keys.term(c, f, term)
        var stats = try termKey.withUnsafeBytes { k in
            try txn.withValue(termKey, in: txn.table(.term)) { b throws -> Records.TermStats in
                guard let b else { return Records.TermStats(maxWeight: 0, postings: 0, blocks: 0) }
                return try Records.parseTerm(key: k, b)
            }
        }
        // Slices keep their parent's indices: positions are counted from startIndex.
        let first = documents.startIndex
        let firstWeight = weights.startIndex
        var start = 0
        while start < documents.count {
            let end = min(start + PostingBlock.targetCount, documents.count)
            let key = Keys.postingBlock(c, f, term, documents[first + start])
            let block = try PostingBlock.encode(
                key: key, documents: documents[(first + start)..<(first + end)], weights: weights[(firstWeight + start)..<(firstWeight + end)], codec: codec)
            try txn.putAppending(block, forKey: key, in: txn.table(.postingBlock))
            stats.blocks += 1
            start = end
        }
        stats.postings += UInt32(documents.count)
        stats.maxWeight = max(stats.maxWeight, weights.max() ?? 0)
        try txn.putAppending(Records.term(key: termKey, stats), forKey: termKey, in: txn.table(.term))
    }

    /// The deleted (tombstoned, not yet compacted) documents of collection `c`.
    package static func tombstones(_ txn: borrowing Transaction, collection c: UInt32, capacity: UInt32 = 0) throws -> DocumentBitmap {
        var set = DocumentBitmap(capacity: capacity)
        try txn.scan(prefix: Keys.collection(c), in: txn.table(.tombstone)) { k, v in
            guard k.count == 8, v.isEmpty, let d = Keys.part(k, 1) else { throw SparseDBError(.corrupt, "tombstone record is malformed") }
            set.insert(d)
            return true
        }
        return set
    }

    /// The internal id the id map holds for `idKey`, if any (checksum checked).
    package static func documentId(_ txn: borrowing Transaction, idKey: [UInt8]) throws -> UInt32? {
        try idKey.withUnsafeBytes { k in
            try txn.withValue(idKey, in: txn.table(.externalId)) { b throws -> UInt32? in
                guard let b else { return nil }
                return try Records.parseExternalId(key: k, b)
            }
        }
    }

    /// Cross-checks an id-map entry before acting on it: the document it points to must exist,
    /// be live and carry the same external id. An entry that points at another document (a
    /// damaged or misplaced record) would otherwise make a delete remove the wrong document.
    package static func checkDocument(_ txn: borrowing Transaction, collection c: UInt32, document: UInt32, hasId id: String) throws {
        let key = Keys.document(c, document)
        let stored = try key.withUnsafeBytes { k in
            try txn.withValue(key, in: txn.table(.document)) { b throws -> String? in
                try b.map { try Records.parseDocument(key: k, $0, includePayload: false).id }
            }
        }
        guard stored == id else {
            throw SparseDBError(
                .corrupt,
                "id map entry '\(id)' points to document \(document), which \(stored.map { "holds id '\($0)'" } ?? "does not exist"); the database is damaged (run sparsedb verify)")
        }
        if try txn.value(Keys.tombstone(c, document), in: txn.table(.tombstone)) != nil {
            throw SparseDBError(.corrupt, "id map entry '\(id)' points to deleted document \(document); the database is damaged (run sparsedb verify)")
        }
    }

    /// Marks a document deleted: its postings are skipped at query time and removed by compaction.
    package static func tombstone(_ txn: borrowing Transaction, record: inout CollectionRecord, document: UInt32) throws {
        try txn.put([], forKey: Keys.tombstone(record.id, document), in: txn.table(.tombstone))
        record.liveDocuments -= 1
        record.deletedDocuments += 1
    }

    /// Deletes documents by external id; returns the ids that were not found.
    package static func delete(_ txn: borrowing Transaction, record: inout CollectionRecord, ids: [String]) throws -> [String] {
        var missing: [String] = []
        for id in ids {
            let key = Keys.externalId(record.id, id)
            guard let doc = try documentId(txn, idKey: key) else {
                missing.append(id)
                continue
            }
            try checkDocument(txn, collection: record.id, document: doc, hasId: id)
            try txn.delete(key, in: txn.table(.externalId))
            try tombstone(txn, record: &record, document: doc)
        }
        return missing
    }

    /// Rewrites every sparse field's posting lists from the forward rows of the live documents:
    /// removes deleted documents for good and packs every list into full blocks. Works in
    /// dimension ranges so memory stays bounded by `postingsPerPass`. Bumps each field's epoch.
    package static func compact(
        _ txn: borrowing Transaction, record: inout CollectionRecord, codec: ZstdCodec, postingsPerPass: Int = 32 << 20
    ) throws {
        let c = record.id
        let deleted = try tombstones(txn, collection: c, capacity: record.nextDocument)
        let rowLayout = try ForwardRows.layout(txn)
        for var field in record.fields {
            _ = try field.knownKind(collection: record.name)
            if field.isInverted {
                // Grouped rows are rewritten as full groups without the deleted documents' rows
                // (single rows are deleted one by one below).
                if rowLayout == .grouped { try ForwardRows.regroup(txn, collection: c, field: field, from: .grouped, dropping: deleted) }
                field.postings = try rebuildPostings(txn, collection: c, field: field, deleted: deleted, codec: codec, postingsPerPass: postingsPerPass)
            } else {
                field.rows = try FlatStore.compact(txn, collection: c, field: field, deleted: deleted)
            }
            field.epoch &+= 1
            record.updateField(field)
        }
        if !record.attributes.isEmpty && !deleted.isEmpty { try Attributes.rebuild(txn, record: record, deleted: deleted) }
        for doc in deleted.members {
            try txn.delete(Keys.document(c, doc), in: txn.table(.document))
            if rowLayout == .single {
                for field in record.fields where field.isInverted { try txn.delete(Keys.forwardRow(c, field.id, doc), in: txn.table(.forwardRow)) }
            }
            try txn.delete(Keys.tombstone(c, doc), in: txn.table(.tombstone))
        }
        record.deletedDocuments = 0
    }

    private static func rebuildPostings(
        _ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, deleted: DocumentBitmap, codec: ZstdCodec, postingsPerPass: Int
    ) throws -> UInt64 {
        let rowLayout = try ForwardRows.layout(txn)
        let f = field.id
        let prefix = Keys.field(c, f)
        // Plan dimension ranges from the current term statistics.
        var ranges: [(lo: UInt32, hi: UInt32)] = []
        var lo: UInt32 = 0
        var inRange = 0
        try txn.scan(prefix: prefix, in: txn.table(.term)) { k, v in
            guard let term = Keys.part(k, 2) else { throw SparseDBError(.corrupt, "term key is truncated") }
            let stats = try Records.parseTerm(key: k, v)
            if inRange > 0 && inRange + Int(stats.postings) > postingsPerPass {
                ranges.append((lo, term))
                lo = term
                inRange = 0
            }
            inRange += Int(stats.postings)
            return true
        }
        ranges.append((lo, UInt32.max))
        try txn.deleteAll(prefix: prefix, in: txn.table(.postingBlock))
        try txn.deleteAll(prefix: prefix, in: txn.table(.term))
        var total: UInt64 = 0
        for range in ranges {
            var lists: [UInt32: PendingList] = [:]
            try ForwardRows.scan(txn, collection: c, field: f, layout: rowLayout) { doc, k, v in
                if deleted.contains(doc) { return true }
                let vec = try Records.parseForwardRow(key: k, v, dimensions: field.dimensions)
                for (d, w) in zip(vec.dimensions, vec.weights) where d >= range.lo && d < range.hi {
                    lists[d, default: PendingList()].append(doc, w)
                }
                return true
            }
            total += try writeLists(txn, collection: c, field: f, lists, codec: codec)
        }
        return total
    }
}
