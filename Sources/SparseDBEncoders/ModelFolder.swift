import SparseDBCore
import Foundation

/// Reads a sentence-transformers model folder (modules.json, router_config.json,
/// sentence_bert_config.json, config_sentence_transformers.json and each module's files) and
/// builds the query and document routes. Old and new module names are both accepted
/// (IDF = SparseStaticEmbedding, CSRSparsity = SparseAutoEncoder).
enum ModelFolder {
    struct Loaded {
        var kind: EncoderModel.Kind
        var document: any EncoderRoute
        var query: any EncoderRoute
        var queryPrompt: String
        var documentPrompt: String
        var defaultMaxActiveDims: Int?
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func load(_ folder: String) throws -> Loaded {
        var queryPrompt = ""
        var documentPrompt = ""
        let stConfig = folder + "/config_sentence_transformers.json"
        if exists(stConfig) {
            let c = try TransformerLoader.readJSON(stConfig)
            if let prompts = c["prompts"] as? [String: String] {
                queryPrompt = prompts["query"] ?? ""
                documentPrompt = prompts["document"] ?? prompts["passage"] ?? prompts["corpus"] ?? ""
            }
        }
        let modulesPath = folder + "/modules.json"
        guard exists(modulesPath) else {
            // A plain Hugging Face masked-LM folder: SPLADE with max pooling and ReLU, as
            // sentence-transformers builds it for such a model.
            let config = try TransformerLoader.readJSON(folder + "/config.json")
            let architectures = config["architectures"] as? [String] ?? []
            guard architectures.contains(where: { $0.hasSuffix("ForMaskedLM") }) else {
                throw SparseDBError(.model, "\(folder): no modules.json, and config.json is not a *ForMaskedLM model (architectures \(architectures))")
            }
            let route = try splade(transformerFolder: folder, pooling: .max, squash: .relu)
            return Loaded(kind: .splade, document: route, query: route, queryPrompt: queryPrompt, documentPrompt: documentPrompt)
        }
        guard let data = FileManager.default.contents(atPath: modulesPath),
            let modules = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { throw SparseDBError(.model, "\(modulesPath): not a JSON array of modules") }
        let entries: [(type: String, folder: String)] = try modules.map { m in
            guard let type = m["type"] as? String else { throw SparseDBError(.model, "\(modulesPath): a module has no \"type\"") }
            let path = (m["path"] as? String) ?? ""
            return (type, path.isEmpty ? folder : folder + "/" + path)
        }
        if entries.count == 1, shortName(entries[0].type) == "Router" {
            let routerFolder = entries[0].folder
            let configPath = routerFolder + "/router_config.json"
            let router = try TransformerLoader.readJSON(configPath)
            guard let types = router["types"] as? [String: String], let structure = router["structure"] as? [String: [String]] else {
                throw SparseDBError(.model, "\(configPath): needs \"types\" and \"structure\"")
            }
            let defaultRoute = ((router["parameters"] as? [String: Any])?["default_route"] as? String) ?? structure.keys.sorted().first ?? "document"
            func route(_ key: String) throws -> any EncoderRoute {
                guard let names = structure[key] ?? structure[defaultRoute] else {
                    throw SparseDBError(.model, "\(configPath): no route '\(key)'")
                }
                return try build(names.map { name in
                    guard let type = types[name] else { throw SparseDBError(.model, "\(configPath): module '\(name)' has no type") }
                    return (type, routerFolder + "/" + name)
                }, context: configPath).route
            }
            let document = try route("document")
            let query = try route("query")
            let kind: EncoderModel.Kind = query is StaticSparseRoute && !(document is StaticSparseRoute) ? .inferenceFree : try build(
                structure[defaultRoute].map { names in names.map { (types[$0] ?? "", routerFolder + "/" + $0) } } ?? [], context: configPath).kind
            return Loaded(kind: kind, document: document, query: query, queryPrompt: queryPrompt, documentPrompt: documentPrompt)
        }
        let built = try build(entries, context: modulesPath)
        return Loaded(kind: built.kind, document: built.route, query: built.route, queryPrompt: queryPrompt, documentPrompt: documentPrompt,
                      defaultMaxActiveDims: (built.route as? CSRRoute)?.k)
    }

