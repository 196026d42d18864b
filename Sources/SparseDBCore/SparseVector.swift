/// A sparse vector: strictly increasing dimension indices and their non-negative weights.
///
/// Weights are finite, ≥ 0 and at most ``maxWeight`` (10⁹). The bound makes every score the
/// engine computes representable: a product of two weights is at most 10¹⁸, and a sum of at
/// most 2³² such products stays below 4.3·10²⁷, far inside `Float`'s range (3.4·10³⁸), so no
/// accepted input can overflow a score or a pruning bound to infinity.
///
/// ```swift
/// let v = try SparseVector(["2054": 1.23, "7592": 0.5].map { (UInt32($0.key)!, $0.value) })
/// ```
public struct SparseVector: Sendable, Equatable {
    /// Dimension indices, strictly increasing.
    public private(set) var dimensions: [UInt32]
    /// Weights, one per dimension; finite, ≥ 0 and ≤ ``maxWeight``.
    public private(set) var weights: [Float]

    /// The largest weight a vector may hold (10⁹); see the type's documentation for why.
    public static let maxWeight: Float = 1e9

    /// The empty vector.
    public init() {
        dimensions = []
        weights = []
    }

    /// Builds a vector from (dimension, weight) pairs in any order.
    ///
    /// - Throws: ``SparseDBError/Code/invalidInput`` for a NaN, infinite, negative or too large
    ///   (> ``maxWeight``) weight, or a dimension that appears twice.
    public init(_ entries: some Sequence<(UInt32, Float)>) throws {
        let sorted = entries.sorted { $0.0 < $1.0 }
        dimensions = []
        weights = []
        dimensions.reserveCapacity(sorted.count)
        weights.reserveCapacity(sorted.count)
        for (d, w) in sorted {
            if let last = dimensions.last, last == d {
                throw SparseDBError(.invalidInput, "dimension \(d) appears more than once")
            }
            try Self.checkWeight(w, dimension: d)
            dimensions.append(d)
            weights.append(w)
        }
    }

    /// Builds a vector from parallel arrays that are already sorted by dimension.
    public init(dimensions: [UInt32], weights: [Float]) throws {
        guard dimensions.count == weights.count else {
            throw SparseDBError(.invalidInput, "\(dimensions.count) dimensions but \(weights.count) weights")
        }
        for i in dimensions.indices {
            if i > 0, dimensions[i] <= dimensions[i - 1] {
                throw SparseDBError(
                    .invalidInput,
                    dimensions[i] == dimensions[i - 1]
                        ? "dimension \(dimensions[i]) appears more than once" : "dimensions are not sorted")
            }
            try Self.checkWeight(weights[i], dimension: dimensions[i])
        }
        self.dimensions = dimensions
        self.weights = weights
    }

    /// Parallel arrays the caller guarantees valid (sorted, in range): decoded stored rows and
    /// encoder outputs.
    package init(unchecked dimensions: [UInt32], weights: [Float]) {
        self.dimensions = dimensions
        self.weights = weights
    }

    /// Number of stored entries (including explicit zeros).
    public var count: Int { dimensions.count }

    /// Number of non-zero weights.
    public var activeCount: Int { weights.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }

    /// Dot product with `other`.
    public func dot(_ other: SparseVector) -> Double {
        var i = 0
        var j = 0
        var sum = 0.0
        while i < dimensions.count && j < other.dimensions.count {
            let a = dimensions[i]
            let b = other.dimensions[j]
            if a == b {
                sum += Double(weights[i]) * Double(other.weights[j])
                i += 1
                j += 1
            } else if a < b {
                i += 1
            } else {
                j += 1
            }
        }
        return sum
    }

    /// Keeps only the `k` largest weights (ties: smaller dimension first), as
    /// sentence-transformers' `max_active_dims` does.
    public func keepingLargest(_ k: Int) -> SparseVector {
        guard k >= 0, count > k else { return self }
        let order = weights.indices.sorted { weights[$0] != weights[$1] ? weights[$0] > weights[$1] : $0 < $1 }
        let kept = order.prefix(k).sorted()
        return SparseVector(unchecked: kept.map { dimensions[$0] }, weights: kept.map { weights[$0] })
    }

    /// The vector without zero weights.
    public func droppingZeros() -> SparseVector {
        guard weights.contains(0) else { return self }
        var d: [UInt32] = []
        var w: [Float] = []
        for i in dimensions.indices where weights[i] != 0 {
            d.append(dimensions[i])
            w.append(weights[i])
        }
        return SparseVector(unchecked: d, weights: w)
    }

    package static func checkWeight(_ w: Float, dimension d: UInt32) throws {
        if w.isNaN { throw SparseDBError(.invalidInput, "weight for dimension \(d) is NaN") }
        if w.isInfinite { throw SparseDBError(.invalidInput, "weight for dimension \(d) is infinite") }
        if w < 0 { throw SparseDBError(.invalidInput, "weight for dimension \(d) is negative (\(w))") }
        if w > maxWeight { throw SparseDBError(.invalidInput, "weight for dimension \(d) is \(w), above the limit of \(maxWeight)") }
    }
}
