import SparseDBCore
import Foundation

/// A BERT WordPiece tokenizer built from a Hugging Face `tokenizer.json`, reproducing the fast
/// `tokenizers` pipeline: added/special tokens first, then BertNormalizer (clean text, CJK
/// spacing, NFD + accent stripping, lowercase), BertPreTokenizer (whitespace and punctuation
/// split), greedy longest-match WordPiece with `##` continuations, and `[CLS] … [SEP]`.
/// See ENCODERS.md §7 for the rules, checked against tokenizers' Rust source.
package final class WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    let unknownId: Int32
    /// `[CLS]` / `[SEP]` when the vocabulary has them (routes that add them require both).
    let clsId: Int32?
    let sepId: Int32?
    let continuationPrefix: String
    let maxInputCharsPerWord: Int
    /// Truncation length from the file's own `truncation` field (nil = none).
    package let fileMaxLength: Int?
    /// Added tokens matched literally in the raw text, longest first (never empty).
    let addedTokens: [(content: [Unicode.Scalar], id: Int32)]
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool
    /// One more than the largest id the tokenizer can produce.
    let vocabularySize: Int
    /// The token with the largest id and where the file defines it, for messages.
    let largestToken: (token: String, key: String)
    let path: String

    /// Most tokens a vocabulary may have (the largest real ones have a few hundred thousand).
    static let vocabularyLimit = 1 << 24
    /// Longest truncation a file may ask for.
    static let sequenceLimit = 1 << 20

    /// Loads `tokenizer.json`. Only the BERT WordPiece pipeline is supported; anything else, and
    /// any malformed or out-of-range field, is a `.model` error naming the file and the key.
    package init(path: String) throws {
        self.path = path
        let root = try ModelFiles.object(path, limit: ModelFiles.tokenizerLimit, what: "tokenizer file")
        guard let model = try root.object("model"), try model.string("type") == "WordPiece" else {
            throw SparseDBError(.model, "\(path): only WordPiece tokenizers are supported ('model.type')")
        }
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw SparseDBError(.model, "\(path): 'model.vocab' is not an object of token → id")
        }
        let addedEntries: [Any]
        if let a = root["added_tokens"] {
            guard let list = a as? [Any] else { throw SparseDBError(.model, "\(path): 'added_tokens' is not an array") }
            addedEntries = list
        } else {
            addedEntries = []
        }
        // Ids are dense in real files: every id is below the number of tokens defined.
        let (idLimit, overflow) = vocab.count.addingReportingOverflow(addedEntries.count)
        guard !vocab.isEmpty, !overflow, idLimit <= Self.vocabularyLimit else {
            throw SparseDBError(.model, "\(path): 'model.vocab' has \(vocab.count) tokens, expected 1...\(Self.vocabularyLimit)")
        }
        let idRange = 0...(idLimit - 1)
        var v: [String: Int32] = [:]
        v.reserveCapacity(vocab.count)
        var maxId = -1
        var largest = (token: "", key: "")
        for (token, id) in vocab {
            guard let n = JSONConfig.integer(id, in: idRange) else {
                throw SparseDBError(
                    .model, "\(path): 'model.vocab' id of token '\(token.prefix(40))' is \(JSONConfig.describe(id)), expected an integer in \(idRange) (ids below the number of tokens)")
            }
            v[token] = Int32(n)
            if n > maxId { (maxId, largest) = (n, (token, "model.vocab")) }
        }
        var added: [([Unicode.Scalar], Int32)] = []
        for (i, entry) in addedEntries.enumerated() {
            let key = "added_tokens[\(i)]"
            guard let e = entry as? [String: Any] else { throw SparseDBError(.model, "\(path): '\(key)' is not an object") }
            guard let content = e["content"] as? String, !content.isEmpty else {
                throw SparseDBError(.model, "\(path): '\(key).content' is \(e["content"].map(JSONConfig.describe) ?? "missing"), expected a non-empty string")
            }
            guard let raw = e["id"], let id = JSONConfig.integer(raw, in: idRange) else {
                throw SparseDBError(
                    .model, "\(path): '\(key).id' of '\(content.prefix(40))' is \(e["id"].map(JSONConfig.describe) ?? "missing"), expected an integer in \(idRange)")
            }
            added.append((Array(content.unicodeScalars), Int32(id)))
            v[content] = v[content] ?? Int32(id)
            if id > maxId { (maxId, largest) = (id, (content, key + ".id")) }
        }
        added.sort { $0.0.count > $1.0.count }
        vocabulary = v
        vocabularySize = maxId + 1
        largestToken = largest
        let unk = try model.string("unk_token", default: "[UNK]")
        guard let unkId = v[unk] else { throw SparseDBError(.model, "\(path): 'model.unk_token' '\(unk)' is not in the vocabulary") }
        unknownId = unkId
        clsId = v["[CLS]"]
        sepId = v["[SEP]"]
        continuationPrefix = try model.string("continuing_subword_prefix", default: "##")
        maxInputCharsPerWord = try model.int("max_input_chars_per_word", in: 1...1_000_000, default: 100)
        addedTokens = added
        if let t = try root.object("truncation") {
            fileMaxLength = try t.int("max_length", in: 1...Self.sequenceLimit)
            if let direction = try t.string("direction"), direction != "Right" {
                throw SparseDBError(.model, "\(path): 'truncation.direction' '\(direction)' is not supported (Right)")
            }
        } else {
            fileMaxLength = nil
        }
        let normalizer = try root.object("normalizer")
        if let normalizer, let type = try normalizer.string("type"), type != "BertNormalizer" {
            throw SparseDBError(.model, "\(path): normalizer '\(type)' is not supported (BertNormalizer only)")
        }
        if let pre = try root.object("pre_tokenizer"), let type = try pre.string("type"), type != "BertPreTokenizer" {
            throw SparseDBError(.model, "\(path): pre-tokenizer '\(type)' is not supported (BertPreTokenizer only)")
        }
        cleanText = try normalizer?.bool("clean_text", default: true) ?? true
        handleChineseChars = try normalizer?.bool("handle_chinese_chars", default: true) ?? true
        lowercase = try normalizer?.bool("lowercase", default: true) ?? true
        stripAccents = try normalizer?.bool("strip_accents", default: lowercase) ?? lowercase
    }

    /// Requires `[CLS]` and `[SEP]`, which transformer inputs are framed with.
    func requireSpecialTokens() throws {
        for (name, id) in [("[CLS]", clsId), ("[SEP]", sepId)] where id == nil {
            throw SparseDBError(.model, "\(path): '\(name)' is in neither 'model.vocab' nor 'added_tokens'")
        }
    }

    /// Every id this tokenizer can produce must index a row of `rows` (of tensor `tensor` in
    /// `file`): otherwise a hostile id would read outside the table.
    func checkIds(within rows: Int, of tensor: String, in file: String) throws {
        guard vocabularySize <= rows else {
            throw SparseDBError(
                .model,
                "\(path): '\(largestToken.key)' gives token '\(largestToken.token.prefix(40))' id \(vocabularySize - 1), but '\(tensor)' in \(file) has \(rows) rows")
        }
    }

    /// Token ids of `text`. With `addSpecialTokens`, `[CLS] … [SEP]` and at most `maxLength`
    /// ids in all; without, at most `maxLength` content ids.
    package func encode(_ text: String, addSpecialTokens: Bool, maxLength: Int?) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 2)
        for segment in splitOnAddedTokens(Array(text.unicodeScalars)) {
            switch segment {
            case .special(let id): ids.append(id)
            case .text(let scalars):
                for word in preTokenize(normalize(scalars)) { wordPiece(word, into: &ids) }
            }
        }
        if addSpecialTokens, let clsId, let sepId {
            if let maxLength { ids = Array(ids.prefix(max(0, maxLength - 2))) }
            return [clsId] + ids + [sepId]
        }
        if let maxLength { ids = Array(ids.prefix(max(0, maxLength))) }
        return ids
    }

    /// Ids as sentence-transformers' (MLM)Transformer module feeds its model: the text stripped,
    /// lowercased when the module says so, `[CLS] … [SEP]`, at most `maxLength` ids.
    func transformerInput(_ text: String, lowercase: Bool, maxLength: Int) -> [Int32] {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if lowercase { s = s.lowercased() }
        return encode(s, addSpecialTokens: true, maxLength: maxLength)
    }

    private enum Segment {
        case text([Unicode.Scalar])
        case special(Int32)
    }

    private func splitOnAddedTokens(_ s: [Unicode.Scalar]) -> [Segment] {
        guard !addedTokens.isEmpty, s.contains("[") || addedTokens.contains(where: { $0.content.first != "[" }) else { return [.text(s)] }
        var out: [Segment] = []
        var start = 0
        var i = 0
        outer: while i < s.count {
            for (content, id) in addedTokens where content.count <= s.count - i && s[i] == content[0] {
                if s[i..<(i + content.count)].elementsEqual(content) {
                    if start < i { out.append(.text(Array(s[start..<i]))) }
                    out.append(.special(id))
                    i += content.count
                    start = i
                    continue outer
                }
            }
            i += 1
        }
        if start < s.count { out.append(.text(Array(s[start...]))) }
        return out
    }

    // MARK: normalizer

    private static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    private static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    private static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    func normalize(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s: [Unicode.Scalar] = []
        s.reserveCapacity(input.count)
        var ascii = true
        for c in input {
            if cleanText {
                if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
                if Self.isWhitespace(c) {
                    s.append(" ")
                    continue
                }
            }
            if handleChineseChars && Self.isChinese(c.value) {
                s.append(" ")
                s.append(c)
                s.append(" ")
            } else {
                s.append(c)
            }
            if c.value >= 0x80 { ascii = false }
        }
        if ascii {
            if lowercase { for i in s.indices where s[i].value >= 65 && s[i].value <= 90 { s[i] = Unicode.Scalar(s[i].value + 32)! } }
            return s
        }
        if stripAccents {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            let decomposed = String(view).decomposedStringWithCanonicalMapping
            s = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(s.count)
            for c in s {
                if c.value < 0x80 {
                    lowered.append(c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32)! : c)
                } else {
                    lowered.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
                }
            }
            s = lowered
        }
        return s
    }

    // MARK: pre-tokenizer

    private static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        if v < 0x80 { return false }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    func preTokenize(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = -1
        for (i, c) in s.enumerated() {
            if Self.isWhitespace(c) {
                if start >= 0 { words.append(s[start..<i]) }
                start = -1
            } else if Self.isPunctuation(c) {
                if start >= 0 { words.append(s[start..<i]) }
                words.append(s[i..<(i + 1)])
                start = -1
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { words.append(s[start...]) }
        return words
    }

    // MARK: WordPiece

    func wordPiece(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord {
            ids.append(unknownId)
            return
        }
        var pieces: [Int32] = []
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var found: Int32? = nil
            while end > start {
                var piece = start > word.startIndex ? continuationPrefix : ""
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(unknownId)
                return
            }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }
}
