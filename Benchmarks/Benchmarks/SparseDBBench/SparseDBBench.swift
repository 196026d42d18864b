// Micro benchmarks of the library's public API on real data (../shared beside the repository):
// exact search per algorithm on the scifact reference vectors, batch ingest, and encoding with
// the default model. Times move between runs on these machines; compare runs made together.
import Benchmark
import Foundation
import SparseDB

let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared").path

func readVectors(_ path: String) -> [(String, SparseVector)] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fatalError("cannot read \(path)") }
    return text.split(separator: "\n").map { line in
        let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let v = o["vector"] as! [String: NSNumber]
        return (o["_id"] as! String, try! SparseVector(v.map { (UInt32($0.key)!, $0.value.floatValue) }))
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 100_000)

    let reference = shared + "/reference/splade-tiny/scifact"
    let docs = readVectors(reference + "/doc_vectors.jsonl")
    let queries = readVectors(reference + "/query_vectors.jsonl").map(\.1)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-bench-\(getpid())").path
    let db = try! Database(path: dir)
    let collection = try! db.collection("scifact", creatingWithDimensions: 30_522)
    try! collection.upsert(docs.map { Document(id: $0.0, vector: $0.1) })
    try! collection.compact()

    for algorithm in SearchAlgorithm.allCases {
        // Each iteration runs the next query, cycling through all 300.
        let next = QueryCounter()
        Benchmark("search \(algorithm.rawValue) scifact k=10 (one query)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try collection.search(queries[next.take() % queries.count], options: SearchOptions(k: 10, algorithm: algorithm, includePayloads: false)))
            }
        }
    }

    Benchmark("ingest 1000 scifact vectors (one transaction)", configuration: .init(maxIterations: 20)) { benchmark in
        let bdir = dir + "-ingest"
        let target = try Database(path: bdir).collection("c", creatingWithDimensions: 30_522)
        let batch = docs.prefix(1000).map { Document(id: $0.0, vector: $0.1) }
        var round = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try target.upsert(batch.map { Document(id: "\(round)-\($0.id)", vector: $0.vector) })
            round += 1
        }
        benchmark.stopMeasurement()
    }

    if let encoder = try? TextEncoder(path: "default") {
        let texts = (try? String(contentsOfFile: shared + "/data/scifact/corpus.jsonl", encoding: .utf8))?
            .split(separator: "\n").prefix(32).map { line -> String in
                let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return "\(o["title"] as? String ?? "") \(o["text"] as? String ?? "")"
            } ?? []
        Benchmark("encode 32 scifact documents (splade-tiny)", configuration: .init(maxIterations: 50)) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try encoder.encode(texts, task: .document)) }
        }
        Benchmark("encode one query (splade-tiny)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try encoder.encode(["What causes heart disease in older adults?"], task: .query)) }
        }
    }
}

final class QueryCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}
