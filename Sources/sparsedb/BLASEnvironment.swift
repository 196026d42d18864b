import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS reads its settings once, when the library loads, so the CLI fixes them by
/// re-executing itself before any work: one BLAS thread (parallelism comes from Swift), and the
/// AVX-512 (SkylakeX) kernels on CPUs that have AVX-512, which OpenBLAS 0.3.21 does not pick on
/// these EPYC machines by itself (about 2x sgemm). `SPARSEDB_KEEP_OPENBLAS_ENV=1` keeps the
/// environment as it is.
enum BLASEnvironment {
    static func reexecIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["SPARSEDB_BLAS_READY"] == nil, env["SPARSEDB_KEEP_OPENBLAS_ENV"] != "1" else { return }
        setenv("SPARSEDB_BLAS_READY", "1", 1)
        if env["OPENBLAS_NUM_THREADS"] == nil { setenv("OPENBLAS_NUM_THREADS", "1", 1) }
        let current = env["OPENBLAS_CORETYPE"] ?? ""
        if (current.isEmpty || current.lowercased() == "haswell") && hasAVX512() {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", argv)
        // execv only returns on failure; carry on with the environment as it was.
    }

    static func hasAVX512() -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
    }
}
