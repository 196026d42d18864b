import SparseDBCore
import Foundation

/// The masked-LM head: logits = LN(act(h·Wtᵀ + bt))·Eᵀ + b, with E usually tied to the word
/// embeddings.
struct MaskedLMHead: Sendable {
    let transform: Linear
    let norm: LayerNorm
    let activation: Activation
    let decoder: [Float]  // [V × H]
    let bias: [Float]  // [V]
}

/// Loads Hugging Face BERT / DistilBERT checkpoints (config.json + model.safetensors).
enum TransformerLoader {
    struct Loaded {
        let encoder: TransformerEncoder
        let head: MaskedLMHead?
        let architecture: String
        /// The word-embedding tensor's name (the rows token ids index).
        let wordEmbeddings: String
    }

    /// Bounds on configuration values, checked before anything is sized from them (the tensors
    /// must then match exactly, and they are bounded by the file's size).
    enum Limits {
        static let hidden = 1...(1 << 16)
        static let layers = 1...1024
        static let intermediate = 1...(1 << 20)
        static let vocabulary = 1...(1 << 24)
        static let positions = 2...(1 << 17)
        static let typeVocabulary = 1...(1 << 16)
    }

    /// Loads the transformer in `folder`; with `withHead`, also its masked-LM head.
    static func load(folder: String, withHead: Bool) throws -> Loaded {
        let config = try ModelFiles.object(folder + "/config.json")
        let weightsPath = folder + "/model.safetensors"
        guard (try? FileManager.default.attributesOfItem(atPath: weightsPath)) != nil else {
            throw SparseDBError(.model, "\(weightsPath): missing weights (only .safetensors is supported)")
        }
        let file = try SafeTensorsFile(path: weightsPath)
        let modelType = try config.string("model_type", default: "")
        if modelType == "distilbert" {
            return try loadDistilBert(config, file: file, withHead: withHead)
        }
        guard modelType == "bert" || modelType.isEmpty else {
            throw SparseDBError(.model, "\(config.path): model_type '\(modelType)' is not supported (bert, distilbert)")
        }
        return try loadBert(config, file: file, withHead: withHead)
    }

    /// The configuration's dimensions, each checked against the tensors actually stored.
    struct Dimensions {
        var hidden, layers, heads, intermediate, vocabulary, positions: Int
    }

    /// Reads and cross-checks the dimensions: `keys` names the configuration keys (hidden, layers,
    /// heads, intermediate, vocabulary, positions); `prefix` + `layerPrefix` + `i.` are the layers.
    static func dimensions(
        _ config: JSONConfig, file: SafeTensorsFile, keys: [String], prefix p: String, layerPrefix: String, intermediateName: String
    ) throws -> Dimensions {
        let H = try config.int(keys[0], in: Limits.hidden)
        let layers = try config.int(keys[1], in: Limits.layers)
        let heads = try config.int(keys[2], in: 1...H)
        let I = try config.int(keys[3], in: Limits.intermediate)
        let V = try config.int(keys[4], in: Limits.vocabulary)
        let P = try config.int(keys[5], in: Limits.positions)
        guard H % heads == 0 else {
            throw SparseDBError(.model, "\(config.path): '\(keys[0])' \(H) is not divisible by '\(keys[2])' \(heads)")
        }
        try expectShape(file, p + "embeddings.word_embeddings.weight", [V, H], config, keys: [keys[4], keys[0]])
        try expectShape(file, p + "embeddings.position_embeddings.weight", [P, H], config, keys: [keys[5], keys[0]])
        // The layers present must be exactly 0..<layers: fewer would be missing tensors, more
        // would be silently ignored.
        let stored = Set(file.tensors.keys.compactMap { name -> Int? in
            guard name.hasPrefix(p + layerPrefix) else { return nil }
            return Int(name.dropFirst(p.count + layerPrefix.count).prefix { $0 != "." })
        })
        guard stored.count == layers, stored.allSatisfy({ $0 >= 0 && $0 < layers }) else {
            throw SparseDBError(
                .model,
                "\(config.path): '\(keys[1])' is \(layers), but \(file.path) stores \(stored.count) layers (\(p + layerPrefix)\(stored.sorted().prefix(8).map(String.init).joined(separator: ", ")))")
        }
        try expectShape(file, "\(p)\(layerPrefix)0.\(intermediateName).weight", [I, H], config, keys: [keys[3], keys[0]])
        return Dimensions(hidden: H, layers: layers, heads: heads, intermediate: I, vocabulary: V, positions: P)
    }

