import SparseDBCore
import Foundation

/// One route of a model: text in, vector out. Implementations are immutable and thread-safe.
protocol EncoderRoute: Sendable {
    /// Output dimensions.
    var dimensions: Int { get }
    /// Token ids of one text (prompt already applied).
    func tokenize(_ text: String) -> [Int32]
    /// Encodes texts already tokenized; `maxActiveDims` as in sentence-transformers.
    /// `parallelism` > 1 lets the route split one batch across that many threads (used when a
    /// call has a single batch, e.g. one query, so the cores are otherwise idle).
    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector]
    /// Whether the route runs a transformer (worth batching and parallelising).
    var isHeavy: Bool { get }
}

/// What a route produces.
package enum EncodedVector: Sendable {
    case sparse(SparseVector)
    case dense([Float])
}

/// MLMTransformer + SpladePooling: `pool_t act(logits[t, v])` over all tokens ([CLS]/[SEP] included).
final class SpladeRoute: EncoderRoute {
    enum Pooling: String { case max, sum }
    enum Squash: String { case relu, log1pRelu = "log1p_relu" }

    let tokenizer: WordPieceTokenizer
    let encoder: TransformerEncoder
    let head: MaskedLMHead
    let pooling: Pooling
    let squash: Squash
    let maxSequenceLength: Int
    let lowercaseInput: Bool
    var dimensions: Int { head.bias.count }
    var isHeavy: Bool { true }

    init(tokenizer: WordPieceTokenizer, encoder: TransformerEncoder, head: MaskedLMHead, pooling: Pooling, squash: Squash,
         maxSequenceLength: Int, lowercaseInput: Bool) {
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.head = head
        self.pooling = pooling
        self.squash = squash
        self.maxSequenceLength = min(maxSequenceLength, encoder.maxPositions)
        self.lowercaseInput = lowercaseInput
    }

    func tokenize(_ text: String) -> [Int32] {
        tokenizer.transformerInput(text, lowercase: lowercaseInput, maxLength: maxSequenceLength)
    }

    @inline(__always) private static func activate(_ x: Float, _ squash: Squash) -> Float {
        let r = log1pf(max(0, x))
        return squash == .relu ? r : log1pf(r)
    }

    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector] {
        var batch = PackedBatch()
        for t in tokens { batch.append(t) }
        try encoder.check(batch)
        let hidden = encoder.forward(batch)
        let T = batch.tokenCount
        let H = encoder.hidden
        let V = dimensions
        // Transform: LN(act(h·Wtᵀ + bt)).
        var transformed = [Float](repeating: 0, count: T * H)
        transformed.withUnsafeMutableBufferPointer { tb in
            hidden.withUnsafeBufferPointer { hb in head.transform.apply(hb.baseAddress!, rows: T, into: tb.baseAddress!) }
            head.activation.apply(tb.baseAddress!, count: T * H)
            head.norm.apply(tb.baseAddress!, rows: T)
        }
        // Stream the vocabulary projection in column chunks, pooling each text's rows as we go
        // (max pooling commutes with the monotone activation, so it is applied once at the end).
        let n = batch.segments.count
        var pooled = [Float](repeating: pooling == .max ? -.infinity : 0, count: n * V)
        let chunk = max(256, min(4096, ((1 << 19) / max(T, 1)) & ~63))
        let squash = self.squash
        let pooling = self.pooling
        transformed.withUnsafeBufferPointer { tb in
            head.decoder.withUnsafeBufferPointer { db in
                head.bias.withUnsafeBufferPointer { bb in
                    pooled.withUnsafeMutableBufferPointer { pb in
                        // Workers own disjoint column ranges of the vocabulary, so they write
                        // disjoint parts of `pooled`.
                        nonisolated(unsafe) let t = tb.baseAddress!
                        nonisolated(unsafe) let d = db.baseAddress!
                        nonisolated(unsafe) let b = bb.baseAddress!
                        nonisolated(unsafe) let p = pb.baseAddress!
                        let segments = batch.segments
                        let workers = max(1, min(parallelism, V / 4096))
                        let span = ((V + workers - 1) / workers + 63) & ~63
                        DispatchQueue.concurrentPerform(iterations: workers) { worker in
                            let start = worker * span
                            let end = min(V, start + span)
                            guard start < end else { return }
                            let logits = UnsafeMutablePointer<Float>.allocate(capacity: T * chunk)
                            defer { logits.deallocate() }
                            var c0 = start
                            while c0 < end {
                                let w = min(chunk, end - c0)
                                BLAS.matmulTransposedB(t, d + c0 * H, logits, m: T, n: w, k: H, ldc: w)
                                for (s, seg) in segments.enumerated() {
                                    let out = p + s * V + c0
                                    for r in seg.start..<(seg.start + seg.length) {
                                        let row = logits + r * w
                                        if pooling == .max {
                                            for c in 0..<w { out[c] = max(out[c], row[c]) }
                                        } else {
                                            for c in 0..<w { out[c] += Self.activate(row[c] + b[c0 + c], squash) }
                                        }
                                    }
                                    if pooling == .max {
                                        for c in 0..<w { out[c] = Self.activate(out[c] + b[c0 + c], squash) }
                                    }
                                }
                                c0 += w
                            }
                        }
                    }
                }
            }
        }
        var result: [EncodedVector] = []
        result.reserveCapacity(n)
        for s in 0..<n {
            var dims: [UInt32] = []
            var weights: [Float] = []
            for v in 0..<V {
                let x = pooled[s * V + v]
                if x > 0 {
                    dims.append(UInt32(v))
                    weights.append(x)
                }
            }
            var vec = SparseVector(unchecked: dims, weights: weights)
            if let k = maxActiveDims, k > 0 { vec = vec.keepingLargest(k) }
            result.append(.sparse(vec))
        }
        return result
    }
}

