import Foundation
import SparseDBCore
import SparseDBEncoders

// MARK: - model files and text (SparseDBEncoders)

extension FuzzTargets {
    /// `SafeTensorsFile(path:)` on a file made from the input, then `floats` on every tensor.
    /// Mode bit 0 of the first byte: the rest is the whole file; otherwise it is the JSON header
    /// up to the first NUL byte and the tensor bytes after it, and the harness writes the 8-byte
    /// header length (so that mutations of the JSON keep a consistent frame). Accepted float
    /// tensors must read as exactly their element count; other dtypes must be refused by `floats`.
    package static func safeTensors(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        guard let mode = data.first else { return false }
        let rest = data.after(1)
        var file: [UInt8] = []
        if mode & 1 != 0 {
            file = Array(rest)
        } else {
            let nul = rest.firstIndex(of: 0) ?? rest.count
            withUnsafeBytes(of: UInt64(nul).littleEndian) { file += $0 }
            file += rest[..<nul]
            if nul < rest.count { file += rest[(nul + 1)...] }
        }
        return try withScratchFile("model.safetensors", file) { (path) throws(FuzzFinding) -> Bool in
            guard let weights = try refusing({ try SafeTensorsFile(path: path) }) else { return false }
            for (name, tensor) in weights.tensors.sorted(by: { $0.key < $1.key }) {
                let values = try refusing { try weights.floats(name) }
                switch tensor.dtype {
                case .f32, .f16, .bf16, .f64:
                    try require(values?.count == tensor.elementCount, "tensor '\(name)' read \(values?.count ?? -1) of \(tensor.elementCount) values")
                    try require(try refusing({ try weights.floats(name, shape: tensor.shape) }) != nil, "tensor '\(name)' refused with its own shape")
                    try require(try refusing({ try weights.floats(name, shape: tensor.shape + [1]) }) == nil, "tensor '\(name)' accepted with a wrong shape")
                default:
                    try require(values == nil, "tensor '\(name)' of dtype \(tensor.dtype) read as floats")
                }
            }
            try require(try refusing({ try weights.floats("\u{0}missing") }) == nil, "a missing tensor read as floats")
            return true
        }
    }

    /// `WordPieceTokenizer(path:)` on the input as tokenizer.json; an accepted tokenizer then
    /// encodes sample texts (special tokens, accents, CJK, controls, an over-long word, its own
    /// first tokens) and must produce only ids below one more than the largest id the file
    /// defines, within the length asked for.
    package static func tokenizerJSON(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        try withScratchFile("tokenizer.json", data) { (path) throws(FuzzFinding) -> Bool in
            guard let tokenizer = try refusing({ try WordPieceTokenizer(path: path) }) else { return false }
            let file = TokenizerUnderTest(tokenizer, json: Data(data))
            var texts = [
                "", "Hello, World! [CLS] x [SEP][MASK]", "Naïve café — Ünïcödé façade, ŒUVRE ǅ ß", "東京は日本の首都です。",
                "tab\tnew\nline\u{0}nul\u{7F}del\u{200B}zw", String(repeating: "a", count: 150), "un##affable ## ###",
            ]
            let own = file.sampleTokens.prefix(20)
            texts.append(own.joined(separator: " "))
            texts.append(String(own.joined().prefix(200)))
            for text in texts { try file.check(text, maxLengths: [nil, 0, 1, 3, tokenizer.fileMaxLength]) }
            return true
        }
    }

    /// `WordPieceTokenizer.encode` with the real splade-tiny tokenizer (``TokenizerUnderTest/default``).
    package static func tokenizer(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        guard let file = TokenizerUnderTest.default else { throw FuzzFinding("harness: no tokenizer (\(TokenizerUnderTest.defaultPath))") }
        return try tokenizer(data, with: file)
    }

