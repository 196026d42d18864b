import ArgumentParser
import Foundation
import SparseDB

#if canImport(Glibc)
import Glibc
#endif

@main
struct SparseDBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparsedb",
        abstract: "An embedded sparse-vector database: ingest, search, evaluate.",
        version: "0.2.0",
        subcommands: [
            IngestCommand.self, SearchCommand.self, EncodeCommand.self, EvalCommand.self, DeleteCommand.self, CompactCommand.self,
            StatsCommand.self, VerifyCommand.self, UpgradeCommand.self, DoctorCommand.self, BenchCommand.self, DropCommand.self,
        ]
    )

    static func main() {
        BLASEnvironment.reexecIfNeeded()
        // Past a file-size limit (ulimit -f) a write should fail with EFBIG, which the library
        // reports as a full disk, rather than kill the process in the middle of a commit.
        signal(SIGXFSZ, SIG_IGN)
        main(nil)
    }
}

/// Runs a subcommand body, turning library errors into one clear line and exit code 1. The
/// error goes back to the argument parser as an exit code: nothing here calls `exit()`.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as SparseDBError {
        stderrLine("sparsedb: error: \(error.message)")
        throw ExitCode(1)
    }
}

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "Database directory (default: $SPARSEDB_HOME/db, else ~/.local/share/sparsedb/db).")
    var db: String = Defaults.databasePath
}

enum Defaults {
    /// `$SPARSEDB_HOME/db`, else `~/.local/share/sparsedb/db`.
    static var databasePath: String {
        if let home = ProcessInfo.processInfo.environment["SPARSEDB_HOME"], !home.isEmpty { return home + "/db" }
        return NSHomeDirectory() + "/.local/share/sparsedb/db"
    }
}

extension SearchAlgorithm: ExpressibleByArgument {}
extension VectorField.Kind: ExpressibleByArgument {}
extension VectorField.Metric: ExpressibleByArgument {}
extension VectorField.Precision: ExpressibleByArgument {}
extension VectorField.CSRIndex: ExpressibleByArgument {}
extension FusionOptions.Method: ExpressibleByArgument {}
