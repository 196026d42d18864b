import SparseDB
import SparseDBCore
import Foundation

/// A strict, allocation-light JSON reader for vector lines
/// (`{"_id": "d1", "vector": {"2054": 1.23, ...}, ...}`), several times faster than
/// JSONSerialization on these lines. It validates the whole line as JSON (RFC 8259) and keeps
/// the other fields as raw JSON text for the payload.
struct VectorLineParser {
    struct Failure: Error {
        var message: String
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    struct Parsed {
        var id: String?
        var entries: [(UInt32, Double)] = []
        var hasVector = false
        /// `"key":value` texts of the other fields, in input order.
        var otherFields: [String] = []
        var vectorError: String?
        var idIsNotString = false
        /// `"dense": [numbers]`, when the line has it.
        var dense: [Double]?
        var denseError: String?
    }

    static func parse(_ line: UnsafeRawBufferPointer) throws(Failure) -> Parsed {
        var p = VectorLineParser(line)
        return try p.parseLine()
    }

    private func fail(_ what: String) -> Failure {
        if i >= bytes.count { return Failure(message: "\(what) at the end of the line") }
        let c = bytes[i]
        let shown = c >= 0x20 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : String(format: "byte 0x%02X", c)
        return Failure(message: "\(what): unexpected \(shown) at column \(i + 1)")
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    private mutating func expect(_ c: UInt8, _ what: String) throws(Failure) {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else { throw fail(what) }
        i += 1
    }

    private mutating func parseLine() throws(Failure) -> Parsed {
        var out = Parsed()
        try expect(0x7B, "expected '{'")
        skipSpace()
        if i < bytes.count, bytes[i] == 0x7D {
            i += 1
        } else {
            while true {
                skipSpace()
                let keyStart = i
                let key = try parseString()
                try expect(0x3A, "expected ':'")
                skipSpace()
                let valueStart = i
                if key == "_id" {
                    if i < bytes.count, bytes[i] == 0x22 {
                        out.id = try parseString()
                    } else {
                        // Ids are strings: a number or `true` is refused, never turned into text.
                        try skipValue()
                        out.idIsNotString = true
                    }
                } else if key == "vector" {
                    out.hasVector = true
                    if i < bytes.count, bytes[i] == 0x7B {
                        try parseVector(into: &out)
                    } else {
                        try skipValue()
                        out.vectorError = "\"vector\" must be an object {\"DIM\": weight}"
                    }
                } else if key == "dense" {
                    if i < bytes.count, bytes[i] == 0x5B {
                        try parseDense(into: &out)
                    } else {
                        try skipValue()
                        out.denseError = "\"dense\" must be an array of numbers"
                    }
                } else {
                    try skipValue()
                    out.otherFields.append(
                        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<valueStart]), as: UTF8.self).trimmingCharacters(in: .whitespaces)
                            + String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<i]), as: UTF8.self))
                }
                if try atClose(0x7D) { break }
            }
        }
        skipSpace()
        guard i == bytes.count else { throw fail("trailing characters after the object") }
        return out
    }

    private mutating func parseVector(into out: inout Parsed) throws(Failure) {
        i += 1  // '{'
        skipSpace()
        if i < bytes.count, bytes[i] == 0x7D {
            i += 1
            return
        }
        while true {
            skipSpace()
            let key = try parseString()
            try expect(0x3A, "expected ':'")
            skipSpace()
            if i < bytes.count, bytes[i] == 0x2D || (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
                let r = try parseNumber()
                if out.vectorError == nil {
                    if let d = UInt32(key), key.first != "+" {
                        out.entries.append((d, Self.double(UnsafeRawBufferPointer(rebasing: bytes[r]))))
                    } else {
                        out.vectorError = "dimension key \"\(key.prefix(30))\" is not a non-negative integer"
                    }
                }
            } else {
                let start = i
                try skipValue()
                if out.vectorError == nil {
                    out.vectorError = UInt32(key) == nil
                        ? "dimension key \"\(key.prefix(30))\" is not a non-negative integer"
                        : "weight for dimension \(key) is not a number (\(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<min(i, start + 20)]), as: UTF8.self)))"
                }
            }
            if try atClose(0x7D) { return }
        }
    }

    private mutating func parseDense(into out: inout Parsed) throws(Failure) {
        i += 1  // '['
        var values: [Double] = []
        skipSpace()
        if i < bytes.count, bytes[i] == 0x5D {
            i += 1
            out.dense = values
            return
        }
        while true {
            skipSpace()
            if i < bytes.count, bytes[i] == 0x2D || (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
                let r = try parseNumber()
                values.append(Self.double(UnsafeRawBufferPointer(rebasing: bytes[r])))
            } else {
                try skipValue()
                if out.denseError == nil { out.denseError = "value \(values.count) of \"dense\" is not a number" }
                values.append(0)
            }
            if try atClose(0x5D) { break }
        }
        out.dense = values
    }

    /// After a member: consumes ',' (false: another member follows) or `close` (true).
    private mutating func atClose(_ close: UInt8) throws(Failure) -> Bool {
        skipSpace()
        guard i < bytes.count else { throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'") }
        if bytes[i] == 0x2C {
            i += 1
            return false
        }
        if bytes[i] == close {
            i += 1
            return true
        }
        throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
    }

    private static func double(_ text: UnsafeRawBufferPointer) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: text.count + 1) { buf in
            for (k, b) in text.enumerated() { buf[k] = CChar(bitPattern: b) }
            buf[text.count] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }

    /// Parses a string literal; returns its decoded value.
    private mutating func parseString() throws(Failure) -> String {
        guard i < bytes.count, bytes[i] == 0x22 else { throw fail("expected a string") }
        i += 1
        let start = i
        var simple = true
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 { break }
            if c < 0x20 { throw fail("control character in a string") }
            if c == 0x5C {
                simple = false
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                switch bytes[i] {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: i += 1
                case 0x75:
                    guard i + 4 < bytes.count else { throw fail("short \\u escape") }
                    for k in 1...4 where !Self.isHex(bytes[i + k]) { i += k; throw fail("bad \\u escape") }
                    i += 5
                default: throw fail("bad escape")
                }
                continue
            }
            i += 1
        }
        guard i < bytes.count else { throw fail("unterminated string") }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
        i += 1
        guard let text = String(validating: raw, as: UTF8.self) else { throw Failure(message: "string is not valid UTF-8") }
        if simple { return text }
        // Rare: let Foundation decode the escapes of this one string.
        let quoted = "\"" + text + "\""
        guard let s = try? JSONSerialization.jsonObject(with: Data(quoted.utf8), options: [.fragmentsAllowed]) as? String else {
            throw Failure(message: "bad string escape")
        }
        return s
    }

    private static func isHex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) }

    /// Validates a number (JSON grammar); returns its byte range.
    private mutating func parseNumber() throws(Failure) -> Range<Int> {
        let start = i
        if i < bytes.count, bytes[i] == 0x2D { i += 1 }
        guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("bad number") }
        if bytes[i] == 0x30 {
            i += 1
        } else {
            while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
        }
        if i < bytes.count, bytes[i] == 0x2E {
            i += 1
            guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("bad number") }
            while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
        }
        if i < bytes.count, bytes[i] | 0x20 == 0x65 {
            i += 1
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 else { throw fail("bad number") }
            while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
        }
        return start..<i
    }

    private mutating func skipValue(depth: Int = 0) throws(Failure) {
        guard depth < 512 else { throw fail("nesting too deep") }
        skipSpace()
        guard i < bytes.count else { throw fail("expected a value") }
        switch bytes[i] {
        case 0x22: _ = try parseString()
        case 0x7B, 0x5B:
            let close: UInt8 = bytes[i] == 0x7B ? 0x7D : 0x5D
            let isObject = close == 0x7D
            i += 1
            skipSpace()
            if i < bytes.count, bytes[i] == close {
                i += 1
                return
            }
            while true {
                skipSpace()
                if isObject {
                    _ = try parseString()
                    try expect(0x3A, "expected ':'")
                }
                try skipValue(depth: depth + 1)
                if try atClose(close) { return }
            }
        case 0x74: try literal("true")
        case 0x66: try literal("false")
        case 0x6E: try literal("null")
        default:
            // Refuse what JSONSerialization refuses (it reads payloads back, for attributes and
            // output): a number beyond Double's range, such as 1e400.
            let r = try parseNumber()
            guard Self.double(UnsafeRawBufferPointer(rebasing: bytes[r])).isFinite else {
                throw Failure(message: "number \(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r.lowerBound..<min(r.upperBound, r.lowerBound + 30)]), as: UTF8.self)) is out of range")
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail("bad literal") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw fail("bad literal") }
        i += n
    }
}
