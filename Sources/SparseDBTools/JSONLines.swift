import Foundation
import SparseDB
import SparseDBCore

#if canImport(Glibc)
import Glibc
#endif

/// An input file of the command line: a path, or `-` for standard input.
///
/// Regular files can be read twice, which the ingest commands use to check every line before
/// writing anything. Pipes and standard input can be read once only: those commands then check
/// each batch before committing it (documented per command).
package struct InputFile: Sendable {
    /// The path as given (`-` for standard input).
    package let path: String
    /// Whether the input is a regular file, which can be read more than once.
    package let isRewindable: Bool

    /// Checks that `path` names something readable that is not a directory.
    package init(path: String) throws {
        self.path = path
        if path == "-" {
            var st = stat()
            isRewindable = fstat(0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
            return
        }
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SparseDBError(.notFound, "\(path): \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw SparseDBError(.invalidInput, "\(path) is a directory, not a file") }
        guard access(path, R_OK) == 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
        isRewindable = (st.st_mode & S_IFMT) == S_IFREG
    }

    /// How errors name this input.
    package var displayName: String { path == "-" ? "<stdin>" : path }

    /// A fresh reader from the first line.
    package func lines() throws -> JSONLinesReader { try JSONLinesReader(self) }
}

/// Reads a JSON Lines input one line at a time (never the whole file in memory), numbering
/// lines from 1. Blank lines are skipped; a UTF-8 byte-order mark at the start is skipped.
/// Read errors are thrown, never trapped.
package final class JSONLinesReader {
    package let file: InputFile
    /// Longest line accepted (64 MiB). A longer one is cut at this length plus one byte, so that
    /// its parser reports it instead of the reader holding an unbounded line in memory.
    package static let maxLineBytes = 64 << 20

    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var eof = false
    private var lineNumber = 0
    private var atFileStart = true

    /// Opens `path` (`-` = standard input).
    package convenience init(path: String) throws { try self.init(InputFile(path: path)) }

    package init(_ file: InputFile) throws {
        self.file = file
        if file.path == "-" {
            fd = 0
            ownsDescriptor = false
        } else {
            fd = open(file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SparseDBError(.io, "\(file.path): \(String(cString: strerror(errno)))") }
            ownsDescriptor = true
        }
    }

    deinit { if ownsDescriptor { close(fd) } }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SparseDBError(.io, "\(file.displayName): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    private func skipToNewline() throws {
        buffer.removeAll()
        start = 0
        while true {
            let before = buffer.count
            guard try fill() else {
                eof = true
                buffer.removeAll()
                return
            }
            if let nl = buffer[before...].firstIndex(of: 0x0A) {
                buffer.removeSubrange(0...nl)
                return
            }
            buffer.removeAll()
        }
    }

    private static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }
    }

    /// The next non-blank line as (line number, bytes without the newline), or nil at the end.
    package func next() throws -> (line: Int, bytes: ArraySlice<UInt8>)? {
        while true {
            if atFileStart && buffer.count - start >= 3 {
                if buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF { start += 3 }
                atFileStart = false
            }
            if let nl = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
                var line = buffer[start..<nl]
                if line.last == 0x0D { line = line.dropLast() }
                // An oversized line is handed out cut to the limit plus one byte, so its parser
                // reports it the same way wherever the read chunks happened to end.
                if line.count > Self.maxLineBytes { line = line.prefix(Self.maxLineBytes + 1) }
                start = nl + 1
                scanned = 0
                lineNumber += 1
                if Self.isBlank(line) { continue }
                return (lineNumber, line)
            }
            if eof {
                atFileStart = false
                guard start < buffer.count else { return nil }
                var line = buffer[start...]
                if line.count > Self.maxLineBytes { line = line.prefix(Self.maxLineBytes + 1) }
                start = buffer.count
                scanned = 0
                lineNumber += 1
                if Self.isBlank(line) { return nil }
                return (lineNumber, line)
            }
            buffer.removeSubrange(0..<start)
            start = 0
            scanned = buffer.count
            if buffer.count > Self.maxLineBytes {
                // Hand out the oversized prefix and drop the rest of that line.
                let line = Array(buffer[0...Self.maxLineBytes])
                lineNumber += 1
                try skipToNewline()
                scanned = 0
                return (lineNumber, line[...])
            }
            if try !fill() { eof = true }
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

    /// The `_id` field, which must be a non-empty string: numbers and booleans are refused rather
    /// than turned into text (`true` would become "1" and silently replace document "1").
    package static func id(_ object: [String: Any], file: String, line: Int) throws -> String {
        guard let value = object["_id"] else { throw SparseDBError(.invalidInput, "\(file):\(line): missing \"_id\"") }
        guard let s = value as? String else {
            throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" must be a string, got \(jsonType(value))")
        }
        try checkId(s, file: file, line: line)
        return s
    }

    /// Ids are 1…500 bytes of UTF-8 without control characters (they are written into TREC runs
    /// and id files, one per line).
    package static func checkId(_ s: String, file: String, line: Int) throws {
        guard !s.isEmpty else { throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" is empty") }
        guard s.utf8.count <= 500 else {
            throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" is \(s.utf8.count) bytes; at most 500")
        }
        guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" contains a control character")
        }
    }

    static func jsonType(_ value: Any) -> String {
        if value is Bool { return "a boolean or number" }
        if value is NSNumber { return "a number" }
        if value is NSNull { return "null" }
        if value is [Any] { return "an array" }
        if value is [String: Any] { return "an object" }
        return "a \(type(of: value))"
    }

    /// A dense line: `{"_id": "d1", "dense": [0.1, -0.2, ...], ...other fields}`, of `dimensions`
    /// values (or any length when nil). Returns the id, the values, and the other fields as a
    /// JSON object text (nil when none).
    package static func denseRecord(
        _ bytes: ArraySlice<UInt8>, file: String, line: Int, dimensions: Int?
    ) throws -> (id: String, values: [Float], payload: [UInt8]?) {
        let parsed = try parseLine(bytes, file: file, line: line)
        if parsed.idIsNotString { throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" must be a string") }
        guard let id = parsed.id else { throw SparseDBError(.invalidInput, "\(file):\(line): missing \"_id\"") }
        try checkId(id, file: file, line: line)
        if let problem = parsed.denseError { throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)': \(problem)") }
        guard let dense = parsed.dense else { throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)' has no \"dense\" field") }
        if let dimensions, dense.count != dimensions {
            throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)' has \(dense.count) values, expected \(dimensions)")
        }
        var values: [Float] = []
        values.reserveCapacity(dense.count)
        for (i, x) in dense.enumerated() {
            let f = Float(x)
            guard f.isFinite, abs(f) <= SparseVector.maxWeight else {
                throw SparseDBError(.invalidInput, "\(file):\(line): document '\(id)': value \(i) is \(x), not a finite number within ±\(SparseVector.maxWeight)")
            }
            values.append(f)
        }
        let payload = parsed.otherFields.isEmpty ? nil : Array(("{" + parsed.otherFields.joined(separator: ",") + "}").utf8)
        return (id, values, payload)
    }

    private static func parseLine(_ bytes: ArraySlice<UInt8>, file: String, line: Int) throws -> VectorLineParser.Parsed {
        try checkSize(bytes, file: file, line: line)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SparseDBError(.invalidInput, "\(file):\(line): line is not valid UTF-8")
        }
        do {
            return try bytes.withUnsafeBytes { b throws(VectorLineParser.Failure) in try VectorLineParser.parse(b) }
        } catch let error as VectorLineParser.Failure {
            let message = error.message.contains("UTF-8") ? "line is not valid UTF-8" : "malformed JSON (\(error.message))"
            throw SparseDBError(.invalidInput, "\(file):\(line): \(message)")
        }
    }

    /// A vector line: `{"_id": "d1", "vector": {"2054": 1.23, ...}, ...other fields}`.
    /// Returns the id, the vector, and the other fields as a JSON object text (nil when none).
    package static func vectorRecord(
        _ bytes: ArraySlice<UInt8>, file: String, line: Int, dimensions: UInt32
    ) throws -> (id: String, vector: SparseVector, payload: [UInt8]?) {
        let parsed = try parseLine(bytes, file: file, line: line)
        if parsed.idIsNotString { throw SparseDBError(.invalidInput, "\(file):\(line): \"_id\" must be a string") }
        guard let id = parsed.id else { throw SparseDBError(.invalidInput, "\(file):\(line): missing \"_id\"") }
        try checkId(id, file: file, line: line)
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

extension LineFormats {
    /// The values of declared attributes in a line's fields (the top-level fields other than
    /// `_id`, `title`, `text`, `vector`, `dense`): keyword = a string or an array of strings,
    /// integer = an integer, float = a number, bool = true / false. A missing or null value is
    /// simply absent; a value of the wrong type is refused with the file and line.
    package static func attributeValues(
        _ object: [String: Any], declared: [AttributeField], file: String, line: Int
    ) throws -> [String: AttributeValue] {
        var out: [String: AttributeValue] = [:]
        for attribute in declared {
            guard let raw = object[attribute.name], !(raw is NSNull) else { continue }
            func wrong() -> SparseDBError {
                SparseDBError(.invalidInput, "\(file):\(line): attribute '\(attribute.name)' is \(attribute.type.rawValue), got \(jsonType(raw))")
            }
            let number = raw as? NSNumber
            let objCType = number.map { String(cString: $0.objCType) }
            switch attribute.type {
            case .keyword:
                if let s = raw as? String, number == nil {
                    out[attribute.name] = .keyword(s)
                } else if let list = raw as? [Any] {
                    var strings: [String] = []
                    for item in list {
                        guard let s = item as? String, !(item is NSNumber) else { throw wrong() }
                        strings.append(s)
                    }
                    out[attribute.name] = .keywords(strings)
                } else {
                    throw wrong()
                }
            case .integer:
                guard let number, objCType != "c", objCType != "d" && objCType != "f" || number.doubleValue.rounded() == number.doubleValue,
                    abs(number.doubleValue) < 9.2e18
                else { throw wrong() }
                out[attribute.name] = .integer(number.int64Value)
            case .float:
                guard let number, objCType != "c", number.doubleValue.isFinite else { throw wrong() }
                out[attribute.name] = .float(number.doubleValue)
            case .bool:
                guard let number, objCType == "c" else { throw wrong() }
                out[attribute.name] = .bool(number.boolValue)
            }
        }
        return out
    }

    /// `NAME:TYPE` (type keyword, integer, float or bool), as `--attribute` takes it.
    package static func attributeDeclaration(_ spec: String) throws -> AttributeField {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, let type = AttributeField.ValueType(rawValue: parts[1]) else {
            throw SparseDBError(.invalidInput, "--attribute takes NAME:TYPE with TYPE keyword, integer, float or bool; got '\(spec)'")
        }
        return AttributeField(name: parts[0], type: type)
    }
}
