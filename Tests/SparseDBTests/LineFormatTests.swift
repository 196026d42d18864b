import Foundation
import Testing

@testable import SparseDB

@Suite struct LineFormatTests {
    @Test(arguments: [
        #"{"_id": "a\"b\\c\u00e9", "vector": {"1": 0.5, "7": 2}, "title": "T", "meta": {"x": [1, 2.5e-3, null, true, false, "s"]}}"#,
        #"  { "vector" : { } , "_id" : 12 }  "#,
        #"{"_id":"x","vector":{"0":1e-3,"30521":-0.0},"n":-12.5E+2}"#,
    ])
    func agreesWithJSONSerialization(line: String) throws {
        let bytes = ArraySlice(Array(line.utf8))
        let r = try LineFormats.vectorRecord(bytes, file: "f", line: 1, dimensions: 30_522)
        let reference = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        #expect(r.id == ((reference["_id"] as? String) ?? (reference["_id"] as! NSNumber).stringValue))
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
}
