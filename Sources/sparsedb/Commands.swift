import ArgumentParser
import Foundation
import SparseDB

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest precomputed vectors (--vectors) or a text corpus (--corpus) into a collection.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name (created when absent).") var collection: String = "default"
    @Option(help: "Vector JSONL: {\"_id\": ..., \"vector\": {\"DIM\": weight}}; other fields become the payload.")
    var vectors: String?
    @Option(help: "BEIR corpus JSONL: {\"_id\", \"title\", \"text\"}; encoded with --model.") var corpus: String?
    @Option(help: "Model folder, or 'default' (splade-tiny).") var model: String = "default"
    @Option(help: "Documents per write transaction.") var batchSize: Int = 1000
    @Option(help: "Dimensions of a new collection (vector ingest).") var dimensions: UInt32 = 30_522
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Corpus ingest: re-encode and replace documents whose id is already stored (default: skip them, which resumes an interrupted ingest).")
    var replace = false
    @Option(help: "Keep only the K largest weights of each document vector (document-side pruning).") var maxActiveDims: Int?
    @Flag(help: "Corpus ingest: accept a model different from the one the collection was built with.") var allowModelMismatch = false
    @Flag(help: "Do not compact at the end even when the batches left the posting lists fragmented.") var noCompact = false

    /// Re-packs the lists when many small batches fragmented them (cheap next to the ingest itself).
    private func compactIfNeeded(_ coll: SparseDB.Collection) throws {
        guard !noCompact else { return }
        let t0 = Date()
        if try coll.compactIfFragmented(), !quiet {
            stderrLine(String(format: "compacted the posting lists in %.1f s", Date().timeIntervalSince(t0)))
        }
    }

    func validate() throws {
        if (vectors == nil) == (corpus == nil) { throw ValidationError("give exactly one of --vectors or --corpus") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if dimensions < 1 || dimensions > 1 << 31 { throw ValidationError("--dimensions must be 1 ... 2^31") }
        if let k = maxActiveDims, k < 1 { throw ValidationError("--max-active-dims must be at least 1") }
    }

    func run() throws {
        try SparseDBCommand.guarded {
            if let vectors { try ingestVectors(vectors) } else if let corpus { try ingestCorpus(corpus) }
        }
    }

    private func ingestCorpus(_ path: String) throws {
        let encoder = try TextEncoder(path: model)
        guard encoder.producesSparseVectors else {
            throw SparseDBError.invalidInput("model '\(encoder.name)' produces dense embeddings; the sparse index needs a sparse model")
        }
        // Check every line first, so that a malformed corpus is refused before anything is written.
        var total = 0
        for (line, bytes) in try JSONLinesReader(path: path) {
            _ = try LineFormats.id(try LineFormats.object(bytes, file: path, line: line), file: path, line: line)
            total += 1
        }
        guard total > 0 else { throw SparseDBError.emptyInput(path) }
        let db = try Database(path: database.db)
        let coll = try db.collection(collection, creatingWithDimensions: UInt32(encoder.dimensions))
        let progress = Progress("ingest \(collection)", total: total, quiet: quiet)
        let committed = InterruptNotice.install(label: "ingest")
        let report = try coll.ingest(
            try corpusDocuments(path), encoder: encoder,
            options: IngestOptions(
                batchSize: batchSize, skipExisting: !replace, maxActiveDims: maxActiveDims, allowModelMismatch: allowModelMismatch,
                compactWhenFragmented: !noCompact)
        ) { p in
            committed.set(p.committed + p.skipped)
            progress.update(p.committed + p.skipped)
        }
        progress.finish(report.committed + report.skipped)
        if report.compacted && !quiet { stderrLine(String(format: "compacted the posting lists in %.1f s", report.compactSeconds)) }
        if !quiet {
            stderrLine(String(format: "ingested %d documents (%d already present) in %.1f s: %.1f docs/s end to end; encoding %.1f s, writing %.1f s",
                              report.committed, report.skipped, report.elapsedSeconds, Double(report.committed) / max(report.elapsedSeconds, 1e-9),
                              report.encodeSeconds, report.writeSeconds))
        }
    }

    private func ingestVectors(_ path: String) throws {
        let reader = try JSONLinesReader(path: path)
        let db = try Database(path: database.db)
        let dims = (try? db.collection(collection).dimensions) ?? dimensions
        // First pass: check every line, so that a bad line leaves the database exactly as it was.
        var lines = 0
        for (line, bytes) in reader {
            _ = try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: dims)
            lines += 1
        }
        guard lines > 0 else { throw SparseDBError.emptyInput(path) }
        let coll = try db.collection(collection, creatingWithDimensions: dims)
        let progress = Progress("ingest \(collection)", total: lines, quiet: quiet)
        var batch: [Document] = []
        var done = 0
        for (line, bytes) in reader {
            let r = try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: dims)
            let vector = maxActiveDims.map { r.vector.droppingZeros().keepingLargest($0) } ?? r.vector
            batch.append(Document(id: r.id, payload: r.payload, vector: vector))
            if batch.count >= batchSize {
                try coll.upsert(batch)
                done += batch.count
                batch.removeAll(keepingCapacity: true)
                progress.update(done)
            }
        }
        try coll.upsert(batch)
        done += batch.count
        progress.finish(done)
        try compactIfNeeded(coll)
    }
}

