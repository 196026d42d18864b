import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Top-k search by query text or query vectors.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String = "default"
    @Option(help: "One query text.") var query: String?
    @Option(help: "Query JSONL {\"_id\", \"text\"} ('-' = stdin).") var queries: String?
    @Option(help: "Query vector JSONL {\"_id\", \"vector\"} ('-' = stdin), or a big-ann-benchmarks .csr file (ids from FILE.csr.ids, else row numbers); dense fields: {\"_id\", \"dense\"} lines or an .fbin file.")
    var queryVectors: String?
    @Option(parsing: .unconditional, help: "Hits per query (≥ 1).") var k: Int = 10
    @Option(help: "exhaustive | maxscore | wand | bmw.") var algorithm: SearchAlgorithm = .maxscore
    @Option(help: "The field to search (default: the collection's only field).") var field: String?
    @Option(help: "trec | jsonl | text (readable, with payload snippets).") var format: OutputFormat = .trec
    @Option(help: "Model folder or 'default' for text queries (default: the field's own encoder).") var model: String?
    @Flag(help: "Accept a --model different from the one the field was built with.") var allowModelMismatch = false
    @Option(parsing: .unconditional, help: "Approximate: walk only the lists of this many largest query weights (≥ 1); hits are still scored with the whole query.") var maxQueryTerms: Int?
    @Option(parsing: .unconditional, help: "Approximate: rescore this many of the pruned search's best documents with the whole query (k ... 2^20; default k).") var candidates: Int?
    @Option(parsing: .unconditional, help: "Approximate: prune below this factor × the k-th score (1 = exact).") var heapFactor: Float = 1
    @Option(
        parsing: .unconditional,
        help: "Approximate, no traversal: score every document among each walked list's N largest postings from in-memory rows, rescore the best --candidates exactly (1 ... 2^24).")
    var postingsPerTerm: Int?
    @Option(parsing: .unconditional, help: "CSR fields: keep only the query's K largest entries.") var maxActiveDims: Int?
    @Option(name: .customLong("dims"), parsing: .unconditional, help: "Dense fields: score on the first D dimensions (Matryoshka).") var dims: Int?
    @Option(help: "Hybrid search over several fields with text queries: rrf or weighted.") var fuse: FusionOptions.Method?
    @Option(help: "Hybrid: the fields to search, comma-separated (default: all fields with a recorded model).") var fields: String?
    @Option(help: "Hybrid, weighted: FIELD=WEIGHT,... (fields not named share the rest equally).") var weights: String?
    @Option(parsing: .unconditional, help: "Hybrid: how deep each field's exact ranking goes.") var fuseDepth: Int = 100
    @Option(help: "Only documents matching this JSON filter on payload attributes, e.g. '{\"pos\": \"verb\"}' or '{\"year\": {\"gte\": 2000}}'.")
    var filter: String?
    @Option(help: "Run tag for TREC output.") var tag: String = "sparsedb"
    @Option(
        parsing: .unconditional,
        help: "--query-vectors: answer N queries at a time from one snapshot (dense fields: one pass over the rows per batch; --latencies then reports the batch's time divided by N).")
    var batch: Int = 1
    @Flag(help: "jsonl output: add each query's search latency in milliseconds.") var latencies = false
    @Flag(help: "Run every query once before the measured run (warms the posting cache), for latency measurements.") var warmup = false

    enum OutputFormat: String, ExpressibleByArgument { case trec, jsonl, text }

    func validate() throws {
        if batch < 1 || batch > 65_536 { throw ValidationError("--batch must be 1 ... 65536, got \(batch)") }
        if batch > 1 && queryVectors == nil { throw ValidationError("--batch goes with --query-vectors") }
        let given = [query != nil, queries != nil, queryVectors != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("give exactly one of --query, --queries or --query-vectors") }
        if k < 1 { throw ValidationError("--k must be at least 1, got \(k)") }
        if let m = maxQueryTerms, m < 1 { throw ValidationError("--max-query-terms must be at least 1, got \(m)") }
        if let c = candidates, c < k || c > 1 << 20 { throw ValidationError("--candidates must be between --k (\(k)) and 2^20, got \(c)") }
        if !(heapFactor >= 1) || !heapFactor.isFinite { throw ValidationError("--heap-factor must be a number ≥ 1, got \(heapFactor)") }
        if let p = postingsPerTerm, p < 1 || p > 1 << 24 { throw ValidationError("--postings-per-term must be 1 ... 2^24, got \(p)") }
        if tag.contains(where: \.isWhitespace) || tag.isEmpty { throw ValidationError("--tag must be one word") }
        if let query, query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--query is empty") }
        if let m = maxActiveDims, m < 1 { throw ValidationError("--max-active-dims must be at least 1, got \(m)") }
        if let d = dims, d < 1 { throw ValidationError("--dims must be at least 1, got \(d)") }
        if fuseDepth < 1 { throw ValidationError("--fuse-depth must be at least 1") }
        if fuse != nil && queryVectors != nil { throw ValidationError("--fuse takes text queries (--query or --queries): each field encodes them with its model") }
        if fuse == nil && (fields != nil || weights != nil) { throw ValidationError("--fields and --weights go with --fuse") }
        if fuse != nil && field != nil { throw ValidationError("--field searches one field; --fuse searches several (--fields)") }
        _ = try parsedWeights()
        if let filter { _ = try Filter(json: filter) }
    }

    var options: SearchOptions {
        SearchOptions(
            k: k, algorithm: algorithm, field: field, maxQueryTerms: maxQueryTerms, heapFactor: heapFactor, maxActiveDims: maxActiveDims,
            dimensions: dims, filter: filter.flatMap { try? Filter(json: $0) }, candidates: candidates, postingsPerTerm: postingsPerTerm)
    }

    func parsedWeights() throws -> [String: Double] {
        var out: [String: Double] = [:]
        for part in (weights ?? "").split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let w = Double(kv[1]), w.isFinite, w >= 0 else { throw ValidationError("--weights takes FIELD=WEIGHT,..., got '\(part)'") }
            out[String(kv[0])] = w
        }
        return out
    }

    func run() throws {
        try reportingErrors {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let coll = try db.collection(collection)
            let output = ResultWriter(format: format, tag: tag, withLatency: latencies)
            var measured: [Double] = []
            if let path = queryVectors {
                let input = try InputFile(path: path)
                let target = try searchedField(coll)
                var queries: [(String, FieldVector)] = []
                if target.kind == .dense {
                    queries = try readDenseQueries(input).map { ($0.id, .dense($0.values)) }
                } else {
                    let reader = try VectorFileReader(input, dimensions: target.dimensions)
                    while let r = try reader.next() { queries.append((r.id, .sparse(r.vector))) }
                }
                if warmup { for (_, q) in queries { _ = try coll.search(q, options: options) } }
                for start in stride(from: 0, to: queries.count, by: batch) {
                    let group = queries[start..<min(queries.count, start + batch)]
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let results = batch == 1 ? [try coll.search(group.first!.1, options: options)] : try coll.search(batch: group.map(\.1), options: options)
                    let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(group.count)
                    for ((qid, _), result) in zip(group, results) {
                        measured.append(ms)
                        try output.emit(qid, result, latency: ms)
                    }
                }
            } else {
                var items: [(String, String)] = []
                if let query { items = [("1", query)] }
                if let path = queries {
                    let input = try InputFile(path: path)
                    let reader = try input.lines()
                    while let (line, bytes) = try reader.next() {
                        let o = try LineFormats.object(bytes, file: input.displayName, line: line)
                        let id = try LineFormats.id(o, file: input.displayName, line: line)
                        guard let text = o["text"] as? String, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                            throw SparseDBError.invalidInput("\(input.displayName):\(line): query '\(id)' has no \"text\"")
                        }
                        items.append((id, text))
                    }
                }
                if let method = fuse {
                    let names = fields.map { $0.split(separator: ",").map(String.init) }
                        ?? coll.schema.fields.map(\.name).filter { (try? coll.encoderDescription(field: $0)) != nil }
                    guard !names.isEmpty else { throw SparseDBError.invalidInput("no field of collection '\(coll.name)' was built from text; name them with --fields and models with --model") }
                    var encoders: [String: TextEncoder] = [:]
                    for name in names { encoders[name] = try coll.queryEncoder(model: model, field: name, allowMismatch: allowModelMismatch) }
                    let fusion = FusionOptions(method: method, depth: fuseDepth, weights: try parsedWeights())
                    for (qid, text) in items {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let result = try coll.search(text: text, encoders: encoders, fusion: fusion, options: options)
                        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                        measured.append(ms)
                        try output.emit(qid, SearchResult(hits: result.hits, statistics: SearchStatistics()), latency: ms)
                    }
                } else {
                    let encoder = try coll.queryEncoder(model: model, field: field, allowMismatch: allowModelMismatch)
                    if warmup { for (_, text) in items { _ = try coll.search(text: text, encoder: encoder, options: options) } }
                    for (qid, text) in items {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let result = try coll.search(text: text, encoder: encoder, options: options)
                        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                        measured.append(ms)
                        try output.emit(qid, result, latency: ms)
                    }
                }
            }
            if !measured.isEmpty {
                let s = LatencySummary(measured)
                stderrLine(String(format: "%d queries, %@: mean %.3f ms, p50 %.3f ms, p99 %.3f ms", s.count, algorithm.rawValue, s.mean, s.p50, s.p99))
            }
        }
    }

    private func searchedField(_ coll: VectorCollection) throws -> VectorField {
        if let field {
            guard let f = coll.schema.fields.first(where: { $0.name == field }) else {
                throw SparseDBError.invalidInput("collection '\(coll.name)' has no field '\(field)'")
            }
            return f
        }
        if coll.schema.fields.count == 1 { return coll.schema.fields[0] }
        guard let f = coll.schema.fields.first(where: { $0.name == VectorField.defaultName }) else {
            throw SparseDBError.invalidInput("collection '\(coll.name)' has fields \(coll.schema.fields.map(\.name).joined(separator: ", ")): name one with --field")
        }
        return f
    }
}

