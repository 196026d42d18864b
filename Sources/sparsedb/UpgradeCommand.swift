import ArgumentParser
import Foundation
import SparseDB

struct UpgradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Upgrade a database written by an older SparseDB to the current format, in place.",
        discussion: """
            The whole conversion is one transaction: it completes, or (on an error, a crash or a kill) \
            leaves the database exactly as it was. Every checksum of the old data is checked on the \
            way. No other process may have the database open. A database in the current format is \
            left alone, so the command is safe to re-run.
            """)
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try reportingErrors {
            let before = try Database.formatVersion(path: database.db)
            let t0 = Date()
            try Database.upgrade(path: database.db)
            let after = try Database.formatVersion(path: database.db)
            if before == after {
                stderrLine("\(database.db) is already in format \(after)")
            } else {
                stderrLine("upgraded \(database.db) from format \(before) to \(after) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
            }
        }
    }
}
