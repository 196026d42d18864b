import Foundation
import SparseDB
import SparseDBCore
import SparseDBEncoders
import SparseDBTestSupport
import SparseDBTools
import Testing

@Suite struct TokenizerTests {
    let tokenizer: WordPieceTokenizer

    init() throws {
        tokenizer = try WordPieceTokenizer(path: TextEncoder.defaultModelPath + "/tokenizer.json")
    }

    @Test func goldenCases() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: sharedDirectory + "/reference/goldens/tokenizer_golden_bert_uncased.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        #expect(cases.count >= 15)
        for c in cases {
            let text = c["text"] as! String
            let ids = (c["ids"] as! [NSNumber]).map(\.int32Value)
            let plain = (c["ids_no_special"] as! [NSNumber]).map(\.int32Value)
            #expect(tokenizer.encode(text, addSpecialTokens: true, maxLength: nil) == ids, "\(text.debugDescription)")
            #expect(tokenizer.encode(text, addSpecialTokens: false, maxLength: nil) == plain, "\(text.debugDescription)")
        }
    }

    @Test func truncationKeepsSpecialTokens() {
        let ids = tokenizer.encode(String(repeating: "word ", count: 600), addSpecialTokens: true, maxLength: 512)
        #expect(ids.count == 512 && ids.first == 101 && ids.last == 102)
        #expect(tokenizer.encode(String(repeating: "word ", count: 600), addSpecialTokens: false, maxLength: 512).count == 512)
    }

    static func fnv1a64(_ ids: [Int32]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for id in ids {
            withUnsafeBytes(of: UInt32(bitPattern: id).littleEndian) { b in
                for byte in b { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
            }
        }
        return h
    }

    /// Ids equal Hugging Face `tokenizers` on every text of the three collections (hashes recorded
    /// by tools/make_tokenizer_goldens.py).
    @Test(arguments: ["scifact", "nfcorpus", "cranfield"])
    func everyTextOfTheCollections(name: String) throws {
        for kind in ["corpus", "queries"] {
            let golden = try String(contentsOfFile: "\(fixturesDirectory)/tokenizer-ids/\(name).\(kind).tsv", encoding: .utf8)
            var expected: [String: (Int, String)] = [:]
            for line in golden.split(separator: "\n") {
                let f = line.split(separator: "\t")
                expected[String(f[0])] = (Int(f[1])!, String(f[2]))
            }
            let path = "\(sharedDirectory)/data/\(name)/\(kind).jsonl"
            var checked = 0
            var mismatches: [String] = []
            let reader = try JSONLinesReader(path: path)
        while let (line, bytes) = try reader.next() {
                let o = try LineFormats.object(bytes, file: path, line: line)
                let id = try LineFormats.id(o, file: path, line: line)
                let title = (o["title"] as? String) ?? ""
                let text = (o["text"] as? String) ?? ""
                let full = kind == "corpus" && !title.isEmpty ? title + " " + text : text
                let ids = tokenizer.encode(full, addSpecialTokens: true, maxLength: nil)
                let hash = String(format: "%016llx", Self.fnv1a64(ids))
                if let e = expected[id], e.0 == ids.count, e.1 == hash {} else { mismatches.append(id) }
                checked += 1
            }
            #expect(checked == expected.count)
            #expect(mismatches.isEmpty, "\(name) \(kind): \(mismatches.count) texts differ, first \(mismatches.prefix(5))")
        }
    }
}
