import SparseDBCore
import Foundation

/// Reads a sentence-transformers model folder (modules.json, router_config.json,
/// sentence_bert_config.json, config_sentence_transformers.json and each module's files) and
/// builds the query and document routes. Old and new module names are both accepted
/// (IDF = SparseStaticEmbedding, CSRSparsity = SparseAutoEncoder).
///
/// The folder is untrusted: files are read through `ModelFiles` (regular, bounded, inside the
/// folder), every configuration number is range-checked and cross-checked against the stored
/// tensors, and every token id against the tables it indexes, before anything is allocated.
enum ModelFolder {
    struct Loaded {
        var kind: EncoderModel.Kind
        var document: any EncoderRoute
        var query: any EncoderRoute
        var queryPrompt: String
        var documentPrompt: String
        var defaultMaxActiveDims: Int?
    }

    /// Whether something (file, folder, even a dangling symlink) is at `path`.
    static func exists(_ path: String) -> Bool { (try? FileManager.default.attributesOfItem(atPath: path)) != nil }

    static func load(_ folder: String) throws -> Loaded {
        var queryPrompt = ""
        var documentPrompt = ""
        let stConfig = folder + "/config_sentence_transformers.json"
        if exists(stConfig) {
            let c = try ModelFiles.object(stConfig)
            if let prompts = try c.object("prompts") {
                for (key, value) in prompts.values where !(value is NSNull) && !(value is String) {
                    throw SparseDBError(.model, "\(stConfig): 'prompts.\(key)' is \(prompts.describe(value)), expected a string")
                }
                queryPrompt = try prompts.string("query") ?? ""
                documentPrompt = try prompts.string("document") ?? prompts.string("passage") ?? prompts.string("corpus") ?? ""
            }
        }
        let hasPrompt = !queryPrompt.isEmpty || !documentPrompt.isEmpty
        let modulesPath = folder + "/modules.json"
        guard exists(modulesPath) else {
            // A plain Hugging Face masked-LM folder: SPLADE with max pooling and ReLU, as
            // sentence-transformers builds it for such a model.
            let config = try ModelFiles.object(folder + "/config.json")
            let architectures = config["architectures"] as? [String] ?? []
            guard architectures.contains(where: { $0.hasSuffix("ForMaskedLM") }) else {
                throw SparseDBError(.model, "\(folder): no modules.json, and config.json is not a *ForMaskedLM model (architectures \(architectures))")
            }
            let route = try splade(transformerFolder: folder, pooling: .max, squash: .relu)
            return Loaded(kind: .splade, document: route, query: route, queryPrompt: queryPrompt, documentPrompt: documentPrompt)
        }
        guard let modules = try ModelFiles.value(modulesPath) as? [Any], !modules.isEmpty else {
            throw SparseDBError(.model, "\(modulesPath): not a non-empty JSON array of modules")
        }
        let entries: [(type: String, folder: String)] = try modules.enumerated().map { i, m in
            guard let m = m as? [String: Any], let type = m["type"] as? String else {
                throw SparseDBError(.model, "\(modulesPath): module \(i) has no string \"type\"")
            }
            let path = m["path"] ?? ""
            guard let relative = path as? String else {
                throw SparseDBError(.model, "\(modulesPath): 'path' of module \(i) is not a string")
            }
            let folder = try ModelFiles.moduleFolder(
                root: folder, relative: relative, file: modulesPath, key: "'path' of module \(i)", mustExist: shortName(type) != "Normalize")
            return (type, folder)
        }
        if entries.count == 1, shortName(entries[0].type) == "Router" {
            return try router(entries[0].folder, queryPrompt: queryPrompt, documentPrompt: documentPrompt)
        }
        let built = try build(entries, context: modulesPath, hasPrompt: hasPrompt)
        return Loaded(kind: built.kind, document: built.route, query: built.route, queryPrompt: queryPrompt, documentPrompt: documentPrompt,
                      defaultMaxActiveDims: (built.route as? CSRRoute)?.k)
    }

