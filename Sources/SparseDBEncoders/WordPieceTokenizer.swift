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
    let clsId: Int32
    let sepId: Int32
    let padId: Int32
    let continuationPrefix: String
    let maxInputCharsPerWord: Int
    /// Truncation length from the file's own `truncation` field (nil = none).
    package let fileMaxLength: Int?
    /// Added tokens matched literally in the raw text, longest first.
    let addedTokens: [(content: [Unicode.Scalar], id: Int32)]
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool
    let vocabularySize: Int

    /// Loads `tokenizer.json`. Only the BERT WordPiece pipeline is supported; anything else is a
    /// `.model` error naming the file.
    package init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SparseDBError(.model, "\(path): missing tokenizer file")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SparseDBError(.model, "\(path): not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], (model["type"] as? String) == "WordPiece",
            let vocab = model["vocab"] as? [String: Any]
        else {
            throw SparseDBError(.model, "\(path): only WordPiece tokenizers are supported")
        }
        var v: [String: Int32] = [:]
        v.reserveCapacity(vocab.count)
        var maxId: Int32 = -1
        for (token, id) in vocab {
            guard let n = (id as? NSNumber)?.int32Value else { throw SparseDBError(.model, "\(path): vocab id of '\(token)' is not a number") }
            v[token] = n
            maxId = max(maxId, n)
        }
        var added: [([Unicode.Scalar], Int32)] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            if let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.int32Value {
                added.append((Array(content.unicodeScalars), id))
                v[content] = v[content] ?? id
                maxId = max(maxId, id)
            }
        }
        added.sort { $0.0.count > $1.0.count }
        vocabulary = v
        vocabularySize = Int(maxId) + 1
        let unk = (model["unk_token"] as? String) ?? "[UNK]"
        guard let unkId = v[unk] else { throw SparseDBError(.model, "\(path): unknown token '\(unk)' is not in the vocabulary") }
        unknownId = unkId
        clsId = v["[CLS]"] ?? 101
        sepId = v["[SEP]"] ?? 102
        padId = v["[PAD]"] ?? 0
        continuationPrefix = (model["continuing_subword_prefix"] as? String) ?? "##"
        maxInputCharsPerWord = (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100
        addedTokens = added
        if let t = root["truncation"] as? [String: Any], let m = (t["max_length"] as? NSNumber)?.intValue {
            fileMaxLength = m
        } else {
            fileMaxLength = nil
        }
        let normalizer = root["normalizer"] as? [String: Any]
        if let normalizer, let type = normalizer["type"] as? String, type != "BertNormalizer" {
            throw SparseDBError(.model, "\(path): normalizer '\(type)' is not supported (BertNormalizer only)")
        }
        if let pre = root["pre_tokenizer"] as? [String: Any], let type = pre["type"] as? String, type != "BertPreTokenizer" {
            throw SparseDBError(.model, "\(path): pre-tokenizer '\(type)' is not supported (BertPreTokenizer only)")
        }
        cleanText = (normalizer?["clean_text"] as? Bool) ?? true
        handleChineseChars = (normalizer?["handle_chinese_chars"] as? Bool) ?? true
        lowercase = (normalizer?["lowercase"] as? Bool) ?? true
        stripAccents = (normalizer?["strip_accents"] as? Bool) ?? lowercase
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
        if addSpecialTokens {
            if let maxLength { ids = Array(ids.prefix(max(0, maxLength - 2))) }
            return [clsId] + ids + [sepId]
        }
        if let maxLength { ids = Array(ids.prefix(maxLength)) }
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
