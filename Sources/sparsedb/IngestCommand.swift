import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest precomputed vectors (--vectors) or a text corpus (--corpus) into a collection.",
        discussion: """
            A regular file is checked line by line before anything is written: a bad line (broken JSON, \
            invalid UTF-8, a bad weight, a dimension out of range, a non-string, repeated or too long \
            _id) is refused with its file and line and the database stays exactly as it was. Input \
            from a pipe or standard input (`-`) can be read only once: each batch is checked before \
            it is committed, so a bad line stops the ingest with the batches before it committed.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name (created when absent).") var collection: String = "default"
    @Option(help: "Vector JSONL ('-' = stdin): {\"_id\": ..., \"vector\": {\"DIM\": weight}}; other fields become the payload. A name ending in .csr: big-ann-benchmarks sparse format, ids from FILE.csr.ids (else row numbers).")
    var vectors: String?
    @Option(help: "BEIR corpus JSONL ('-' = stdin): {\"_id\", \"title\", \"text\"}; encoded with --model or the --field models.")
    var corpus: String?
    @Option(help: "Model folder, or 'default' (splade-tiny), for a one-field corpus ingest.") var model: String = "default"
    @Option(
        name: .customLong("field"),
        help: "Corpus ingest into several fields: NAME=MODEL (repeatable); each document is encoded once per field.")
    var fields: [String] = []
    @Option(parsing: .unconditional, help: "Documents per write transaction.") var batchSize: Int = 1000
    @Option(parsing: .unconditional, help: "Dimensions of a new collection (vector ingest).") var dimensions: UInt32 = 30_522
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Corpus ingest: re-encode and replace documents whose id is already stored (default: skip them, which resumes an interrupted ingest).")
    var replace = false
    @Option(parsing: .unconditional, help: "Keep only the K largest weights of each document vector (document-side pruning).")
    var maxActiveDims: Int?
    @Flag(help: "Corpus ingest: accept a model different from the one the field was built with.") var allowModelMismatch = false
    @Flag(inversion: .prefixedNo, help: "Re-pack the posting lists at the end when the batches left them fragmented.")
    var compact = true

    func validate() throws {
        if (vectors == nil) == (corpus == nil) { throw ValidationError("give exactly one of --vectors or --corpus") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if dimensions < 1 || dimensions > 1 << 31 { throw ValidationError("--dimensions must be 1 ... 2^31") }
        if let k = maxActiveDims, k < 1 { throw ValidationError("--max-active-dims must be at least 1, got \(k)") }
        if vectors != nil && !fields.isEmpty { throw ValidationError("--field goes with --corpus") }
        _ = try fieldModels()
    }

    /// `--field NAME=MODEL` pairs, in order.
    func fieldModels() throws -> [(name: String, model: String)] {
        try fields.map { spec in
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw ValidationError("--field takes NAME=MODEL (a model folder or 'default'), got '\(spec)'")
            }
            return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
        }
    }

    func run() throws {
        try reportingErrors {
            if let vectors { try ingestVectors(try InputFile(path: vectors)) } else if let corpus { try ingestCorpus(try InputFile(path: corpus)) }
        }
    }

    /// The collection as it is now, without creating the database (nil when either is absent).
    private func existingCollection() throws -> VectorCollection? {
        guard FileManager.default.fileExists(atPath: database.db + "/data.mdb") else { return nil }
        let db = try Database(path: database.db, configuration: .existing)
        return try db.collectionNames().contains(collection) ? try db.collection(collection) : nil
    }

    private func compactIfNeeded(_ coll: VectorCollection) throws {
        guard compact else { return }
        let t0 = Date()
        if try coll.compactIfFragmented(), !quiet {
            stderrLine(String(format: "compacted the posting lists in %.1f s", Date().timeIntervalSince(t0)))
        }
    }

    // MARK: vectors

    private func ingestVectors(_ input: InputFile) throws {
        let existing = try existingCollection()
        let dims = existing?.dimensions ?? dimensions
        let name = input.displayName
        var total: Int? = nil
        if input.isRewindable {
            // First pass: check every line, so that a bad line leaves the database exactly as it was.
            var seen = [String: Int]()
            var lines = 0
            let reader = try VectorFileReader(input, dimensions: dims)
            while let r = try reader.next() {
                if let first = seen.updateValue(r.ordinal, forKey: r.id) {
                    throw SparseDBError.invalidInput("\(r.location): document id '\(r.id)' repeats \(reader.format == .bigANN ? "row" : "line") \(first)")
                }
                lines += 1
            }
            guard lines > 0 else { throw SparseDBError.invalidInput("\(name): the file holds no records") }
            total = lines
        }
        var coll = existing
        let progress = Progress("ingest \(collection)", total: total, quiet: quiet)
        let committed = InterruptNotice.install(label: "ingest")
        var batch: [Document] = []
        var done = 0
        var seen = Set<String>()
        func flush() throws {
            guard !batch.isEmpty else { return }
            if coll == nil { coll = try Database(path: database.db).collection(collection, creatingWithDimensions: dims) }
            try coll!.upsert(batch)
            done += batch.count
            committed.set(done)
            batch.removeAll(keepingCapacity: true)
            progress.update(done)
        }
        let reader = try VectorFileReader(input, dimensions: dims)
        while let r = try reader.next() {
            guard seen.insert(r.id).inserted else {
                throw SparseDBError.invalidInput("\(r.location): document id '\(r.id)' appears more than once in the input")
            }
            let vector = maxActiveDims.map { r.vector.droppingZeros().keepingLargest($0) } ?? r.vector
            batch.append(Document(id: r.id, payload: r.payload, vector: vector))
            if batch.count >= batchSize { try flush() }
        }
        try flush()
        guard done > 0, let coll else { throw SparseDBError.invalidInput("\(name): the input holds no records") }
        progress.finish(done)
        try compactIfNeeded(coll)
    }

    // MARK: corpus

    private func ingestCorpus(_ input: InputFile) throws {
        let specs = try fieldModels()
        let existing = try existingCollection()
        var encoders: [String: TextEncoder] = [:]
        if specs.isEmpty {
            let field = existing?.schema.fields.count == 1 ? existing!.schema.fields[0].name : VectorField.defaultName
            encoders[field] = try TextEncoder(path: model)
        } else {
            for (name, model) in specs {
                guard encoders[name] == nil else { throw SparseDBError.invalidInput("--field \(name) is given twice") }
                encoders[name] = try TextEncoder(path: model)
            }
        }
        let schema = try CollectionSchema(fields: encoders.keys.sorted().map { name in
            let encoder = encoders[name]!
            guard encoder.producesSparseVectors else {
                throw SparseDBError.invalidInput("model '\(encoder.name)' produces dense embeddings, which this SparseDB cannot store yet")
            }
            return VectorField.sparse(name, dimensions: UInt32(encoder.dimensions))
        })
        var total: Int? = nil
        if input.isRewindable {
            // Check every line first, so that a malformed corpus is refused before anything is written.
            let reader = try input.lines()
            var seen = [String: Int]()
            var count = 0
            while let (line, bytes) = try reader.next() {
                let o = try LineFormats.object(bytes, file: input.displayName, line: line)
                let id = try LineFormats.id(o, file: input.displayName, line: line)
                if let first = seen.updateValue(line, forKey: id) {
                    throw SparseDBError.invalidInput("\(input.displayName):\(line): document id '\(id)' repeats line \(first)")
                }
                count += 1
            }
            guard count > 0 else { throw SparseDBError.invalidInput("\(input.displayName): the file holds no records") }
            total = count
        }
        let coll = try existing ?? Database(path: database.db).collection(collection, creatingWith: schema)
        for name in encoders.keys where !coll.schema.fields.contains(where: { $0.name == name }) {
            throw SparseDBError.invalidInput("collection '\(collection)' has no field '\(name)' (fields: \(coll.schema.fields.map(\.name).joined(separator: ", ")))")
        }
        let progress = Progress("ingest \(collection)", total: total, quiet: quiet)
        let committed = InterruptNotice.install(label: "ingest")
        var source = try CorpusSource(input)
        let report = try coll.ingest(
            &source, encoders: encoders,
            options: IngestOptions(
                batchSize: batchSize, replace: replace, maxActiveDims: maxActiveDims, allowModelMismatch: allowModelMismatch, compact: compact)
        ) { p in
            committed.set(p.committed + p.skipped)
            progress.update(p.committed + p.skipped)
        }
        guard report.read > 0 else { throw SparseDBError.invalidInput("\(input.displayName): the input holds no records") }
        progress.finish(report.committed + report.skipped)
        if report.compacted && !quiet { stderrLine(String(format: "compacted the posting lists in %.1f s", report.compactSeconds)) }
        if !quiet {
            stderrLine(
                String(
                    format: "ingested %d documents (%d already present) in %.1f s: %.1f docs/s end to end; encoding %.1f s, writing %.1f s",
                    report.committed, report.skipped, report.elapsedSeconds, Double(report.committed) / max(report.elapsedSeconds, 1e-9),
                    report.encodeSeconds, report.writeSeconds))
        }
    }
}
