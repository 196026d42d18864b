import Foundation

/// Streams a JSON Lines file one line at a time (never the whole file in memory), numbering
/// lines from 1. Blank lines are skipped.
package struct JSONLinesReader: Sequence {
    package let path: String

    package init(path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw SparseDBError(.notFound, "\(path): no such readable file")
        }
        self.path = path
    }

    package func makeIterator() -> Iterator { Iterator(path: path) }

    package struct Iterator: IteratorProtocol {
        private let handle: FileHandle?
        private var buffer: [UInt8] = []
        private var start = 0
        private var eof = false
        private var lineNumber = 0

        init(path: String) { handle = FileHandle(forReadingAtPath: path) }

        /// (line number, bytes of the line without the newline).
        package mutating func next() -> (line: Int, bytes: ArraySlice<UInt8>)? {
            while true {
                if let nl = buffer[start...].firstIndex(of: 0x0A) {
                    let line = buffer[start..<nl]
                    start = nl + 1
                    lineNumber += 1
                    if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                    return (lineNumber, line)
                }
                if eof {
                    guard start < buffer.count else { return nil }
                    let line = buffer[start...]
                    start = buffer.count
                    lineNumber += 1
                    if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { return nil }
                    return (lineNumber, line)
                }
                buffer.removeSubrange(0..<start)
                start = 0
                let chunk = handle?.readData(ofLength: 1 << 20) ?? Data()
                if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
            }
        }
    }
}

/// Parsing of the line formats the CLI reads (DESIGN.md "Command line contract").
package enum LineFormats {
    /// Parses one JSON object line; errors name the file and line.
    package static func object(_ bytes: ArraySlice<UInt8>, file: String, line: Int) throws -> [String: Any] {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SparseDBError(.invalidInput, "\(file):\(line): line is not valid UTF-8")
        }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw SparseDBError(.invalidInput, "\(file):\(line): malformed JSON (\(Self.reason(error)))")
        }
        guard let object = value as? [String: Any] else {
            throw SparseDBError(.invalidInput, "\(file):\(line): expected a JSON object")
        }
        return object
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    /// The `_id` field as a string (numbers are accepted and printed as integers).
    package static func id(_ object: [String: Any], file: String, line: Int) throws -> String {
        if let s = object["_id"] as? String {
            guard !s.isEmpty else { throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" is empty") }
            return s
        }
        if let n = object["_id"] as? NSNumber { return n.stringValue }
        throw SparseDBError(.invalidInput, "\(file):\(line): missing \"_id\" (a string)")
    }

    /// A vector line: `{"_id": "d1", "vector": {"2054": 1.23, ...}, ...other fields}`.
    package static func vectorRecord(
        _ bytes: ArraySlice<UInt8>, file: String, line: Int, dimensions: UInt32
    ) throws -> (id: String, vector: SparseVector, rest: [String: Any]) {
        var object = try object(bytes, file: file, line: line)
        let id = try id(object, file: file, line: line)
        guard let raw = object["vector"] else {
            throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)' has no \"vector\" field")
        }
        guard let map = raw as? [String: Any] else {
            throw SparseDBError(.invalidInput, "\(file):\(line): \"vector\" of '\(id)' must be an object {\"DIM\": weight}")
        }
        var entries: [(UInt32, Float)] = []
        entries.reserveCapacity(map.count)
        for (key, value) in map {
            guard let d = UInt32(key) else {
                throw SparseDBError(.invalidInput, "\(file):\(line): dimension key \"\(key.prefix(30))\" of '\(id)' is not a non-negative integer")
            }
            guard d < dimensions else {
                throw SparseDBError(.invalidInput, "\(file):\(line): dimension \(d) of '\(id)' is out of range (0..<\(dimensions))")
            }
            guard let n = value as? NSNumber, !(value is String) else {
                throw SparseDBError(.invalidInput, "\(file):\(line): weight for dimension \(d) of '\(id)' is not a number")
            }
            entries.append((d, Float(n.doubleValue)))
        }
        // JSON objects may repeat a key; JSONSerialization keeps the last silently, so look
        // for repeats in the raw text of the vector.
        if map.count > 0, hasDuplicateKeys(bytes, expected: map.count) {
            throw SparseDBError(.invalidInput, "\(file):\(line): a dimension of '\(id)' appears more than once")
        }
        let vector: SparseVector
        do { vector = try SparseVector(entries) } catch let e as SparseDBError {
            throw e.prefixed("\(file):\(line): document '\(id)'")
        }
        object["_id"] = nil
        object["vector"] = nil
        return (id, vector, object)
    }

    /// Counts the keys inside the `"vector": {...}` object of a line and compares.
    private static func hasDuplicateKeys(_ bytes: ArraySlice<UInt8>, expected: Int) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let r = text.range(of: "\"vector\"") else { return false }
        guard let open = text[r.upperBound...].firstIndex(of: "{") else { return false }
        guard let close = text[open...].firstIndex(of: "}") else { return false }
        var keys = 0
        var inString = false
        var escaped = false
        var sawColonAfterString = false
        for ch in text[text.index(after: open)..<close] {
            if inString {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false }
                continue
            }
            if ch == "\"" {
                inString = true
                sawColonAfterString = false
            } else if ch == ":" && !sawColonAfterString {
                keys += 1
                sawColonAfterString = true
            }
        }
        return keys != expected
    }

    /// JSON bytes of `object` with sorted keys (the payload the CLI stores).
    package static func payload(_ object: [String: Any]) -> [UInt8]? {
        guard !object.isEmpty else { return nil }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { Array($0) }
    }
}
