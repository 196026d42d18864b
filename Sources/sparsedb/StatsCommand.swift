import ArgumentParser
import Foundation
import SparseDB

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Counts and sizes as JSON.")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try reportingErrors {
            let db = try Database(path: database.db, configuration: .readOnlyExisting)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            printLine(String(decoding: try encoder.encode(try db.statistics()), as: UTF8.self))
        }
    }
}
