import COpenBLAS
import CSparseDBKernels
import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// A flat chunk decoded for scanning: dense rows contiguous and aligned, with each row's
/// Euclidean norm (dense) for the rounding bound of the f32 scores. Immutable; shared by
/// concurrent queries.
///
/// Dense rows are kept in half precision where that serves: an f16 field's rows as stored, and
/// a chunk of an f32 field that the flat cache keeps (for a field whose rows fit the cache) as a
/// half-precision copy with each row's distance to the stored row (`residuals`), so a scan
/// streams half the bytes. A scan of the copy widens each row's score interval by what that
/// distance can change its score (‖query‖ · residual; for a truncated cosine, see `scoreRows`),
/// and the documents that can still reach the top-k are rescored from the stored f32 rows
/// (`rescoresFromStore`), so results stay exact. Other f32 chunks are kept as f32.
package final class ScanChunk: Sendable {
    /// The decoded chunk. Its `values` (and a CSR chunk's `dimensions`) are empty: dense rows
    /// are in `rowSlab` (see `withRows`, `withHalfRows`, `withRow`), CSR codes too (`withCodes`).
    let chunk: FlatStore.Chunk
    /// The chunk's stored checksum: a rescoring that reads the stored rows checks that it reads
    /// the record this chunk was decoded from.
    let storedChecksum: UInt32
    /// Dense: ≥ ‖row‖ of each row as scanned (the copy, for a half-precision copy), over all its values.
    let norms: [Float]
    /// Dense: the largest of `norms` (0 for CSR), for the test that passes over a whole chunk.
    let maxNorm: Float
    /// Dense: the rows in memory are binary16 bit patterns (an f16 field, or a copy), else f32
    /// (false for CSR).
    package let isHalf: Bool
    /// A half-precision copy: ≥ ‖stored row − copy‖ of each row (empty otherwise).
    package let residuals: [Float]
    /// Dense: the rows in memory are a half-precision copy of stored f32 rows (they have
    /// residuals); exact scores come from the stored rows (``QueryEngine`` reads them from the
    /// transaction).
    package var rescoresFromStore: Bool { !residuals.isEmpty }
    /// The largest of `residuals` (0 when empty).
    let maxResidual: Float
    /// Where the rows are, `chunk.count × chunk.width` values at byte `rowOffset` (CSR: the
    /// values, then as many u16 dimensions).
    private let rowSlab: RowSlab?
    private let rowOffset: Int
    let bytes: Int

    /// Decodes `chunk` (stored with checksum `checksum`) for scanning; the rows of a dense chunk
    /// that `cache` keeps are copied to its row space (an f32 chunk's as a half-precision copy
    /// when `halfCopy` and its values allow), others to a plain allocation.
    package init(_ chunk: FlatStore.Chunk, checksum: UInt32, cache: FlatCache?, halfCopy: Bool = true) {
        var chunk = chunk
        storedChecksum = checksum
        if chunk.layout.isCSR {
            // The codes' values (f32) then their dimensions (u16), in the cache's row space like
            // dense rows: chunk after chunk in one stream on huge pages, not two small arrays a
            // chunk (a field of 1 M 16-slot codes is 3,900 chunks).
            let slots = chunk.count * chunk.width
            bytes = slots * 6 + chunk.documents.count * 4 + 128
            let space = cache?.rowSpace(bytes: slots * 6, keeping: bytes) ?? (RowSlab(heapBytes: slots * 6), 0)
            let at = space.slab.base + space.offset
            chunk.values.withUnsafeBufferPointer { at.bindMemory(to: Float.self, capacity: slots).update(from: $0.baseAddress!, count: slots) }
            chunk.dimensions.withUnsafeBufferPointer {
                (at + slots * 4).bindMemory(to: UInt16.self, capacity: slots).update(from: $0.baseAddress!, count: slots)
            }
            chunk.values = []
            chunk.dimensions = []
            norms = []
            maxNorm = 0
            isHalf = false
            residuals = []
            maxResidual = 0
            rowSlab = space.slab
            rowOffset = space.offset
            self.chunk = chunk
            return
        }
        let width = chunk.width
        let values = chunk.count * width
        func norm(_ row: UnsafePointer<Float>) -> Float {
            var s: Float = 0
            for j in 0..<width { s += row[j] * row[j] }
            return s.squareRoot() * (1 + 1e-6)
        }
        var norms: [Float] = []
        var residuals: [Float] = []
        var halves: [UInt16] = []
        if chunk.layout == .denseF16 {
            // As stored (the scan decodes with FlatStore.decode(keepingHalves:)).
            precondition(chunk.halves.count == values, "an f16 chunk for scanning is decoded keeping its halves")
            halves = chunk.halves
            var row = [Float](repeating: 0, count: width)
            norms = (0..<chunk.count).map { r in
                row.withUnsafeMutableBufferPointer { out in
                    halves.withUnsafeBufferPointer { sparsedb_f16_to_f32($0.baseAddress! + r * width, out.baseAddress, width) }
                    return norm(out.baseAddress!)
                }
            }
        } else if halfCopy, let cache, cache.keeps(bytes: Self.bytes(rows: chunk.count, width: width, half: true)) {
            // A copy only for a chunk the cache keeps: made once, read by every later query. (A
            // chunk decoded for one query is scanned once; narrowing it first would cost more.)
            var copy = [UInt16](repeating: 0, count: values)
            var copyNorms = [Float](repeating: 0, count: chunk.count)
            var copyResiduals = [Float](repeating: 0, count: chunk.count)
            let fits = chunk.values.withUnsafeBufferPointer { v in
                copy.withUnsafeMutableBufferPointer { h in
                    copyNorms.withUnsafeMutableBufferPointer { n in
                        copyResiduals.withUnsafeMutableBufferPointer { e in
                            sparsedb_half_copy(v.baseAddress, chunk.count, width, h.baseAddress, n.baseAddress, e.baseAddress) != 0
                        }
                    }
                }
            }
            if fits {
                halves = copy
                norms = copyNorms
                residuals = copyResiduals
            }
        }
        let half = !halves.isEmpty
        let rowBytes = values * (half ? 2 : 4)
        let space = cache?.rowSpace(bytes: rowBytes, keeping: Self.bytes(rows: chunk.count, width: width, half: half))
            ?? (RowSlab(heapBytes: rowBytes), 0)
        let at = space.slab.base + space.offset
        if half {
            halves.withUnsafeBufferPointer { h in at.bindMemory(to: UInt16.self, capacity: values).update(from: h.baseAddress!, count: values) }
        } else {
            chunk.values.withUnsafeBufferPointer { v in
                at.bindMemory(to: Float.self, capacity: values).update(from: v.baseAddress!, count: values)
                norms = (0..<chunk.count).map { r in norm(v.baseAddress! + r * width) }
            }
        }
        self.norms = norms
        maxNorm = norms.max() ?? 0
        isHalf = half
        self.residuals = residuals
        maxResidual = residuals.max() ?? 0
        rowSlab = space.slab
        rowOffset = space.offset
        bytes = Self.bytes(rows: chunk.count, width: width, half: half)
        chunk.values = []  // the copy in the slab is the one scanned (and rescored, unless rescoresFromStore)
        chunk.halves = []
        self.chunk = chunk
    }

    /// What a dense chunk of `rows` rows of `width` values counts against the flat cache's
    /// budget, its rows kept in half precision or f32.
    static func bytes(rows: Int, width: Int, half: Bool) -> Int { rows * width * (half ? 2 : 4) + rows * (half ? 12 : 8) + 128 }

    /// CSR: calls `body` with the codes' values and dimensions (`chunk.count × chunk.width` each,
    /// row after row; unused slots have value 0).
    func withCodes<R>(_ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<UInt16>) throws -> R) rethrows -> R {
        precondition(rowSlab != nil && chunk.layout.isCSR, "codes of a chunk that has none")
        return try withExtendedLifetime(rowSlab!) { slab in
            let slots = chunk.count * chunk.width
            let at = slab.base + rowOffset
            return try body(
                UnsafeBufferPointer(start: at.assumingMemoryBound(to: Float.self), count: slots),
                UnsafeBufferPointer(start: (at + slots * 4).assumingMemoryBound(to: UInt16.self), count: slots))
        }
    }

    /// Dense f32: calls `body` with the rows (`chunk.count × chunk.width` f32, row after row).
    func withRows<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(rowSlab != nil && !isHalf && !chunk.layout.isCSR, "f32 rows of a chunk that has none")
        return try withExtendedLifetime(rowSlab!) { slab in
            let start = (slab.base + rowOffset).assumingMemoryBound(to: Float.self)
            return try body(UnsafeBufferPointer(start: start, count: chunk.count * chunk.width))
        }
    }

    /// Dense f16: calls `body` with the rows (`chunk.count × chunk.width` binary16, row after row).
    func withHalfRows<R>(_ body: (UnsafeBufferPointer<UInt16>) throws -> R) rethrows -> R {
        precondition(rowSlab != nil && isHalf, "f16 rows of a chunk that has none")
        return try withExtendedLifetime(rowSlab!) { slab in
            let start = (slab.base + rowOffset).assumingMemoryBound(to: UInt16.self)
            return try body(UnsafeBufferPointer(start: start, count: chunk.count * chunk.width))
        }
    }

    /// Dense: calls `body` with the first `count` values of row `r` as f32 (in place for an f32
    /// chunk; widened, exactly, into `scratch` for an f16 one).
    func withRow<R>(_ r: Int, count: Int, scratch: inout [Float], _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(!rescoresFromStore, "a half-precision copy's rows are not the stored rows")
        let base = r * chunk.width
        guard isHalf else { return try withRows { try body(UnsafeBufferPointer(rebasing: $0[base..<base + count])) } }
        if scratch.count < count { scratch = [Float](repeating: 0, count: count) }
        withHalfRows { rows in scratch.withUnsafeMutableBufferPointer { sparsedb_f16_to_f32(rows.baseAddress! + base, $0.baseAddress, count) } }
        return try scratch.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<count])) }
    }
}

