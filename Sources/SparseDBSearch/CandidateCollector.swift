import SparseDBIndex

/// Collects the documents that can still be in the exact top-k.
///
/// Posting impacts are 8-bit codes, so during traversal a document's score is known only as an
/// interval [lower, upper]. The k-th largest *lower* bound is a safe threshold: a document whose
/// upper bound is below it cannot be in the top-k. Every document not excluded that way is kept
/// as a candidate and rescored exactly from the forward store at the end.
final class CandidateCollector {
    let k: Int
    /// A min-heap of the k largest lower bounds seen, in a buffer this collector owns (no
    /// bounds checks or copy-on-write tests in `offer`, which runs once per scored document).
    private let heap: UnsafeMutablePointer<Float>
    private var heapCount = 0
    /// Upper bounds below `bar` are pruned: the threshold minus a small slack that absorbs float
    /// rounding in the bound sums, so pruning never drops a true top-k document.
    private(set) var bar: Float = -.infinity
    /// `bar` without the approximation factor: decides which scored documents stay candidates.
    private var exactBar: Float = -.infinity
    private(set) var candidates: [(doc: UInt32, upper: Float)] = []
    private let deleted: DocumentBitmap
    /// A filter's documents (deleted ones already removed); nil = every live document.
    let allowed: DocumentBitmap?
    var documentsScored = 0

    /// > 1 makes pruning approximate: documents whose upper bound is below factor × threshold are skipped.
    let thresholdFactor: Float

    init(k: Int, deleted: DocumentBitmap, allowed: DocumentBitmap? = nil, thresholdFactor: Float = 1) {
        self.k = k
        self.deleted = deleted
        self.allowed = allowed
        self.thresholdFactor = thresholdFactor
        heap = .allocate(capacity: max(k, 1))
    }

    deinit { heap.deallocate() }

    /// Whether a document (or group of documents) with this upper bound may be skipped.
    @inline(__always) func isPruned(_ upperBound: Float) -> Bool { upperBound < bar }

    /// Whether the filter (if any) rejects `doc`: the traversals then skip it unscored.
    @inline(__always) func isFilteredOut(_ doc: UInt32) -> Bool {
        if let allowed { return !allowed.contains(doc) }
        return false
    }

    /// The documents `64·w ..< 64·w + 64` that may be offered: the filter's, else the live ones.
    @inline(__always) func admittedWord(_ w: Int) -> UInt64 {
        if let allowed { return allowed.word(w) }
        return ~deleted.word(w)
    }

    @inline(__always)
    func offer(doc: UInt32, upper: Float, lower: Float) {
        documentsScored += 1
        if upper < exactBar { return }
        if let allowed {
            if !allowed.contains(doc) { return }
        } else if deleted.contains(doc) {
            return
        }
        candidates.append((doc, upper))
        if heapCount < k {
            heap[heapCount] = lower
            heapCount &+= 1
            siftUp(heapCount &- 1)
            if heapCount == k { updateBar() }
        } else if lower > heap[0] {
            heap[0] = lower
            siftDown(0)
            updateBar()
        }
    }

    /// Candidates that survive the final threshold.
    func survivors() -> [UInt32] { candidates.filter { $0.upper >= exactBar }.map(\.doc) }

    private func updateBar() {
        let t = heap[0]
        exactBar = t - abs(t) * 1e-5 - 1e-6
        let boosted = t * thresholdFactor
        bar = boosted - abs(boosted) * 1e-5 - 1e-6
    }

    private func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i &- 1) &>> 1
            if heap[p] <= heap[i] { break }
            (heap[p], heap[i]) = (heap[i], heap[p])
            i = p
        }
    }

    private func siftDown(_ i0: Int) {
        var i = i0
        let n = heapCount
        while true {
            let l = 2 &* i &+ 1
            if l >= n { break }
            var m = l
            if l &+ 1 < n && heap[l &+ 1] < heap[l] { m = l &+ 1 }
            if heap[i] <= heap[m] { break }
            (heap[i], heap[m]) = (heap[m], heap[i])
            i = m
        }
    }
}
