import Foundation
import SparseDBCore
import SparseDBIndex

/// Progress of ``VectorCollection/ingest(_:encoders:options:progress:)``, reported after every commit.
public struct IngestProgress: Sendable {
    /// Documents read from the input so far.
    public var read = 0
    /// Documents encoded and committed so far.
    public var committed = 0
    /// Documents skipped because their id was already stored (resuming).
    public var skipped = 0
    /// Seconds spent encoding (summed over batches and fields).
    public var encodeSeconds = 0.0
    /// Seconds spent in write transactions (summed over batches).
    public var writeSeconds = 0.0
    /// Wall-clock seconds since the start (compaction excluded).
    public var elapsedSeconds = 0.0
    /// Whether the posting lists were re-packed at the end.
    public var compacted = false
    /// Seconds the compaction took.
    public var compactSeconds = 0.0
}

/// Options of a text ingest. The names match the command line's flags (`--batch-size`,
/// `--replace`, `--max-active-dims`, `--allow-model-mismatch`, `--compact`/`--no-compact`).
public struct IngestOptions: Sendable {
    /// Documents per write transaction (and per encoder call).
    public var batchSize = 256
    /// Re-encode and replace documents whose id is already stored; by default they are skipped,
    /// so that running an interrupted ingest again resumes where it stopped.
    public var replace = false
    /// Keep only this many largest weights per sparse document vector (document-side pruning).
    public var maxActiveDims: Int? = nil
    /// Accept an encoder other than the one the field was built with.
    public var allowModelMismatch = false
    /// Re-pack the posting lists at the end when the batches left them fragmented
    /// (see ``VectorCollection/fragmentation()``).
    public var compact = true

    /// Options with the given values.
    public init(batchSize: Int = 256, replace: Bool = false, maxActiveDims: Int? = nil, allowModelMismatch: Bool = false, compact: Bool = true) {
        self.batchSize = batchSize
        self.replace = replace
        self.maxActiveDims = maxActiveDims
        self.allowModelMismatch = allowModelMismatch
        self.compact = compact
    }
}

/// A stream of text documents that can fail part-way (a file being parsed): ingest stops with
/// the source's error, keeping every batch committed before it.
public protocol TextDocumentSource {
    /// The next document, `nil` at the end; throws when the input is bad.
    mutating func next() throws -> TextDocument?
}

/// A sequence of text documents as a source that never fails.
struct SequenceSource<Base: IteratorProtocol<TextDocument>>: TextDocumentSource {
    var base: Base
    mutating func next() throws -> TextDocument? { base.next() }
}

extension VectorCollection {
    /// The encoder a field was built with, when it was built from text (`field` nil = the only field).
    public func encoderDescription(field: String? = nil) throws -> EncoderDescription? {
        let record = try currentRecord()
        return try resolveField(field, in: record).encoder.map { EncoderDescription(name: $0.name, checksum: $0.checksum, kind: $0.kind, path: $0.path) }
    }

    static func checkEncoder(_ field: FieldRecord, _ encoder: TextEncoder, collection: String, allowMismatch: Bool) throws {
        let kind = try field.knownKind(collection: collection)
        switch (kind, encoder.producesSparseVectors) {
        case (.sparse, true), (.csr, true), (.dense, false): break
        default:
            throw SparseDBError(
                .invalidInput, "model '\(encoder.name)' (\(encoder.kind.rawValue)) cannot feed field '\(field.name)' of kind \(kind.rawValue)")
        }
        if kind != .dense, UInt32(encoder.dimensions) > field.dimensions {
            throw SparseDBError(
                .invalidInput, "model '\(encoder.name)' produces \(encoder.dimensions) dimensions; field '\(field.name)' has \(field.dimensions)")
        }
        guard let record = field.encoder, !allowMismatch else { return }
        if record.checksum != encoder.checksum || record.kind != encoder.kind.rawValue {
            throw SparseDBError(
                .modelMismatch,
                "field '\(field.name)' of collection '\(collection)' was built with model '\(record.name)' (\(record.kind), checksum \(record.checksum)), not '\(encoder.name)' (\(encoder.kind.rawValue), checksum \(encoder.checksum)); use the same model or allow a mismatch explicitly")
        }
    }