    static func shortName(_ type: String) -> String { String(type.split(separator: ".").last ?? "") }

    /// Builds one route from its module list.
    static func build(_ modules: [(type: String, folder: String)], context: String) throws -> (route: any EncoderRoute, kind: EncoderModel.Kind) {
        let names = modules.map { shortName($0.type) }
        switch names {
        case ["MLMTransformer", "SpladePooling"]:
            let pooling = try TransformerLoader.readJSON(modules[1].folder + "/config.json")
            let strategy = (pooling["pooling_strategy"] as? String) ?? "max"
            let activation = (pooling["activation_function"] as? String) ?? "relu"
            guard let p = SpladeRoute.Pooling(rawValue: strategy) else {
                throw SparseDBError(.model, "\(modules[1].folder)/config.json: pooling_strategy '\(strategy)' is not supported (max, sum)")
            }
            guard let s = SpladeRoute.Squash(rawValue: activation) else {
                throw SparseDBError(.model, "\(modules[1].folder)/config.json: activation_function '\(activation)' is not supported (relu, log1p_relu)")
            }
            return (try splade(transformerFolder: modules[0].folder, pooling: p, squash: s), .splade)
        case ["SparseStaticEmbedding"], ["IDF"]:
            let f = modules[0].folder
            let tokenizer = try WordPieceTokenizer(path: f + "/tokenizer.json")
            let file = try SafeTensorsFile(path: f + "/model.safetensors")
            let weights = try file.floats("weight", shape: [tokenizer.vocabularySize])
            return (StaticSparseRoute(tokenizer: tokenizer, weights: weights, maxLength: modelMaxLength(f, tokenizer: tokenizer) ?? 512), .inferenceFree)
        case ["Transformer", "Pooling", "SparseAutoEncoder"], ["Transformer", "Pooling", "CSRSparsity"]:
            let pooling = try TransformerLoader.readJSON(modules[1].folder + "/config.json")
            guard (pooling["pooling_mode_cls_token"] as? Bool) == true || (pooling["pooling_mode"] as? String) == "cls" else {
                throw SparseDBError(.model, "\(modules[1].folder)/config.json: only CLS pooling is supported for CSR")
            }
            let t = modules[0].folder
            let loaded = try TransformerLoader.load(folder: t, withHead: false)
            let tokenizer = try WordPieceTokenizer(path: t + "/tokenizer.json")
            let sae = modules[2].folder
            let config = try TransformerLoader.readJSON(sae + "/config.json")
            let input = try TransformerLoader.int(config, "input_dim", sae + "/config.json")
            let hidden = try TransformerLoader.int(config, "hidden_dim", sae + "/config.json")
            let k = try TransformerLoader.int(config, "k", sae + "/config.json")
            guard input == loaded.encoder.hidden else {
                throw SparseDBError(.model, "\(sae)/config.json: input_dim \(input) differs from the transformer's hidden size \(loaded.encoder.hidden)")
            }
            let file = try SafeTensorsFile(path: sae + "/model.safetensors")
            guard let wName = file.firstName(["encoder.weight", "decoder.linear.weight"]) else {
                throw SparseDBError(.model, "\(sae)/model.safetensors: tensor 'encoder.weight' (or 'decoder.linear.weight') is missing")
            }
            try checkVocabulary(tokenizer, loaded.encoder, folder: t)
            let settings = try transformerSettings(t, tokenizer: tokenizer, encoder: loaded.encoder)
            let route = CSRRoute(
                tokenizer: tokenizer, encoder: loaded.encoder, maxSequenceLength: settings.maxLength, lowercaseInput: settings.lowercase,
                encoderWeight: try file.floats(wName, shape: [hidden, input]), preBias: try file.floats("pre_bias", shape: [input]),
                latentBias: try file.floats("latent_bias", shape: [hidden]), k: k, normalizeInput: (config["normalize"] as? Bool) ?? false)
            return (route, .csr)
        case ["StaticEmbedding"], ["StaticEmbedding", "Normalize"]:
            let f = modules[0].folder
            let tokenizer = try WordPieceTokenizer(path: f + "/tokenizer.json")
            let file = try SafeTensorsFile(path: f + "/model.safetensors")
            guard let name = file.firstName(["embedding.weight", "embeddings"]), let info = file.tensors[name], info.shape.count == 2 else {
                throw SparseDBError(.model, "\(f)/model.safetensors: tensor 'embedding.weight' [vocab × dim] is missing")
            }
            let table = try file.floats(name)
            return (StaticEmbeddingRoute(tokenizer: tokenizer, table: table, width: info.shape[1], normalize: names.count == 2), .staticEmbedding)
        default:
            throw SparseDBError(.model, "\(context): unsupported module types \(modules.map(\.type)) (SPLADE, inference-free SPLADE, CSR and StaticEmbedding are supported)")
        }
    }