/// SparseStaticEmbedding (formerly IDF): binary presence of each token × a learned weight;
/// no special tokens, no transformer.
final class StaticSparseRoute: EncoderRoute {
    let tokenizer: WordPieceTokenizer
    let weights: [Float]
    let maxLength: Int
    var dimensions: Int { weights.count }
    var isHeavy: Bool { false }

    init(tokenizer: WordPieceTokenizer, weights: [Float], maxLength: Int) {
        self.tokenizer = tokenizer
        self.weights = weights
        self.maxLength = maxLength
    }

    func tokenize(_ text: String) -> [Int32] { tokenizer.encode(text, addSpecialTokens: false, maxLength: maxLength) }

    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector] {
        try tokens.map { ids in
            var present = Set<Int32>()
            for id in ids {
                guard id >= 0 && Int(id) < weights.count else {
                    throw SparseDBError(.model, "token id \(id) is outside the IDF table of \(weights.count) entries")
                }
                present.insert(id)
            }
            let entries = present.sorted().compactMap { id -> (UInt32, Float)? in
                let w = weights[Int(id)]
                return w != 0 ? (UInt32(id), w) : nil
            }
            var vec = SparseVector(unchecked: entries.map(\.0), weights: entries.map(\.1))
            if let k = maxActiveDims, k > 0 { vec = vec.keepingLargest(k) }
            return .sparse(vec)
        }
    }
}

/// Transformer + CLS pooling + SparseAutoEncoder (CSR): top-k of the pre-activations, then ReLU.
final class CSRRoute: EncoderRoute {
    let tokenizer: WordPieceTokenizer
    let encoder: TransformerEncoder
    let maxSequenceLength: Int
    let lowercaseInput: Bool
    let encoderWeight: [Float]  // [hidden × input]
    let preBias: [Float]
    let latentBias: [Float]
    let k: Int
    let normalizeInput: Bool
    var dimensions: Int { latentBias.count }
    var isHeavy: Bool { true }

    init(tokenizer: WordPieceTokenizer, encoder: TransformerEncoder, maxSequenceLength: Int, lowercaseInput: Bool,
         encoderWeight: [Float], preBias: [Float], latentBias: [Float], k: Int, normalizeInput: Bool) {
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.maxSequenceLength = min(maxSequenceLength, encoder.maxPositions)
        self.lowercaseInput = lowercaseInput
        self.encoderWeight = encoderWeight
        self.preBias = preBias
        self.latentBias = latentBias
        self.k = k
        self.normalizeInput = normalizeInput
    }

    func tokenize(_ text: String) -> [Int32] {
        tokenizer.transformerInput(text, lowercase: lowercaseInput, maxLength: maxSequenceLength)
    }

    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector] {
        var batch = PackedBatch()
        for t in tokens { batch.append(t) }
        try encoder.check(batch)
        let hidden = encoder.forward(batch)
        let H = encoder.hidden
        let D = dimensions
        let n = batch.segments.count
        var x = [Float](repeating: 0, count: n * H)
        for (s, seg) in batch.segments.enumerated() {
            for i in 0..<H { x[s * H + i] = hidden[seg.start * H + i] }
            if normalizeInput {
                let row = x[(s * H)..<(s * H + H)]
                let mean = row.reduce(0, +) / Float(H)
                let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(max(H - 1, 1))
                let sd = variance.squareRoot()
                for i in 0..<H { x[s * H + i] = (x[s * H + i] - mean) / (sd + 1e-5) }
            }
            for i in 0..<H { x[s * H + i] -= preBias[i] }
        }
        var pre = [Float](repeating: 0, count: n * D)
        let linear = Linear(weight: encoderWeight, bias: latentBias, in: H, out: D)
        x.withUnsafeBufferPointer { xb in pre.withUnsafeMutableBufferPointer { pb in linear.apply(xb.baseAddress!, rows: n, into: pb.baseAddress!) } }
        let kk = min(maxActiveDims.flatMap { $0 > 0 ? $0 : nil } ?? k, D)
        return (0..<n).map { s in
            let row = Array(pre[(s * D)..<(s * D + D)])
            let top = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(kk).sorted()
            let kept = top.filter { row[$0] > 0 }
            return .sparse(SparseVector(unchecked: kept.map { UInt32($0) }, weights: kept.map { row[$0] }))
        }
    }
}

