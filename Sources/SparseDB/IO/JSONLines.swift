import Foundation

/// Streams a JSON Lines file one line at a time (never the whole file in memory), numbering
/// lines from 1. Blank lines are skipped.
package struct JSONLinesReader: Sequence {
    package let path: String
    /// Longest line accepted (64 MiB). A longer one is cut at this length plus one byte, so that
    /// its parser reports it instead of the reader holding an unbounded line in memory.
    package static let maxLineBytes = 64 << 20

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
        private var scanned = 0

        init(path: String) { handle = FileHandle(forReadingAtPath: path) }

        private mutating func skipToNewline() {
            buffer.removeAll()
            while true {
                let chunk = handle?.readData(ofLength: 1 << 20) ?? Data()
                if chunk.isEmpty {
                    eof = true
                    return
                }
                if let nl = chunk.firstIndex(of: 0x0A) {
                    buffer.append(contentsOf: chunk[(nl + 1)...])
                    return
                }
            }
        }

        /// (line number, bytes of the line without the newline).
        package mutating func next() -> (line: Int, bytes: ArraySlice<UInt8>)? {
            while true {
                // `scanned`: bytes after `start` already known to hold no newline.
                if let nl = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
                    let line = buffer[start..<nl]
                    start = nl + 1
                    scanned = 0
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
                scanned = buffer.count
                if buffer.count > JSONLinesReader.maxLineBytes {
                    // Hand out the oversized prefix and drop the rest of that line.
                    let line = buffer[0...JSONLinesReader.maxLineBytes]
                    lineNumber += 1
                    skipToNewline()
                    scanned = 0
                    return (lineNumber, line)
                }
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
        try checkSize(bytes, file: file, line: line)
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

    static func checkSize(_ bytes: ArraySlice<UInt8>, file: String, line: Int) throws {
        if bytes.count > JSONLinesReader.maxLineBytes {
            throw SparseDBError(.invalidInput, "\(file):\(line): line is longer than \(JSONLinesReader.maxLineBytes >> 20) MiB")
        }
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
    /// Returns the id, the vector, and the other fields as a JSON object text (nil when none).
    package static func vectorRecord(
        _ bytes: ArraySlice<UInt8>, file: String, line: Int, dimensions: UInt32
    ) throws -> (id: String, vector: SparseVector, payload: [UInt8]?) {
        try checkSize(bytes, file: file, line: line)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SparseDBError(.invalidInput, "\(file):\(line): line is not valid UTF-8")
        }
        let parsed: VectorLineParser.Parsed
        do {
            parsed = try bytes.withUnsafeBytes { b throws(VectorLineParser.Failure) in try VectorLineParser.parse(b) }
        } catch let error as VectorLineParser.Failure {
            let message = error.message.contains("UTF-8") ? "line is not valid UTF-8" : "malformed JSON (\(error.message))"
            throw SparseDBError(.invalidInput, "\(file):\(line): \(message)")
        }
        guard let id = parsed.id, !id.isEmpty else {
            throw SparseDBError(.invalidInput, "\(file):\(line): missing \"_id\" (a string)")
        }
        guard parsed.hasVector else {
            throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)' has no \"vector\" field")
        }
        if let problem = parsed.vectorError {
            throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)': \(problem)")
        }
        var entries: [(UInt32, Float)] = []
        entries.reserveCapacity(parsed.entries.count)
        for (d, w) in parsed.entries {
            guard d < dimensions else {
                throw SparseDBError(.invalidInput, "\(file):\(line): dimension \(d) of '\(id)' is out of range (0..<\(dimensions))")
            }
            entries.append((d, Float(w)))
        }
        let vector: SparseVector
        do { vector = try SparseVector(entries) } catch let e as SparseDBError {
            throw e.prefixed("\(file):\(line): document '\(id)'")
        }
        let payload = parsed.otherFields.isEmpty ? nil : Array(("{" + parsed.otherFields.joined(separator: ",") + "}").utf8)
        return (id, vector, payload)
    }

    /// JSON bytes of `object` with sorted keys (the payload the CLI stores).
    package static func payload(_ object: [String: Any]) -> [UInt8]? {
        guard !object.isEmpty else { return nil }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { Array($0) }
    }
}
