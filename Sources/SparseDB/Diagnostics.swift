import CLMDB
import COpenBLAS
import CZstd
import Foundation
import SparseDBCore
import SparseDBEncoders

/// Facts about the runtime SparseDB links against, for `sparsedb doctor` and bug reports.
public enum Diagnostics {
    /// Versions of the C libraries in use, and OpenBLAS's build configuration (which names the
    /// kernel it picked, e.g. `SkylakeX` or `Haswell`).
    public static var libraries: [String: String] {
        [
            "lmdb": String(cString: mdb_version(nil, nil, nil)),
            "zstd": String(cString: ZSTD_versionString()),
            "openblas": String(cString: openblas_get_config()),
            "openblas_threads": String(openblas_get_num_threads()),
            "crc32c": CRC32C.isHardwareAccelerated ? "sse4.2" : "table",
        ]
    }

    /// Single-thread sgemm speed in GFLOP/s on the shape of the SPLADE vocabulary projection
    /// (`m` tokens × `k` hidden × `n` vocabulary), the best of `repeats` runs.
    public static func sgemmGFLOPS(m: Int = 512, n: Int = 30_522, k: Int = 128, repeats: Int = 5) -> Double {
        _ = BLAS.configure
        let a = [Float](repeating: 0.5, count: m * k)
        let b = [Float](repeating: 0.25, count: n * k)
        var c = [Float](repeating: 0, count: m * n)
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.matmulTransposedB(ap.baseAddress!, bp.baseAddress!, cp.baseAddress!, m: m, n: n, k: k)
                    }
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return 2 * Double(m) * Double(n) * Double(k) / best / 1e9
    }
}