    /// Encodes `documents` with `encoder` and upserts them into the collection's only (or
    /// `field`) field in one transaction, recording the encoder on first use.
    public func upsert(_ documents: [TextDocument], encoder: TextEncoder, field: String? = nil, maxActiveDims: Int? = nil, allowModelMismatch: Bool = false)
        throws
    {
        let name = try resolveField(field, in: try currentRecord()).name
        let vectors = try encoder.fieldVectors(documents.map(\.text), task: .document, maxActiveDims: maxActiveDims)
        try commit(
            zip(documents, vectors).map { Document(id: $0.id, payload: $0.payload, vectors: [name: $1], attributes: $0.attributes) },
            encoders: [name: encoder], allowMismatch: allowModelMismatch)
    }

    /// Streams `documents` through `encoder` into the collection's only field. See
    /// ``ingest(_:encoders:options:progress:)``.
    @discardableResult
    public func ingest(
        _ documents: some Sequence<TextDocument>, encoder: TextEncoder, options: IngestOptions = IngestOptions(),
        progress: (IngestProgress) -> Void = { _ in }
    ) throws -> IngestProgress {
        let field = try resolveField(nil, in: try currentRecord()).name
        var source = SequenceSource(base: documents.makeIterator())
        return try ingest(&source, encoders: [field: encoder], options: options, progress: progress)
    }

    /// Streams documents through one encoder per field into the collection, one write
    /// transaction per batch (all fields of a batch together), encoding the next batch while the
    /// previous one is being written. Memory stays bounded (two batches in flight) whatever the
    /// input size. Every committed batch survives an interruption; running the same ingest again
    /// skips what was committed (unless ``IngestOptions/replace``).
    ///
    /// An id that appears twice in the input is refused (`.invalidInput`) whatever the batch
    /// size, so that which version wins never depends on how the input was cut into batches.
    ///
    /// - Parameters:
    ///   - source: the documents; its errors stop the ingest (committed batches stay).
    ///   - encoders: field name → encoder; each document is encoded once per field.
    ///   - progress: called on the calling thread after each commit.
    /// - Returns: the final progress (counts and timings).
    @discardableResult
    public func ingest(
        _ source: inout some TextDocumentSource, encoders: [String: TextEncoder], options: IngestOptions = IngestOptions(),
        progress: (IngestProgress) -> Void = { _ in }
    ) throws -> IngestProgress {
        guard options.batchSize >= 1 else { throw SparseDBError(.invalidInput, "batch size must be at least 1") }
        guard !encoders.isEmpty else { throw SparseDBError(.invalidInput, "ingest needs at least one field and encoder") }
        let record = try currentRecord()
        for (fieldName, encoder) in encoders {
            guard let field = record.field(named: fieldName) else {
                throw SparseDBError(.invalidInput, "collection '\(name)' has no field '\(fieldName)'")
            }
            try Self.checkEncoder(field, encoder, collection: name, allowMismatch: options.allowModelMismatch)
        }
        let fields = encoders.keys.sorted()
        let start = Date()
        var state = IngestProgress()
        let writer = BatchWriter(collection: self, encoders: encoders, allowMismatch: options.allowModelMismatch)
        var seen = Set<String>()
        var batch: [TextDocument] = []
        func absorb(_ reports: [BatchWriter.Report]) {
            for report in reports {
                state.committed += report.count
                state.writeSeconds += report.seconds
            }
        }
        func flush() throws {
            guard !batch.isEmpty else { return }
            var todo = batch
            batch.removeAll(keepingCapacity: true)
            if !options.replace {
                let existing = try existingIds(todo.map(\.id))
                state.skipped += existing.count
                todo.removeAll { existing.contains($0.id) }
            }
            guard !todo.isEmpty else { return }
            let t0 = Date()
            var vectors: [String: [FieldVector]] = [:]
            for field in fields {
                vectors[field] = try encoders[field]!.fieldVectors(todo.map(\.text), task: .document, maxActiveDims: options.maxActiveDims)
            }
            state.encodeSeconds += Date().timeIntervalSince(t0)
            let documents = todo.indices.map { i in
                Document(
                    id: todo[i].id, payload: todo[i].payload, vectors: Dictionary(uniqueKeysWithValues: fields.map { ($0, vectors[$0]![i]) }),
                    attributes: todo[i].attributes)
            }
            // Hand over to the writer; blocks while it is still writing the one before.
            absorb(try writer.submit(documents))
            state.elapsedSeconds = Date().timeIntervalSince(start)
            progress(state)
        }
        do {
            while let doc = try source.next() {
                guard seen.insert(doc.id).inserted else {
                    throw SparseDBError(.invalidInput, "document id '\(doc.id)' appears more than once in the input")
                }
                batch.append(doc)
                state.read += 1
                if batch.count >= options.batchSize { try flush() }
            }
            try flush()
        } catch {
            // Let the batch in flight finish (or fail) before reporting, so that what is
            // committed is settled when the caller sees the error.
            _ = try? writer.finish()
            throw error
        }
        absorb(try writer.finish())
        state.elapsedSeconds = Date().timeIntervalSince(start)
        if options.compact {
            let t0 = Date()
            state.compacted = try compactIfFragmented()
            state.compactSeconds = Date().timeIntervalSince(t0)
        }
        progress(state)
        return state
    }

