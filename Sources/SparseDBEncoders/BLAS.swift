import SparseDBCore
import COpenBLAS
import Foundation

/// Thin, checked wrappers over OpenBLAS sgemm (row-major).
package enum BLAS {
    /// Touch once before any BLAS use: one BLAS thread, since parallelism comes from Swift. (The
    /// kernel choice happens when the library loads; the CLI sets it up before that.)
    package static let configure: Void = {
        openblas_set_num_threads(1)
    }()

    /// C[m×n] = A[m×k] · B[n×k]ᵀ (+ C when `accumulate`): the nn.Linear product `x · Wᵀ`.
    @inline(__always)
    package static func matmulTransposedB(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil, accumulate: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda ?? k), b,
            Int32(ldb ?? k), accumulate ? 1 : 0, c, Int32(ldc ?? n))
    }

    /// C[m×n] = A[m×k] · B[k×n].
    @inline(__always)
    package static func matmul(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda ?? k), b,
            Int32(ldb ?? n), 0, c, Int32(ldc ?? n))
    }
}
