import Foundation
import Testing

@testable import SparseDB

/// A fresh directory per test (LMDB forbids opening one environment twice, and tests run in parallel).
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

/// `../shared` beside the repository.
let sharedDirectory: String = {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return repo.deletingLastPathComponent().appendingPathComponent("shared").path
}()

let repositoryDirectory: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func referencePath(_ collection: String, _ file: String) -> String {
    "\(sharedDirectory)/reference/splade-tiny/\(collection)/\(file)"
}

/// Reads a vector JSONL file as (id, vector) pairs.
func readVectors(_ path: String, limit: Int = .max) throws -> [(id: String, vector: SparseVector)] {
    var out: [(String, SparseVector)] = []
    for (line, bytes) in try JSONLinesReader(path: path) {
        let r = try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: 1 << 24)
        out.append((r.id, r.vector))
        if out.count >= limit { break }
    }
    return out
}

/// TREC run → query id → [(doc id, score)] in rank order.
func readRun(_ path: String, depth: Int = 10) throws -> [String: [(String, Double)]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var run: [String: [(String, Double)]] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count == 6, let rank = Int(f[3]), rank <= depth, let score = Double(f[4]) else { continue }
        run[String(f[0]), default: []].append((String(f[2]), score))
    }
    return run
}

/// Brute force: every document's exact dot product, top-k, ties by insertion order.
func bruteForce(_ docs: [(id: String, vector: SparseVector)], _ query: SparseVector, k: Int) -> [(String, Double)] {
    var scored: [(Int, Double)] = []
    for (i, d) in docs.enumerated() {
        let s = d.vector.dot(query)
        if s > 0 { scored.append((i, s)) }
    }
    scored.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    return scored.prefix(k).map { (docs[$0.0].id, $0.1) }
}

/// Two rankings agree when their scores agree rank by rank, and the ids agree wherever the score
/// is not tied with a neighbour or the cut-off (ties may be ordered either way).
func rankingsAgree(_ a: [(String, Double)], _ b: [(String, Double)], tolerance: Double = 1e-4) -> Bool {
    guard a.count == b.count else { return false }
    for i in a.indices {
        if abs(a[i].1 - b[i].1) > tolerance * max(1, abs(a[i].1)) { return false }
        let tiedWithNeighbour =
            (i > 0 && abs(a[i].1 - a[i - 1].1) <= tolerance * max(1, abs(a[i].1)))
            || (i + 1 < a.count && abs(a[i].1 - a[i + 1].1) <= tolerance * max(1, abs(a[i].1)))
            || i == a.count - 1
        if !tiedWithNeighbour && a[i].0 != b[i].0 { return false }
    }
    return true
}

/// A seeded generator so that property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Path of a built product (`sparsedb`) next to the test bundle.
func productPath(_ name: String) -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return repositoryDirectory + "/.build/debug/" + name
}

/// Runs a command; returns (exit status, stdout, stderr).
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read before waiting so a full pipe cannot block the child.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}