    static func modelMaxLength(_ folder: String, tokenizer: WordPieceTokenizer) -> Int? {
        if let c = try? TransformerLoader.readJSON(folder + "/tokenizer_config.json"), let m = (c["model_max_length"] as? NSNumber)?.doubleValue,
            m > 0, m < 1e9
        {
            return Int(m)
        }
        return tokenizer.fileMaxLength
    }

    static func transformerSettings(_ folder: String, tokenizer: WordPieceTokenizer, encoder: TransformerEncoder) throws -> (maxLength: Int, lowercase: Bool) {
        var maxLength = min(encoder.maxPositions, modelMaxLength(folder, tokenizer: tokenizer) ?? encoder.maxPositions)
        var lowercase = false
        let path = folder + "/sentence_bert_config.json"
        if exists(path) {
            let c = try TransformerLoader.readJSON(path)
            if let m = (c["max_seq_length"] as? NSNumber)?.intValue, m > 0 { maxLength = m }
            lowercase = (c["do_lower_case"] as? Bool) ?? false
        }
        return (maxLength, lowercase)
    }

    static func splade(transformerFolder: String, pooling: SpladeRoute.Pooling, squash: SpladeRoute.Squash) throws -> SpladeRoute {
        let loaded = try TransformerLoader.load(folder: transformerFolder, withHead: true)
        let tokenizer = try WordPieceTokenizer(path: transformerFolder + "/tokenizer.json")
        try checkVocabulary(tokenizer, loaded.encoder, folder: transformerFolder)
        let settings = try transformerSettings(transformerFolder, tokenizer: tokenizer, encoder: loaded.encoder)
        return SpladeRoute(
            tokenizer: tokenizer, encoder: loaded.encoder, head: loaded.head!, pooling: pooling, squash: squash,
            maxSequenceLength: settings.maxLength, lowercaseInput: settings.lowercase)
    }

    /// Every id the tokenizer can produce must have an embedding row.
    static func checkVocabulary(_ tokenizer: WordPieceTokenizer, _ encoder: TransformerEncoder, folder: String) throws {
        guard tokenizer.vocabularySize <= encoder.vocabularySize else {
            throw SparseDBError(
                .model, "\(folder)/tokenizer.json: vocabulary of \(tokenizer.vocabularySize) tokens exceeds the model's \(encoder.vocabularySize) embeddings")
        }
    }

    /// CRC-32C over the folder's JSON and safetensors files (relative path and content), hex.
    static func fingerprint(_ folder: String) throws -> String {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: folder) else { throw SparseDBError(.model, "\(folder): cannot list") }
        var files: [String] = []
        while let f = walker.nextObject() as? String {
            if f.hasSuffix(".json") || f.hasSuffix(".safetensors") { files.append(f) }
        }
        var crc: UInt32 = 0
        for f in files.sorted() {
            crc = CRC32C.checksum(Array(f.utf8), seed: crc)
            guard let data = fm.contents(atPath: folder + "/" + f) else { continue }
            crc = data.withUnsafeBytes { CRC32C.checksum($0, seed: crc) }
        }
        return String(format: "%08x", crc)
    }
}
