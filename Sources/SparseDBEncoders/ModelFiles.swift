import SparseDBCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reading the files of a model folder defensively. A model folder is untrusted input: every file
/// must be a regular file of bounded size (so a symlink to `/dev/zero`, a FIFO or a 10 GB
/// "config" is an error, not a hang or an out-of-memory kill), every folder a module names must
/// stay inside the model folder, and every number read from a configuration is checked for type
/// and range before anything is sized from it. Errors are `.model`, naming the file and the key.
enum ModelFiles {
    /// Largest configuration JSON read (config.json, modules.json, pooling configs, ...).
    static let configLimit = 4 << 20
    /// Largest tokenizer.json read (bert-base-uncased's is 0.5 MB; multilingual ones reach ~20 MB).
    static let tokenizerLimit = 64 << 20

    /// Metadata of the file `path` points to (symlinks followed), or a `.model` error that says
    /// why it cannot be used: missing, a symlink loop, not a regular file.
    static func regularFile(_ path: String, what: String = "file") throws -> stat {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            if e == ENOENT { throw SparseDBError(.model, "\(path): missing \(what)") }
            if e == ELOOP { throw SparseDBError(.model, "\(path): symbolic link loop") }
            throw SparseDBError(.model, "\(path): cannot read (\(String(cString: strerror(e))))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SparseDBError(.model, "\(path): not a regular file")
        }
        return st
    }

    /// The bytes of regular file `path`, refused when larger than `limit`.
    static func read(_ path: String, limit: Int, what: String = "file") throws -> Data {
        let st = try regularFile(path, what: what)
        guard Int(st.st_size) <= limit else {
            throw SparseDBError(.model, "\(path): \(st.st_size) bytes, more than the \(limit >> 20) MB a \(what) may have")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SparseDBError(.model, "\(path): cannot read")
        }
        return data
    }

