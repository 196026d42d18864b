import SparseDBCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A memory-mapped `.safetensors` file: `u64le N ‖ N bytes of JSON header ‖ tensor bytes`.
///
/// Every offset and shape in the header is checked against the file size before use, so a
/// truncated or hostile file is a `.model` error, never a crash or a huge allocation.
package final class SafeTensorsFile: @unchecked Sendable {
    package enum DType: String {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i8 = "I8", u8 = "U8", bool = "BOOL"
        var size: Int {
            switch self {
            case .f64, .i64: 8
            case .f32, .i32: 4
            case .f16, .bf16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    package struct TensorInfo {
        package let dtype: DType
        package let shape: [Int]
        let begin: Int
        let end: Int
        package var elementCount: Int { shape.reduce(1, *) }
    }

    package let path: String
    package let tensors: [String: TensorInfo]
    private let base: UnsafeRawPointer
    private let length: Int
    private let dataStart: Int

    package init(path: String) throws {
        self.path = path
        // A regular file only: opening a FIFO would block, a device has no meaningful size.
        _ = try ModelFiles.regularFile(path, what: "weights file")
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SparseDBError(.model, "\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SparseDBError(.model, "\(path): cannot stat") }
        let size = Int(st.st_size)
        guard size >= 8 else { throw SparseDBError(.model, "\(path): file of \(size) bytes is too short for a safetensors header") }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw SparseDBError(.model, "\(path): mmap failed")
        }
        let raw = UnsafeRawPointer(map)
        var parsed: [String: TensorInfo] = [:]
        var start = 0
        do {
            let headerLength = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(size - 8), headerLength <= 100 << 20 else {
                throw SparseDBError(.model, "\(path): header length \(headerLength) exceeds the file (\(size) bytes)")
            }
            start = 8 + Int(headerLength)
            let headerData = Data(bytes: raw + 8, count: Int(headerLength))
            guard let header = try ModelFiles.parse(headerData, path: path + " (header)") as? [String: Any] else {
                throw SparseDBError(.model, "\(path): header is not a JSON object")
            }
            let available = size - start
            for (name, value) in header where name != "__metadata__" {
                // Numbers must be exact non-negative integers: NSNumber's intValue would wrap
                // or trap on 1e30, and truncate 1.5.
                let limit = 1 << 48
                guard let entry = value as? [String: Any], let dt = entry["dtype"] as? String,
                    let shape = entry["shape"] as? [Any], shape.count <= 8,
                    let offsets = entry["data_offsets"] as? [Any], offsets.count == 2
                else { throw SparseDBError(.model, "\(path): tensor '\(name)' has a malformed header entry") }
                guard let dtype = DType(rawValue: dt) else {
                    throw SparseDBError(.model, "\(path): tensor '\(name)' has unsupported dtype \(dt)")
                }
                let dims = shape.compactMap { JSONConfig.integer($0, in: 0...limit) }
                guard dims.count == shape.count else { throw SparseDBError(.model, "\(path): tensor '\(name)' has a bad shape \(shape)") }
                let (elements, overflow) = dims.reduce((1, false)) { acc, d in
                    let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                    return (p, acc.1 || o)
                }
                let (bytes, overflow2) = elements.multipliedReportingOverflow(by: dtype.size)
                guard let b = JSONConfig.integer(offsets[0], in: 0...limit), let e = JSONConfig.integer(offsets[1], in: 0...limit),
                    !overflow, !overflow2, e >= b, e <= available, e - b == bytes
                else {
                    let b = offsets[0], e = offsets[1]
                    throw SparseDBError(.model, "\(path): tensor '\(name)' has data offsets [\(b), \(e)) that do not fit its shape \(dims) or the file")
                }
                parsed[name] = TensorInfo(dtype: dtype, shape: dims, begin: b, end: e)
            }
        } catch {
            munmap(map, size)
            throw error
        }
        base = raw
        length = size
        dataStart = start
        tensors = parsed
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    /// The tensor `name` as f32 values (converted from F16 / BF16 / F64 when stored so),
    /// checked to have `shape` when given.
    package func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        guard let t = tensors[name] else {
            throw SparseDBError(.model, "\(path): tensor '\(name)' is missing")
        }
        if let shape, shape != t.shape {
            throw SparseDBError(.model, "\(path): tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        let p = base + dataStart + t.begin
        let n = t.elementCount
        // The dtype is checked first: an empty tensor of integers is not an empty float tensor.
        switch t.dtype {
        case .f32, .f16, .bf16, .f64: break
        default: throw SparseDBError(.model, "\(path): tensor '\(name)' has dtype \(t.dtype.rawValue), expected a float type")
        }
        guard n > 0 else { return [] }
        switch t.dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: n) { buf, count in
                memcpy(buf.baseAddress!, p, n * 4)
                count = n
            }
        case .f16:
            return (0..<n).map { Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
        case .bf16:
            return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        case .f64:
            return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        default:
            throw SparseDBError(.model, "\(path): tensor '\(name)' has dtype \(t.dtype.rawValue), expected a float type")
        }
    }

    /// The first of `names` that exists.
    package func firstName(_ names: [String]) -> String? { names.first { tensors[$0] != nil } }
}
