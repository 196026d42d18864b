import Foundation
import SparseDB
import SparseDBCore
import SparseDBTestSupport
import SparseDBTools
import Testing

/// The real splade-tiny (the default model) against the reference vectors.
@Suite struct SpladeTinyTests {
    static let slow = ProcessInfo.processInfo.environment["SPARSEDB_SLOW_TESTS"] == "1"

    func compare(_ collection: String, _ file: String, texts: [(String, String)], task: TextEncoder.Task) throws {
        let encoder = try TextEncoder(path: "default")
        let reference = Dictionary(uniqueKeysWithValues: try readVectors(referencePath(collection, file)).map { ($0.id, $0.vector) })
        let got = try encoder.encode(texts.map(\.1), task: task)
        var worst: Float = 0
        for ((id, _), v) in zip(texts, got) {
            let r = try #require(reference[id])
            var seen = Set<UInt32>()
            var diff: Float = 0
            let rw = Dictionary(uniqueKeysWithValues: zip(r.dimensions, r.weights))
            for (d, w) in zip(v.dimensions, v.weights) {
                diff = max(diff, abs(w - (rw[d] ?? 0)))
                seen.insert(d)
            }
            for (d, w) in rw where !seen.contains(d) { diff = max(diff, w) }
            worst = max(worst, diff)
            #expect(diff <= 2e-3, "\(collection) \(id): max diff \(diff)")
        }
        #expect(worst <= 2e-3)
    }

    func load(_ collection: String, _ kind: String, limit: Int) throws -> [(String, String)] {
        let path = "\(sharedDirectory)/data/\(collection)/\(kind).jsonl"
        var out: [(String, String)] = []
        let reader = try JSONLinesReader(path: path)
        while let (line, bytes) = try reader.next() {
            let o = try LineFormats.object(bytes, file: path, line: line)
            let title = (o["title"] as? String) ?? ""
            let text = (o["text"] as? String) ?? ""
            out.append((try LineFormats.id(o, file: path, line: line), kind == "corpus" && !title.isEmpty ? title + " " + text : text))
            if out.count >= limit { break }
        }
        return out
    }

    @Test func goldenVectors() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: sharedDirectory + "/reference/goldens/splade_tiny_golden.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        let encoder = try TextEncoder(path: "default")
        for c in cases {
            let text = c["text"] as! String
            #expect(encoder.tokenize(text, task: .document) == (c["ids"] as! [NSNumber]).map(\.int32Value))
            let want = c["splade_nonzero"] as! [String: NSNumber]
            let got = try encoder.encode([text], task: .document)[0]
            #expect(Set(got.dimensions.map { String($0) }) == Set(want.keys))
            for (d, w) in zip(got.dimensions, got.weights) {
                #expect(abs(Double(w) - want[String(d)]!.doubleValue) <= 1e-4)
            }
        }
    }

    @Test(arguments: ["scifact", "nfcorpus", "cranfield"])
    func queryVectors(collection: String) throws {
        try compare(collection, "query_vectors.jsonl", texts: try load(collection, "queries", limit: .max), task: .query)
    }

    @Test func documentVectors() throws {
        // Several hundred documents by default (long ones included); every document with SPARSEDB_SLOW_TESTS=1.
        let limit = Self.slow ? Int.max : 200
        for collection in ["scifact", "nfcorpus", "cranfield"] {
            try compare(collection, "doc_vectors.jsonl", texts: try load(collection, "corpus", limit: limit), task: .document)
        }
    }
}