extension SparseDBError {
    static func emptyInput(_ path: String) -> SparseDBError {
        SparseDBError.invalidInput("\(path): the file holds no records")
    }
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Top-k search by query text or query vectors.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String = "default"
    @Option(help: "One query text.") var query: String?
    @Option(help: "Query JSONL {\"_id\", \"text\"}.") var queries: String?
    @Option(help: "Query vector JSONL {\"_id\", \"vector\"}.") var queryVectors: String?
    @Option(help: "Hits per query.") var k: Int = 10
    @Option(help: "exhaustive | maxscore | wand | bmw.") var algorithm: SearchAlgorithm = .maxscore
    @Option(help: "trec | jsonl | text (readable, with payload snippets).") var format: OutputFormat = .trec
    @Option(help: "Model folder or 'default' for text queries (default: the collection's own encoder).") var model: String?
    @Flag(help: "Accept a --model different from the one the collection was built with.") var allowModelMismatch = false
    @Option(help: "Approximate: keep only this many largest query weights.") var maxQueryTerms: Int?
    @Option(help: "Approximate: prune below this factor × the k-th score (1 = exact).") var heapFactor: Float = 1
    @Option(help: "Run tag for TREC output.") var tag: String = "sparsedb"
    @Flag(help: "jsonl output: add each query's search latency in milliseconds.") var latencies = false
    @Flag(help: "Run every query once before the measured run (warms the decoded-postings cache), for latency measurements.") var warmup = false

    enum OutputFormat: String, ExpressibleByArgument { case trec, jsonl, text }

    func validate() throws {
        let given = [query != nil, queries != nil, queryVectors != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("give exactly one of --query, --queries or --query-vectors") }
        if k < 1 { throw ValidationError("--k must be at least 1") }
    }

