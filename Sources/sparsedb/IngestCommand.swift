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
    @Option(name: [.customLong("dimensions"), .customLong("dims")], parsing: .unconditional,
            help: "Dimensions of a new field (vector ingest): the vocabulary (sparse, csr) or the row length (dense; default: the first line's).")
    var dimensions: UInt32?
    @Option(help: "Vector ingest: sparse (inverted index), csr (k-sparse codes) or dense (\"dense\": [floats] lines, or an .fbin file).")
    var kind: VectorField.Kind = .sparse
    @Option(name: .customLong("vector-field"), help: "Vector ingest: the field to fill (default: the collection's only field, or 'vector').")
    var vectorField: String?
    @Option(help: "New dense field: dot or cosine.") var metric: VectorField.Metric = .dot
    @Option(help: "New csr or dense field: f32 or f16 storage.") var precision: VectorField.Precision = .float32
    @Option(help: "New csr field: flat, inverted or automatic.") var index: VectorField.CSRIndex = .automatic
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Corpus ingest: re-encode and replace documents whose id is already stored (default: skip them, which resumes an interrupted ingest).")
    var replace = false
    @Option(parsing: .unconditional, help: "Keep only the K largest weights of each document vector (document-side pruning).")
    var maxActiveDims: Int?
    @Flag(help: "Corpus ingest: accept a model different from the one the field was built with.") var allowModelMismatch = false
    @Flag(inversion: .prefixedNo, help: "Re-pack the posting lists at the end when the batches left them fragmented.")
    var compact = true
    @Option(name: .customLong("attribute"), help: "Declare a payload attribute of a new collection, NAME:TYPE (keyword, integer, float, bool); repeatable. Values come from each line's fields.")
    var attributeSpecs: [String] = []

    func validate() throws {
        if (vectors == nil) == (corpus == nil) { throw ValidationError("give exactly one of --vectors or --corpus") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let d = dimensions, d < 1 || d > 1 << 31 { throw ValidationError("--dimensions must be 1 ... 2^31") }
        if corpus != nil && kind != .sparse { throw ValidationError("--kind goes with --vectors; a corpus field's kind follows its model") }
        for spec in attributeSpecs { _ = try LineFormats.attributeDeclaration(spec) }
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

    /// The attributes to read from the input: those declared with --attribute (which a
    /// collection that exists must already have), else the existing collection's.
    private func attributes(_ existing: VectorCollection?) throws -> [AttributeField] {
        let declared = try attributeSpecs.map(LineFormats.attributeDeclaration)
        guard let existing else { return declared }
        for a in declared where !existing.schema.attributes.contains(a) {
            throw SparseDBError.invalidInput(
                "collection '\(existing.name)' exists without attribute \(a.name):\(a.type.rawValue); attributes are declared when a collection is made")
        }
        return existing.schema.attributes
    }

    /// The declared attributes' values in a vector line's other fields.
    private func attributeValues(_ payload: [UInt8]?, _ attributes: [AttributeField], file: String, line: Int) throws -> [String: AttributeValue] {
        guard !attributes.isEmpty, let payload, let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else { return [:] }
        return try LineFormats.attributeValues(object, declared: attributes, file: file, line: line)
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

    /// One parsed input record of the chosen kind.
    private struct InputVector {
        var id: String
        var vector: FieldVector
        var payload: [UInt8]?
        /// `file:line` or `file: row N`, for messages.
        var location: String
        /// The line (JSONL, from 1) or row (`.csr`, from 0).
        var ordinal: Int
    }

    /// Streams the records of `input`: sparse and csr vectors from vector JSONL or a
    /// big-ann-benchmarks `.csr` file; dense vectors from JSONL (`"dense": [...]`), every one as
    /// long as the first (or `dims`, when the field or `--dims` fixes it).
    private func vectorRecords(_ input: InputFile, dims: UInt32?) throws -> () throws -> InputVector? {
        switch kind {
        case .sparse, .csr:
            let reader = try VectorFileReader(input, dimensions: dims ?? (kind == .csr ? 4096 : 30_522))
            let keep = maxActiveDims
            return {
                guard let r = try reader.next() else { return nil }
                var v = r.vector.droppingZeros()
                if let keep { v = v.keepingLargest(keep) }
                return InputVector(id: r.id, vector: .sparse(v), payload: r.payload, location: r.location, ordinal: r.ordinal)
            }
        case .dense:
            guard !BigANN.isBigANNPath(input.path) else {
                throw SparseDBError.invalidInput("\(input.displayName): a .csr file holds sparse vectors; dense vectors come as JSONL lines with \"dense\": [...] or an .fbin file")
            }
            if DenseBin.isDenseBinPath(input.path) {
                let reader = try DenseBinReader(path: input.path, dimensions: dims.map(Int.init))
                return {
                    guard let (row, id, values) = try reader.next() else { return nil }
                    return InputVector(id: id, vector: .dense(values), payload: nil, location: "\(input.displayName): row \(row)", ordinal: row)
                }
            }
            let reader = try input.lines()
            var length = dims.map(Int.init)
            return {
                guard let (line, bytes) = try reader.next() else { return nil }
                let r = try LineFormats.denseRecord(bytes, file: input.displayName, line: line, dimensions: length)
                length = r.values.count
                return InputVector(id: r.id, vector: .dense(r.values), payload: r.payload, location: "\(input.displayName):\(line)", ordinal: line)
            }
        }
    }

    private func ingestVectors(_ input: InputFile) throws {
        let existing = try existingCollection()
        let name = input.displayName
        let fieldName = vectorField ?? (existing?.schema.fields.count == 1 ? existing!.schema.fields[0].name : VectorField.defaultName)
        var field = existing?.schema.fields.first { $0.name == fieldName }
        if let existing, field == nil {
            throw SparseDBError.invalidInput("collection '\(existing.name)' has no field '\(fieldName)'")
        }
        if let field, field.kind != kind {
            throw SparseDBError.invalidInput("field '\(fieldName)' of collection '\(collection)' is \(field.kind.rawValue); give --kind \(field.kind.rawValue)")
        }
        var dims = field?.dimensions ?? dimensions
        let attributes = try self.attributes(existing)
        var maxActive = 0
        var total: Int? = nil
        if input.isRewindable {
            // First pass: check every line, so that a bad line leaves the database exactly as it was.
            var seen = [String: Int]()
            var lines = 0
            let next = try vectorRecords(input, dims: dims)
            while let r = try next() {
                if let first = seen.updateValue(r.ordinal, forKey: r.id) {
                    throw SparseDBError.invalidInput("\(r.location): document id '\(r.id)' repeats \(BigANN.isBigANNPath(input.path) || DenseBin.isDenseBinPath(input.path) ? "row" : "line") \(first)")
                }
                _ = try attributeValues(r.payload, attributes, file: name, line: r.ordinal)
                switch r.vector {
                case .sparse(let v):
                    maxActive = max(maxActive, v.count)
                    if kind == .csr, let k = field?.activeDimensions, v.count > k, field?.keepLargest != true {
                        throw SparseDBError.invalidInput("\(r.location): document '\(r.id)' has \(v.count) active dimensions; field '\(fieldName)' holds at most \(k)")
                    }
                case .dense(let v):
                    if dims == nil { dims = UInt32(v.count) }
                    // What upsert would refuse, here with the file and line, before anything is
                    // written (upsert checks each batch, and earlier batches would be committed):
                    // a value of a dot field stored in f16 beyond its range (cosine rows are
                    // normalized first, so their values are at most 1).
                    if (field?.precision ?? precision) == .float16, (field?.metric ?? metric) == .dot,
                        let i = v.firstIndex(where: { abs($0) > Float(Float16.greatestFiniteMagnitude) })
                    {
                        throw SparseDBError.invalidInput(
                            "\(r.location): document '\(r.id)': value \(i) of field '\(fieldName)' is \(v[i]), beyond half precision (±65504)")
                    }
                }
                lines += 1
            }
            guard lines > 0 else { throw SparseDBError.invalidInput("\(name): the file holds no records") }
            total = lines
        }
        if field == nil {
            switch kind {
            case .sparse:
                field = .sparse(fieldName, dimensions: dims ?? 30_522)
            case .csr:
                guard let k = maxActiveDims ?? (maxActive > 0 ? maxActive : nil) else {
                    throw SparseDBError.invalidInput("a new csr field needs its k: give --max-active-dims (input from a pipe is read once)")
                }
                guard k <= 256 else {
                    throw SparseDBError.invalidInput("\(name): codes have up to \(k) active dimensions; a csr field holds at most 256 (give --max-active-dims to keep the largest)")
                }
                field = .csr(fieldName, dimensions: dims ?? 4096, activeDimensions: k, keepLargest: maxActiveDims != nil, precision: precision, index: index)
            case .dense:
                guard let d = dims else { break }  // a pipe: known from the first line
                field = .dense(fieldName, dimensions: d, metric: metric, precision: precision)
            }
        }
        var coll = existing
        let progress = Progress("ingest \(collection)", total: total, quiet: quiet)
        let committed = InterruptNotice.install(label: "ingest")
        var batch: [Document] = []
        var done = 0
        var seen = Set<String>()
        func flush() throws {
            guard !batch.isEmpty else { return }
            if coll == nil {
                if field == nil, case .dense(let v)? = batch.first?.vectors[fieldName] {
                    field = .dense(fieldName, dimensions: UInt32(v.count), metric: metric, precision: precision)
                }
                coll = try Database(path: database.db).collection(collection, creatingWith: CollectionSchema(fields: [field!], attributes: attributes))
            }
            try coll!.upsert(batch)
            done += batch.count
            committed.set(done)
            batch.removeAll(keepingCapacity: true)
            progress.update(done)
        }
        let next = try vectorRecords(input, dims: dims)
        while let r = try next() {
            guard seen.insert(r.id).inserted else {
                throw SparseDBError.invalidInput("\(r.location): document id '\(r.id)' appears more than once in the input")
            }
            if case .dense(let v) = r.vector, dims == nil { dims = UInt32(v.count) }
            batch.append(
                Document(id: r.id, payload: r.payload, vectors: [fieldName: r.vector], attributes: try attributeValues(r.payload, attributes, file: name, line: r.ordinal)))
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
        let attributes = try self.attributes(existing)
        let fields = encoders.keys.sorted().map { name in
            let encoder = encoders[name]!
            switch encoder.kind {
            case .splade, .inferenceFree:
                return VectorField.sparse(name, dimensions: UInt32(encoder.dimensions))
            case .csr:
                return VectorField.csr(
                    name, dimensions: UInt32(encoder.dimensions), activeDimensions: min(256, maxActiveDims ?? encoder.defaultMaxActiveDims ?? 256),
                    keepLargest: true, precision: precision, index: index)
            case .staticEmbedding, .dense:
                return VectorField.dense(name, dimensions: UInt32(encoder.dimensions), metric: metric, precision: precision)
            }
        }
        let schema = CollectionSchema(fields: fields, attributes: attributes)
        var total: Int? = nil
        if input.isRewindable {
            // Check every line first, so that a malformed corpus is refused before anything is written.
            let reader = try input.lines()
            var seen = [String: Int]()
            var count = 0
            while let (line, bytes) = try reader.next() {
                let o = try LineFormats.object(bytes, file: input.displayName, line: line)
                let id = try LineFormats.id(o, file: input.displayName, line: line)
                _ = try LineFormats.attributeValues(o, declared: attributes, file: input.displayName, line: line)
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
        var source = try CorpusSource(input, attributes: attributes)
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