    /// Tensor `name` must exist with `shape`, which the configuration's `keys` determine.
    static func expectShape(_ file: SafeTensorsFile, _ name: String, _ shape: [Int], _ config: JSONConfig, keys: [String]) throws {
        guard let t = file.tensors[name] else { throw SparseDBError(.model, "\(file.path): tensor '\(name)' is missing") }
        guard t.shape == shape else {
            let values = keys.map { "'\($0)' \(config[$0].map { "\($0)" } ?? "?")" }.joined(separator: ", ")
            throw SparseDBError(
                .model, "\(config.path): \(values) imply tensor '\(name)' of shape \(shape), but \(file.path) stores \(t.shape)")
        }
    }

    /// `layer_norm_eps`: a finite number in (0, 1); a negative one turns every LayerNorm into NaN.
    static func layerNormEps(_ config: JSONConfig) throws -> Float {
        Float(try config.double("layer_norm_eps", default: 1e-12, valid: { $0 > 0 && $0 < 1 }, expected: "a number in (0, 1)"))
    }

    /// Tensor names of one layer, relative to the layer's prefix.
    struct LayerNames {
        var query, key, value, attentionOut, attentionNorm, intermediate, output, outputNorm: String

        static let bert = LayerNames(
            query: "attention.self.query", key: "attention.self.key", value: "attention.self.value",
            attentionOut: "attention.output.dense", attentionNorm: "attention.output.LayerNorm",
            intermediate: "intermediate.dense", output: "output.dense", outputNorm: "output.LayerNorm")
        static let distilBert = LayerNames(
            query: "attention.q_lin", key: "attention.k_lin", value: "attention.v_lin", attentionOut: "attention.out_lin",
            attentionNorm: "sa_layer_norm", intermediate: "ffn.lin1", output: "ffn.lin2", outputNorm: "output_layer_norm")
    }

    /// Loads one layer, stacking query, key and value into a single [3H × H] projection.
    static func loadLayer(_ file: SafeTensorsFile, prefix l: String, names: LayerNames, hidden H: Int, intermediate I: Int, eps: Float) throws -> EncoderLayer {
        let q = try Linear(file: file, prefix: l + names.query, in: H, out: H)
        let k = try Linear(file: file, prefix: l + names.key, in: H, out: H)
        let v = try Linear(file: file, prefix: l + names.value, in: H, out: H)
        return EncoderLayer(
            qkv: Linear(weight: q.weight + k.weight + v.weight, bias: q.bias + k.bias + v.bias, in: H, out: 3 * H),
            attentionOut: try Linear(file: file, prefix: l + names.attentionOut, in: H, out: H),
            attentionNorm: try LayerNorm(file: file, prefix: l + names.attentionNorm, size: H, eps: eps),
            intermediate: try Linear(file: file, prefix: l + names.intermediate, in: H, out: I),
            output: try Linear(file: file, prefix: l + names.output, in: I, out: H),
            outputNorm: try LayerNorm(file: file, prefix: l + names.outputNorm, size: H, eps: eps))
    }

