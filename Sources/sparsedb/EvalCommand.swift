import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Ingest a BEIR dataset (or reuse --db), search its test queries, print metrics and timings as JSON.")

    @Argument(help: "Dataset directory: corpus.jsonl, queries.jsonl, qrels/test.tsv.") var dataset: String
    @Option(help: "Model folder, or 'default' (splade-tiny).") var model: String = "default"
    @Option(help: "Database directory to build or reuse (default: a temporary one, removed afterwards).") var db: String?
    @Option(help: "Collection name (default: the dataset folder's name).") var collection: String?
    @Option(help: "exhaustive | maxscore | wand | bmw.") var algorithm: SearchAlgorithm = .maxscore
    @Option(name: .customLong("run"), help: "Write the TREC run here.") var runFile: String?
    @Option(parsing: .unconditional, help: "Run depth.") var k: Int = 100
    @Option(parsing: .unconditional, help: "Documents per write transaction.") var batchSize: Int = 256
    @Flag(help: "No progress output.") var quiet = false

    func run() throws {
        try reportingErrors {
            let dir = dataset.hasSuffix("/") ? String(dataset.dropLast()) : dataset
            let corpus = dir + "/corpus.jsonl"
            let queriesPath = dir + "/queries.jsonl"
            let judgments = try Metrics.readJudgments(dir + "/qrels/test.tsv")
            let name = collection ?? URL(fileURLWithPath: dir).lastPathComponent
            let temporary = db == nil
            let dbPath = db ?? FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-eval-\(UUID().uuidString)").path
            defer { if temporary { try? FileManager.default.removeItem(atPath: dbPath) } }

            let encoder = try TextEncoder(path: model)
            let database = try Database(path: dbPath)
            let coll = try database.collection(name, creatingWithDimensions: UInt32(encoder.dimensions))
            let progress = Progress("ingest \(name)", quiet: quiet)
            var source = try CorpusSource(try InputFile(path: corpus))
            let field = coll.schema.fields.count == 1 ? coll.schema.fields[0].name : VectorField.defaultName
            let ingest = try coll.ingest(&source, encoders: [field: encoder], options: IngestOptions(batchSize: batchSize)) {
                progress.update($0.committed + $0.skipped)
            }
            progress.finish(ingest.committed + ingest.skipped)

            var ids: [String] = []
            var texts: [String] = []
            let queryReader = try JSONLinesReader(path: queriesPath)
            while let (line, bytes) = try queryReader.next() {
                let o = try LineFormats.object(bytes, file: queriesPath, line: line)
                ids.append(try LineFormats.id(o, file: queriesPath, line: line))
                texts.append((o["text"] as? String) ?? "")
            }
            let qEncoder = try coll.queryEncoder(model: model)
            let t0 = Date()
            let queryVectors = try qEncoder.encode(texts, task: .query)
            let queryEncodeSeconds = Date().timeIntervalSince(t0)
            // Latency of one query end to end: encode (one text) + search.
            var searchLatencies: [Double] = []
            var endToEnd: [Double] = []
            var runLines: [String] = []
            var results: Metrics.Run = [:]
            for (i, qid) in ids.enumerated() {
                let s0 = DispatchTime.now().uptimeNanoseconds
                let single = try qEncoder.encode([texts[i]], task: .query)[0]
                let s1 = DispatchTime.now().uptimeNanoseconds
                let result = try coll.search(single, options: SearchOptions(k: k, algorithm: algorithm, includePayloads: false))
                let s2 = DispatchTime.now().uptimeNanoseconds
                searchLatencies.append(Double(s2 - s1) / 1e6)
                endToEnd.append(Double(s2 - s0) / 1e6)
                results[qid] = result.hits.map { ($0.id, $0.score) }
                for (rank, hit) in result.hits.enumerated() {
                    runLines.append("\(qid) Q0 \(hit.id) \(rank + 1) \(String(format: "%.6f", hit.score)) sparsedb")
                }
            }
            if let runFile { try (runLines.joined(separator: "\n") + "\n").write(toFile: runFile, atomically: true, encoding: .utf8) }
            let scores = Metrics.evaluate(run: results, judgments: judgments)
            let stats = try coll.statistics()
            func summary(_ xs: [Double]) -> [String: Double] { LatencySummary(xs).dictionary }
            let out: [String: Any] = [
                "dataset": name, "model": encoder.name, "algorithm": algorithm.rawValue,
                "documents": stats.documents, "queries": ids.count,
                "metrics": ["nDCG@10": scores.nDCG10, "RR@10": scores.RR10, "R@100": scores.R100, "AP@100": scores.AP100],
                "judged_queries": scores.queries,
                "doc_active_dims": Double(stats.postings) / Double(max(stats.documents, 1)),
                "query_active_dims": Double(queryVectors.reduce(0) { $0 + $1.count }) / Double(max(queryVectors.count, 1)),
                "timings": [
                    "documents_ingested": ingest.committed,
                    "encode_docs_per_s": ingest.encodeSeconds > 0 ? Double(ingest.committed) / ingest.encodeSeconds : 0,
                    "ingest_docs_per_s": ingest.elapsedSeconds > 0 ? Double(ingest.committed) / ingest.elapsedSeconds : 0,
                    "encode_queries_per_s": Double(ids.count) / max(queryEncodeSeconds, 1e-9),
                    "search_latency_ms": summary(searchLatencies),
                    "query_latency_ms": summary(endToEnd),
                ],
            ]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            printLine(String(decoding: data, as: UTF8.self))
        }
    }
}
