import Foundation

/// A text document for ingestion through an encoder.
public struct TextDocument: Sendable {
    /// The caller's unique id.
    public var id: String
    /// The text to encode (BEIR convention for a corpus: title + " " + text).
    public var text: String
    /// Opaque bytes stored with the document.
    public var payload: [UInt8]?

    /// A text document with `id`, its `text` and an optional `payload`.
    public init(id: String, text: String, payload: [UInt8]? = nil) {
        self.id = id
        self.text = text
        self.payload = payload
    }
}

/// Progress of ``Collection/ingest(_:encoder:options:progress:)``, reported after every commit.
public struct IngestProgress: Sendable {
    /// Documents read from the input so far.
    public var read = 0
    /// Documents encoded and committed so far.
    public var committed = 0
    /// Documents skipped because their id was already stored (resuming).
    public var skipped = 0
    /// Seconds spent encoding (summed over batches).
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

/// Options of a text ingest.
public struct IngestOptions: Sendable {
    /// Documents per write transaction (and per encoder call).
    public var batchSize = 256
    /// Skip documents whose id is already stored, so that an interrupted ingest resumes where it
    /// stopped; `false` re-encodes and replaces them.
    public var skipExisting = true
    /// Keep only this many largest weights per document vector.
    public var maxActiveDims: Int? = nil
    /// Accept an encoder other than the one the collection was built with.
    public var allowModelMismatch = false
    /// Re-pack the posting lists at the end when the batches left them fragmented
    /// (see ``Collection/fragmentation()``).
    public var compactWhenFragmented = true

    /// Options with the given values.
    public init(
        batchSize: Int = 256, skipExisting: Bool = true, maxActiveDims: Int? = nil, allowModelMismatch: Bool = false,
        compactWhenFragmented: Bool = true
    ) {
        self.batchSize = batchSize
        self.skipExisting = skipExisting
        self.maxActiveDims = maxActiveDims
        self.allowModelMismatch = allowModelMismatch
        self.compactWhenFragmented = compactWhenFragmented
    }
}

extension Collection {
    /// The encoder the collection was built with, if it was built from text: (name, checksum, kind, folder).
    public func encoderDescription() throws -> (name: String, checksum: String, kind: String, path: String?)? {
        try currentInfo().encoder.map { ($0.name, $0.checksum, $0.kind, $0.path) }
    }

    func checkEncoder(_ info: CollectionInfo, _ encoder: TextEncoder, allowMismatch: Bool) throws {
        guard let record = info.encoder, !allowMismatch else { return }
        if record.checksum != encoder.checksum || record.kind != encoder.kind.rawValue {
            throw SparseDBError(
                .modelMismatch,
                "collection '\(name)' was built with model '\(record.name)' (\(record.kind), checksum \(record.checksum)), not '\(encoder.name)' (\(encoder.kind.rawValue), checksum \(encoder.checksum)); use the same model or allow a mismatch explicitly")
        }
    }

    /// Encodes `documents` and upserts them in one transaction, recording the encoder in the
    /// collection on first use.
    public func upsert(_ documents: [TextDocument], encoder: TextEncoder, maxActiveDims: Int? = nil, allowModelMismatch: Bool = false) throws {
        try checkEncoder(try currentInfo(), encoder, allowMismatch: allowModelMismatch)
        let vectors = try encoder.encode(documents.map(\.text), task: .document, maxActiveDims: maxActiveDims)
        try commit(zip(documents, vectors).map { Document(id: $0.id, payload: $0.payload, vector: $1) }, encoder: encoder, allowMismatch: allowModelMismatch)
    }

    /// Which of `ids` are already stored.
    public func existingIds(_ ids: [String]) throws -> Set<String> {
        try env.read { txn in
            var found = Set<String>()
            for id in ids where try IndexWriter.documentId(txn, idKey: Schema.idKey(self.id, id)) != nil { found.insert(id) }
            return found
        }
    }

