import ArgumentParser
import Foundation
import SparseDB

struct DropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Delete a collection and everything in it, in one transaction.",
        discussion: "The space it held is reused by later writes; `compact --into` gives a smaller file.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String

    func run() throws {
        try reportingErrors {
            let db = try Database(path: database.db, configuration: .existing)
            try db.dropCollection(collection)
            stderrLine("dropped collection '\(collection)'")
        }
    }
}
