import ArgumentParser
import Foundation
import SparseDB

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Print the libraries, BLAS kernel and settings in use, and the machine's sgemm speed (JSON).")

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        var out: [String: Any] = Diagnostics.libraries
        out["cpu_avx512"] = BLASEnvironment.hasAVX512()
        out["OPENBLAS_CORETYPE"] = env["OPENBLAS_CORETYPE"] ?? ""
        out["OPENBLAS_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] ?? ""
        out["cores"] = ProcessInfo.processInfo.activeProcessorCount
        out["sgemm_gflops_1_thread_512x128x30522"] = Diagnostics.sgemmGFLOPS()
        out["default_model"] = TextEncoder.defaultModelPath
        out["default_database"] = Defaults.databasePath
        let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        printLine(String(decoding: data, as: UTF8.self))
    }
}
