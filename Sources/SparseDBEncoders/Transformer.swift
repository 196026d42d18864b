import SparseDBCore
import Foundation

/// y = x·Wᵀ + b for a token matrix x [T×in].
struct Linear: Sendable {
    let weight: [Float]  // [out × in], as nn.Linear stores it
    let bias: [Float]
    let inFeatures: Int
    let outFeatures: Int

    init(file: SafeTensorsFile, prefix: String, in inFeatures: Int, out outFeatures: Int) throws {
        weight = try file.floats(prefix + ".weight", shape: [outFeatures, inFeatures])
        bias = try file.floats(prefix + ".bias", shape: [outFeatures])
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    init(weight: [Float], bias: [Float], in inFeatures: Int, out outFeatures: Int) {
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// out[T×out] = x[T×in]·Wᵀ + b.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            (out + r * outFeatures).update(from: bias, count: outFeatures)
        }
        weight.withUnsafeBufferPointer { w in
            BLAS.matmulTransposedB(x, w.baseAddress!, out, m: rows, n: outFeatures, k: inFeatures, accumulate: true)
        }
    }
}

/// LayerNorm over the last dimension: (x − mean) / sqrt(var + eps) · γ + β (biased variance).
struct LayerNorm: Sendable {
    let gamma: [Float]
    let beta: [Float]
    let eps: Float

    /// Loads `prefix.weight`/`.bias`, or the legacy `prefix.gamma`/`.beta` names.
    init(file: SafeTensorsFile, prefix: String, size: Int, eps: Float) throws {
        let w = file.firstName([prefix + ".weight", prefix + ".gamma"]) ?? prefix + ".weight"
        let b = file.firstName([prefix + ".bias", prefix + ".beta"]) ?? prefix + ".bias"
        gamma = try file.floats(w, shape: [size])
        beta = try file.floats(b, shape: [size])
        self.eps = eps
    }

    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int) {
        let n = gamma.count
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = x + r * n
                    var mean: Float = 0
                    for i in 0..<n { mean += row[i] }
                    mean /= Float(n)
                    var variance: Float = 0
                    for i in 0..<n {
                        let d = row[i] - mean
                        variance += d * d
                    }
                    variance /= Float(n)
                    let inv = 1 / (variance + eps).squareRoot()
                    for i in 0..<n { row[i] = (row[i] - mean) * inv * g[i] + b[i] }
                }
            }
        }
    }
}

enum Activation: String, Sendable {
    case gelu, relu, geluNew = "gelu_new"

    init(name: String, path: String) throws {
        switch name {
        case "gelu", "gelu_python": self = .gelu
        case "relu": self = .relu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluNew
        default: throw SparseDBError(.model, "\(path): activation '\(name)' is not supported")
        }
    }

    func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .gelu:
            // erf GELU, as transformers' "gelu" (vectorisable form; see FastMath).
            FastMath.gelu(x, count: count)
        case .relu:
            for i in 0..<count { x[i] = max(0, x[i]) }
        case .geluNew:
            for i in 0..<count {
                let v = x[i]
                x[i] = 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v)))
            }
        }
    }
}

/// One transformer layer (BERT and DistilBERT share the math; only names differ).
struct EncoderLayer: Sendable {
    let qkv: Linear  // query, key and value stacked: [3H × H]
    let attentionOut: Linear
    let attentionNorm: LayerNorm
    let intermediate: Linear
    let output: Linear
    let outputNorm: LayerNorm
}

/// Token packing: several texts' tokens stacked into one [T × H] matrix (no padding); only
/// attention looks at text boundaries.
struct PackedBatch {
    var ids: [Int32] = []
    var segments: [(start: Int, length: Int)] = []

    mutating func append(_ tokens: [Int32]) {
        segments.append((ids.count, tokens.count))
        ids.append(contentsOf: tokens)
    }
    var tokenCount: Int { ids.count }
}

/// A BERT-family encoder: embeddings + layers. Weights are read once and shared by all threads.
final class TransformerEncoder: Sendable {
    let hidden: Int
    let heads: Int
    let intermediateSize: Int
    let maxPositions: Int
    let wordEmbeddings: [Float]  // [V × H]
    let positionEmbeddings: [Float]  // [P × H]
    let tokenTypeEmbedding: [Float]  // [H], type 0 (zeros for DistilBERT)
    let embeddingNorm: LayerNorm
    let layers: [EncoderLayer]
    let activation: Activation
    let vocabularySize: Int

    init(
        hidden: Int, heads: Int, intermediateSize: Int, maxPositions: Int, wordEmbeddings: [Float], positionEmbeddings: [Float],
        tokenTypeEmbedding: [Float], embeddingNorm: LayerNorm, layers: [EncoderLayer], activation: Activation
    ) {
        self.hidden = hidden
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.wordEmbeddings = wordEmbeddings
        self.positionEmbeddings = positionEmbeddings
        self.tokenTypeEmbedding = tokenTypeEmbedding
        self.embeddingNorm = embeddingNorm
        self.layers = layers
        self.activation = activation
        self.vocabularySize = wordEmbeddings.count / hidden
    }

