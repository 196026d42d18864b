import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Ingest a BEIR dataset (or reuse --db), search its test queries, print metrics and timings as JSON.",
        discussion: """
            With several --field NAME=MODEL, every document is encoded once per field and the queries \
            run as a hybrid search fused with --fuse (rrf by default); the fused metrics are printed \
            under "metrics" and each field's own under "fields.NAME.metrics".
            """)

    @Argument(help: "Dataset directory: corpus.jsonl, queries.jsonl, qrels/test.tsv.") var dataset: String
    @Option(help: "Model folder, or 'default' (splade-tiny), for a one-field evaluation.") var model: String = "default"
    @Option(name: .customLong("field"), help: "NAME=MODEL, repeatable: evaluate several fields and their fusion.") var fields: [String] = []
    @Option(help: "Several fields: rrf or weighted.") var fuse: FusionOptions.Method = .rrf
    @Option(help: "Weighted fusion: FIELD=WEIGHT,...") var weights: String?
    @Option(parsing: .unconditional, help: "Several fields: how deep each field's exact ranking goes.") var fuseDepth: Int = 100
    @Option(help: "Database directory to build or reuse (default: a temporary one, removed afterwards).") var db: String?
    @Option(help: "Collection name (default: the dataset folder's name).") var collection: String?
    @Option(help: "exhaustive | maxscore | wand | bmw.") var algorithm: SearchAlgorithm = .maxscore
    @Option(name: .customLong("run"), help: "Write the (fused) TREC run here.") var runFile: String?
    @Option(parsing: .unconditional, help: "Run depth.") var k: Int = 100
    @Option(parsing: .unconditional, help: "Documents per write transaction.") var batchSize: Int = 256
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        if k < 1 { throw ValidationError("--k must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if fuseDepth < 1 { throw ValidationError("--fuse-depth must be at least 1") }
        for spec in fields where !spec.contains("=") { throw ValidationError("--field takes NAME=MODEL, got '\(spec)'") }
    }

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

            var encoders: [String: TextEncoder] = [:]
            if fields.isEmpty {
                encoders[VectorField.defaultName] = try TextEncoder(path: model)
            } else {
                for spec in fields {
                    let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                    encoders[parts[0]] = try TextEncoder(path: parts[1])
                }
            }
            let schema = CollectionSchema(fields: encoders.keys.sorted().map { field in
                let encoder = encoders[field]!
                switch encoder.kind {
                case .splade, .inferenceFree: return .sparse(field, dimensions: UInt32(encoder.dimensions))
                case .csr:
                    return .csr(field, dimensions: UInt32(encoder.dimensions), activeDimensions: min(256, encoder.defaultMaxActiveDims ?? 256), keepLargest: true)
                case .staticEmbedding, .dense: return .dense(field, dimensions: UInt32(encoder.dimensions))
                }
            })
            let database = try Database(path: dbPath)
            defer { database.close() }
            let coll = try database.collection(name, creatingWith: schema)
            let progress = Progress("ingest \(name)", quiet: quiet)
            var source = try CorpusSource(try InputFile(path: corpus))
            let ingest = try coll.ingest(&source, encoders: encoders, options: IngestOptions(batchSize: batchSize)) {
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
            var queryEncoders: [String: TextEncoder] = [:]
            for field in encoders.keys { queryEncoders[field] = try coll.queryEncoder(model: nil, field: field) }
            // Latency of one query end to end: encode (one text per field) + search (+ fusion).
            var searchLatencies: [Double] = []
            var endToEnd: [Double] = []
            var runLines: [String] = []
            var fused: Metrics.Run = [:]
            var perField: [String: Metrics.Run] = [:]
            let options = SearchOptions(k: k, algorithm: algorithm, includePayloads: false)
            var queryDims: [String: Double] = [:]
            for (i, qid) in ids.enumerated() {
                let text = texts[i].isEmpty ? " " : texts[i]
                let s0 = DispatchTime.now().uptimeNanoseconds
                var vectors: [String: FieldVector] = [:]
                for (field, encoder) in queryEncoders {
                    let v = try encoder.fieldVectors([text], task: .query)[0]
                    vectors[field] = v
                    if case .sparse(let sv) = v { queryDims[field, default: 0] += Double(sv.count) }
                }
                let s1 = DispatchTime.now().uptimeNanoseconds
                let hits: [SearchHit]
                if vectors.count == 1, let (field, v) = vectors.first {
                    hits = try coll.search(v, options: SearchOptions(k: k, algorithm: algorithm, field: field, includePayloads: false)).hits
                } else {
                    let result = try coll.search(
                        hybrid: vectors, fusion: FusionOptions(method: fuse, depth: fuseDepth, weights: try parsedWeights()), options: options)
                    hits = result.hits
                    for (field, list) in result.fields { perField[field, default: [:]][qid] = list.map { ($0.id, $0.score) } }
                }
                let s2 = DispatchTime.now().uptimeNanoseconds
                searchLatencies.append(Double(s2 - s1) / 1e6)
                endToEnd.append(Double(s2 - s0) / 1e6)
                fused[qid] = hits.map { ($0.id, $0.score) }
                for (rank, hit) in hits.enumerated() {
                    runLines.append("\(qid) Q0 \(hit.id) \(rank + 1) \(String(format: "%.6f", hit.score)) sparsedb")
                }
            }
            if let runFile { try (runLines.joined(separator: "\n") + "\n").write(toFile: runFile, atomically: true, encoding: .utf8) }
            func metrics(_ run: Metrics.Run) -> [String: Double] {
                let s = Metrics.evaluate(run: run, judgments: judgments)
                return ["nDCG@10": s.nDCG10, "RR@10": s.RR10, "R@100": s.R100, "AP@100": s.AP100]
            }
            let stats = try coll.statistics()
            var out: [String: Any] = [
                "dataset": name, "model": encoders.count == 1 ? encoders.values.first!.name : encoders.mapValues(\.name),
                "algorithm": algorithm.rawValue, "documents": stats.documents, "queries": ids.count, "metrics": metrics(fused),
                "judged_queries": Metrics.evaluate(run: fused, judgments: judgments).queries,
                "doc_active_dims": Double(stats.postings) / Double(max(stats.documents, 1)),
                "query_active_dims": (queryDims.values.first ?? 0) / Double(max(ids.count, 1)),
                "timings": [
                    "documents_ingested": ingest.committed,
                    "encode_docs_per_s": ingest.encodeSeconds > 0 ? Double(ingest.committed) / ingest.encodeSeconds : 0,
                    "ingest_docs_per_s": ingest.elapsedSeconds > 0 ? Double(ingest.committed) / ingest.elapsedSeconds : 0,
                    "search_latency_ms": LatencySummary(searchLatencies).dictionary,
                    "query_latency_ms": LatencySummary(endToEnd).dictionary,
                ],
            ]
            if encoders.count > 1 {
                out["fusion"] = ["method": fuse.rawValue, "depth": fuseDepth]
                out["fields"] = perField.mapValues { ["metrics": metrics($0)] }
            }
            printLine(try jsonText(out, pretty: true))
        }
    }

    func parsedWeights() throws -> [String: Double] {
        var out: [String: Double] = [:]
        for part in (weights ?? "").split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let w = Double(kv[1]) else { throw ValidationError("--weights takes FIELD=WEIGHT,..., got '\(part)'") }
            out[String(kv[0])] = w
        }
        return out
    }
}
