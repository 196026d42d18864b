import CZstd
import Foundation
import SparseDBCore

/// Owner of a zstd compression and a decompression context, reused across blocks.
///
/// Not thread-safe: each writer or query owns its own codec.
package final class ZstdCodec {
    private let cctx: OpaquePointer
    private let dctx: OpaquePointer
    package let level: Int32

    package init(level: Int32 = 3) {
        // Allocation failure of a few hundred KiB is not recoverable in any meaningful way.
        cctx = ZSTD_createCCtx()!
        dctx = ZSTD_createDCtx()!
        self.level = level
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        ZSTD_freeDCtx(dctx)
    }

    /// Compresses `input`; the result is a complete zstd frame.
    package func compress(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            ZSTD_compressCCtx(cctx, o.baseAddress, bound, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(n) != 0 {
            throw SparseDBError(.compression, "zstd compress: \(String(cString: ZSTD_getErrorName(n)))")
        }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses a frame whose decoded size is known (it is stored beside the frame), into `out`.
    /// A frame that decodes to any other size is corrupt.
    package func decompress(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws {
        let n = ZSTD_decompressDCtx(dctx, out.baseAddress, out.count, input.baseAddress, input.count)
        if ZSTD_isError(n) != 0 {
            throw SparseDBError(.corrupt, "zstd decompress: \(String(cString: ZSTD_getErrorName(n)))")
        }
        if n != out.count {
            throw SparseDBError(.corrupt, "zstd frame decoded to \(n) bytes, expected \(out.count)")
        }
    }
}

/// Reusable codecs for queries: creating a zstd context costs more than a whole cached query.
package final class CodecPool: Sendable {
    /// `ZstdCodec` is not `Sendable` (its contexts are not thread-safe); the pool hands each one
    /// to one user at a time, so holding them behind the lock is safe.
    private struct Free: @unchecked Sendable { var codecs: [ZstdCodec] = [] }
    private let free = Locked(Free())

    package init() {}

    package func checkOut() -> ZstdCodec {
        free.withLock { $0.codecs.popLast() } ?? ZstdCodec()
    }

    package func checkIn(_ codec: ZstdCodec) {
        free.withLock { if $0.codecs.count < 64 { $0.codecs.append(codec) } }
    }

    /// Runs `body` with a codec of the pool.
    package func withCodec<R>(_ body: (ZstdCodec) throws -> R) rethrows -> R {
        let codec = checkOut()
        defer { checkIn(codec) }
        return try body(codec)
    }
}