/// Transformer + Pooling (+ Normalize): a dense sentence-transformers model (all-MiniLM-L6-v2
/// and the like). Mean pooling averages every token's last hidden state, [CLS] and [SEP]
/// included (their attention mask is 1); CLS pooling takes the first row. Normalize divides by
/// max(‖x‖, 1e-12), as torch's F.normalize.
final class DenseRoute: EncoderRoute {
    enum Pooling: String { case mean, cls }

    let tokenizer: WordPieceTokenizer
    let encoder: TransformerEncoder
    let maxSequenceLength: Int
    let lowercaseInput: Bool
    let pooling: Pooling
    let normalize: Bool
    var dimensions: Int { encoder.hidden }
    var isHeavy: Bool { true }

    init(tokenizer: WordPieceTokenizer, encoder: TransformerEncoder, maxSequenceLength: Int, lowercaseInput: Bool, pooling: Pooling, normalize: Bool) {
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.maxSequenceLength = min(maxSequenceLength, encoder.maxPositions)
        self.lowercaseInput = lowercaseInput
        self.pooling = pooling
        self.normalize = normalize
    }

    func tokenize(_ text: String) -> [Int32] {
        tokenizer.transformerInput(text, lowercase: lowercaseInput, maxLength: maxSequenceLength)
    }

    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector] {
        var batch = PackedBatch()
        for t in tokens { batch.append(t) }
        try encoder.check(batch)
        let hidden = encoder.forward(batch)
        let H = encoder.hidden
        return batch.segments.map { seg in
            var out = [Float](repeating: 0, count: H)
            hidden.withUnsafeBufferPointer { hb in
                let rows = pooling == .cls ? min(seg.length, 1) : seg.length
                for r in 0..<rows {
                    let row = hb.baseAddress! + (seg.start + r) * H
                    for i in 0..<H { out[i] += row[i] }
                }
                // sentence-transformers divides by max(count, 1e-9); a packed text has ≥ 2 tokens.
                if pooling == .mean && rows > 1 {
                    let inv = Float(rows)
                    for i in 0..<H { out[i] /= inv }
                }
            }
            if normalize {
                let norm = out.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let d = max(norm, 1e-12)
                for i in 0..<H { out[i] /= d }
            }
            return .dense(out)
        }
    }
}

/// StaticEmbedding: the mean of the tokens' rows (EmbeddingBag mean); duplicates count each time.
final class StaticEmbeddingRoute: EncoderRoute {
    let tokenizer: WordPieceTokenizer
    let table: [Float]  // [V × D]
    let width: Int
    let normalize: Bool
    var dimensions: Int { width }
    var isHeavy: Bool { false }

    init(tokenizer: WordPieceTokenizer, table: [Float], width: Int, normalize: Bool) {
        self.tokenizer = tokenizer
        self.table = table
        self.width = width
        self.normalize = normalize
    }

    func tokenize(_ text: String) -> [Int32] { tokenizer.encode(text, addSpecialTokens: false, maxLength: tokenizer.fileMaxLength) }

    func encode(_ tokens: [[Int32]], maxActiveDims: Int?, parallelism: Int) throws -> [EncodedVector] {
        let rows = table.count / width
        return try tokens.map { ids in
            var out = [Float](repeating: 0, count: width)
            guard !ids.isEmpty else { return .dense(out) }
            for id in ids {
                guard id >= 0 && Int(id) < rows else { throw SparseDBError(.model, "token id \(id) is outside the embedding table of \(rows) rows") }
                let base = Int(id) * width
                for i in 0..<width { out[i] += table[base + i] }
            }
            let inv = 1 / Float(ids.count)
            for i in 0..<width { out[i] *= inv }
            if normalize {
                let norm = out.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { for i in 0..<width { out[i] /= max(norm, 1e-12) } }
            }
            return .dense(out)
        }
    }
}
