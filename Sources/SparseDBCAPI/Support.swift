// What every C entry point shares: status codes, the error object, handles, reading the caller's
// arrays, and buffers the caller owns. See include/sparsedb.h for the contract these implement.
//
// Rules every entry point follows:
// - its whole body runs inside `guarded`, which turns every thrown error into a status and an
//   error object, so no Swift error crosses the boundary;
// - it reads the caller's arrays only through `Input`, which checks every count and offset first
//   and converts integers with checked initialisers that throw instead of trapping;
// - it keeps no global mutable state: everything lives in the handles the caller passes.
import Foundation
import SparseDB

/// Status codes of the C API (`SDB_*` in sparsedb.h). Stable: new codes may be added, none renumbered.
enum Status {
    static let ok: Int32 = 0
    static let invalidInput: Int32 = 1
    static let notFound: Int32 = 2
    static let alreadyExists: Int32 = 3
    static let corrupt: Int32 = 4
    static let foreignFormat: Int32 = 5
    static let newerFormat: Int32 = 6
    static let olderFormat: Int32 = 7
    static let storage: Int32 = 8
    static let compression: Int32 = 9
    static let model: Int32 = 10
    static let io: Int32 = 11
    static let modelMismatch: Int32 = 12
    static let closed: Int32 = 13
    static let diskFull: Int32 = 14
    static let `internal`: Int32 = 100

    /// The C status of an engine error code. `SparseDBError.Code` is opaque (no raw value), so
    /// this compares against every known code; a code added later maps to `internal`.
    static func of(_ code: SparseDBError.Code) -> Int32 {
        let table: [(SparseDBError.Code, Int32)] = [
            (.invalidInput, invalidInput), (.notFound, notFound), (.alreadyExists, alreadyExists), (.corrupt, corrupt),
            (.foreignFormat, foreignFormat), (.newerFormat, newerFormat), (.olderFormat, olderFormat), (.storage, storage),
            (.compression, compression), (.model, model), (.io, io), (.modelMismatch, modelMismatch), (.closed, closed),
            (.diskFull, diskFull),
        ]
        return table.first { $0.0 == code }?.1 ?? `internal`
    }
}

/// An error raised by the C layer itself (a null handle, inconsistent offsets); the engine's own
/// errors arrive as `SparseDBError`.
struct CAPIError: Error {
    var status: Int32
    var message: String

    static func invalid(_ message: String) -> CAPIError { CAPIError(status: Status.invalidInput, message: message) }
}

/// The error object a failed call hands to the caller (`sdb_error`), freed by `sdb_error_free`.
final class ErrorBox {
    let status: Int32
    /// NUL-terminated UTF-8; `sdb_error_message` points into it for the box's lifetime.
    let message: ContiguousArray<CChar>
    let lmdbCode: Int32

    init(_ error: Error) {
        var lmdb: Int32 = 0
        let status: Int32
        let text: String
        switch error {
        case let e as SparseDBError:
            status = Status.of(e.code)
            text = e.message
            lmdb = e.lmdbCode ?? 0
        case let e as CAPIError:
            status = e.status
            text = e.message
        default:
            status = Status.internal
            text = String(describing: error)
        }
        self.status = status
        self.lmdbCode = lmdb
        var bytes = ContiguousArray(text.utf8CString)
        // A message with an embedded NUL would be cut short in C: replace those.
        for i in bytes.indices.dropLast() where bytes[i] == 0 { bytes[i] = 0x3F }
        self.message = bytes
    }
}

/// Runs `body`, turning every thrown error into its status and, when `error` is not null, an
/// error object the caller frees. Clears `*error` first, so it is null after a success.
@inline(__always)
func guarded(_ error: UnsafeMutablePointer<OpaquePointer?>?, _ body: () throws -> Void) -> Int32 {
    error?.pointee = nil
    do {
        try body()
        return Status.ok
    } catch let thrown {
        let box = ErrorBox(thrown)
        error?.pointee = retain(box)
        return box.status
    }
}

// MARK: Handles

