import Foundation
import SparseDB
import SparseDBTools

/// A seeded generator so that property tests are reproducible.
package struct SplitMix64: RandomNumberGenerator {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Reads a vector JSONL file as (id, vector) pairs.
package func readVectors(_ path: String, limit: Int = .max) throws -> [(id: String, vector: SparseVector)] {
    var out: [(String, SparseVector)] = []
    let reader = try JSONLinesReader(path: path)
    while let (line, bytes) = try reader.next() {
        let r = try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: 1 << 24)
        out.append((r.id, r.vector))
        if out.count >= limit { break }
    }
    return out
}

/// TREC run → query id → [(doc id, score)] in rank order.
package func readRun(_ path: String, depth: Int = 10) throws -> [String: [(String, Double)]] {
    try parseRun(String(contentsOfFile: path, encoding: .utf8), depth: depth)
}

package func parseRun(_ text: String, depth: Int = 10) -> [String: [(String, Double)]] {
    var run: [String: [(String, Double)]] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count == 6, let rank = Int(f[3]), rank <= depth, let score = Double(f[4]) else { continue }
        run[String(f[0]), default: []].append((String(f[2]), score))
    }
    return run
}

/// The brute-force oracle: every document's exact dot product with the query (double-precision
/// sums in increasing dimension order, as the engine computes them), best first, ties by
/// insertion order.
package final class BruteForce {
    package let docs: [(id: String, vector: SparseVector)]
    private let byId: [String: SparseVector]

    package init(_ docs: [(id: String, vector: SparseVector)]) {
        self.docs = docs
        var byId: [String: SparseVector] = [:]
        for d in docs { byId[d.id] = d.vector }
        self.byId = byId
    }

    /// Every document with a positive score, best first (ties by insertion order).
    package func ranking(_ query: SparseVector) -> [(id: String, score: Double)] {
        var scored: [(Int, Double)] = []
        for (i, d) in docs.enumerated() {
            let s = d.vector.dot(query)
            if s > 0 { scored.append((i, s)) }
        }
        scored.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        return scored.map { (docs[$0.0].id, $0.1) }
    }

    /// Compares a top-k against brute force; returns nil when it is right, else what is wrong.
    ///
    /// Right means: as many hits as brute force has (up to k); the scores rank by rank equal
    /// brute force's; every hit's score is its document's true score; no id twice; and every
    /// document that scores strictly above the k-th score is present — so the only freedom is
    /// which of several documents tied at the cut-off (or with each other) comes first. The
    /// last-ranked hit is judged like every other.
    package func mismatch(
        _ got: [(id: String, score: Double)], query: SparseVector, k: Int, ranking: [(id: String, score: Double)]? = nil,
        tolerance: Double = 1e-9
    ) -> String? {
        let expected = ranking ?? self.ranking(query)
        let n = min(k, expected.count)
        guard got.count == n else { return "\(got.count) hits, expected \(n)" }
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= tolerance * max(1, abs(a), abs(b)) }
        var seen = Set<String>()
        for i in 0..<n {
            if !close(got[i].score, expected[i].score) { return "rank \(i + 1): score \(got[i].score), expected \(expected[i].score)" }
            guard let v = byId[got[i].id] else { return "rank \(i + 1): unknown id \(got[i].id)" }
            if !close(v.dot(query), got[i].score) { return "rank \(i + 1): \(got[i].id) has score \(v.dot(query)), reported \(got[i].score)" }
            if !seen.insert(got[i].id).inserted { return "id \(got[i].id) twice" }
        }
        if n > 0 {
            let kth = expected[n - 1].score
            for e in expected {
                if e.score < kth || close(e.score, kth) { break }
                if !seen.contains(e.id) { return "\(e.id) (score \(e.score)) is above the k-th score \(kth) but missing" }
            }
        }
        return nil
    }
}

/// The top k + 1 of brute force (so that a tie at the cut-off can be judged).
package func bruteForce(_ docs: [(id: String, vector: SparseVector)], _ query: SparseVector, k: Int) -> [(id: String, score: Double)] {
    Array(BruteForce(docs).ranking(query).prefix(k + 1))
}

/// ``BruteForce/mismatch(_:query:k:ranking:tolerance:)`` for a one-off check.
package func topKMismatch(
    _ got: [(id: String, score: Double)], docs: [(id: String, vector: SparseVector)], query: SparseVector, k: Int,
    tolerance: Double = 1e-9
) -> String? {
    BruteForce(docs).mismatch(got, query: query, k: k, tolerance: tolerance)
}

/// A top-k against an expected ranking of k + 1 entries where there are that many (a reference
/// run): scores agree rank by rank, and ids agree wherever the expected score is not tied with a
/// neighbour — the entry after the cut-off included, so a tie at the cut-off may be broken
/// either way but the last rank is otherwise judged like every other.
package func rankingsAgree(_ expected: [(String, Double)], _ got: [(String, Double)], k: Int, tolerance: Double = 1e-4) -> Bool {
    let n = min(k, expected.count)
    guard got.count == n else { return false }
    func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= tolerance * max(1, abs(x)) }
    var gotIds = Set<String>()
    for i in 0..<n {
        if !close(expected[i].1, got[i].1) { return false }
        gotIds.insert(got[i].0)
        let tied = (i > 0 && close(expected[i].1, expected[i - 1].1)) || (i + 1 < expected.count && close(expected[i].1, expected[i + 1].1))
        if !tied && expected[i].0 != got[i].0 { return false }
    }
    return gotIds.count == n
}

