import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// Compact in-memory copies of a sparse field's forward rows, for the approximate search that
/// scores every document of a query's pruned lists (``QueryEngine/searchSparse``, `postingsPerTerm`).
///
/// A stored row is a checked, bit-packed LMDB record: reading one at random costs a B-tree
/// lookup, a checksum and a decode (about 1 µs at 1 M documents), a few thousand of them a
/// query. Here a row is n u16 dimensions followed by n binary16 weights (4 bytes an entry), in
/// chunks of 65,536 documents, and `sparsedb_cached_rows_scores` sums a row in a tenth of that.
/// The weights are rounded, so these scores only choose which documents are rescored exactly
/// from the stored rows; no score a search returns comes from here.
///
/// Why a cached row stays right while others write (format-spec.md §11): between two
/// compactions a document's forward row is never rewritten (an upsert gives the new version a
/// new internal id, a delete adds a tombstone), and a compaction bumps the field's epoch, which
/// is part of every key here. A chunk decoded when the collection had fewer documents covers
/// only those; a snapshot that has more rebuilds it.
///
/// Fields whose dimensions do not fit 16 bits are not cached (their documents are scored from
/// the stored rows). Chunks are kept while they fit in `budget` bytes (about 4 bytes a posting
/// of the field); documents of a chunk that does not fit are scored from the stored rows.
package final class ForwardCache: Sendable {
    /// Documents per chunk.
    static let chunkDocuments = 1 << 16

    struct Key: Hashable {
        var collection: UInt32
        var field: UInt32
        var epoch: UInt64
        var chunk: UInt32
    }

    /// One chunk's rows: row r (document `first + r`) is `storage[offsets[r] ..< offsets[r + 1]]`,
    /// in a mapping on 2 MiB pages (a query's rows are scattered over hundreds of megabytes: on
    /// 4 KiB pages nearly every row also missed the TLB).
    final class Chunk: @unchecked Sendable {
        /// Documents decoded: `first ..< first + covered` (a document without a row in the field
        /// has an empty one).
        let covered: Int
        let storage: UnsafePointer<UInt16>
        private let mappedBytes: Int
        let offsets: [UInt32]
        /// Rows with a weight past half precision's range (clamped): their scores are not bounded.
        let clampedRows: Set<UInt32>
        var bytes: Int { mappedBytes + offsets.count * 4 + 64 }

        init?(covered: Int, values: [UInt16], offsets: [UInt32], clampedRows: Set<UInt32>) {
            let bytes = max(values.count * 2, 2)
            guard let base = sparsedb_rows_map(bytes) else { return nil }
            let storage = base.bindMemory(to: UInt16.self, capacity: max(values.count, 1))
            values.withUnsafeBufferPointer { storage.update(from: $0.baseAddress!, count: values.count) }
            self.covered = covered
            self.storage = UnsafePointer(storage)
            self.mappedBytes = (bytes + (2 << 20) - 1) & ~((2 << 20) - 1)
            self.offsets = offsets
            self.clampedRows = clampedRows
        }

        deinit { sparsedb_rows_unmap(UnsafeMutableRawPointer(mutating: storage), mappedBytes) }
    }

    private struct State {
        var chunks: [Key: Chunk] = [:]
        var used = 0
        /// Chunks decoded and found too large for what was left of the budget.
        var refused: Set<Key> = []
    }

    package let budget: Int
    private let state = Locked(State())

    package init(budget: Int) { self.budget = max(0, budget) }

    /// Bytes the cached chunks take.
    package var bytesUsed: Int { state.withLock { $0.used } }

    /// Empties the cache.
    package func removeAll() { state.withLock { $0 = State() } }

    /// Scores of `documents` (increasing) for a query held densely in `query` (`field.dimensions`
    /// floats), from the rows rounded to half precision, each with a bound on its distance from
    /// the exact score: `scores[i]` for `documents[i]`, `errors[i]` ≥ |scores[i] − exact score|
    /// (infinite for a row with a weight clamped to half precision's range). NaN scores for
    /// documents whose chunk is not cached (the caller scores those from the stored rows).
    /// `queryMagnitude` is Σ |query weight|.
    package func scores(
        _ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, nextDocument: UInt32, query: UnsafePointer<Float>,
        queryMagnitude: Double, documents: [UInt32]
    ) throws -> (scores: [Float], errors: [Double]) {
        var scores = [Float](repeating: .nan, count: documents.count)
        var magnitudes = [Float](repeating: 0, count: documents.count)
        var errors = [Double](repeating: .infinity, count: documents.count)
        guard field.dimensions <= 1 << 16, budget > 0 else { return (scores, errors) }
        var local = [UInt32](repeating: 0, count: min(documents.count, Self.chunkDocuments))
        var start = 0
        while start < documents.count {
            let chunkIndex = documents[start] >> 16
            var end = start
            while end < documents.count && documents[end] >> 16 == chunkIndex { end += 1 }
            let first = chunkIndex << 16
            let needed = Int(min(UInt64(nextDocument) - UInt64(first), UInt64(Self.chunkDocuments)))
            if let chunk = try chunk(txn, collection: c, field: field, nextDocument: nextDocument, index: chunkIndex, covering: needed) {
                for i in start..<end { local[i - start] = documents[i] - first }
                chunk.offsets.withUnsafeBufferPointer { o in
                    local.withUnsafeBufferPointer { l in
                        scores.withUnsafeMutableBufferPointer { out in
                            magnitudes.withUnsafeMutableBufferPointer { m in
                                sparsedb_cached_rows_scores(
                                    query, chunk.storage, o.baseAddress, l.baseAddress, end - start, out.baseAddress! + start, m.baseAddress! + start)
                            }
                        }
                    }
                }
                for i in start..<end {
                    let r = Int(local[i - start])
                    // A document found in the posting lists has a row with entries.
                    guard chunk.offsets[r + 1] > chunk.offsets[r] else {
                        throw SparseDBError(.corrupt, "document \(documents[i]) has postings but no forward row in field \(field.id)")
                    }
                    if chunk.clampedRows.contains(UInt32(r)) { continue }
                    let n = Double(chunk.offsets[r + 1] - chunk.offsets[r]) / 2
                    // f32 sums of n products: within γ = n·2⁻²⁴ / (1 − n·2⁻²⁴) of Σ|products|,
                    // which is at most the computed magnitude / (1 − γ); each weight rounded to
                    // half precision within 2⁻¹¹ of itself (so Σ|query · weight| ≤ that sum ·
                    // (1 + 2⁻¹⁰)), or within 2⁻²⁵ below its normal range.
                    let g = n * 0x1p-24 / (1 - n * 0x1p-24)
                    let sum = Double(magnitudes[i]) / (1 - g)
                    errors[i] = (g + 0x1p-11 * (1 + 0x1p-10)) * sum + 0x1p-25 * queryMagnitude
                }
            }
            start = end
        }
        return (scores, errors)
    }

    /// The chunk of `index` covering at least `covering` documents: cached, or decoded from the
    /// stored rows and cached when it fits what is left of the budget; nil when it does not.
    ///
    /// Nothing is evicted to make room (but chunks of the field's older epochs, which no
    /// snapshot after a compaction reads): when a field's rows outgrow the budget, queries on the
    /// rest score from the stored rows, rather than decoding 65,536 rows to score a few of them
    /// and evicting another chunk the next query needs. A dropped collection's chunks stay until
    /// ``removeAll()`` (`Database.dropCaches()`). The last chunk is decoded again, whole, by the
    /// first query that sees more documents than it covers.
    private func chunk(
        _ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, nextDocument: UInt32, index: UInt32, covering: Int
    ) throws -> Chunk? {
        let key = Key(collection: c, field: field.id, epoch: field.epoch, chunk: index)
        // Estimated from the field's mean row (4 bytes an entry) before anything is decoded.
        // A chunk once decoded and refused is not decoded again until room is freed.
        let meanEntries = Double(field.postings) / Double(max(1, nextDocument))
        let estimate = Int(meanEntries * 4 * Double(covering)) + covering * 4
        let known = state.withLock { s -> (hit: Chunk?, fits: Bool) in
            // Chunks of the field's older epochs: no snapshot after a compaction reads them.
            for old in s.chunks.keys where old.collection == c && old.field == field.id && old.epoch < field.epoch {
                s.used -= s.chunks.removeValue(forKey: old)!.bytes
                s.refused = []
            }
            let hit = s.chunks[key]
            return (hit, !s.refused.contains(key) && estimate - (hit?.bytes ?? 0) <= budget - s.used)
        }
        if let hit = known.hit, hit.covered >= covering { return hit }
        guard known.fits else { return nil }
        guard let chunk = try Self.decode(txn, collection: c, field: field, first: index << 16, count: covering) else {
            // Past 32-bit offsets, or no memory to map: not tried again until room is freed.
            state.withLock { _ = $0.refused.insert(key) }
            return nil
        }
        return state.withLock { s -> Chunk? in
            if let newer = s.chunks[key], newer.covered >= covering { return newer }
            let replaced = s.chunks[key]?.bytes ?? 0
            guard chunk.bytes - replaced <= budget - s.used else {
                s.refused.insert(key)
                return nil
            }
            s.chunks[key] = chunk
            s.used += chunk.bytes - replaced
            return chunk
        }
    }

    /// Decodes documents `first ..< first + count` of the field's stored rows (checksums checked;
    /// dimensions checked below the field's), absent rows as empty ones.
    static func decode(_ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, first: UInt32, count: Int) throws -> Chunk? {
        var storage: [UInt16] = []
        var offsets = [UInt32](repeating: 0, count: count + 1)
        var clampedRows: Set<UInt32> = []
        var next = 0  // rows written: documents first ..< first + next
        var clamped: [Float] = []
        var tooLarge = false
        try ForwardRows.scan(txn, collection: c, field: field.id, from: first, layout: try ForwardRows.layout(txn)) { doc, k, v in
            let r = Int(doc &- first)
            guard doc >= first, r < count else { return false }
            while next < r {
                offsets[next + 1] = UInt32(storage.count)
                next += 1
            }
            let row = try Records.parseForwardRow(key: k, v, dimensions: field.dimensions)
            for d in row.dimensions { storage.append(UInt16(truncatingIfNeeded: d)) }
            // Rounded to half precision (F16C where present); a weight past its range is clamped
            // to it (and the row's score left unbounded) rather than made an infinity.
            let start = storage.count
            storage.append(contentsOf: repeatElement(0, count: row.count))
            clamped.removeAll(keepingCapacity: true)
            for w in row.weights {
                if abs(w) > 65504 { clampedRows.insert(UInt32(r)) }
                clamped.append(max(-65504, min(65504, w)))
            }
            storage.withUnsafeMutableBufferPointer { out in
                clamped.withUnsafeBufferPointer { sparsedb_f32_to_f16($0.baseAddress, out.baseAddress! + start, $0.count) }
            }
            // Offsets are 32-bit: a chunk this large is not cached (its rows are read from the map).
            guard storage.count <= Int(UInt32.max) else {
                tooLarge = true
                return false
            }
            offsets[r + 1] = UInt32(storage.count)
            next = r + 1
            return true
        }
        if tooLarge { return nil }
        while next < count {
            offsets[next + 1] = UInt32(storage.count)
            next += 1
        }
        return Chunk(covered: count, values: storage, offsets: offsets, clampedRows: clampedRows)
    }
}
