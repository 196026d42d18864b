import Foundation
import SparseDBCore

/// A model loaded from a sentence-transformers folder (or a plain Hugging Face
/// `BertForMaskedLM` / `DistilBertForMaskedLM` folder, which loads as SPLADE), running natively
/// with OpenBLAS: the engine behind the public `TextEncoder`.
///
/// Thread-safe: weights are read once and shared; `run` parallelises over all cores.
package final class EncoderModel: Sendable {
    /// The family of a model.
    package enum Kind: String, Sendable, Codable {
        case splade
        case inferenceFree = "inference-free"
        case csr
        case staticEmbedding = "static"
        case dense
    }

    /// Whether texts are queries or documents (models may treat them differently).
    package enum Task: String, Sendable {
        case query, document
    }

    /// The family of this model.
    package let kind: Kind
    /// The model folder's name (e.g. `splade-tiny`).
    package let name: String
    /// The folder the model was loaded from.
    package let path: String
    /// A fingerprint of the weight and configuration files (CRC-32C, hex).
    package let checksum: String
    /// Output dimensions (vocabulary size, CSR hidden size, or embedding width).
    package var dimensions: Int { documentRoute.dimensions }
    /// Default `maxActiveDims` (CSR models: their `k`; otherwise none).
    package let defaultMaxActiveDims: Int?
    /// Whether outputs are sparse vectors (all but StaticEmbedding and dense models).
    package var producesSparseVectors: Bool { kind != .staticEmbedding && kind != .dense }

    let documentRoute: any EncoderRoute
    let queryRoute: any EncoderRoute
    let queryPrompt: String
    let documentPrompt: String

    /// Where `default` models live: `$SPARSEDB_HOME/models`, else `~/.local/share/sparsedb/models`.
    package static var modelCacheDirectory: String {
        if let home = ProcessInfo.processInfo.environment["SPARSEDB_HOME"], !home.isEmpty { return home + "/models" }
        return NSHomeDirectory() + "/.local/share/sparsedb/models"
    }

    /// The path `default` stands for: splade-tiny in the model cache.
    package static var defaultModelPath: String { modelCacheDirectory + "/splade-tiny" }

    /// Loads the model in folder `path` (`"default"` = ``defaultModelPath``).
    ///
    /// - Throws: `.model` naming the file and tensor when the folder is incomplete, malformed or
    ///   of an unsupported kind.
    package init(path: String) throws {
        let folder = path == "default" ? Self.defaultModelPath : path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SparseDBError(
                .model, path == "default" ? "default model not found at \(folder); run tools/fetch-model.sh" : "\(folder): no such model folder")
        }
        self.path = folder
        name = URL(fileURLWithPath: folder).lastPathComponent
        let loaded = try ModelFolder.load(folder)
        kind = loaded.kind
        documentRoute = loaded.document
        queryRoute = loaded.query
        queryPrompt = loaded.queryPrompt
        documentPrompt = loaded.documentPrompt
        defaultMaxActiveDims = loaded.defaultMaxActiveDims
        checksum = try ModelFiles.fingerprint(folder)
    }

    /// Encodes texts to sparse vectors, in parallel, in input order.
    ///
    /// - Parameters:
    ///   - texts: the texts (documents: title + " " + text by convention).
    ///   - task: `.query` or `.document`; picks the route and prompt.
    ///   - maxActiveDims: keep only this many largest weights (`nil`: the model's default).
    package func encode(_ texts: [String], task: Task, maxActiveDims: Int? = nil) throws -> [SparseVector] {
        guard producesSparseVectors else {
            throw SparseDBError(.model, "\(name) is a dense (\(kind.rawValue)) model; use embed(_:task:truncateDimensions:)")
        }
        return try run(texts, task: task, maxActiveDims: maxActiveDims ?? defaultMaxActiveDims).map {
            if case .sparse(let v) = $0 { return v }
            throw SparseDBError(.model, "\(name) produced a dense vector")
        }
    }

    /// Dense embeddings of a StaticEmbedding or Transformer + Pooling (+ Normalize) model,
    /// truncated to the first `truncateDimensions` (Matryoshka) when given.
    package func embed(_ texts: [String], task: Task, truncateDimensions: Int? = nil) throws -> [[Float]] {
        try run(texts, task: task, maxActiveDims: nil).map {
            guard case .dense(let v) = $0 else { throw SparseDBError(.model, "\(name) produces sparse vectors; use encode(_:task:maxActiveDims:)") }
            if let d = truncateDimensions, d > 0, d < v.count { return Array(v.prefix(d)) }
            return v
        }
    }

    /// Token ids the route for `task` feeds the model (prompt applied), for inspection.
    package func tokenize(_ text: String, task: Task) -> [Int32] {
        let route = task == .query ? queryRoute : documentRoute
        return route.tokenize((task == .query ? queryPrompt : documentPrompt) + text)
    }

    /// Packs texts into token-budgeted batches of similar length and runs them on all cores.
    package func run(_ texts: [String], task: Task, maxActiveDims: Int?) throws -> [EncodedVector] {
        guard !texts.isEmpty else { return [] }
        let route = task == .query ? queryRoute : documentRoute
        let prompt = task == .query ? queryPrompt : documentPrompt
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var tokens = [[Int32]](repeating: [], count: texts.count)
        tokens.withUnsafeMutableBufferPointer { tb in
            nonisolated(unsafe) let out = tb
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < texts.count {
                    out[i] = route.tokenize(prompt + texts[i])
                    i += workers
                }
            }
        }
        // Batches of similar lengths (sorted), each at most `budget` tokens: no padding at all,
        // large enough GEMMs for the vocabulary projection.
        let order = texts.indices.sorted { tokens[$0].count < tokens[$1].count }
        let budget = route.isHeavy ? 2048 : 1 << 30
        var batches: [[Int]] = []
        var current: [Int] = []
        var size = 0
        for i in order {
            if !current.isEmpty && (size + tokens[i].count > budget || current.count >= 64) {
                batches.append(current)
                current = []
                size = 0
            }
            current.append(i)
            size += tokens[i].count
        }
        if !current.isEmpty { batches.append(current) }
        let packed = batches
        let tokenized = tokens
        var results = [EncodedVector?](repeating: nil, count: texts.count)
        let failure = Locked<SparseDBError?>(nil)
        results.withUnsafeMutableBufferPointer { rb in
            nonisolated(unsafe) let out = rb
            let next = Locked(0)
            DispatchQueue.concurrentPerform(iterations: min(workers, packed.count)) { _ in
                while true {
                    let b = next.withLock { v -> Int in
                        defer { v += 1 }
                        return v
                    }
                    guard b < packed.count else { return }
                    do {
                        let encoded = try route.encode(
                            packed[b].map { tokenized[$0] }, maxActiveDims: maxActiveDims, parallelism: packed.count == 1 ? workers : 1)
                        for (j, i) in packed[b].enumerated() { out[i] = encoded[j] }
                    } catch {
                        let typed = error as? SparseDBError ?? SparseDBError(.model, "\(error)")
                        failure.withLock { $0 = $0 ?? typed }
                        return
                    }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.map { $0! }
    }
}