    /// Streams `documents` through the encoder into the collection, one write transaction per
    /// batch, encoding the next batch while the previous one is being written. Memory stays
    /// bounded (two batches in flight) whatever the input size. Every committed batch survives an
    /// interruption; running the same ingest again skips what was committed
    /// (``IngestOptions/skipExisting``).
    ///
    /// - Parameter progress: called on the calling thread after each commit.
    /// - Returns: the final progress (counts and timings).
    @discardableResult
    public func ingest(
        _ documents: some Sequence<TextDocument>, encoder: TextEncoder, options: IngestOptions = IngestOptions(),
        progress: (IngestProgress) -> Void = { _ in }
    ) throws -> IngestProgress {
        try checkEncoder(try currentInfo(), encoder, allowMismatch: options.allowModelMismatch)
        let start = Date()
        var state = IngestProgress()
        let writer = BatchWriter(collection: self, encoder: encoder, allowMismatch: options.allowModelMismatch)
        var batch: [TextDocument] = []
        func flush() throws {
            guard !batch.isEmpty else { return }
            var todo = batch
            batch.removeAll(keepingCapacity: true)
            if options.skipExisting {
                let existing = try existingIds(todo.map(\.id))
                state.skipped += existing.count
                todo.removeAll { existing.contains($0.id) }
            }
            guard !todo.isEmpty else { return }
            let t0 = Date()
            let vectors = try encoder.encode(todo.map(\.text), task: .document, maxActiveDims: options.maxActiveDims)
            state.encodeSeconds += Date().timeIntervalSince(t0)
            // Hand over to the writer; blocks while it is still writing the one before.
            for report in try writer.submit(zip(todo, vectors).map { Document(id: $0.id, payload: $0.payload, vector: $1) }) {
                state.committed += report.count
                state.writeSeconds += report.seconds
                state.elapsedSeconds = Date().timeIntervalSince(start)
                progress(state)
            }
        }
        for doc in documents {
            batch.append(doc)
            state.read += 1
            if batch.count >= options.batchSize { try flush() }
        }
        try flush()
        for report in try writer.finish() {
            state.committed += report.count
            state.writeSeconds += report.seconds
        }
        state.elapsedSeconds = Date().timeIntervalSince(start)
        if options.compactWhenFragmented {
            let t0 = Date()
            state.compacted = try compactIfFragmented()
            state.compactSeconds = Date().timeIntervalSince(t0)
        }
        progress(state)
        return state
    }

    /// Encodes `text` with the query route of `encoder` and searches.
    public func search(text: String, encoder: TextEncoder, options: SearchOptions = SearchOptions(), maxActiveDims: Int? = nil) throws -> SearchResult {
        let q = try encoder.encode([text], task: .query, maxActiveDims: maxActiveDims)[0]
        return try search(q, options: options)
    }

    /// The encoder for text queries: `model` (a folder or "default") when given, checked against
    /// the collection's recorded encoder unless `allowMismatch`; otherwise the recorded one.
    public func queryEncoder(model: String?, allowMismatch: Bool = false) throws -> TextEncoder {
        let info = try currentInfo()
        if let model {
            let encoder = try TextEncoder(path: model)
            try checkEncoder(info, encoder, allowMismatch: allowMismatch)
            return encoder
        }
        guard let record = info.encoder else {
            throw SparseDBError(.invalidInput, "collection '\(name)' was not built from text; give a model for text queries")
        }
        guard let path = record.path, FileManager.default.fileExists(atPath: path) else {
            throw SparseDBError(.notFound, "collection '\(name)' was built with model '\(record.name)', which is not at \(record.path ?? "a known path") any more; give it again")
        }
        let encoder = try TextEncoder(path: path)
        try checkEncoder(info, encoder, allowMismatch: allowMismatch)
        return encoder
    }
}

/// The write stage of the ingest pipeline: one background thread committing batches in order,
/// at most one batch waiting, so encoding overlaps writing and memory stays bounded.
final class BatchWriter: @unchecked Sendable {
    struct Report {
        var count: Int
        var seconds: Double
    }

    private let collection: Collection
    private let encoder: TextEncoder
    private let allowMismatch: Bool
    private let queue = DispatchQueue(label: "sparsedb.ingest.writer")
    private let slots = DispatchSemaphore(value: 1)
    private let lock = NSLock()
    private var reports: [Report] = []
    private var failure: Error?
    private let group = DispatchGroup()

    init(collection: Collection, encoder: TextEncoder, allowMismatch: Bool) {
        self.collection = collection
        self.encoder = encoder
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
                try self.collection.commit(documents, encoder: self.encoder, allowMismatch: self.allowMismatch)
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
