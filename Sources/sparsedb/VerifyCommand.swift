import ArgumentParser
import Foundation
import SparseDB

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check checksums, references and counts; exit 1 on any problem.")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try reportingErrors {
            // The page structure is checked from the file before LMDB reads any page of it.
            let problems = try Database.verify(path: database.db)
            if problems.isEmpty {
                let db = try Database(path: database.db, configuration: .readOnlyExisting)
                printLine("ok: \(try db.collectionNames().count) collections verified")
            } else {
                for p in problems { printLine(p) }
                throw ExitCode(1)
            }
        }
    }
}
