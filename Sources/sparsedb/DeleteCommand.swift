import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete documents by id, in one transaction.",
        discussion: "The ids file holds one external id a line, taken exactly as written (only the line break is removed), so ids with leading or trailing spaces can be deleted; blank lines are skipped.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String = "default"
    @Option(help: "File with one external id a line ('-' = stdin).") var ids: String

    func run() throws {
        try reportingErrors {
            let input = try InputFile(path: ids)
            let reader = try input.lines()
            var list: [String] = []
            while let (line, bytes) = try reader.next() {
                guard let id = String(validating: bytes, as: UTF8.self) else {
                    throw SparseDBError.invalidInput("\(input.displayName):\(line): not valid UTF-8")
                }
                list.append(id)
            }
            let db = try Database(path: database.db, configuration: .existing)
            let missing = try db.collection(collection).delete(ids: list)
            stderrLine("deleted \(list.count - missing.count) documents; \(missing.count) ids not found")
        }
    }
}