/// Spreads a small vocabulary over a huge dimension space (up to 2^24 and beyond), so that
/// large dimension ids are exercised while documents and queries still share terms.
package func spread(_ d: UInt32, _ dims: UInt32) -> UInt32 {
    dims <= 3000 ? d : min(dims - 1, d &* (dims / 3000) &+ d % 7)
}

/// Random collections shaped to hit the edge cases: one-posting lists, lists that end exactly
/// at block boundaries, very long lists, heavy ties.
package func randomDocuments(count: Int, dims: UInt32, seed: UInt64, prefix: String = "doc-") throws -> [(id: String, vector: SparseVector)] {
    var rng = SplitMix64(seed: seed)
    var docs: [(String, SparseVector)] = []
    for i in 0..<count {
        var entries: [UInt32: Float] = [:]
        let n = Int.random(in: 0...40, using: &rng)
        for _ in 0..<n {
            // Skewed: low dimensions are frequent (long lists), high ones rare.
            let r = Double.random(in: 0..<1, using: &rng)
            let d = spread(UInt32(Double(min(dims, 3000)) * r * r * r), dims)
            entries[d] = Bool.random(using: &rng) ? Float(Int.random(in: 1...4, using: &rng)) : Float.random(in: 0.01..<3, using: &rng)
        }
        if i % 3 == 0 { entries[0] = Float.random(in: 0.1..<1, using: &rng) }  // a list in every third document
        if i == count - 1 { entries[dims - 1] = 2 }  // a one-posting list
        docs.append(("\(prefix)\(i)", try SparseVector(entries.map { ($0.key, $0.value) })))
    }
    return docs
}

package func randomQuery(_ rng: inout SplitMix64, dims: UInt32) throws -> SparseVector {
    var entries: [UInt32: Float] = [:]
    for _ in 0..<Int.random(in: 1...25, using: &rng) {
        let r = Double.random(in: 0..<1, using: &rng)
        entries[spread(UInt32(Double(min(dims, 3000)) * r * r), dims)] = Float.random(in: 0.05..<3, using: &rng)
    }
    return try SparseVector(entries.map { ($0.key, $0.value) })
}

/// An oracle over scores computed by the test itself (dense rows, CSR codes, fusions): checks a
/// top-k like ``BruteForce/mismatch(_:query:k:ranking:tolerance:)`` — scores rank by rank, each
/// hit's own score, no id twice, nothing above the k-th score missing.
package func rankingMismatch(
    _ got: [(id: String, score: Double)], scores: [String: Double], k: Int, tolerance: Double = 1e-9, positiveOnly: Bool = false
) -> String? {
    let expected = scores.filter { !positiveOnly || $0.value > 0 }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    let n = min(k, expected.count)
    guard got.count == n else { return "\(got.count) hits, expected \(n)" }
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= tolerance * max(1, abs(a), abs(b)) }
    var seen = Set<String>()
    for i in 0..<n {
        if !close(got[i].score, expected[i].value) { return "rank \(i + 1): score \(got[i].score), expected \(expected[i].value)" }
        guard let own = scores[got[i].id] else { return "rank \(i + 1): unknown id \(got[i].id)" }
        if !close(own, got[i].score) { return "rank \(i + 1): \(got[i].id) has score \(own), reported \(got[i].score)" }
        if !seen.insert(got[i].id).inserted { return "id \(got[i].id) twice" }
    }
    if n > 0 {
        let kth = expected[n - 1].value
        for e in expected {
            if e.value < kth || close(e.value, kth) { break }
            if !seen.contains(e.key) { return "\(e.key) (score \(e.value)) is above the k-th score \(kth) but missing" }
        }
    }
    return nil
}

/// A row as the field stores it.
package func denseStored(_ v: [Float], cosine: Bool, half: Bool) -> [Float] {
    var row = v
    if cosine {
        let n = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        row = v.map { Float(Double($0) / n) }
    }
    if half { row = row.map { Float(Float16($0)) } }
    return row
}

/// The field's exact score of a stored row for a query, on the first `d` values.
package func denseScore(_ q: [Float], _ row: [Float], d: Int, cosine: Bool) -> Double {
    var qq = Array(q.prefix(d))
    if cosine {
        let n = qq.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        qq = qq.map { Float(Double($0) / n) }
    }
    var s = 0.0
    var p = 0.0
    for j in 0..<d {
        s += Double(qq[j]) * Double(row[j])
        p += Double(row[j]) * Double(row[j])
    }
    if cosine && d < row.count { s /= p.squareRoot() }
    return s
}