    /// A Router module: a route per task, each its own module list in a subfolder.
    static func router(_ routerFolder: String, queryPrompt: String, documentPrompt: String) throws -> Loaded {
        let configPath = routerFolder + "/router_config.json"
        let router = try ModelFiles.object(configPath)
        guard let types = router["types"] as? [String: String], let structure = router["structure"] as? [String: [String]], !structure.isEmpty else {
            throw SparseDBError(.model, "\(configPath): needs \"types\" (name → type) and \"structure\" (route → names)")
        }
        let defaultRoute = try router.object("parameters")?.string("default_route") ?? structure.keys.sorted().first!
        var cache: [String: (route: any EncoderRoute, kind: EncoderModel.Kind)] = [:]
        func route(_ key: String) throws -> (route: any EncoderRoute, kind: EncoderModel.Kind) {
            let resolved = structure[key] != nil ? key : defaultRoute
            if let hit = cache[resolved] { return hit }
            guard let names = structure[resolved] else {
                throw SparseDBError(.model, "\(configPath): no route '\(key)' and no default route '\(defaultRoute)' in 'structure'")
            }
            let modules: [(type: String, folder: String)] = try names.map { name in
                guard let type = types[name] else { throw SparseDBError(.model, "\(configPath): module '\(name)' has no entry in 'types'") }
                let folder = try ModelFiles.moduleFolder(
                    root: routerFolder, relative: name, file: configPath, key: "module '\(name)' of 'structure.\(resolved)'",
                    mustExist: shortName(type) != "Normalize")
                return (type, folder)
            }
            let prompt = resolved == "query" ? queryPrompt : documentPrompt
            let built = try build(modules, context: configPath, hasPrompt: !prompt.isEmpty)
            cache[resolved] = built
            return built
        }
        let document = try route("document").route
        let query = try route("query").route
        let kind: EncoderModel.Kind = query is StaticSparseRoute && !(document is StaticSparseRoute) ? .inferenceFree : try route(defaultRoute).kind
        return Loaded(kind: kind, document: document, query: query, queryPrompt: queryPrompt, documentPrompt: documentPrompt)
    }

    static func shortName(_ type: String) -> String { String(type.split(separator: ".").last ?? "") }