    /// Parses JSON, reporting the parser's reason (Foundation refuses nesting deeper than 512).
    static func parse(_ data: Data, path: String) throws -> Any {
        do {
            return try JSONSerialization.jsonObject(with: data)
        } catch {
            let reason = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)"
            throw SparseDBError(.model, "\(path): not valid JSON (\(reason))")
        }
    }

    /// The JSON object in file `path`.
    static func object(_ path: String, limit: Int = configLimit, what: String = "file") throws -> JSONConfig {
        let value = try parse(try read(path, limit: limit, what: what), path: path)
        guard let object = value as? [String: Any] else { throw SparseDBError(.model, "\(path): not a JSON object") }
        return JSONConfig(path: path, values: object)
    }

    /// The JSON value in file `path` (any type).
    static func value(_ path: String, limit: Int = configLimit) throws -> Any {
        try parse(try read(path, limit: limit), path: path)
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The folder `relative` (from `file`'s `key`) inside model folder `root`. Absolute paths,
    /// `..` components and symlinks leading out of `root` are refused; when `mustExist`, the
    /// folder must exist (sentence-transformers' Normalize, for one, has no files).
    static func moduleFolder(root: String, relative: String, file: String, key: String, mustExist: Bool = true) throws -> String {
        let components = relative.split(separator: "/", omittingEmptySubsequences: true)
        guard !relative.hasPrefix("/"), !components.contains(".."), !relative.contains("\0") else {
            throw SparseDBError(.model, "\(file): \(key) '\(relative)' leads outside the model folder")
        }
        let path = components.isEmpty ? root : root + "/" + components.joined(separator: "/")
        guard isDirectory(path) else {
            if !mustExist, (try? FileManager.default.attributesOfItem(atPath: path)) == nil { return path }
            throw SparseDBError(.model, "\(file): \(key) '\(relative)' is not a folder of the model (\(path))")
        }
        // A symlinked folder may still point elsewhere: compare the resolved paths.
        if let realRoot = realPath(root), let realFolder = realPath(path), realFolder != realRoot, !realFolder.hasPrefix(realRoot + "/") {
            throw SparseDBError(.model, "\(file): \(key) '\(relative)' resolves to \(realFolder), outside the model folder")
        }
        return path
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// CRC-32C over `root`'s JSON and safetensors files (relative path and content, in path
    /// order), streamed. Only regular files count, so a symlink to a device or a FIFO is skipped
    /// rather than read forever; folders reached through symlinks are not entered.
    static func fingerprint(_ root: String) throws -> String {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root) else { throw SparseDBError(.model, "\(root): cannot list") }
        var files: [String] = []
        while let f = walker.nextObject() as? String {
            if f.hasSuffix(".json") || f.hasSuffix(".safetensors") { files.append(f) }
        }
        var crc: UInt32 = 0
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        for f in files.sorted() {
            let path = root + "/" + f
            guard (try? regularFile(path)) != nil else { continue }
            crc = CRC32C.checksum(Array(f.utf8), seed: crc)
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            while true {
                let n = Glibc.read(fd, buffer, chunk)
                if n <= 0 { break }
                crc = CRC32C.checksum(UnsafeRawBufferPointer(start: buffer, count: n), seed: crc)
            }
        }
        return String(format: "%08x", crc)
    }
}

/// A parsed JSON configuration with strict, range-checked accessors. A key that is absent or
/// `null` takes its default; a key that is present with the wrong type or out of range is a
/// `.model` error naming the file and the key.
struct JSONConfig {
    let path: String
    let values: [String: Any]
    /// Where `values` sits in the file (`"model."` for tokenizer.json's model), for messages.
    var prefix = ""

    subscript(_ key: String) -> Any? {
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    func describe(_ value: Any) -> String { Self.describe(value) }

    /// A JSON value for a message: numbers and booleans as written, strings quoted and cut.
    static func describe(_ value: Any) -> String {
        if let n = value as? NSNumber, !Self.isBool(n) { return "\(n)" }
        if let b = value as? Bool { return "\(b)" }
        if let s = value as? String { return "'\(s.prefix(60))'" }
        return "a \(type(of: value))"
    }

    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    /// `value` as an integer in `range`, or nil when it is not one (fractions, NaN, booleans, strings).
    static func integer(_ value: Any, in range: ClosedRange<Int>) -> Int? {
        guard let n = value as? NSNumber, !isBool(n) else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 1e18, d >= Double(range.lowerBound), d <= Double(range.upperBound) else { return nil }
        let i = Int(d)
        return range.contains(i) ? i : nil
    }

    /// Integer `key` in `range`; `fallback` when absent (an error when absent and no fallback).
    func int(_ key: String, in range: ClosedRange<Int>, default fallback: Int? = nil) throws -> Int {
        guard let v = self[key] else {
            if let fallback { return fallback }
            throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is missing (an integer in \(range) is needed)")
        }
        guard let i = Self.integer(v, in: range) else {
            throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is \(describe(v)), expected an integer in \(range)")
        }
        return i
    }

    /// Integer `key` in `range`, or nil when absent.
    func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard self[key] != nil else { return nil }
        return try int(key, in: range)
    }

    /// A finite number `key` with `valid` true; `fallback` when absent.
    func double(_ key: String, default fallback: Double, valid: (Double) -> Bool, expected: String) throws -> Double {
        guard let v = self[key] else { return fallback }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.isFinite, valid(n.doubleValue) else {
            throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is \(describe(v)), expected \(expected)")
        }
        return n.doubleValue
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = self[key] else { return fallback }
        guard let n = v as? NSNumber, Self.isBool(n) else {
            throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is \(describe(v)), expected true or false")
        }
        return n.boolValue
    }

    func string(_ key: String) throws -> String? {
        guard let v = self[key] else { return nil }
        guard let s = v as? String else { throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is \(describe(v)), expected a string") }
        return s
    }

    func string(_ key: String, default fallback: String) throws -> String { try string(key) ?? fallback }

    func object(_ key: String) throws -> JSONConfig? {
        guard let v = self[key] else { return nil }
        guard let o = v as? [String: Any] else { throw SparseDBError(.model, "\(path): '\(prefix)\(key)' is \(describe(v)), expected an object") }
        return JSONConfig(path: path, values: o, prefix: prefix + key + ".")
    }
}
