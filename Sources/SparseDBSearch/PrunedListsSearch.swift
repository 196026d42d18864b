import CSparseDBKernels
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

extension QueryEngine {
    /// Documents whose partial sums the pruned-lists search keeps at once: 128 KiB of floats.
    static let prunedListWindow = 32_768

    /// The approximate search of ``SparseQuery/postingsPerTerm``: Seismic's static pruning of
    /// the posting lists, done at query time, with scoring from an in-memory forward index.
    ///
    /// 1. Each walked list contributes its `perTerm` largest postings (by their codes' upper
    ///    bounds, code · block-max / 255) to a partial score per document: query weight × that
    ///    bound. The pruned lists are kept in the posting cache, so this reads a few thousand
    ///    postings a term.
    /// 2. Of the documents so found, less tombstoned (or filtered-out) ones, the best
    ///    `query.candidates` by partial score (ties by internal id) are scored with the whole
    ///    query from the forward cache (weights in half precision, each score with a bound on
    ///    its error); documents the cache does not hold are scored from the stored rows.
    /// 3. The exact top-k of those: every one whose score interval reaches the k-th largest
    ///    lower end is rescored from the stored rows, so each hit carries its exact score and
    ///    the hits are exactly the best k of the documents step 2 scored.
    func searchPrunedLists(
        _ txn: borrowing Transaction, record: CollectionRecord, field: FieldRecord, query: SparseQuery,
        known: [(queryWeight: Float, list: PrunedList)], cursors: [TermCursor], perTerm: Int, deleted: DocumentBitmap, allowed: DocumentBitmap?
    ) throws -> (hits: [ScoredDocument], statistics: QueryStatistics) {
        let limit = record.nextDocument
        var stats = QueryStatistics()
        stats.terms = known.count + cursors.count
        // Step 1, a window of documents at a time so that the partial sums stay in the second-level
        // cache (summed straight into one array of a million documents, the scattered adds took
        // 40 ns each, 2.5 ms a query).
        var floats: [Float] = []
        var lists = known
        for cursor in cursors {
            lists.append((cursor.queryWeight, try cursor.largest(perTerm, scratch: &floats)))
            stats.blocksVisited += cursor.blocksDecoded
        }
        for (_, list) in lists {
            if let last = list.documents.last, last >= limit {
                throw SparseDBError(.corrupt, "a posting names document \(last), past the collection's last")
            }
            stats.postingsVisited += list.documents.count
        }
        let window = Self.prunedListWindow
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: window)
        partial.initialize(repeating: 0, count: window)
        let touched = UnsafeMutablePointer<UInt64>.allocate(capacity: window / 64)
        touched.initialize(repeating: 0, count: window / 64)
        defer {
            partial.deallocate()
            touched.deallocate()
        }
        // The documents found and their partial scores. Only the best `candidates` are wanted:
        // once that many have been seen, a histogram of their scores' top bits (non-negative
        // floats order like their bit patterns) says below which bucket no later document can
        // enter, and those are not collected.
        let capacity = max(lists.reduce(0) { $0 + $1.list.documents.count }, 1)
        let found = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        let foundPartials = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        let histogram = UnsafeMutablePointer<Int>.allocate(capacity: 4096)
        histogram.initialize(repeating: 0, count: 4096)
        defer {
            found.deallocate()
            foundPartials.deallocate()
            histogram.deallocate()
        }
        var count = 0
        var floor = 0  // buckets below it cannot reach the best `candidates`
        var positions = [Int](repeating: 0, count: lists.count)
        var base = 0
        while base < Int(limit) {
            let end = UInt32(min(base + window, Int(limit)))
            var any = false
            for (i, (w, list)) in lists.enumerated() {
                list.documents.withUnsafeBufferPointer { docs in
                    list.estimates.withUnsafeBufferPointer { estimates in
                        var p = positions[i]
                        while p < docs.count && docs[p] < end {
                            let r = Int(docs[p]) &- base
                            partial[r] += estimates[p] * w
                            touched[r &>> 6] |= 1 &<< UInt64(r & 63)
                            p &+= 1
                        }
                        any = any || p > positions[i]
                        positions[i] = p
                    }
                }
            }
            if any {
                for w in 0..<window / 64 where touched[w] != 0 {
                    var bits = touched[w]
                    touched[w] = 0
                    let word = base / 64 + w
                    let admitted = allowed?.word(word) ?? ~deleted.word(word)
                    while bits != 0 {
                        let r = w << 6 | bits.trailingZeroBitCount
                        let v = partial[r]
                        let bucket = Int(max(v, 0).bitPattern >> 19)
                        if admitted & (1 &<< UInt64(r & 63)) != 0 && bucket >= floor {
                            found[count] = UInt32(base + r)
                            foundPartials[count] = v
                            count &+= 1
                            histogram[bucket] &+= 1
                        }
                        partial[r] = 0
                        bits &= bits &- 1
                    }
                }
                if count > query.candidates {
                    var above = 0
                    var b = 4095
                    while b > floor && above + histogram[b] < query.candidates {
                        above += histogram[b]
                        b -= 1
                    }
                    floor = b
                }
            }
            base += window
        }
        let documents = Array(UnsafeBufferPointer(start: found, count: count))
        let partials = Array(UnsafeBufferPointer(start: foundPartials, count: count))
        // Step 2: the best `candidates` by partial score, in id order, scored from the cache.
        let scored = Self.best(query.candidates, of: documents, by: partials)
        stats.documentsScored = scored.count
        let q = query.vector
        var scores = [Float](repeating: .nan, count: scored.count)
        var errors = [Double](repeating: .infinity, count: scored.count)
        if field.dimensions <= 1 << 16 && forwardCache.budget > 0 {
            // The query held densely for the cache's gathers (at most 65,536 floats).
            var dense = [Float](repeating: 0, count: Int(field.dimensions))
            var queryMagnitude = 0.0
            for (d, w) in zip(q.dimensions, q.weights) where d < field.dimensions {
                dense[Int(d)] = w
                queryMagnitude += Double(abs(w))
            }
            (scores, errors) = try dense.withUnsafeBufferPointer { dq in
                try forwardCache.scores(
                    txn, collection: record.id, field: field, nextDocument: limit, query: dq.baseAddress!, queryMagnitude: queryMagnitude,
                    documents: scored)
            }
        }
        // Documents the cache does not hold: their exact scores, from the stored rows.
        var exact: [UInt32: Double] = [:]
        let uncached = scored.indices.filter { scores[$0].isNaN }
        if !uncached.isEmpty {
            for hit in try rescore(txn, collection: record.id, field: field.id, query: q, documents: uncached.map { scored[$0] }) {
                exact[hit.document] = hit.score
            }
        }
        // Step 3: the exact top-k of the scored documents. Each document's score lies in an
        // interval: exact where its stored row was read, else the cache's score ± its bound. A
        // document whose upper end is below the k-th largest lower end cannot be among the top k;
        // the others are rescored from the stored rows (those already read are not read again).
        // (A NaN cache score — a sum that overflowed — was read above as uncached; it would
        // bound nothing.)
        var lower = [Double](repeating: 0, count: scored.count)
        var upper = [Double](repeating: 0, count: scored.count)
        for i in scored.indices {
            if let e = exact[scored[i]] {
                (lower[i], upper[i]) = (e, e)
            } else if scores[i].isNaN {
                (lower[i], upper[i]) = (-.infinity, .infinity)
            } else {
                (lower[i], upper[i]) = (Double(scores[i]) - errors[i], Double(scores[i]) + errors[i])
            }
        }
        let bar = scored.count > query.k ? Self.kthLargest(query.k, of: lower) : -Double.infinity
        var reread: [UInt32] = []
        for i in scored.indices where exact[scored[i]] == nil && upper[i] >= bar { reread.append(scored[i]) }
        stats.candidatesRescored = reread.count
        var hits = try rescore(txn, collection: record.id, field: field.id, query: q, documents: reread)
        for (d, s) in exact { hits.append(ScoredDocument(document: d, score: s)) }
        hits.sort(by: ScoredDocument.ranksBefore)
        return (Array(hits.prefix(query.k)), stats)
    }

    /// The `k`-th largest of `values` (1 ≤ k ≤ values.count, no NaN): a min-heap of the `k`
    /// largest seen, O(n log k) instead of sorting all n (the candidates are thousands, k is
    /// usually 10).
    package static func kthLargest(_ k: Int, of values: [Double]) -> Double {
        var heap = Array(values.prefix(k))  // a min-heap: heap[0] is the smallest kept
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < k && heap[l] < heap[m] { m = l }
                if r < k && heap[r] < heap[m] { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
        for v in values.dropFirst(k) where v > heap[0] {
            heap[0] = v
            siftDown(0)
        }
        return heap[0]
    }

    /// The `count` documents of largest value, in id order (`documents` in id order; ties at the
    /// cut by id).
    static func best(_ count: Int, of documents: [UInt32], by values: [Float]) -> [UInt32] {
        guard documents.count > count else { return documents }
        var indices = [UInt32](repeating: 0, count: count)
        let n = values.withUnsafeBufferPointer { v in
            indices.withUnsafeMutableBufferPointer { sparsedb_largest_indices(v.baseAddress, v.count, count, $0.baseAddress) }
        }
        if n < count {
            // Out of memory for the cut's bucket: the plain way.
            let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
            return order.prefix(count).sorted().map { documents[$0] }
        }
        return indices.map { documents[Int($0)] }
    }
}
