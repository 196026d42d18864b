import COpenBLAS
import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// A flat chunk decoded for scanning: rows widened to f32, contiguous and aligned, with each
/// row's Euclidean norm (dense) for the rounding bound of the BLAS scores. Immutable; shared by
/// concurrent queries.
package final class ScanChunk: Sendable {
    let chunk: FlatStore.Chunk
    /// Dense: ‖row‖ of each row, over all its values.
    let norms: [Float]

    init(_ chunk: FlatStore.Chunk) {
        self.chunk = chunk
        if chunk.layout.isCSR {
            norms = []
        } else {
            norms = (0..<chunk.count).map { r in
                var s: Float = 0
                for j in 0..<chunk.width {
                    let x = chunk.values[r * chunk.width + j]
                    s += x * x
                }
                return s.squareRoot() * (1 + 1e-6)
            }
        }
    }

    var bytes: Int { chunk.values.count * 4 + chunk.dimensions.count * 2 + chunk.documents.count * 4 + norms.count * 4 + 128 }
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

    private struct State {
        var entries: [Key: ScanChunk] = [:]
        var order: [Key] = []
        var head = 0
        var used = 0
    }

    package let budget: Int
    private let state = Locked(State())

    package init(budget: Int) { self.budget = budget }

    func chunk(_ key: Key) -> ScanChunk? {
        guard budget > 0 else { return nil }
        return state.withLock { $0.entries[key] }
    }

    func insert(_ chunk: ScanChunk, _ key: Key) {
        guard budget > 0, chunk.bytes <= budget / 4 else { return }
        state.withLock { s in
            guard s.entries[key] == nil else { return }
            s.entries[key] = chunk
            s.order.append(key)
            s.used += chunk.bytes
            while s.used > budget && s.head < s.order.count {
                if let e = s.entries.removeValue(forKey: s.order[s.head]) { s.used -= e.bytes }
                s.head += 1
            }
            if s.head > 4096 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    package func removeAll() { state.withLock { $0 = State() } }
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
        var out: [ScanChunk] = []
        try txn.scan(prefix: Keys.field(record.id, field.id), in: txn.table(.flatChunk)) { k, v in
            guard k.count == 12, let index = Keys.part(k, 2), v.count >= 8 else { throw SparseDBError(.corrupt, "flat chunk key is malformed") }
            let key = FlatCache.Key(
                collection: record.id, field: field.id, epoch: field.epoch, chunk: index,
                rows: UInt16(littleEndian: v.loadUnaligned(fromByteOffset: 6, as: UInt16.self)),
                crc: UInt32(littleEndian: v.loadUnaligned(as: UInt32.self)))
            if let hit = flatCache.chunk(key) {
                out.append(hit)
            } else {
                let chunk = ScanChunk(try FlatStore.decode(key: k, v, field: field))
                flatCache.insert(chunk, key)
                out.append(chunk)
            }
            return true
        }
        return out
    }

    /// The exact top-k of a dense or CSR query over a flat field, best first: scores summed in
    /// double precision in increasing dimension order, as for sparse fields.
    package func searchFlat(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, query: FlatQuery, deleted: DocumentBitmap,
        allowed: DocumentBitmap? = nil
    ) throws -> (hits: [ScoredDocument], statistics: QueryStatistics) {
        guard query.k > 0 else { return ([], QueryStatistics()) }
        var chunks = try scanChunks(txn, record: record, field: field)
        if let allowed {
            // Only chunks holding an admitted document are scanned.
            chunks = chunks.filter { chunk in
                guard let first = chunk.chunk.documents.first, let last = chunk.chunk.documents.last else { return false }
                return allowed.intersects(first, last + 1)
            }
        }
        // Rows a filter (or a deletion) excludes are never scored.
        let excluded = allowed.map { ExclusionSet.allowed($0) } ?? .deleted(deleted)
        var stats = QueryStatistics()
        stats.blocksVisited = chunks.count
        stats.postingsVisited = chunks.reduce(0) { $0 + $1.chunk.count }
        let workers = max(1, min(usableCPUs, chunks.count / 8, 8))
        let hits: [ScoredDocument]
        if field.kind == FieldKind.csr.rawValue {
            hits = csrTopK(chunks, query: query.sparse, k: query.k, dimensions: Int(field.dimensions), excluded: excluded, workers: workers)
        } else {
            hits = try denseTopK(
                chunks, query: query.dense, width: Int(field.dimensions), dimensions: query.dimensions ?? Int(field.dimensions),
                cosine: field.isCosine, k: query.k, excluded: excluded, workers: workers, statistics: &stats)
        }
        stats.documentsScored = stats.postingsVisited
        return (hits, stats)
    }

    /// CSR rows: the query scattered into a dense array, each row a gather of its k slots, summed
    /// in double precision in increasing dimension order (exact, no rescoring needed).
    private func csrTopK(_ chunks: [ScanChunk], query: SparseVector, k: Int, dimensions: Int, excluded: ExclusionSet, workers: Int) -> [ScoredDocument] {
        var dense = [Double](repeating: 0, count: dimensions)
        for (d, w) in zip(query.dimensions, query.weights) where Int(d) < dimensions { dense[Int(d)] = Double(w) }
        let q = dense
        let parts = Locked<[[ScoredDocument]]>([])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var heap = TopKHeap(k: k)
            var c = worker
            q.withUnsafeBufferPointer { qp in
                while c < chunks.count {
                    let chunk = chunks[c].chunk
                    let width = chunk.width
                    chunk.values.withUnsafeBufferPointer { values in
                        chunk.dimensions.withUnsafeBufferPointer { dims in
                            chunk.documents.withUnsafeBufferPointer { docs in
                                Self.scanCSRChunk(values, dims, docs, width: width, query: qp, excluded: excluded, into: &heap)
                            }
                        }
                    }
                    c += workers
                }
            }
            let best = heap.sorted()
            parts.withLock { $0.append(best) }
        }
        return Array(parts.withLock { $0 }.joined().sorted(by: ScoredDocument.ranksBefore).prefix(k))
    }

    /// Scores the rows of one CSR chunk into `heap`. Four rows at a time: four independent sums
    /// keep the adder busy (one row's sum is a chain of dependent additions). Each row is still
    /// summed alone, in its own slot order, so the scores are bit for bit those of one row at a
    /// time: past a row's last used slot its terms are q[0] · 0 = +0, which leaves a sum ≥ 0
    /// unchanged. (A static function with `inout heap`: a captured heap costs dynamic
    /// exclusivity checks on every offer.)
    private static func scanCSRChunk(
        _ values: UnsafeBufferPointer<Float>, _ dims: UnsafeBufferPointer<UInt16>, _ docs: UnsafeBufferPointer<UInt32>, width: Int,
        query qp: UnsafeBufferPointer<Double>, excluded: ExclusionSet, into heap: inout TopKHeap
    ) {
        var r = 0
        while r &+ 4 <= docs.count {
            let d0 = docs[r], d1 = docs[r &+ 1], d2 = docs[r &+ 2], d3 = docs[r &+ 3]
            if excluded.excludes(d0) || excluded.excludes(d1) || excluded.excludes(d2) || excluded.excludes(d3) {
                for i in r..<(r &+ 4) { scoreCSRRow(i, values, dims, docs, width: width, query: qp, excluded: excluded, into: &heap) }
                r &+= 4
                continue
            }
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            let b0 = r &* width, b1 = b0 &+ width, b2 = b1 &+ width, b3 = b2 &+ width
            for j in 0..<width {
                let x0 = values[b0 &+ j], x1 = values[b1 &+ j], x2 = values[b2 &+ j], x3 = values[b3 &+ j]
                if x0 == 0 && x1 == 0 && x2 == 0 && x3 == 0 { break }  // unused slots come last
                s0 += qp[Int(dims[b0 &+ j])] * Double(x0)
                s1 += qp[Int(dims[b1 &+ j])] * Double(x1)
                s2 += qp[Int(dims[b2 &+ j])] * Double(x2)
                s3 += qp[Int(dims[b3 &+ j])] * Double(x3)
            }
            if s0 > 0 { heap.offer(ScoredDocument(document: d0, score: s0)) }
            if s1 > 0 { heap.offer(ScoredDocument(document: d1, score: s1)) }
            if s2 > 0 { heap.offer(ScoredDocument(document: d2, score: s2)) }
            if s3 > 0 { heap.offer(ScoredDocument(document: d3, score: s3)) }
            r &+= 4
        }
        while r < docs.count {
            scoreCSRRow(r, values, dims, docs, width: width, query: qp, excluded: excluded, into: &heap)
            r &+= 1
        }
    }

    /// One CSR row alone; an excluded row is skipped unscored.
    @inline(__always)
    private static func scoreCSRRow(
        _ r: Int, _ values: UnsafeBufferPointer<Float>, _ dims: UnsafeBufferPointer<UInt16>, _ docs: UnsafeBufferPointer<UInt32>, width: Int,
        query qp: UnsafeBufferPointer<Double>, excluded: ExclusionSet, into heap: inout TopKHeap
    ) {
        let doc = docs[r]
        if excluded.excludes(doc) { return }
        let base = r &* width
        var s = 0.0
        for j in 0..<width {
            let x = values[base &+ j]
            if x == 0 { break }  // unused slots come last
            s += qp[Int(dims[base &+ j])] * Double(x)
        }
        if s > 0 { heap.offer(ScoredDocument(document: doc, score: s)) }
    }

    /// Dense rows: f32 dot products with BLAS (sgemv per chunk), each known to within a rounding
    /// bound; every document whose interval can reach the k-th score is rescored exactly in
    /// double precision, so the result equals a double-precision brute force.
    private func denseTopK(
        _ chunks: [ScanChunk], query: [Float], width: Int, dimensions: Int, cosine: Bool, k: Int, excluded: ExclusionSet, workers: Int,
        statistics: inout QueryStatistics
    ) throws -> [ScoredDocument] {
        let d = min(dimensions, width, query.count)
        var q = Array(query.prefix(d))
        if cosine {
            // Truncated cosine: the query's and each row's first d values, each normalized.
            let n = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            guard n > 0 else { throw SparseDBError(.invalidInput, "a zero query vector has no direction for cosine field") }
            q = q.map { Float(Double($0) / n) }
        }
        let qNorm = q.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot() * (1 + 1e-6)
        // Rounding of an f32 dot product of d terms: at most d·2⁻²⁴·Σ|qᵢrᵢ| ≤ d·2⁻²⁴·‖q‖‖r‖ (with slack).
        let unit = Float(d) * 1.2e-7 + 1e-7
        let truncatedCosine = cosine && d < width
        let survivors = Locked<[UInt32]>([])
        let query = q
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let collector: CandidateCollector
            switch excluded {
            case .deleted(let deleted): collector = CandidateCollector(k: k, deleted: deleted)
            case .allowed(let allowed): collector = CandidateCollector(k: k, deleted: DocumentBitmap(), allowed: allowed)
            }
            var scores = [Float](repeating: 0, count: FlatStore.rowsPerChunk)
            var c = worker
            while c < chunks.count {
                let scan = chunks[c]
                let chunk = scan.chunk
                let n = chunk.count
                chunk.values.withUnsafeBufferPointer { rows in
                    query.withUnsafeBufferPointer { qp in
                        scores.withUnsafeMutableBufferPointer { out in
                            cblas_sgemv(
                                CblasRowMajor, CblasNoTrans, Int32(n), Int32(d), 1, rows.baseAddress, Int32(width), qp.baseAddress, 1, 0,
                                out.baseAddress, 1)
                        }
                    }
                    for r in 0..<n {
                        var s = scores[r]
                        var rowNorm = scan.norms[r]
                        if truncatedCosine {
                            var p: Float = 0
                            for j in 0..<d { p += rows[r * width + j] * rows[r * width + j] }
                            rowNorm = p.squareRoot()
                            if rowNorm == 0 { continue }
                            s /= rowNorm
                            rowNorm = 1 + 1e-6
                        }
                        let margin = unit * qNorm * rowNorm + 1e-30
                        collector.offer(doc: chunk.documents[r], upper: s + margin, lower: s - margin)
                    }
                }
                c += workers
            }
            let mine = collector.survivors()
            survivors.withLock { $0.append(contentsOf: mine) }
        }
        let candidates = Set(survivors.withLock { $0 })
        statistics.candidatesRescored = candidates.count
        // Exact rescoring from the rows, in double precision, increasing dimension order.
        // Each candidate's row by binary search: the chunks come in key order (increasing chunk
        // index, hence increasing documents) and hold their rows in document order. (Not a pass
        // over every row with a hash lookup each, which cost more than the scan at 64 dimensions.)
        var rowOf: [(doc: UInt32, scan: ScanChunk, row: Int)] = []
        rowOf.reserveCapacity(candidates.count)
        for doc in candidates {
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
        var scored: [ScoredDocument] = []
        for (doc, scan, r) in rowOf {
            let base = r * width
            var s = 0.0
            var p = 0.0
            for j in 0..<d {
                let x = Double(scan.chunk.values[base + j])
                s += Double(query[j]) * x
                p += x * x
            }
            if truncatedCosine {
                guard p > 0 else { continue }
                s /= p.squareRoot()
            }
            scored.append(ScoredDocument(document: doc, score: s))
        }
        scored.sort(by: ScoredDocument.ranksBefore)
        return Array(scored.prefix(k))
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

    @inline(__always)
    func excludes(_ doc: UInt32) -> Bool {
        switch self {
        case .deleted(let d): d.contains(doc)
        case .allowed(let a): !a.contains(doc)
        }
    }
}

/// The k best of a stream of scored documents (best first when sorted): a min-heap on rank.
struct TopKHeap {
    let k: Int
    private var heap: [ScoredDocument] = []

    init(k: Int) { self.k = k }

    /// Whether `a` ranks below `b` (worse score, or equal score and larger id).
    @inline(__always) private static func worse(_ a: ScoredDocument, _ b: ScoredDocument) -> Bool {
        ScoredDocument.ranksBefore(b, a)
    }

    mutating func offer(_ s: ScoredDocument) {
        if heap.count < k {
            heap.append(s)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if !Self.worse(heap[i], heap[p]) { break }
                heap.swapAt(i, p)
                i = p
            }
        } else if Self.worse(heap[0], s) {
            heap[0] = s
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= heap.count { break }
                var m = l
                if l + 1 < heap.count && Self.worse(heap[l + 1], heap[l]) { m = l + 1 }
                if !Self.worse(heap[m], heap[i]) { break }
                heap.swapAt(i, m)
                i = m
            }
        }
    }

    func sorted() -> [ScoredDocument] { heap.sorted(by: ScoredDocument.ranksBefore) }
}
