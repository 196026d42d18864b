import Foundation
import SparseDBCore
import SparseDBTools

/// The fuzz harnesses, one per parser of untrusted bytes (Fuzz/README.md). Each takes the
/// fuzzer's bytes, calls the real parser, and checks what it accepted.
package enum FuzzTargets {}

// MARK: - line formats of the command line (SparseDBTools)

extension FuzzTargets {
    /// `LineFormats.vectorRecord` on the input as one line, with the default SPLADE vocabulary
    /// and with every 32-bit dimension allowed. What it accepts must be a valid vector with a
    /// valid id, and valid JSON (checked against JSONSerialization) with that `_id` and those
    /// dimensions; the payload must be a JSON object.
    package static func vectorLine(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        let line = ArraySlice(Array(data))
        var accepted = false
        for dimensions: UInt32 in [30_522, .max] {
            guard let record = try refusing({ try LineFormats.vectorRecord(line, file: "fuzz", line: 1, dimensions: dimensions) }) else {
                continue
            }
            let (id, vector, payload) = record
            accepted = true
            try checkId(id)
            try checkVector(vector, dimensions: dimensions)
            if let payload {
                let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
                try require(object != nil, "payload is not a JSON object: \(String(decoding: payload, as: UTF8.self))")
                try require(object?["_id"] == nil && object?["vector"] == nil, "payload repeats _id or vector")
            }
            // The strict parser promises RFC 8259: JSONSerialization must read the same line.
            let reference = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            guard let reference else { throw FuzzFinding("accepted a line JSONSerialization refuses") }
            // With a key repeated, which value wins is each parser's choice; compare only without.
            if occurrences(of: #""_id""#, in: line) == 1 {
                try require(foundationReadings(of: id).contains(reference["_id"] as? String ?? ""), "_id \(id.debugDescription) but JSONSerialization reads \(String(describing: reference["_id"]))")
            }
            if occurrences(of: #""vector""#, in: line) == 1 {
                let keys = (reference["vector"] as? [String: Any]).map { Set($0.keys.compactMap { UInt32($0) }) }
                try require(keys == Set(vector.dimensions), "dimensions \(vector.dimensions) but JSONSerialization reads \(String(describing: keys))")
            }
        }
        return accepted
    }

    /// What JSONSerialization may return for a JSON string whose content the strict parser read
    /// as `value`: Foundation drops a U+FEFF (byte order mark) written raw at the start of a
    /// string's content (it decodes the content as a document that may open with a BOM), though
    /// RFC 8259 makes it part of the string; written as the escape `\ufeff` it keeps it. The
    /// strict parser keeps the character either way, so with a leading U+FEFF both readings are
    /// the oracle's (found by the fuzzer in CI, input in Fuzz/corpus/FuzzVectorLine).
    static func foundationReadings(of value: String) -> [String] {
        value.unicodeScalars.first == "\u{FEFF}" ? [value, String(value.unicodeScalars.dropFirst())] : [value]
    }

    /// `LineFormats.object` + `LineFormats.id` + `LineFormats.payload`, as the CLI reads a corpus,
    /// query or id line: an accepted id is valid, and the payload (the other fields) is a JSON
    /// object with as many fields.
    package static func corpusLine(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        let line = ArraySlice(Array(data))
        guard var object = try refusing({ try LineFormats.object(line, file: "fuzz", line: 1) }) else { return false }
        let id = try refusing { try LineFormats.id(object, file: "fuzz", line: 1) }
        _ = object["title"] as? String
        _ = object["text"] as? String
        object["_id"] = nil
        let payload = LineFormats.payload(object)
        try require((payload == nil) == object.isEmpty, "payload \(payload == nil ? "missing" : "present") for \(object.count) fields")
        if let payload {
            let back = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
            try require(back?.count == object.count, "payload does not read back as \(object.count) fields")
        }
        guard let id else { return false }
        try checkId(id)
        return true
    }

    /// What `LineFormats.checkId` promises: 1…500 bytes of UTF-8 without control characters.
    static func checkId(_ id: String) throws(FuzzFinding) {
        try require(!id.isEmpty && id.utf8.count <= 500, "accepted an id of \(id.utf8.count) bytes")
        try require(!id.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "accepted an id with a control character")
    }

    /// What `SparseVector` promises: increasing dimensions in range, finite weights in 0…10⁹.
    static func checkVector(_ v: SparseVector, dimensions: UInt32) throws(FuzzFinding) {
        try require(v.dimensions.count == v.weights.count, "vector has \(v.dimensions.count) dimensions, \(v.weights.count) weights")
        for i in v.dimensions.indices {
            try require(v.dimensions[i] < dimensions, "dimension \(v.dimensions[i]) out of range \(dimensions)")
            try require(i == 0 || v.dimensions[i - 1] < v.dimensions[i], "dimensions not increasing at \(i)")
            try require(v.weights[i].isFinite && v.weights[i] >= 0 && v.weights[i] <= SparseVector.maxWeight, "weight \(v.weights[i]) accepted")
        }
    }

    static func occurrences(of needle: String, in haystack: ArraySlice<UInt8>) -> Int {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return 0 }
        var count = 0
        var i = haystack.startIndex
        while i + n.count <= haystack.endIndex {
            if haystack[i..<(i + n.count)].elementsEqual(n) { count += 1 }
            i += 1
        }
        return count
    }
}
