import Foundation
import SparseDBCore
import SparseDBEncoders
import SparseDBIndex

/// A text encoder loaded from a sentence-transformers model folder (or a plain Hugging Face
/// `BertForMaskedLM` / `DistilBertForMaskedLM` folder, which loads as SPLADE), running natively
/// with OpenBLAS.
///
/// ```swift
/// let encoder = try TextEncoder(path: "default")          // splade-tiny from the model cache
/// let docs = try encoder.encode(["The capital of France is Paris."], task: .document)
/// let query = try encoder.encode(["capital of france"], task: .query)[0]
/// ```
///
/// Supported: SPLADE (MLMTransformer + SpladePooling), inference-free SPLADE (Router with a
/// SparseStaticEmbedding / IDF query route), CSR (Transformer + CLS Pooling + SparseAutoEncoder)
/// and StaticEmbedding (dense; see ``embed(_:task:truncateDimensions:)``). Thread-safe: weights
/// are read once and shared; `encode` parallelises over all cores.
public final class TextEncoder: Sendable {
    /// The family of a model.
    public enum Kind: String, Sendable, Codable {
        /// MLMTransformer + SpladePooling.
        case splade
        /// A Router whose query route is a SparseStaticEmbedding (IDF lookup).
        case inferenceFree = "inference-free"
        /// Transformer + CLS Pooling + SparseAutoEncoder.
        case csr
        /// StaticEmbedding (dense).
        case staticEmbedding = "static"
        /// Transformer + Pooling (+ Normalize): a dense sentence-transformers model.
        case dense
    }

    /// Whether texts are queries or documents (models may treat them differently).
    public enum Task: String, Sendable {
        /// Query route and prompt.
        case query
        /// Document route and prompt.
        case document
    }

    let model: EncoderModel

    /// The family of this model.
    public var kind: Kind { Kind(rawValue: model.kind.rawValue)! }
    /// The model folder's name (e.g. `splade-tiny`).
    public var name: String { model.name }
    /// The folder the model was loaded from.
    public var path: String { model.path }
    /// A fingerprint of the weight and configuration files (CRC-32C, hex).
    public var checksum: String { model.checksum }
    /// Output dimensions (vocabulary size, CSR hidden size, or embedding width).
    public var dimensions: Int { model.dimensions }
    /// Default `maxActiveDims` (CSR models: their `k`; otherwise none).
    public var defaultMaxActiveDims: Int? { model.defaultMaxActiveDims }
    /// Whether outputs are sparse vectors (all but dense models).
    public var producesSparseVectors: Bool { model.producesSparseVectors }

    /// Where `default` models live: `$SPARSEDB_HOME/models`, else `~/.local/share/sparsedb/models`.
    public static var modelCacheDirectory: String { EncoderModel.modelCacheDirectory }

    /// The path `default` stands for: splade-tiny in the model cache.
    public static var defaultModelPath: String { EncoderModel.defaultModelPath }

    /// Loads the model in folder `path` (`"default"` = ``defaultModelPath``).
    ///
    /// - Throws: `.model` naming the file (and key or tensor) when the folder is incomplete,
    ///   malformed, inconsistent, or of an unsupported kind.
    public init(path: String) throws {
        model = try EncoderModel(path: path)
    }

    /// Encodes texts to sparse vectors, in parallel, in input order.
    ///
    /// - Parameters:
    ///   - texts: the texts (documents: title + " " + text by convention).
    ///   - task: `.query` or `.document`; picks the route and prompt.
    ///   - maxActiveDims: keep only this many largest weights (`nil`: the model's default).
    public func encode(_ texts: [String], task: Task, maxActiveDims: Int? = nil) throws -> [SparseVector] {
        try model.encode(texts, task: EncoderModel.Task(rawValue: task.rawValue)!, maxActiveDims: maxActiveDims)
    }

    /// Dense embeddings, truncated to the first `truncateDimensions` (Matryoshka) when given.
    public func embed(_ texts: [String], task: Task, truncateDimensions: Int? = nil) throws -> [[Float]] {
        try model.embed(texts, task: EncoderModel.Task(rawValue: task.rawValue)!, truncateDimensions: truncateDimensions)
    }

    /// Token ids the route for `task` feeds the model (prompt applied), for inspection.
    public func tokenize(_ text: String, task: Task) -> [Int32] {
        model.tokenize(text, task: EncoderModel.Task(rawValue: task.rawValue)!)
    }

    /// What a collection records about this encoder.
    var record: EncoderRecord { EncoderRecord(name: name, checksum: checksum, kind: kind.rawValue, path: path) }

    /// Encodes `texts` into the vectors the model makes: sparse (SPLADE, inference-free, CSR) or dense.
    public func fieldVectors(_ texts: [String], task: Task, maxActiveDims: Int? = nil) throws -> [FieldVector] {
        if producesSparseVectors { return try encode(texts, task: task, maxActiveDims: maxActiveDims).map { .sparse($0) } }
        return try embed(texts, task: task).map { .dense($0) }
    }
}

/// The encoder a vector field was built with (recorded on first text ingest).
public struct EncoderDescription: Sendable, Equatable {
    /// The model folder's name.
    public var name: String
    /// Fingerprint of its weight and configuration files.
    public var checksum: String
    /// The model family (``TextEncoder/Kind`` raw value).
    public var kind: String
    /// The folder it was loaded from.
    public var path: String?
}
