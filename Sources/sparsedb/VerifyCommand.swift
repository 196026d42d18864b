import ArgumentParser
import Foundation
import SparseDB

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check checksums, references and counts; exit 1 on any problem.")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try reportingErrors {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let problems = try db.verify()
            if problems.isEmpty {
                printLine("ok: \(try db.collectionNames().count) collections verified")
            } else {
                for p in problems { printLine(p) }
                throw ExitCode(1)
            }
        }
    }
}