/// Writes results in the chosen format on stdout.
struct ResultWriter {
    let format: SearchCommand.OutputFormat
    let tag: String
    let withLatency: Bool

    func emit(_ qid: String, _ result: SearchResult, latency: Double) throws {
        switch format {
        case .trec:
            // TREC runs are whitespace-separated: an id with a space cannot be written unambiguously.
            for id in [qid] + result.hits.map(\.id) where id.contains(where: \.isWhitespace) {
                throw SparseDBError.invalidInput("id '\(id)' contains white space, which a TREC run cannot hold; use --format jsonl")
            }
            var out = ""
            for (rank, hit) in result.hits.enumerated() {
                out += "\(qid) Q0 \(hit.id) \(rank + 1) \(String(format: "%.6f", hit.score)) \(tag)\n"
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        case .text:
            printLine("query \(qid):")
            for (rank, hit) in result.hits.enumerated() {
                var snippet = ""
                if let p = hit.payload, let o = (try? JSONSerialization.jsonObject(with: Data(p))) as? [String: Any] {
                    let title = (o["title"] as? String) ?? ""
                    let text = (o["text"] as? String) ?? ""
                    snippet = title.isEmpty ? text : "\(title): \(text)"
                } else if let p = hit.payload {
                    snippet = String(decoding: p, as: UTF8.self)
                }
                snippet = String(snippet.map { $0.isNewline ? " " : $0 })
                if snippet.count > 100 { snippet = String(snippet.prefix(97)) + "..." }
                printLine(String(format: "%3d. %8.3f  %@  %@", rank + 1, hit.score, hit.id, snippet))
            }
        case .jsonl:
            var hits: [[String: Any]] = []
            for (rank, hit) in result.hits.enumerated() {
                var h: [String: Any] = ["id": hit.id, "rank": rank + 1, "score": hit.score]
                if let p = hit.payload {
                    h["payload"] = (try? JSONSerialization.jsonObject(with: Data(p))) ?? String(decoding: p, as: UTF8.self)
                }
                hits.append(h)
            }
            let s = result.statistics
            var object: [String: Any] = [
                "query_id": qid, "hits": hits,
                "stats": [
                    "terms": s.terms, "postings_decoded": s.postingsDecoded, "blocks_decoded": s.blocksDecoded, "blocks_skipped": s.blocksSkipped,
                    "blocks_decompressed": s.blocksDecompressed, "documents_scored": s.documentsScored, "candidates_rescored": s.candidatesRescored,
                ],
            ]
            if withLatency { object["latency_ms"] = latency }
            printLine(try jsonText(object))
        }
    }
}