    func run() throws {
        try SparseDBCommand.guarded {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let coll = try db.collection(collection)
            let options = SearchOptions(k: k, algorithm: algorithm, maxQueryTerms: maxQueryTerms, thresholdFactor: heapFactor)
            var latencies: [Double] = []
            let withLatency = self.latencies
            func emit(_ qid: String, _ result: SearchResult) {
                switch format {
                case .trec:
                    for (rank, hit) in result.hits.enumerated() {
                        printLine("\(qid) Q0 \(hit.id) \(rank + 1) \(String(format: "%.6f", hit.score)) \(tag)")
                    }
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
                        "stats": ["terms": s.terms, "postings_decoded": s.postingsDecoded, "blocks_decoded": s.blocksDecoded,
                                  "blocks_skipped": s.blocksSkipped, "documents_scored": s.documentsScored,
                                  "candidates_rescored": s.candidatesRescored],
                    ]
                    if withLatency, let last = latencies.last { object["latency_ms"] = last }
                    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
                    printLine(String(decoding: data, as: UTF8.self))
                }
            }
            if let path = queryVectors {
                if warmup {
                    for (line, bytes) in try JSONLinesReader(path: path) {
                        _ = try coll.search(try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: coll.dimensions).vector, options: options)
                    }
                }
                for (line, bytes) in try JSONLinesReader(path: path) {
                    let r = try LineFormats.vectorRecord(bytes, file: path, line: line, dimensions: coll.dimensions)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let result = try coll.search(r.vector, options: options)
                    latencies.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                    emit(r.id, result)
                }
            } else {
                let encoder = try coll.queryEncoder(model: model, allowMismatch: allowModelMismatch)
                var items: [(String, String)] = []
                if let query { items = [("1", query)] }
                if let path = queries {
                    for (line, bytes) in try JSONLinesReader(path: path) {
                        let o = try LineFormats.object(bytes, file: path, line: line)
                        items.append((try LineFormats.id(o, file: path, line: line), (o["text"] as? String) ?? ""))
                    }
                }
                for (qid, text) in items {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let result = try coll.search(text: text, encoder: encoder, options: options)
                    latencies.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                    emit(qid, result)
                }
            }
            if !latencies.isEmpty {
                let sorted = latencies.sorted()
                let mean = latencies.reduce(0, +) / Double(latencies.count)
                stderrLine(String(format: "%d queries, %@: mean %.3f ms, p50 %.3f ms, p99 %.3f ms", latencies.count,
                                  algorithm.rawValue, mean, sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]))
            }
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete documents by id (a file with one id a line).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String = "default"
    @Option(help: "File with one external id a line.") var ids: String

    func run() throws {
        try SparseDBCommand.guarded {
            guard let text = FileManager.default.contents(atPath: ids) else { throw SparseDBError.notFound("\(ids): no such readable file") }
            guard let s = String(data: text, encoding: .utf8) else { throw SparseDBError.invalidInput("\(ids): not valid UTF-8") }
            let list = s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let db = try Database(path: database.db, configuration: .existing)
            let missing = try db.collection(collection).delete(ids: list)
            stderrLine("deleted \(list.count - missing.count) documents; \(missing.count) ids not found")
        }
    }
}

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove deleted documents and re-pack posting lists.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name (all collections when omitted).") var collection: String?

    func run() throws {
        try SparseDBCommand.guarded {
            let db = try Database(path: database.db, configuration: .existing)
            for name in try collection.map({ [$0] }) ?? db.collectionNames() {
                let t0 = Date()
                try db.collection(name).compact()
                stderrLine("compacted \(name) in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
            }
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Counts and sizes as JSON.")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try SparseDBCommand.guarded {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            printLine(String(decoding: try encoder.encode(try db.statistics()), as: UTF8.self))
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check checksums, references and counts; exit 1 on any problem.")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try SparseDBCommand.guarded {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let problems = try db.verify()
            if problems.isEmpty {
                printLine("ok: \(try db.collectionNames().count) collections verified")
            } else {
                for p in problems { printLine(p) }
                throw ExitCode(1)
            }
        }
    }
}

/// Counts the lines of a file (for progress totals), reading it in chunks.
func countLines(_ path: String) throws -> Int {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw SparseDBError.notFound("\(path): no such readable file") }
    defer { try? handle.close() }
    var count = 0
    var last: UInt8 = 0x0A
    while true {
        let chunk = handle.readData(ofLength: 1 << 22)
        if chunk.isEmpty { break }
        chunk.withUnsafeBytes { b in for byte in b where byte == 0x0A { count += 1 } }
        last = chunk.last ?? last
    }
    return count + (last == 0x0A ? 0 : 1)
}

/// Streams a BEIR corpus as text documents; the line's other fields become the payload.
/// A malformed line stops the sequence with an error naming the file and line.
func corpusDocuments(_ path: String) throws -> CorpusSequence { CorpusSequence(reader: try JSONLinesReader(path: path)) }

struct CorpusSequence: Sequence {
    let reader: JSONLinesReader

    struct Iterator: IteratorProtocol {
        var lines: JSONLinesReader.Iterator
        let path: String
        mutating func next() -> TextDocument? {
            guard let (line, bytes) = lines.next() else { return nil }
            do {
                var o = try LineFormats.object(bytes, file: path, line: line)
                let id = try LineFormats.id(o, file: path, line: line)
                let text = documentText(o)
                o["_id"] = nil
                return TextDocument(id: id, text: text, payload: LineFormats.payload(o))
            } catch {
                // Sequences cannot throw: report and stop (committed batches stay committed).
                stderrLine("sparsedb: error: \((error as? SparseDBError)?.message ?? "\(error)")")
                Foundation.exit(1)
            }
        }
    }

    func makeIterator() -> Iterator { Iterator(lines: reader.makeIterator(), path: reader.path) }
}

/// On Ctrl-C (SIGINT) or SIGTERM during an ingest: say how far it got and how to resume, then
/// exit. The write transaction in flight is simply not committed; every committed batch stays.
enum InterruptNotice {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func set(_ v: Int) { lock.withLock { value = v } }
        var current: Int { lock.withLock { value } }
    }

    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func install(label: String) -> Counter {
        let counter = Counter()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                stderrLine("\nsparsedb: \(label) interrupted: \(counter.current) documents are stored; run the same command again to resume")
                _exit(130)
            }
            source.resume()
            sources.append(source)
        }
        return counter
    }
}