/// Memory that decoded dense rows and CSR codes are copied into: a mapping on 2 MiB huge pages
/// (`sparsedb_rows_map`) that the flat cache fills chunk after chunk, so a field's rows lie in
/// one stream in chunk order, or a plain allocation for a chunk that is not cached. Unmapped when
/// the last chunk in it goes.
///
/// `@unchecked Sendable`: the memory is written only by the ``ScanChunk`` initializer that
/// was handed a range (each range is handed out once, under the flat cache's lock) before that
/// chunk is shared, and only read after that.
final class RowSlab: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    private let mapped: Bool

    /// A mapping of `bytes` (rounded up to 2 MiB) on huge pages, or nil if mapping fails.
    init?(mappedBytes bytes: Int) {
        guard let base = sparsedb_rows_map(bytes) else { return nil }
        self.base = base
        capacity = bytes
        mapped = true
    }

    init(heapBytes bytes: Int) {
        base = .allocate(byteCount: max(bytes, 1), alignment: 64)
        capacity = bytes
        mapped = false
    }

    deinit {
        if mapped { sparsedb_rows_unmap(base, capacity) } else { base.deallocate() }
    }
}

/// Decoded flat chunks kept between queries, keyed by (collection, field, epoch, chunk, row
/// count, stored checksum): rows are only ever appended to a chunk between compactions, so a
/// chunk's row count and checksum identify its content (format-spec.md §11). Bounded by a byte
/// budget; oldest out first.
package final class FlatCache: Sendable {
    package struct Key: Hashable, Sendable {
        var collection: UInt32
        var field: UInt32
        var epoch: UInt64
        var chunk: UInt32
        var rows: UInt16
        var crc: UInt32
    }

    private struct FieldKey: Hashable {
        var collection: UInt32
        var field: UInt32
    }

    /// A field's whole chunk list as one snapshot saw it: valid for any snapshot of the same
    /// collection generation and field epoch (every write bumps the generation).
    private struct ChunkList {
        var epoch: UInt64
        var generation: UInt64
        var chunks: [ScanChunk]
    }

    private struct State {
        var entries: [Key: ScanChunk] = [:]
        var order: [Key] = []
        var head = 0
        var used = 0
        /// The latest chunk list per field, kept only while every chunk in it is cached, so that
        /// a query on an unchanged field skips the walk over the chunk keys (one LMDB step and
        /// one lookup per 256 rows: a millisecond per query at 1 M rows).
        var lists: [FieldKey: ChunkList] = [:]
        /// The mapping new rows (dense and CSR) go to, and how much of it is handed out.
        var slab: RowSlab?
        var slabUsed = 0
    }

    /// Bytes mapped at a time for decoded dense rows: a multiple of the 2 MiB huge page; only
    /// the pages rows are written to take memory.
    private static let slabBytes = 64 << 20

    package let budget: Int
    private let state = Locked(State())

    package init(budget: Int) { self.budget = budget }

    func chunk(_ key: Key) -> ScanChunk? {
        guard budget > 0 else { return nil }
        return state.withLock { $0.entries[key] }
    }

    /// Whether `insert` keeps a chunk of this many bytes.
    func keeps(bytes: Int) -> Bool { budget > 0 && bytes <= budget / 4 }

    /// Room for `rowBytes` of a dense chunk's rows, after the rows handed out before (so the
    /// chunks a scan decodes in order lie in one stream, and on huge pages), or nil for a chunk
    /// (of `keeping` bytes in all) this cache will not keep (a plain allocation serves those).
    /// (A mapping is released when the last chunk in it is evicted; eviction is oldest first,
    /// the order rows are handed out, so at most about one mapping's worth is held beyond the
    /// budget.)
    func rowSpace(bytes rowBytes: Int, keeping: Int) -> (slab: RowSlab, offset: Int)? {
        guard keeps(bytes: keeping) else { return nil }
        let size = (rowBytes + 63) & ~63  // each chunk's rows start on a cache line
        return state.withLock { s in
            if let slab = s.slab, s.slabUsed + size <= slab.capacity {
                defer { s.slabUsed += size }
                return (slab, s.slabUsed)
            }
            guard let slab = RowSlab(mappedBytes: max(Self.slabBytes, size)) else { return nil }
            s.slab = slab
            s.slabUsed = size
            return (slab, 0)
        }
    }

    func insert(_ chunk: ScanChunk, _ key: Key) {
        guard keeps(bytes: chunk.bytes) else { return }
        state.withLock { s in
            guard s.entries[key] == nil else { return }
            s.entries[key] = chunk
            s.order.append(key)
            s.used += chunk.bytes
            while s.used > budget && s.head < s.order.count {
                let evicted = s.order[s.head]
                if let e = s.entries.removeValue(forKey: evicted) {
                    s.used -= e.bytes
                    s.lists[FieldKey(collection: evicted.collection, field: evicted.field)] = nil
                }
                s.head += 1
            }
            if s.head > 4096 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// The field's chunks for collection generation `generation`, if a query of that generation
    /// cached them.
    func chunkList(collection: UInt32, field: UInt32, epoch: UInt64, generation: UInt64) -> [ScanChunk]? {
        guard budget > 0 else { return nil }
        return state.withLock { s in
            guard let l = s.lists[FieldKey(collection: collection, field: field)], l.epoch == epoch, l.generation == generation else { return nil }
            return l.chunks
        }
    }

    /// Keeps a field's chunk list, when every one of its chunks is still cached (`keys`, in order).
    func insertList(_ chunks: [ScanChunk], keys: [Key], collection: UInt32, field: UInt32, epoch: UInt64, generation: UInt64) {
        guard budget > 0 else { return }
        state.withLock { s in
            guard keys.allSatisfy({ s.entries[$0] != nil }) else { return }
            s.lists[FieldKey(collection: collection, field: field)] = ChunkList(epoch: epoch, generation: generation, chunks: chunks)
        }
    }

    package func removeAll() { state.withLock { $0 = State() } }

    /// How many decoded chunks are kept.
    package var cachedChunks: Int { state.withLock { $0.entries.count } }
}

/// One top-k query on a flat field.
package struct FlatQuery: Sendable {
    /// Dense: the query values (all of the field's dimensions, or the first `dimensions`).
    package var dense: [Float] = []
    /// CSR: the query code.
    package var sparse: SparseVector = SparseVector()
    package var k: Int
    /// Dense: score on the first `dimensions` values only (Matryoshka truncation).
    package var dimensions: Int?

    package init(dense: [Float], k: Int, dimensions: Int? = nil) {
        self.dense = dense
        self.k = k
        self.dimensions = dimensions
    }

    package init(sparse: SparseVector, k: Int) {
        self.sparse = sparse
        self.k = k
    }
}

extension QueryEngine {
    /// The field's chunks in this snapshot, decoded (from the flat cache, or checked and decoded
    /// from the transaction and cached).
    func scanChunks(_ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord) throws -> [ScanChunk] {
        if let list = flatCache.chunkList(collection: record.id, field: field.id, epoch: field.epoch, generation: record.generation) {
            return list
        }
        var out: [ScanChunk] = []
        var keys: [FlatCache.Key] = []
        // Half-precision copies of f32 rows only when the whole field's copies can stay cached
        // (its documents at most, 2 bytes a value): a field larger than the cache is decoded
        // again by every query, and narrowing would add to that.
        let halfCopy = Int(record.nextDocument) * (FlatStore.width(field) * 2 + 12) <= flatCache.budget
        try txn.scan(prefix: Keys.field(record.id, field.id), in: txn.table(.flatChunk)) { k, v in
            guard k.count == 12, let index = Keys.part(k, 2), v.count >= 8 else { throw SparseDBError(.corrupt, "flat chunk key is malformed") }
            let key = FlatCache.Key(
                collection: record.id, field: field.id, epoch: field.epoch, chunk: index,
                rows: UInt16(littleEndian: v.loadUnaligned(fromByteOffset: 6, as: UInt16.self)),
                crc: UInt32(littleEndian: v.loadUnaligned(as: UInt32.self)))
            if let hit = flatCache.chunk(key) {
                out.append(hit)
            } else {
                let decoded = try FlatStore.decode(key: k, v, field: field, keepingHalves: true)
                let chunk = ScanChunk(decoded, checksum: key.crc, cache: flatCache, halfCopy: halfCopy)
                flatCache.insert(chunk, key)
                out.append(chunk)
            }
            keys.append(key)
            return true
        }
        flatCache.insertList(out, keys: keys, collection: record.id, field: field.id, epoch: field.epoch, generation: record.generation)
        return out
    }

    /// The exact top-k of a dense or CSR query over a flat field, best first: scores summed in
    /// double precision in increasing dimension order, as for sparse fields.
    package func searchFlat(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, query: FlatQuery, deleted: DocumentBitmap,
        allowed: DocumentBitmap? = nil
    ) throws -> (hits: [ScoredDocument], statistics: QueryStatistics) {
        guard query.k > 0 else { return ([], QueryStatistics()) }
        let (chunks, excluded) = try admittedChunks(txn, record: record, field: field, deleted: deleted, allowed: allowed)
        var stats = QueryStatistics()
        stats.blocksVisited = chunks.count
        stats.postingsVisited = chunks.reduce(0) { $0 + $1.chunk.count }
        let workers = max(1, min(usableCPUs, chunks.count / 8, 8))
        let hits: [ScoredDocument]
        if field.kind == FieldKind.csr.rawValue {
            hits = csrTopK(
                chunks, query: query.sparse, k: query.k, dimensions: Int(field.dimensions), excluded: excluded, workers: workers, statistics: &stats)
        } else {
            let scan = try denseCandidates(
                chunks, queries: [query.dense], width: Int(field.dimensions), dimensions: query.dimensions ?? Int(field.dimensions),
                cosine: field.isCosine, k: query.k, excluded: excluded, workers: workers)
            hits = try rescoreDense(txn, record: record, field: field, chunks: chunks, scan, query: 0, k: query.k)
            stats.candidatesRescored = scan.candidates[0].count
        }
        stats.documentsScored = stats.postingsVisited
        return (hits, stats)
    }

    /// The exact top-k of each dense query of a batch over a dense field, in one pass over the
    /// rows (one sgemm per chunk), each equal to ``searchFlat(_:record:field:query:deleted:allowed:)``
    /// for that query. The queries must share `k` and `dimensions`; other fields or a batch of
    /// one take the one-query path.
    package func searchDenseBatch(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, queries: [FlatQuery], deleted: DocumentBitmap,
        allowed: DocumentBitmap? = nil
    ) throws -> [(hits: [ScoredDocument], statistics: QueryStatistics)] {
        guard let first = queries.first else { return [] }
        guard field.kind == FieldKind.dense.rawValue, queries.count > 1, first.k > 0,
            queries.allSatisfy({ $0.k == first.k && $0.dimensions == first.dimensions })
        else {
            return try queries.map { try searchFlat(txn, record: record, field: field, query: $0, deleted: deleted, allowed: allowed) }
        }
        let (chunks, excluded) = try admittedChunks(txn, record: record, field: field, deleted: deleted, allowed: allowed)
        var stats = QueryStatistics()
        stats.blocksVisited = chunks.count
        stats.postingsVisited = chunks.reduce(0) { $0 + $1.chunk.count }
        stats.documentsScored = stats.postingsVisited
        let workers = max(1, min(usableCPUs, chunks.count / 8, 8))
        let scan = try denseCandidates(
            chunks, queries: queries.map(\.dense), width: Int(field.dimensions), dimensions: first.dimensions ?? Int(field.dimensions),
            cosine: field.isCosine, k: first.k, excluded: excluded, workers: workers)
        return try queries.indices.map { b in
            var s = stats
            s.candidatesRescored = scan.candidates[b].count
            return (try rescoreDense(txn, record: record, field: field, chunks: chunks, scan, query: b, k: first.k), s)
        }
    }

    /// The chunks a scan reads (those holding an admitted document, with a filter) and the rows
    /// it must not return.
    private func admittedChunks(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, deleted: DocumentBitmap, allowed: DocumentBitmap?
    ) throws -> ([ScanChunk], ExclusionSet) {
        var chunks = try scanChunks(txn, record: record, field: field)
        if let allowed {
            // Only chunks holding an admitted document are scanned.
            chunks = chunks.filter { chunk in
                guard let first = chunk.chunk.documents.first, let last = chunk.chunk.documents.last else { return false }
                return allowed.intersects(first, last + 1)
            }
        }
        // Rows a filter (or a deletion) excludes are never scored.
        return (chunks, allowed.map { ExclusionSet.allowed($0) } ?? .deleted(deleted))
    }

    /// CSR rows: the query scattered into a dense f32 array and each row's slots gathered from it
    /// (`sparsedb_csr_scores`, AVX2 where the CPU has it), giving an f32 score and a bound on its
    /// rounding; every row whose interval can reach the k-th score is rescored exactly, in double
    /// precision in slot (increasing dimension) order, so the result equals a double-precision
    /// brute force.
    private func csrTopK(
        _ chunks: [ScanChunk], query: SparseVector, k: Int, dimensions: Int, excluded: ExclusionSet, workers: Int, statistics: inout QueryStatistics
    ) -> [ScoredDocument] {
        var table = [Float](repeating: 0, count: dimensions)
        for (d, w) in zip(query.dimensions, query.weights) where Int(d) < dimensions { table[Int(d)] = w }
        let q = table
        let survivors = Locked<[UInt32]>([])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let collector = Self.collector(k: k, excluded: excluded)
            var scores = [Float](repeating: 0, count: FlatStore.rowsPerChunk)
            // One run of consecutive chunks per worker: one stream through the cache's row space.
            for c in (chunks.count * worker / workers)..<(chunks.count * (worker + 1) / workers) {
                Self.scanCSRChunk(chunks[c], query: q, scores: &scores, into: collector)
            }
            let mine = collector.survivors()
            survivors.withLock { $0.append(contentsOf: mine) }
        }
        let candidates = Set(survivors.withLock { $0 })
        statistics.candidatesRescored = candidates.count
        var scored: [ScoredDocument] = []
        for (doc, scan, r) in Self.locate(candidates, in: chunks) {
            let s = scan.withCodes { values, dimensions in Self.exactCSRScore(values, dimensions, row: r, width: scan.chunk.width, query: query) }
            // Only rows sharing a dimension with the query are hits, as for sparse fields.
            if s > 0 { scored.append(ScoredDocument(document: doc, score: s)) }
        }
        scored.sort(by: ScoredDocument.ranksBefore)
        return Array(scored.prefix(k))
    }

    /// Scores one CSR chunk with the f32 kernel and offers every row that can still reach the
    /// top-k, as an interval, to `collector`. (A static function: a captured collector or
    /// buffer costs dynamic exclusivity checks per row. It reads the rows through the cached
    /// `ScanChunk`: copying its `FlatStore.Chunk` out, a struct of another module, went through
    /// the runtime's generic value witnesses — 5% of a query at 100k rows.)
    private static func scanCSRChunk(
        _ scan: ScanChunk, query: [Float], scores: inout [Float], into collector: CandidateCollector
    ) {
        let n = scan.chunk.documents.count
        let width = scan.chunk.width
        // Rounding of an f32 sum of `width` products in any order: at most width · 2⁻²⁴ times
        // the sum of their magnitudes, which is the score itself: query weights are ≥ 0
        // (SparseVector) and stored values > 0 (checked when a chunk is decoded). 1% slack for
        // the score's own rounding; 1e-37 covers underflow.
        let unit = Float(width + 2) * 0x1p-24 * 1.01
        query.withUnsafeBufferPointer { qp in
            scan.withCodes { values, dims in
                scores.withUnsafeMutableBufferPointer { out in
                    sparsedb_csr_scores(qp.baseAddress, dims.baseAddress, values.baseAddress, n, width, out.baseAddress)
                }
            }
        }
        scores.withUnsafeBufferPointer { out in
            scan.chunk.documents.withUnsafeBufferPointer { docs in
                for r in 0..<n {
                    let margin = unit * out[r] + 1e-37
                    let upper = out[r] + margin
                    // A row whose upper bound is not positive cannot be a hit; one below the
                    // threshold cannot enter the top-k.
                    if upper <= 0 || collector.isPruned(upper) { continue }
                    collector.offer(doc: docs[r], upper: upper, lower: out[r] - margin)
                }
            }
        }
    }

    /// Row `r` of a CSR chunk scored exactly: the query's weights times the row's values, summed
    /// in double precision in slot order (dimensions increasing), unused slots ignored.
    static func exactCSRScore(
        _ values: UnsafeBufferPointer<Float>, _ dimensions: UnsafeBufferPointer<UInt16>, row r: Int, width: Int, query: SparseVector
    ) -> Double {
        let base = r * width
        var s = 0.0
        var i = 0  // position in the query, whose dimensions increase too
        for j in 0..<width {
            let x = values[base + j]
            if x == 0 { break }  // unused slots come last
            let d = UInt32(dimensions[base + j])
            while i < query.dimensions.count && query.dimensions[i] < d { i += 1 }
            if i == query.dimensions.count { break }
            if query.dimensions[i] == d { s += Double(query.weights[i]) * Double(x) }
        }
        return s
    }

    /// A collector of top-k candidates that skips the excluded documents.
    static func collector(k: Int, excluded: ExclusionSet) -> CandidateCollector {
        switch excluded {
        case .deleted(let deleted): CandidateCollector(k: k, deleted: deleted)
        case .allowed(let allowed): CandidateCollector(k: k, deleted: DocumentBitmap(), allowed: allowed)
        }
    }

    /// Where each document's row is: the chunks come in key order (increasing chunk index, hence
    /// increasing documents) and hold their rows in document order, so two binary searches find
    /// it. (Not a pass over every row with a hash lookup each, which cost more than the scan of
    /// a 64-dimension dense field.)
    static func locate(_ documents: Set<UInt32>, in chunks: [ScanChunk]) -> [(doc: UInt32, scan: ScanChunk, row: Int)] {
        var rowOf: [(doc: UInt32, scan: ScanChunk, row: Int)] = []
        rowOf.reserveCapacity(documents.count)
        for doc in documents {
            var lo = 0
            var hi = chunks.count  // → the first chunk whose first document is beyond doc
            while lo < hi {
                let mid = (lo + hi) / 2
                if chunks[mid].chunk.documents[0] <= doc { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { continue }
            let scan = chunks[lo - 1]
            let docs = scan.chunk.documents
            var a = 0
            var b = docs.count
            while a < b {
                let m = (a + b) / 2
                if docs[m] < doc { a = m + 1 } else { b = m }
            }
            if a < docs.count && docs[a] == doc { rowOf.append((doc, scan, a)) }
        }
        return rowOf
    }

    /// What the scan of a dense field leaves for rescoring: each query as scored (the first d
    /// values, normalized for cosine) and the documents that can reach its top-k.
    struct DenseCandidates {
        var queries: [[Float]]
        var candidates: [Set<UInt32>]
        var dimensions: Int
        var truncatedCosine: Bool
    }

    /// Dense rows: f32 dot products, each known to within a rounding bound (and, for a
    /// half-precision copy of f32 rows, ‖query‖ times the row's distance to its copy); every
    /// document whose interval can reach the k-th score is a candidate, rescored exactly by
    /// ``rescoreDense(_:record:field:chunks:_:query:k:)``, so the result equals a double-precision
    /// brute force. One query: our AVX2 kernel, one pass with the query in registers (6–10% less
    /// CPU than OpenBLAS's sgemv per chunk at 64 and 256 dimensions, measured on this project's
    /// machine). Several queries: one sgemm per chunk (rows × queries), each row read once for
    /// the whole batch.
    private func denseCandidates(
        _ chunks: [ScanChunk], queries rawQueries: [[Float]], width: Int, dimensions: Int, cosine: Bool, k: Int, excluded: ExclusionSet,
        workers: Int
    ) throws -> DenseCandidates {
        let d = min(dimensions, width)
        var queries: [[Float]] = []
        var queryNorms: [Float] = []
        for raw in rawQueries {
            guard raw.count >= d else { throw SparseDBError(.invalidInput, "a dense query has \(raw.count) values; \(d) are searched") }
            var q = Array(raw.prefix(d))
            if cosine {
                // Truncated cosine: the query's and each row's first d values, each normalized.
                let n = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                guard n > 0 else { throw SparseDBError(.invalidInput, "a zero query vector has no direction for cosine field") }
                q = q.map { Float(Double($0) / n) }
            }
            queries.append(q)
            // At or above ‖q‖: summed in double (within d·2⁻⁵³), rounded up.
            queryNorms.append(Float(q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() * (1 + 1e-9)).nextUp)
        }
        let batch = queries.count
        let truncatedCosine = cosine && d < width
        guard batch > 0 else { return DenseCandidates(queries: [], candidates: [], dimensions: d, truncatedCosine: truncatedCosine) }
        let packed = queries.flatMap { $0 }  // batch × d, row-major
        let norms = queryNorms
        // Rounding of an f32 dot product of d terms: at most d·2⁻²⁴·Σ|qᵢrᵢ| ≤ d·2⁻²⁴·‖q‖‖r‖ (with slack).
        let unit = Float(d) * 1.2e-7 + 1e-7
        let survivors = Locked<[[UInt32]]>(Array(repeating: [], count: batch))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let collectors = (0..<batch).map { _ in Self.collector(k: k, excluded: excluded) }
            var scores = [Float](repeating: 0, count: FlatStore.rowsPerChunk * batch)
            var rowNorms = [Float](repeating: 0, count: FlatStore.rowsPerChunk)
            var rowResiduals = [Float](repeating: 0, count: FlatStore.rowsPerChunk)
            var widened: [Float] = []  // f16 rows widened for sgemm (allocated on first use)
            // Each worker takes one run of consecutive chunks, which the flat cache keeps one
            // after another in memory: a single stream for the prefetcher (not every other chunk).
            for c in (chunks.count * worker / workers)..<(chunks.count * (worker + 1) / workers) {
                let scan = chunks[c]
                let top = Self.scoreDenseChunk(
                    scan, queries: packed, batch: batch, dimensions: d, truncatedCosine: truncatedCosine, scores: &scores, rowNorms: &rowNorms,
                    rowResiduals: &rowResiduals, widened: &widened)
                // One test for the whole chunk: its best score with the largest margin of its
                // rows, the same float expression as the per-row test below, which rounds
                // monotonically, so it passes over exactly the chunks whose every row it would pass over.
                if batch == 1, collectors[0].isPruned(top + (unit * norms[0] * scan.maxNorm + norms[0] * scan.maxResidual + 1e-30)) { continue }
                Self.offerDenseRows(
                    scan.chunk.documents, scores: scores, rowNorms: truncatedCosine ? rowNorms : scan.norms,
                    residuals: truncatedCosine ? rowResiduals : scan.residuals, batch: batch,
                    queryNorms: norms, unit: unit, truncatedCosine: truncatedCosine, to: collectors)
            }
            let mine = collectors.map { $0.survivors() }
            survivors.withLock { all in for b in 0..<batch { all[b].append(contentsOf: mine[b]) } }
        }
        return DenseCandidates(
            queries: queries, candidates: survivors.withLock { $0 }.map { Set($0) }, dimensions: d, truncatedCosine: truncatedCosine)
    }

    /// The exact top-k of query `b` of a dense scan: each candidate's score from its row as
    /// stored, in double precision in increasing dimension order (truncated cosine: divided by
    /// the norm of the row's first d values). Rows scanned through a half-precision copy are
    /// read from the stored chunk in `txn`, a lookup per chunk holding candidates.
    private func rescoreDense(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, chunks: [ScanChunk], _ scan: DenseCandidates, query b: Int,
        k: Int
    ) throws -> [ScoredDocument] {
        let q = scan.queries[b]
        let d = scan.dimensions
        func exact(_ value: (Int) -> Float) -> Double? {
            var s = 0.0
            var p = 0.0
            for j in 0..<d {
                let x = Double(value(j))
                s += Double(q[j]) * x
                p += x * x
            }
            guard scan.truncatedCosine else { return s }
            return p > 0 ? s / p.squareRoot() : nil  // no direction on the first d values: not a hit
        }
        // In document order, hence chunk after chunk.
        let located = Self.locate(scan.candidates[b], in: chunks).sorted { $0.doc < $1.doc }
        var scored: [ScoredDocument] = []
        var scratch: [Float] = []
        var i = 0
        while i < located.count {
            let chunk = located[i].scan
            var end = i + 1
            while end < located.count && located[end].scan === chunk { end += 1 }
            if chunk.rescoresFromStore {
                let index = FlatStore.chunkIndex(chunk.chunk.documents[0])
                func label() -> String { "flat chunk \(index) of field '\(field.name)'" }
                try txn.withValue(Keys.flatChunk(record.id, field.id, index), in: txn.table(.flatChunk)) { value in
                    guard let value else { throw SparseDBError(.corrupt, "\(label()) is missing") }
                    let rows = try FlatStore.storedF32Rows(
                        value, rows: chunk.chunk.count, width: chunk.chunk.width, checksum: chunk.storedChecksum, label: label())
                    for (doc, _, r) in located[i..<end] {
                        let base = (r * chunk.chunk.width) * 4
                        var valid = true
                        let s = exact { j in
                            let x = Float(bitPattern: UInt32(littleEndian: rows.loadUnaligned(fromByteOffset: base + 4 * j, as: UInt32.self)))
                            // The record's checksum was verified when the chunk was cached; its
                            // bytes are read again here, so they are checked again as values.
                            if !(x.isFinite && abs(x) <= SparseVector.maxWeight) { valid = false }
                            return x
                        }
                        guard valid else { throw SparseDBError(.corrupt, "\(label()) holds a value out of range") }
                        if let s { scored.append(ScoredDocument(document: doc, score: s)) }
                    }
                }
            } else {
                for (doc, _, r) in located[i..<end] {
                    let s = chunk.withRow(r, count: d, scratch: &scratch) { row in exact { row[$0] } }
                    if let s { scored.append(ScoredDocument(document: doc, score: s)) }
                }
            }
            i = end
        }
        scored.sort(by: ScoredDocument.ranksBefore)
        return Array(scored.prefix(k))
    }

    /// Offers each row of a scored dense chunk to each query's collector as an interval; rows
    /// whose upper bound is below a collector's threshold (most of them, once k rows are in) are
    /// passed over without a call. (A static function over buffers: per-row bounds-checked
    /// array reads and a call per row were a fifth of a 64-dimension scan.)
    /// `residuals` (empty for rows scanned as stored) widens each row's interval by ‖query‖ ·
    /// residual: how far the score of a half-precision copy can be from the stored row's.
    private static func offerDenseRows(
        _ documents: [UInt32], scores: [Float], rowNorms: [Float], residuals: [Float], batch: Int, queryNorms: [Float], unit: Float,
        truncatedCosine: Bool, to collectors: [CandidateCollector]
    ) {
        documents.withUnsafeBufferPointer { docs in
            scores.withUnsafeBufferPointer { out in
                rowNorms.withUnsafeBufferPointer { rowNorm in
                    queryNorms.withUnsafeBufferPointer { qn in
                        residuals.withUnsafeBufferPointer { residual in
                            let copied = !residual.isEmpty
                            for b in 0..<batch {
                                let collector = collectors[b]
                                let scale = unit * qn[b]
                                for r in 0..<docs.count {
                                    if truncatedCosine && rowNorm[r] == 0 { continue }  // no direction on the first d values
                                    let s = out[r &* batch &+ b]
                                    let margin = copied ? scale * rowNorm[r] + qn[b] * residual[r] + 1e-30 : scale * rowNorm[r] + 1e-30
                                    if collector.isPruned(s + margin) { continue }
                                    collector.offer(doc: docs[r], upper: s + margin, lower: s - margin)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The f32 scores of one dense chunk's rows for every query of a batch (`scores[r · batch +
    /// b]`); with a truncated cosine, the scores divided by the norm of each row's first d values
    /// and `rowNorms` the rounding bound's factor per row (1 + 1e-6; 0 marks a row with no
    /// direction there). Otherwise the bound uses the stored row norms (`ScanChunk.norms`).
    /// Returns the largest score of a single query's chunk, else NaN (no whole-chunk test).
    /// An f16 chunk is scored from its f16 rows by the f16 kernel, or, for sgemm and a truncated
    /// cosine, first widened into `widened` (exactly, so every path sees the same values): only
    /// each row's first d values, d apart. A truncated cosine over a half-precision copy also
    /// sets `rowResiduals` (see `scoreRows`).
    private static func scoreDenseChunk(
        _ scan: ScanChunk, queries: [Float], batch: Int, dimensions d: Int, truncatedCosine: Bool, scores: inout [Float], rowNorms: inout [Float],
        rowResiduals: inout [Float], widened: inout [Float]
    ) -> Float {
        // Through `scan`, not a copy of its chunk (see scanCSRChunk).
        let n = scan.chunk.documents.count
        let width = scan.chunk.width
        if scan.isHalf {
            if batch == 1 && !truncatedCosine {
                return scan.withHalfRows { rows in
                    queries.withUnsafeBufferPointer { qp in
                        scores.withUnsafeMutableBufferPointer { out in
                            sparsedb_dense_scores_f16(rows.baseAddress, n, width, qp.baseAddress, d, out.baseAddress)
                        }
                    }
                }
            }
            // Allocated once per worker and query (a chunk has at most rowsPerChunk rows).
            if widened.count < n * d { widened = [Float](repeating: 0, count: FlatStore.rowsPerChunk * d) }
            scan.withHalfRows { rows in
                widened.withUnsafeMutableBufferPointer { out in
                    for r in 0..<n { sparsedb_f16_to_f32(rows.baseAddress! + r * width, out.baseAddress! + r * d, d) }
                }
            }
            return widened.withUnsafeBufferPointer { rows in
                scoreRows(rows, n: n, stride: d, queries: queries, batch: batch, dimensions: d, truncatedCosine: truncatedCosine,
                          residuals: scan.residuals, scores: &scores, rowNorms: &rowNorms, rowResiduals: &rowResiduals)
            }
        }
        return scan.withRows { rows in
            scoreRows(rows, n: n, stride: width, queries: queries, batch: batch, dimensions: d, truncatedCosine: truncatedCosine,
                      residuals: [], scores: &scores, rowNorms: &rowNorms, rowResiduals: &rowResiduals)
        }
    }

    /// `scoreDenseChunk` over f32 rows, `stride` values apart. A truncated cosine sets
    /// `rowResiduals[r]`: 0 for rows scanned as stored; for rows that are a half-precision copy
    /// (`residuals` not empty: ‖stored row − copy‖ each), how far the copy's cosine can be from
    /// the stored row's, per unit of query norm: for rows a (stored) and b (copy) of the first d
    /// values, ‖a/‖a‖ − b/‖b‖‖ ≤ 2‖a − b‖/‖b‖, and ‖a − b‖ ≤ the whole row's residual. A row
    /// too small there for the score's rounding bound, or a copy with no direction there (b = 0)
    /// of a row that may have one, gets an unbounded interval (it is rescored).
    private static func scoreRows(
        _ rows: UnsafeBufferPointer<Float>, n: Int, stride width: Int, queries: [Float], batch: Int, dimensions d: Int, truncatedCosine: Bool,
        residuals: [Float], scores: inout [Float], rowNorms: inout [Float], rowResiduals: inout [Float]
    ) -> Float {
        var top = Float.nan
        queries.withUnsafeBufferPointer { qp in
            scores.withUnsafeMutableBufferPointer { out in
                if batch == 1 {
                    top = sparsedb_dense_scores(rows.baseAddress, n, width, qp.baseAddress, d, out.baseAddress)
                } else {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(batch), Int32(d), 1, rows.baseAddress, Int32(width),
                        qp.baseAddress, Int32(d), 0, out.baseAddress, Int32(batch))
                }
            }
        }
        guard truncatedCosine else { return top }  // the stored norms serve
        for r in 0..<n {
            // Summed in double: a row's first d values may be tiny (a cosine row is normalized
            // over all its values), and their squares would underflow in f32.
            var p = 0.0
            for j in 0..<d { p += Double(rows[r * width + j]) * Double(rows[r * width + j]) }
            let norm = p.squareRoot()
            let residual = residuals.isEmpty ? 0 : residuals[r]
            rowResiduals[r] = 0
            if norm == 0 && residual == 0 {
                rowNorms[r] = 0  // no direction on the first d values, in the stored row either
            } else if norm < 0x1p-100 {
                // Too small for the f32 score's rounding bound (its products underflow), or no
                // direction in the copy where the stored row may have one: rescored, whatever it scores.
                rowNorms[r] = 1
                rowResiduals[r] = .infinity
            } else {
                let inverse = Float(1 / norm)
                rowNorms[r] = 1 + 1e-6
                for b in 0..<batch { scores[r * batch + b] *= inverse }
                // ‖a/‖a‖ − b/‖b‖‖ ≤ 2‖a − b‖/‖b‖; the norm in double is within d·2⁻⁵³ of ‖b‖.
                if residual > 0 { rowResiduals[r] = Float(2 * Double(residual) / norm * (1 + 1e-9)).nextUp }
            }
        }
        // The kernel's maximum holds for the scores as stored; divided by row norms they differ.
        return .nan
    }
}

/// CPUs this process may run on: its affinity mask (`taskset`), where the platform has one, else
/// the active processors. A process pinned to one CPU then scans on one thread, rather than
/// splitting every scan into workers that take turns on that CPU.
let usableCPUs: Int = {
    let active = ProcessInfo.processInfo.activeProcessorCount
    // /proc/self/status's Cpus_allowed_list, e.g. "1" or "0-3,8": sched_getaffinity without the
    // GNU extension Swift's Glibc module leaves out.
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
    else { return active }
    var n = 0
    for part in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
        let ends = part.split(separator: "-").compactMap { Int($0) }
        if ends.count == 1 { n += 1 } else if ends.count == 2, ends[1] >= ends[0] { n += ends[1] - ends[0] + 1 } else { return active }
    }
    return n > 0 ? min(n, active) : active
}()

/// The documents a scan must not return: the deleted ones, or all but a filter's.
enum ExclusionSet: Sendable {
    case deleted(DocumentBitmap)
    case allowed(DocumentBitmap)
}