    /// Encodes `text` with the query route of `encoder` (sparse vector or dense embedding, as the
    /// model makes) and searches the field `options.field` (or the only one).
    ///
    /// - Throws: `.invalidInput` for an empty (or all white-space) text, which has no meaning to
    ///   search for (the model would still produce a vector from its special tokens).
    public func search(text: String, encoder: TextEncoder, options: SearchOptions = SearchOptions(), maxActiveDims: Int? = nil) throws -> SearchResult {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SparseDBError(.invalidInput, "the query text is empty")
        }
        return try search(try encoder.fieldVectors([text], task: .query, maxActiveDims: maxActiveDims)[0], options: options)
    }

    /// The encoder for text queries on `field`: `model` (a folder or "default") when given,
    /// checked against the field's recorded encoder unless `allowMismatch`; otherwise the
    /// recorded one.
    public func queryEncoder(model: String?, field: String? = nil, allowMismatch: Bool = false) throws -> TextEncoder {
        let record = try currentRecord()
        let f = try resolveField(field, in: record)
        if let model {
            let encoder = try TextEncoder(path: model)
            try Self.checkEncoder(f, encoder, collection: name, allowMismatch: allowMismatch)
            return encoder
        }
        guard let recorded = f.encoder else {
            throw SparseDBError(.invalidInput, "field '\(f.name)' of collection '\(name)' was not built from text; give a model for text queries")
        }
        guard let path = recorded.path, FileManager.default.fileExists(atPath: path) else {
            throw SparseDBError(
                .notFound,
                "field '\(f.name)' of collection '\(name)' was built with model '\(recorded.name)', which is not at \(recorded.path ?? "a known path") any more; give it again")
        }
        let encoder = try TextEncoder(path: path)
        try Self.checkEncoder(f, encoder, collection: name, allowMismatch: allowMismatch)
        return encoder
    }
}

/// The write stage of the ingest pipeline: one background thread committing batches in order,
/// at most one batch waiting, so encoding overlaps writing and memory stays bounded.
///
/// `@unchecked Sendable`: `reports` and `failure` are guarded by `lock`; the rest is immutable
/// or thread-safe (the collection, encoders, Dispatch objects).
final class BatchWriter: @unchecked Sendable {
    struct Report {
        var count: Int
        var seconds: Double
    }

    private let collection: VectorCollection
    private let encoders: [String: TextEncoder]
    private let allowMismatch: Bool
    private let queue = DispatchQueue(label: "sparsedb.ingest.writer")
    private let slots = DispatchSemaphore(value: 1)
    private let lock = NSLock()
    private var reports: [Report] = []
    private var failure: Error?
    private let group = DispatchGroup()

    init(collection: VectorCollection, encoders: [String: TextEncoder], allowMismatch: Bool) {
        self.collection = collection
        self.encoders = encoders
        self.allowMismatch = allowMismatch
    }

    /// Queues a batch; returns the reports of batches committed since the last call.
    func submit(_ documents: [Document]) throws -> [Report] {
        slots.wait()
        if let error = lock.withLock({ failure }) {
            slots.signal()
            throw error
        }
        group.enter()
        queue.async {
            defer {
                self.slots.signal()
                self.group.leave()
            }
            let t0 = Date()
            do {
                try self.collection.commit(documents, encoders: self.encoders, allowMismatch: self.allowMismatch)
                let r = Report(count: documents.count, seconds: Date().timeIntervalSince(t0))
                self.lock.withLock { self.reports.append(r) }
            } catch {
                self.lock.withLock { self.failure = self.failure ?? error }
            }
        }
        return try drain()
    }

    /// Waits for the last batch; returns the remaining reports.
    func finish() throws -> [Report] {
        group.wait()
        return try drain()
    }

    private func drain() throws -> [Report] {
        try lock.withLock {
            if let failure { throw failure }
            defer { reports.removeAll() }
            return reports
        }
    }
}
