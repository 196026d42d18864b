import Foundation
import SparseDB
import SparseDBTestSupport
import SparseDBTools
import Testing

@Suite struct LineFormatTests {
    @Test(arguments: [
        #"{"_id": "a\"b\\c\u00e9", "vector": {"1": 0.5, "7": 2}, "title": "T", "meta": {"x": [1, 2.5e-3, null, true, false, "s"]}}"#,
        #"  { "vector" : { } , "_id" : "12" }  "#,
        #"{"_id":"x","vector":{"0":1e-3,"30521":-0.0},"n":-12.5E+2}"#,
    ])
    func agreesWithJSONSerialization(line: String) throws {
        let bytes = ArraySlice(Array(line.utf8))
        let r = try LineFormats.vectorRecord(bytes, file: "f", line: 1, dimensions: 30_522)
        let reference = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        #expect(r.id == reference["_id"] as? String)
        let vector = reference["vector"] as! [String: NSNumber]
        #expect(r.vector.count == vector.count)
        for (d, w) in zip(r.vector.dimensions, r.vector.weights) { #expect(w == vector[String(d)]!.floatValue) }
        var rest = reference
        rest["_id"] = nil
        rest["vector"] = nil
        if rest.isEmpty {
            #expect(r.payload == nil)
        } else {
            let payload = try JSONSerialization.jsonObject(with: Data(try #require(r.payload))) as! NSDictionary
            #expect(payload == rest as NSDictionary)
        }
    }

    /// Ids are strings: numbers and booleans are refused on every path (they would otherwise
    /// become "1", "100.0" or "1e2" and silently collide with other documents).
    @Test(arguments: [#"{"_id": true, "vector": {}}"#, #"{"_id": 1, "vector": {}}"#, #"{"_id": -0, "vector": {}}"#, #"{"_id": 1e2, "vector": {}}"#,
                      #"{"_id": null, "vector": {}}"#, #"{"_id": ["a"], "vector": {}}"#, #"{"_id": "", "vector": {}}"#, #"{"_id": "a\nb", "vector": {}}"#])
    func nonStringIdsAreRefused(line: String) throws {
        #expect(throws: SparseDBError.self) { try LineFormats.vectorRecord(ArraySlice(Array(line.utf8)), file: "f", line: 1, dimensions: 10) }
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        #expect(throws: SparseDBError.self) { try LineFormats.id(object, file: "f", line: 1) }
    }

    @Test func mutatedLinesNeverCrash() {
        let line = Array(#"{"_id": "doc-1", "vector": {"12": 0.5, "99": 1.25}, "title": "x \"y\"", "tags": [1, {"a": null}]}"#.utf8)
        var rng = SplitMix64(seed: 5)
        var accepted = 0
        for _ in 0..<20_000 {
            var copy = line
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: copy[Int.random(in: 0..<copy.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: copy.remove(at: Int.random(in: 0..<copy.count, using: &rng))
                default: copy.insert(UInt8.random(in: 0x20...0x7E, using: &rng), at: Int.random(in: 0...copy.count, using: &rng))
                }
                if copy.isEmpty { copy = [0x7B] }
            }
            let ours = (try? LineFormats.vectorRecord(ArraySlice(copy), file: "f", line: 1, dimensions: 100)) != nil
            if ours {
                accepted += 1
                // Whatever we accept must be valid JSON.
                #expect((try? JSONSerialization.jsonObject(with: Data(copy))) != nil, "\(String(decoding: copy, as: UTF8.self))")
            }
        }
        #expect(accepted > 0)
    }

    @Test func readerHandlesBOMBlankLinesCRLFAndOversizedLines() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/f.jsonl"
            var bytes: [UInt8] = [0xEF, 0xBB, 0xBF]
            bytes += Array("{\"a\":1}\r\n\n   \n{\"b\":2}\n{\"c\":".utf8) + [UInt8](repeating: 0x20, count: JSONLinesReader.maxLineBytes + 10) + Array("3}\n{\"d\":4}".utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let reader = try JSONLinesReader(path: path)
            var lines: [(Int, Int)] = []
            var first: [UInt8] = []
            while let (n, b) = try reader.next() {
                if lines.isEmpty { first = Array(b) }
                lines.append((n, b.count))
            }
            #expect(first == Array("{\"a\":1}".utf8))
            #expect(lines.map(\.0) == [1, 4, 5, 6])
            #expect(lines[2].1 == JSONLinesReader.maxLineBytes + 1)
            #expect(lines[3].1 == 7)
        }
    }

    @Test func directoriesAndMissingFilesAreErrors() throws {
        try withTemporaryDirectory { dir in
            let e = #expect(throws: SparseDBError.self) { try InputFile(path: dir) }
            #expect(e?.message.contains("is a directory") == true)
            #expect(throws: SparseDBError.self) { try InputFile(path: dir + "/missing.jsonl") }
        }
    }
}

@Suite struct MetricsUnitTests {
    @Test func handComputedCase() {
        // Two relevant documents (grades 2 and 1); the run finds the grade-1 one at rank 2 only.
        let judgments: Metrics.Judgments = ["q": ["a": 2, "b": 1, "c": 0]]
        let run: Metrics.Run = ["q": [("c", 3), ("b", 2), ("x", 1)]]
        let s = Metrics.evaluate(run: run, judgments: judgments)
        #expect(abs(s.nDCG10 - (1 / log2(3.0)) / (2 + 1 / log2(3.0))) < 1e-12)
        #expect(s.RR10 == 0.5)
        #expect(s.R100 == 0.5)
        #expect(abs(s.AP100 - 0.25) < 1e-12)
    }

    @Test func latencySummaryIsNearestRank() {
        let s = LatencySummary((1...100).map(Double.init))
        #expect(s.p50 == 50 && s.p90 == 90 && s.p99 == 99 && s.max == 100 && s.mean == 50.5)
        #expect(LatencySummary([7]).p99 == 7)
    }
}