    /// `encode` on the input with `file`'s tokenizer. First byte: bit 0 decodes the rest as
    /// UTF-16LE instead of UTF-8 (both lossy, so every byte string is a text), bits 1…3 pick
    /// the maximum length (none, 0, 1, 2, 3, 8, 128, 512). The ids must lie below the
    /// vocabulary size, and `[CLS] … [SEP]` must frame the content ids truncated to fit.
    package static func tokenizer(_ data: UnsafeRawBufferPointer, with file: TokenizerUnderTest) throws(FuzzFinding) -> Bool {
        guard let mode = data.first else { return false }
        let rest = data.after(1)
        let text: String
        if mode & 1 != 0 {
            let units = stride(from: 0, to: rest.count - 1, by: 2).map { UInt16(rest[$0]) | UInt16(rest[$0 + 1]) << 8 }
            text = String(decoding: units, as: UTF16.self)
        } else {
            text = String(decoding: rest, as: UTF8.self)
        }
        let maxLength = [nil, 0, 1, 2, 3, 8, 128, 512][Int(mode >> 1) & 7]
        try file.check(text, maxLengths: [maxLength])
        return true
    }
}

/// A loaded tokenizer and what its file says independently of the loader: one more than the
/// largest id it defines, and a few of its tokens.
package final class TokenizerUnderTest: @unchecked Sendable {
    package let tokenizer: WordPieceTokenizer
    let idLimit: Int
    let sampleTokens: [String]
    /// `[CLS]` and `[SEP]` as `encode` frames an empty text (nil without both).
    let frame: (cls: Int32, sep: Int32)?

    package init(_ tokenizer: WordPieceTokenizer, json: Data) {
        self.tokenizer = tokenizer
        let root = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any]
        let vocab = (root?["model"] as? [String: Any])?["vocab"] as? [String: Any] ?? [:]
        let added = root?["added_tokens"] as? [[String: Any]] ?? []
        let ids = vocab.values.compactMap { ($0 as? NSNumber)?.intValue } + added.compactMap { ($0["id"] as? NSNumber)?.intValue }
        idLimit = (ids.max() ?? -1) + 1
        sampleTokens = vocab.keys.sorted().filter { !$0.isEmpty }
        let empty = tokenizer.encode("", addSpecialTokens: true, maxLength: nil)
        frame = empty.count == 2 ? (empty[0], empty[1]) : nil
    }

    package convenience init(path: String) throws {
        try self.init(WordPieceTokenizer(path: path), json: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// `SPARSEDB_FUZZ_TOKENIZER`, else splade-tiny's under `SPARSEDB_HOME` or
    /// ~/.local/share/sparsedb, else the fixture tokenizer of Tests/Fixtures/splade.
    package static let defaultPath: String = {
        let env = ProcessInfo.processInfo.environment
        if let path = env["SPARSEDB_FUZZ_TOKENIZER"] { return path }
        let home = env["SPARSEDB_HOME"] ?? (NSHomeDirectory() + "/.local/share/sparsedb")
        let installed = home + "/models/splade-tiny/tokenizer.json"
        if FileManager.default.fileExists(atPath: installed) { return installed }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures/splade/tokenizer.json").path
    }()

    package static let `default`: TokenizerUnderTest? = try? TokenizerUnderTest(path: defaultPath)

    /// Encodes `text` with and without special tokens, at each maximum length, and checks the
    /// ids and lengths against the untruncated content ids.
    func check(_ text: String, maxLengths: [Int?]) throws(FuzzFinding) {
        let content = tokenizer.encode(text, addSpecialTokens: false, maxLength: nil)
        try require(content.allSatisfy { $0 >= 0 && Int($0) < idLimit }, "id outside 0..<\(idLimit) in \(content)")
        for maxLength in maxLengths {
            let plain = maxLength == nil ? content : tokenizer.encode(text, addSpecialTokens: false, maxLength: maxLength)
            try require(plain == Array(content.prefix(max(0, maxLength ?? .max))), "truncation to \(String(describing: maxLength)) is not a prefix")
            let framed = tokenizer.encode(text, addSpecialTokens: true, maxLength: maxLength)
            if let frame {
                let kept = content.prefix(maxLength.map { max(0, $0 - 2) } ?? .max)
                try require(framed == [frame.cls] + kept + [frame.sep], "special tokens do not frame the content ids (max length \(String(describing: maxLength)))")
            } else {
                try require(framed == plain, "without [CLS]/[SEP], special tokens changed the ids")
            }
        }
    }
}