    /// Every id must index a word embedding and every text fit the position table; the loaders
    /// guarantee it for what the tokenizer produces, and this cheap check keeps the forward
    /// pass's unchecked pointer reads safe whatever a caller passes.
    func check(_ batch: PackedBatch) throws {
        for (_, length) in batch.segments where length > maxPositions {
            throw SparseDBError(.model, "a text of \(length) tokens exceeds the model's \(maxPositions) positions")
        }
        for id in batch.ids where id < 0 || Int(id) >= vocabularySize {
            throw SparseDBError(.model, "token id \(id) is outside the model's \(vocabularySize) word embeddings")
        }
    }

    /// Runs the encoder; returns the last hidden states [T × H] of the packed batch.
    /// Precondition: `check(batch)` passed.
    func forward(_ batch: PackedBatch) -> [Float] {
        _ = BLAS.configure
        let T = batch.tokenCount
        let H = hidden
        var x = [Float](repeating: 0, count: T * H)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            wordEmbeddings.withUnsafeBufferPointer { we in
                positionEmbeddings.withUnsafeBufferPointer { pe in
                    for (start, length) in batch.segments {
                        for p in 0..<length {
                            let row = xp + (start + p) * H
                            let w = we.baseAddress! + Int(batch.ids[start + p]) * H
                            let pos = pe.baseAddress! + p * H
                            for i in 0..<H { row[i] = w[i] + pos[i] + tokenTypeEmbedding[i] }
                        }
                    }
                }
            }
            embeddingNorm.apply(xp, rows: T)
        }
        var qkv = [Float](repeating: 0, count: T * 3 * H)
        var context = [Float](repeating: 0, count: T * H)
        var projected = [Float](repeating: 0, count: T * H)
        var inter = [Float](repeating: 0, count: T * intermediateSize)
        let maxLength = batch.segments.map(\.length).max() ?? 0
        var scores = [Float](repeating: 0, count: maxLength * maxLength)
        let dh = H / heads
        let scale = 1 / Float(dh).squareRoot()
        for layer in layers {
            x.withUnsafeMutableBufferPointer { xb in
                qkv.withUnsafeMutableBufferPointer { qb in
                    context.withUnsafeMutableBufferPointer { cb in
                        scores.withUnsafeMutableBufferPointer { sb in
                            let xp = xb.baseAddress!
                            let qp = qb.baseAddress!
                            let cp = cb.baseAddress!
                            let sp = sb.baseAddress!
                            layer.qkv.apply(xp, rows: T, into: qp)
                            for (start, L) in batch.segments {
                                for h in 0..<heads {
                                    let q = qp + start * 3 * H + h * dh
                                    let k = q + H
                                    let v = q + 2 * H
                                    // S = Q Kᵀ · scale
                                    BLAS.matmulTransposedB(q, k, sp, m: L, n: L, k: dh, lda: 3 * H, ldb: 3 * H, ldc: L)
                                    for r in 0..<L {
                                        let row = sp + r * L
                                        var m = -Float.infinity
                                        for c in 0..<L { m = max(m, row[c]) }
                                        let sum = FastMath.expShifted(row, count: L, shift: m, scale: scale)
                                        let inv = 1 / sum
                                        for c in 0..<L { row[c] *= inv }
                                    }
                                    BLAS.matmul(sp, v, cp + start * H + h * dh, m: L, n: dh, k: L, lda: L, ldb: 3 * H, ldc: H)
                                }
                            }
                        }
                    }
                }
            }
            context.withUnsafeBufferPointer { cb in
                projected.withUnsafeMutableBufferPointer { pb in
                    layer.attentionOut.apply(cb.baseAddress!, rows: T, into: pb.baseAddress!)
                }
            }
            x.withUnsafeMutableBufferPointer { xb in
                projected.withUnsafeMutableBufferPointer { pb in
                    let n = T * H
                    for i in 0..<n { pb[i] += xb[i] }
                    layer.attentionNorm.apply(pb.baseAddress!, rows: T)
                    inter.withUnsafeMutableBufferPointer { ib in
                        layer.intermediate.apply(pb.baseAddress!, rows: T, into: ib.baseAddress!)
                        activation.apply(ib.baseAddress!, count: T * intermediateSize)
                        layer.output.apply(ib.baseAddress!, rows: T, into: xb.baseAddress!)
                    }
                    for i in 0..<n { xb[i] += pb[i] }
                    layer.outputNorm.apply(xb.baseAddress!, rows: T)
                }
            }
        }
        return x
    }
}