    /// Builds one route from its module list. `hasPrompt`: whether a prompt is prepended to its
    /// texts (prompt-excluding pooling is not supported).
    static func build(_ modules: [(type: String, folder: String)], context: String, hasPrompt: Bool) throws
        -> (route: any EncoderRoute, kind: EncoderModel.Kind)
    {
        let names = modules.map { shortName($0.type) }
        switch names {
        case ["MLMTransformer", "SpladePooling"]:
            let path = modules[1].folder + "/config.json"
            let pooling = try ModelFiles.object(path)
            let strategy = try pooling.string("pooling_strategy", default: "max")
            let activation = try pooling.string("activation_function", default: "relu")
            guard let p = SpladeRoute.Pooling(rawValue: strategy) else {
                throw SparseDBError(.model, "\(path): 'pooling_strategy' '\(strategy)' is not supported (max, sum)")
            }
            guard let s = SpladeRoute.Squash(rawValue: activation) else {
                throw SparseDBError(.model, "\(path): 'activation_function' '\(activation)' is not supported (relu, log1p_relu)")
            }
            let route = try splade(transformerFolder: modules[0].folder, pooling: p, squash: s)
            for key in ["embedding_dimension", "word_embedding_dimension"] {
                if let d = try pooling.optionalInt(key, in: 1...Int(Int32.max)), d != route.dimensions {
                    throw SparseDBError(.model, "\(path): '\(key)' is \(d), but the model's vocabulary has \(route.dimensions) entries")
                }
            }
            return (route, .splade)
        case ["SparseStaticEmbedding"], ["IDF"]:
            let f = modules[0].folder
            let tokenizer = try WordPieceTokenizer(path: f + "/tokenizer.json")
            let file = try SafeTensorsFile(path: f + "/model.safetensors")
            guard let info = file.tensors["weight"], info.shape.count == 1 else {
                throw SparseDBError(.model, "\(file.path): tensor 'weight' [vocabulary] is missing or not one-dimensional")
            }
            try tokenizer.checkIds(within: info.shape[0], of: "weight", in: file.path)
            let weights = try file.floats("weight")
            return (StaticSparseRoute(tokenizer: tokenizer, weights: weights, maxLength: try modelMaxLength(f, tokenizer: tokenizer) ?? 512), .inferenceFree)
        case ["Transformer", "Pooling", "SparseAutoEncoder"], ["Transformer", "Pooling", "CSRSparsity"]:
            let t = try transformer(modules[0].folder)
            let pooling = try poolingMode(modules[1].folder, hidden: t.encoder.hidden, hasPrompt: hasPrompt)
            guard pooling == .cls else {
                throw SparseDBError(.model, "\(modules[1].folder)/config.json: pooling '\(pooling.rawValue)': only CLS pooling is supported for CSR")
            }
            let sae = modules[2].folder
            let configPath = sae + "/config.json"
            let config = try ModelFiles.object(configPath)
            let input = try config.int("input_dim", in: TransformerLoader.Limits.hidden)
            let hidden = try config.int("hidden_dim", in: 1...(1 << 24))
            let k = try config.int("k", in: 1...hidden)
            let normalize = try config.bool("normalize", default: false)
            guard input == t.encoder.hidden else {
                throw SparseDBError(.model, "\(configPath): 'input_dim' \(input) differs from the transformer's hidden size \(t.encoder.hidden)")
            }
            let file = try SafeTensorsFile(path: sae + "/model.safetensors")
            guard let wName = file.firstName(["encoder.weight", "decoder.linear.weight"]) else {
                throw SparseDBError(.model, "\(sae)/model.safetensors: tensor 'encoder.weight' (or 'decoder.linear.weight') is missing")
            }
            if let info = file.tensors[wName], info.shape != [hidden, input] {
                throw SparseDBError(
                    .model, "\(configPath): 'hidden_dim' \(hidden) and 'input_dim' \(input) do not match tensor '\(wName)' of shape \(info.shape) in \(file.path)")
            }
            let route = CSRRoute(
                tokenizer: t.tokenizer, encoder: t.encoder, maxSequenceLength: t.maxLength, lowercaseInput: t.lowercase,
                encoderWeight: try file.floats(wName, shape: [hidden, input]), preBias: try file.floats("pre_bias", shape: [input]),
                latentBias: try file.floats("latent_bias", shape: [hidden]), k: k, normalizeInput: normalize)
            return (route, .csr)
        case ["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]:
            let t = try transformer(modules[0].folder)
            let pooling = try poolingMode(modules[1].folder, hidden: t.encoder.hidden, hasPrompt: hasPrompt)
            let route = DenseRoute(
                tokenizer: t.tokenizer, encoder: t.encoder, maxSequenceLength: t.maxLength, lowercaseInput: t.lowercase, pooling: pooling,
                normalize: names.count == 3)
            return (route, .dense)
        case ["StaticEmbedding"], ["StaticEmbedding", "Normalize"]:
            let f = modules[0].folder
            let tokenizer = try WordPieceTokenizer(path: f + "/tokenizer.json")
            let file = try SafeTensorsFile(path: f + "/model.safetensors")
            guard let name = file.firstName(["embedding.weight", "embeddings"]), let info = file.tensors[name] else {
                throw SparseDBError(.model, "\(file.path): tensor 'embedding.weight' [vocab × dim] is missing")
            }
            guard info.shape.count == 2, TransformerLoader.Limits.hidden.contains(info.shape[1]), info.shape[0] >= 1 else {
                throw SparseDBError(
                    .model, "\(file.path): tensor '\(name)' has shape \(info.shape), expected [rows ≥ 1, width in \(TransformerLoader.Limits.hidden)]")
            }
            try tokenizer.checkIds(within: info.shape[0], of: name, in: file.path)
            let table = try file.floats(name)
            return (StaticEmbeddingRoute(tokenizer: tokenizer, table: table, width: info.shape[1], normalize: names.count == 2), .staticEmbedding)
        default:
            throw SparseDBError(
                .model,
                "\(context): unsupported module types \(modules.map(\.type)) (SPLADE, inference-free SPLADE, CSR, StaticEmbedding and Transformer + Pooling (+ Normalize) are supported)"
            )
        }
    }

    /// The pooling of a sentence-transformers Pooling module (`folder/config.json`), in either
    /// the current form (`pooling_mode`: a name or a list) or the legacy `pooling_mode_*` flags
    /// (none set = mean, as sentence-transformers reads it). One mode, cls or mean.
    static func poolingMode(_ folder: String, hidden: Int, hasPrompt: Bool) throws -> DenseRoute.Pooling {
        let path = folder + "/config.json"
        let config = try ModelFiles.object(path)
        for key in ["embedding_dimension", "word_embedding_dimension"] {
            if let d = try config.optionalInt(key, in: 1...Int(Int32.max)), d != hidden {
                throw SparseDBError(.model, "\(path): '\(key)' is \(d), but the transformer's hidden size is \(hidden)")
            }
        }
        let legacy: [(key: String, mode: String)] = [
            ("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean"),
            ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"), ("pooling_mode_weightedmean_tokens", "weightedmean"),
            ("pooling_mode_lasttoken", "lasttoken"),
        ]
        var modes: [String]
        var key = "pooling_mode"
        if let value = config["pooling_mode"] {
            if let s = value as? String {
                modes = [s]
            } else if let list = value as? [String], !list.isEmpty {
                modes = list
            } else {
                throw SparseDBError(.model, "\(path): 'pooling_mode' is \(config.describe(value)), expected a mode name or a list of them")
            }
        } else {
            modes = []
            for (k, mode) in legacy where try config.bool(k, default: false) {
                modes.append(mode)
                key = k
            }
            if modes.isEmpty { modes = ["mean"] }
        }
        guard modes.count == 1 else {
            throw SparseDBError(.model, "\(path): pooling modes \(modes) are concatenated; only a single cls or mean pooling is supported")
        }
        guard let mode = DenseRoute.Pooling(rawValue: modes[0]) else {
            throw SparseDBError(.model, "\(path): '\(key)' asks for \(modes[0]) pooling, which is not supported (cls, mean)")
        }
        if try !config.bool("include_prompt", default: true), hasPrompt {
            throw SparseDBError(
                .model, "\(path): 'include_prompt' false (prompt tokens left out of pooling) is not supported for a model with prompts")
        }
        return mode
    }

    /// A transformer module's model, tokenizer and input settings, cross-checked.
    static func transformer(_ folder: String, withHead: Bool = false) throws
        -> (encoder: TransformerEncoder, head: MaskedLMHead?, tokenizer: WordPieceTokenizer, maxLength: Int, lowercase: Bool)
    {
        let loaded = try TransformerLoader.load(folder: folder, withHead: withHead)
        let tokenizer = try WordPieceTokenizer(path: folder + "/tokenizer.json")
        try tokenizer.requireSpecialTokens()
        try tokenizer.checkIds(within: loaded.encoder.vocabularySize, of: loaded.wordEmbeddings, in: folder + "/model.safetensors")
        let settings = try transformerSettings(folder, tokenizer: tokenizer, encoder: loaded.encoder)
        return (loaded.encoder, loaded.head, tokenizer, settings.maxLength, settings.lowercase)
    }

    /// `model_max_length` from tokenizer_config.json (values of 1e20 and more are transformers'
    /// "no limit" sentinel), else the tokenizer file's own truncation.
    static func modelMaxLength(_ folder: String, tokenizer: WordPieceTokenizer) throws -> Int? {
        let path = folder + "/tokenizer_config.json"
        if exists(path), let value = try ModelFiles.object(path)["model_max_length"] {
            guard let n = value as? NSNumber, !JSONConfig.isBool(n), n.doubleValue.isFinite, n.doubleValue >= 1, n.doubleValue == n.doubleValue.rounded(),
                n.doubleValue >= 1e20 || n.doubleValue <= Double(WordPieceTokenizer.sequenceLimit)
            else {
                throw SparseDBError(
                    .model,
                    "\(path): 'model_max_length' is \(JSONConfig.describe(value)), expected an integer in 1...\(WordPieceTokenizer.sequenceLimit) (or ≥ 1e20 for no limit)")
            }
            if n.doubleValue < 1e20 { return Int(n.doubleValue) }
        }
        return tokenizer.fileMaxLength
    }

    static func transformerSettings(_ folder: String, tokenizer: WordPieceTokenizer, encoder: TransformerEncoder) throws -> (maxLength: Int, lowercase: Bool) {
        var maxLength = min(encoder.maxPositions, try modelMaxLength(folder, tokenizer: tokenizer) ?? encoder.maxPositions)
        var lowercase = false
        let path = folder + "/sentence_bert_config.json"
        if exists(path) {
            let c = try ModelFiles.object(path)
            // [CLS] and [SEP] need two positions; more than the position table would read past it.
            if let m = try c.optionalInt("max_seq_length", in: 2...encoder.maxPositions) { maxLength = m }
            lowercase = try c.bool("do_lower_case", default: false)
        }
        guard maxLength >= 2 else {
            throw SparseDBError(.model, "\(folder): maximum sequence length \(maxLength) leaves no room for [CLS] and [SEP]")
        }
        return (maxLength, lowercase)
    }

    static func splade(transformerFolder: String, pooling: SpladeRoute.Pooling, squash: SpladeRoute.Squash) throws -> SpladeRoute {
        let t = try transformer(transformerFolder, withHead: true)
        guard let head = t.head else { throw SparseDBError(.model, "\(transformerFolder): no masked-LM head") }
        return SpladeRoute(
            tokenizer: t.tokenizer, encoder: t.encoder, head: head, pooling: pooling, squash: squash,
            maxSequenceLength: t.maxLength, lowercaseInput: t.lowercase)
    }
}
