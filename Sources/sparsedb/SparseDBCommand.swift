import ArgumentParser
import Foundation
import SparseDB

@main
struct SparseDBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparsedb",
        abstract: "An embedded sparse-vector database: ingest, search, evaluate.",
        version: "0.1.0",
        subcommands: [Ingest.self, Search.self, Encode.self, Eval.self, Delete.self, Compact.self, Stats.self, Verify.self, Doctor.self]
    )

    static func main() {
        BLASEnvironment.reexecIfNeeded()
        main(nil)
    }

    /// Runs a subcommand body, turning library errors into one clear line and exit code 1.
    static func guarded(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as SparseDBError {
            FileHandle.standardError.write(Data("sparsedb: error: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "Database directory.")
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

/// Progress on stderr: a rewriting line on a terminal, plain lines otherwise.
final class Progress {
    let label: String
    let total: Int?
    let start = Date()
    private var lastPrint = Date.distantPast
    private let tty = isatty(2) != 0
    let quiet: Bool

    init(_ label: String, total: Int? = nil, quiet: Bool = false) {
        self.label = label
        self.total = total
        self.quiet = quiet
    }

    func update(_ done: Int, force: Bool = false) {
        guard !quiet else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= (tty ? 0.2 : 5) else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        var text = "\(label): \(done)"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
            if tty {
                let filled = Int(fraction * 30)
                text = "\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] \(done)/\(total)"
            } else {
                text += "/\(total)"
            }
            text += " (\(String(format: "%.1f", 100 * fraction))%) \(String(format: "%.0f", rate))/s ETA \(String(format: "%.0f", eta))s"
        } else {
            text += " \(String(format: "%.0f", rate))/s"
        }
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish(_ done: Int) {
        guard !quiet else { return }
        update(done, force: true)
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func printLine(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

func stderrLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
