import Foundation

/// Mean, percentiles and maximum of a set of latencies (milliseconds), as the CLI and the
/// benchmark harness report them. Percentiles are nearest-rank: p-th = the value at rank
/// ⌈p/100 · n⌉ of the sorted values.
package struct LatencySummary: Sendable, Codable, Equatable {
    package var count: Int
    package var mean: Double
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var max: Double

    package init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        guard !sorted.isEmpty else {
            mean = 0
            p50 = 0
            p90 = 0
            p99 = 0
            max = 0
            return
        }
        func rank(_ p: Double) -> Double { sorted[Swift.max(0, Swift.min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))] }
        mean = sorted.reduce(0, +) / Double(sorted.count)
        p50 = rank(50)
        p90 = rank(90)
        p99 = rank(99)
        max = sorted.last!
    }

    /// `{"mean": …, "p50": …, …}` for JSON output.
    package var dictionary: [String: Double] { ["mean": mean, "p50": p50, "p90": p90, "p99": p99, "max": max] }
}
