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
    }

    static func readJSON(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SparseDBError(.model, "\(path): missing file")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SparseDBError(.model, "\(path): not a JSON object")
        }
        return object
    }

    static func int(_ config: [String: Any], _ key: String, _ path: String) throws -> Int {
        guard let v = (config[key] as? NSNumber)?.intValue, v > 0 else {
            throw SparseDBError(.model, "\(path): missing or invalid '\(key)'")
        }
        return v
    }

    /// Loads the transformer in `folder`; with `withHead`, also its masked-LM head.
    static func load(folder: String, withHead: Bool) throws -> Loaded {
        let configPath = folder + "/config.json"
        let config = try readJSON(configPath)
        let weightsPath = folder + "/model.safetensors"
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw SparseDBError(.model, "\(weightsPath): missing weights (only .safetensors is supported)")
        }
        let file = try SafeTensorsFile(path: weightsPath)
        let modelType = (config["model_type"] as? String) ?? ""
        if modelType == "distilbert" {
            return try loadDistilBert(config, configPath: configPath, file: file, withHead: withHead)
        }
        guard modelType == "bert" || modelType.isEmpty else {
            throw SparseDBError(.model, "\(configPath): model_type '\(modelType)' is not supported (bert, distilbert)")
        }
        return try loadBert(config, configPath: configPath, file: file, withHead: withHead)
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

    private static func loadBert(_ config: [String: Any], configPath: String, file: SafeTensorsFile, withHead: Bool) throws -> Loaded {
        let H = try int(config, "hidden_size", configPath)
        let layersCount = try int(config, "num_hidden_layers", configPath)
        let heads = try int(config, "num_attention_heads", configPath)
        let I = try int(config, "intermediate_size", configPath)
        let V = try int(config, "vocab_size", configPath)
        let P = try int(config, "max_position_embeddings", configPath)
        let eps = Float((config["layer_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-12)
        let act = try Activation(name: (config["hidden_act"] as? String) ?? "gelu", path: configPath)
        if let pet = config["position_embedding_type"] as? String, pet != "absolute" {
            throw SparseDBError(.model, "\(configPath): position_embedding_type '\(pet)' is not supported")
        }
        guard H % heads == 0 else { throw SparseDBError(.model, "\(configPath): hidden_size \(H) is not divisible by \(heads) heads") }
        let p = file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        let word = try file.floats(p + "embeddings.word_embeddings.weight", shape: [V, H])
        let pos = try file.floats(p + "embeddings.position_embeddings.weight", shape: [P, H])
        let typeVocab = (config["type_vocab_size"] as? NSNumber)?.intValue ?? 2
        let types = try file.floats(p + "embeddings.token_type_embeddings.weight", shape: [typeVocab, H])
        let embNorm = try LayerNorm(file: file, prefix: p + "embeddings.LayerNorm", size: H, eps: eps)
        let layers = try (0..<layersCount).map { i in
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
        return Loaded(encoder: encoder, head: head, architecture: "bert")
    }

    private static func loadDistilBert(_ config: [String: Any], configPath: String, file: SafeTensorsFile, withHead: Bool) throws -> Loaded {
        let H = try int(config, "dim", configPath)
        let layersCount = try int(config, "n_layers", configPath)
        let heads = try int(config, "n_heads", configPath)
        let I = try int(config, "hidden_dim", configPath)
        let V = try int(config, "vocab_size", configPath)
        let P = try int(config, "max_position_embeddings", configPath)
        let eps: Float = 1e-12  // hard-coded in transformers' DistilBERT
        let act = try Activation(name: (config["activation"] as? String) ?? "gelu", path: configPath)
        guard H % heads == 0 else { throw SparseDBError(.model, "\(configPath): dim \(H) is not divisible by \(heads) heads") }
        let p = file.tensors["distilbert.embeddings.word_embeddings.weight"] != nil ? "distilbert." : ""
        let word = try file.floats(p + "embeddings.word_embeddings.weight", shape: [V, H])
        let pos = try file.floats(p + "embeddings.position_embeddings.weight", shape: [P, H])
        let embNorm = try LayerNorm(file: file, prefix: p + "embeddings.LayerNorm", size: H, eps: eps)
        let layers = try (0..<layersCount).map { i in
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
        return Loaded(encoder: encoder, head: head, architecture: "distilbert")
    }
}