/// A handle for `object`: an opaque pointer holding one retain, given up by the matching `*_free`.
func retain<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle the caller still owns (no retain taken or given up).
func borrow<T: AnyObject>(_ handle: OpaquePointer?, _ what: String) throws -> T {
    guard let handle else { throw CAPIError.invalid("\(what) handle is null") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// Gives up the retain a handle holds (null is ignored).
func release<T: AnyObject>(_ handle: OpaquePointer?, as _: T.Type) {
    guard let handle else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

/// Stores `value` through an out-parameter, refusing a null one.
func store<T>(_ value: T, _ out: UnsafeMutablePointer<T>?, _ what: String) throws {
    guard let out else { throw CAPIError.invalid("\(what) out-pointer is null") }
    out.pointee = value
}

// MARK: Reading the caller's arrays

enum Input {
    /// A NUL-terminated UTF-8 string; `nil` when `pointer` is null and `optional`.
    static func string(_ pointer: UnsafePointer<CChar>?, _ what: String) throws -> String {
        guard let pointer else { throw CAPIError.invalid("\(what) is null") }
        guard let s = String(validatingCString: pointer) else { throw CAPIError.invalid("\(what) is not valid UTF-8") }
        return s
    }

    /// `what` is only built when the string is there (a search passes "field name \(i)").
    static func optionalString(_ pointer: UnsafePointer<CChar>?, _ what: @autoclosure () -> String) throws -> String? {
        guard pointer != nil else { return nil }
        return try string(pointer, what())
    }

    /// A count the caller passed: not negative.
    static func count(_ n: Int64, _ what: String) throws -> Int {
        guard n >= 0, let c = Int(exactly: n) else { throw CAPIError.invalid("\(what) is negative (\(n))") }
        return c
    }

    /// Offsets `o[0...n]` into a buffer: non-negative and non-decreasing. Returns them as `Int`s.
    static func offsets(_ pointer: UnsafePointer<Int64>?, count n: Int, _ what: String) throws -> UnsafeBufferPointer<Int64> {
        guard let pointer else {
            if n == 0 { return UnsafeBufferPointer(start: nil, count: 0) }
            throw CAPIError.invalid("\(what) is null")
        }
        let o = UnsafeBufferPointer(start: pointer, count: n + 1)
        guard o[0] >= 0 else { throw CAPIError.invalid("\(what)[0] is negative (\(o[0]))") }
        for i in 0..<n where o[i + 1] < o[i] {
            throw CAPIError.invalid("\(what) decreases at \(i + 1) (\(o[i]) then \(o[i + 1]))")
        }
        return o
    }

    /// `n` UTF-8 strings packed in `data`: string i is bytes `offsets[i] ..< offsets[i+1]`.
    static func strings(
        _ data: UnsafePointer<CChar>?, _ offsets: UnsafePointer<Int64>?, count n: Int, _ what: String
    ) throws -> [String] {
        guard n > 0 else { return [] }
        let o = try Self.offsets(offsets, count: n, "\(what) offsets")
        guard o[n] == o[0] || data != nil else { throw CAPIError.invalid("\(what) data is null") }
        let base = UnsafeRawPointer(data).map { $0.assumingMemoryBound(to: UInt8.self) }
        var out: [String] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            let bytes = UnsafeBufferPointer(start: base.map { $0 + Int(o[i]) }, count: Int(o[i + 1] - o[i]))
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw CAPIError.invalid("\(what) \(i) is not valid UTF-8")
            }
            out.append(s)
        }
        return out
    }

    /// Optional byte strings (payloads): string i is absent when `present` is non-null and
    /// `present[i] == 0`; all are absent when `data`, `offsets` and `present` are all null.
    static func payloads(
        _ data: UnsafePointer<CChar>?, _ offsets: UnsafePointer<Int64>?, _ present: UnsafePointer<UInt8>?, count n: Int
    ) throws -> [[UInt8]?] {
        guard offsets != nil else {
            guard data == nil, present == nil else { throw CAPIError.invalid("payload offsets are null but payload data or flags are not") }
            return Array(repeating: nil, count: n)
        }
        let o = try Self.offsets(offsets, count: n, "payload offsets")
        guard n == 0 || o[n] == o[0] || data != nil else { throw CAPIError.invalid("payload data is null") }
        let base = UnsafeRawPointer(data).map { $0.assumingMemoryBound(to: UInt8.self) }
        return (0..<n).map { i in
            if let present, present[i] == 0 { return nil }
            return Array(UnsafeBufferPointer(start: base.map { $0 + Int(o[i]) }, count: Int(o[i + 1] - o[i])))
        }
    }

    /// Row `i` of a CSR matrix as a sparse vector. Rows whose dimensions are not increasing are
    /// sorted (a repeated dimension is refused).
    static func row(
        _ i: Int, indptr: UnsafeBufferPointer<Int64>, indices: UnsafePointer<UInt32>?, values: UnsafePointer<Float>?
    ) throws -> SparseVector {
        let start = Int(indptr[i])
        let count = Int(indptr[i + 1]) - start
        guard count > 0 else { return SparseVector() }
        guard let indices, let values else { throw CAPIError.invalid("indices or values are null") }
        let d = Array(UnsafeBufferPointer(start: indices + start, count: count))
        let w = Array(UnsafeBufferPointer(start: values + start, count: count))
        var sorted = true
        for j in 1..<max(count, 1) where d[j] <= d[j - 1] {
            sorted = false
            break
        }
        if sorted { return try SparseVector(dimensions: d, weights: w) }
        return try SparseVector(zip(d, w))
    }

    /// `n` rows of a CSR matrix (indptr has n + 1 non-decreasing entries).
    static func rows(
        count n: Int, indptr: UnsafePointer<Int64>?, indices: UnsafePointer<UInt32>?, values: UnsafePointer<Float>?,
        label: (Int) -> String
    ) throws -> [SparseVector] {
        guard n > 0 else { return [] }
        let p = try offsets(indptr, count: n, "indptr")
        return try (0..<n).map { i in
            do { return try row(i, indptr: p, indices: indices, values: values) } catch let e as SparseDBError {
                throw CAPIError(status: Status.of(e.code), message: "\(label(i)): \(e.message)")
            }
        }
    }

    static func algorithm(_ value: Int32) throws -> SearchAlgorithm {
        switch value {
        case 0: .exhaustive
        case 1: .maxscore
        case 2: .wand
        case 3: .bmw
        default: throw CAPIError.invalid("unknown algorithm \(value) (0 exhaustive, 1 maxscore, 2 wand, 3 bmw)")
        }
    }
}

// MARK: Buffers the caller reads, owned by one handle

/// A buffer of `count` trivially-copyable values, allocated once and freed with its owner.
/// `pointer` is never null (an empty buffer still has a one-element allocation), so C callers can
/// build views over it without special cases.
final class OwnedBuffer<T: BitwiseCopyable> {
    let pointer: UnsafeMutablePointer<T>
    let count: Int

    init(_ values: [T]) {
        count = values.count
        pointer = .allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { pointer.initialize(from: base, count: b.count) }
        }
    }

    deinit { pointer.deallocate() }
}

/// Byte strings packed as one buffer plus `n + 1` offsets, with a flag per string telling
/// whether it is present (payloads can be absent; ids always are present).
struct PackedStrings {
    var bytes: [UInt8] = []
    var offsets: [Int64] = [0]
    var present: [UInt8] = []

    mutating func append(_ s: some Collection<UInt8>) {
        bytes.append(contentsOf: s)
        offsets.append(Int64(bytes.count))
        present.append(1)
    }

    mutating func appendAbsent() {
        offsets.append(Int64(bytes.count))
        present.append(0)
    }
}

/// A C string the caller frees with `sdb_string_free` (malloc'd).
func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
    let bytes = Array(s.utf8)
    let out = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
    for (i, b) in bytes.enumerated() { out[i] = CChar(bitPattern: b == 0 ? 0x3F : b) }
    out[bytes.count] = 0
    return out
}

/// `value` as JSON text (keys sorted), for the rarely called metadata entry points.
func json(_ value: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
    return String(decoding: data, as: UTF8.self)
}