    private static func loadBert(_ config: JSONConfig, file: SafeTensorsFile, withHead: Bool) throws -> Loaded {
        let p = file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        let d = try dimensions(
            config, file: file,
            keys: ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings"],
            prefix: p, layerPrefix: "encoder.layer.", intermediateName: LayerNames.bert.intermediate)
        let (H, I, V, P, heads) = (d.hidden, d.intermediate, d.vocabulary, d.positions, d.heads)
        let eps = try layerNormEps(config)
        let act = try Activation(name: try config.string("hidden_act", default: "gelu"), path: config.path)
        if let pet = try config.string("position_embedding_type"), pet != "absolute" {
            throw SparseDBError(.model, "\(config.path): position_embedding_type '\(pet)' is not supported")
        }
        let typeVocab = try config.int("type_vocab_size", in: Limits.typeVocabulary, default: 2)
        try expectShape(file, p + "embeddings.token_type_embeddings.weight", [typeVocab, H], config, keys: ["type_vocab_size", "hidden_size"])
        let word = try file.floats(p + "embeddings.word_embeddings.weight", shape: [V, H])
        let pos = try file.floats(p + "embeddings.position_embeddings.weight", shape: [P, H])
        let types = try file.floats(p + "embeddings.token_type_embeddings.weight", shape: [typeVocab, H])
        let embNorm = try LayerNorm(file: file, prefix: p + "embeddings.LayerNorm", size: H, eps: eps)
        let layers = try (0..<d.layers).map { i in
            try loadLayer(file, prefix: "\(p)encoder.layer.\(i).", names: .bert, hidden: H, intermediate: I, eps: eps)
        }
        let encoder = TransformerEncoder(
            hidden: H, heads: heads, intermediateSize: I, maxPositions: P, wordEmbeddings: word, positionEmbeddings: pos,
            tokenTypeEmbedding: Array(types[0..<H]), embeddingNorm: embNorm, layers: layers, activation: act)
        var head: MaskedLMHead? = nil
        if withHead {
            let decoderName = file.firstName(["cls.predictions.decoder.weight"])
            let biasName = file.firstName(["cls.predictions.bias", "cls.predictions.decoder.bias"]) ?? "cls.predictions.bias"
            head = MaskedLMHead(
                transform: try Linear(file: file, prefix: "cls.predictions.transform.dense", in: H, out: H),
                norm: try LayerNorm(file: file, prefix: "cls.predictions.transform.LayerNorm", size: H, eps: eps),
                activation: act,
                decoder: try decoderName.map { try file.floats($0, shape: [V, H]) } ?? word,
                bias: try file.floats(biasName, shape: [V]))
        }
        return Loaded(encoder: encoder, head: head, architecture: "bert", wordEmbeddings: p + "embeddings.word_embeddings.weight")
    }

    private static func loadDistilBert(_ config: JSONConfig, file: SafeTensorsFile, withHead: Bool) throws -> Loaded {
        let p = file.tensors["distilbert.embeddings.word_embeddings.weight"] != nil ? "distilbert." : ""
        let d = try dimensions(
            config, file: file, keys: ["dim", "n_layers", "n_heads", "hidden_dim", "vocab_size", "max_position_embeddings"],
            prefix: p, layerPrefix: "transformer.layer.", intermediateName: LayerNames.distilBert.intermediate)
        let (H, I, V, P, heads) = (d.hidden, d.intermediate, d.vocabulary, d.positions, d.heads)
        let eps: Float = 1e-12  // hard-coded in transformers' DistilBERT
        let act = try Activation(name: try config.string("activation", default: "gelu"), path: config.path)
        let word = try file.floats(p + "embeddings.word_embeddings.weight", shape: [V, H])
        let pos = try file.floats(p + "embeddings.position_embeddings.weight", shape: [P, H])
        let embNorm = try LayerNorm(file: file, prefix: p + "embeddings.LayerNorm", size: H, eps: eps)
        let layers = try (0..<d.layers).map { i in
            try loadLayer(file, prefix: "\(p)transformer.layer.\(i).", names: .distilBert, hidden: H, intermediate: I, eps: eps)
        }
        let encoder = TransformerEncoder(
            hidden: H, heads: heads, intermediateSize: I, maxPositions: P, wordEmbeddings: word, positionEmbeddings: pos,
            tokenTypeEmbedding: [Float](repeating: 0, count: H), embeddingNorm: embNorm, layers: layers, activation: act)
        var head: MaskedLMHead? = nil
        if withHead {
            head = MaskedLMHead(
                transform: try Linear(file: file, prefix: "vocab_transform", in: H, out: H),
                norm: try LayerNorm(file: file, prefix: "vocab_layer_norm", size: H, eps: eps),
                activation: act,
                decoder: try file.firstName(["vocab_projector.weight"]).map { try file.floats($0, shape: [V, H]) } ?? word,
                bias: try file.floats("vocab_projector.bias", shape: [V]))
        }
        return Loaded(encoder: encoder, head: head, architecture: "distilbert", wordEmbeddings: p + "embeddings.word_embeddings.weight")
    }
}
