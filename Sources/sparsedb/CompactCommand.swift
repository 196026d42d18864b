import ArgumentParser
import Foundation
import SparseDB

struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Remove deleted documents and re-pack posting lists; with --into, also write a compact copy of the file.",
        discussion: """
            Compaction rewrites the lists inside the database file; the pages it frees stay in the file \
            (LMDB reuses them for later writes). --into DIR then writes a copy of the whole database \
            into a new or empty directory, every table written again in key order so that every page is \
            full — the smallest file — leaving the original as it is.
            """)
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name (all collections when omitted).") var collection: String?
    @Option(help: "Also write a compacted copy of the database into this new or empty directory.") var into: String?

    func run() throws {
        try reportingErrors {
            let db = try Database(path: database.db, configuration: .existing)
            for name in try collection.map({ [$0] }) ?? db.collectionNames() {
                let t0 = Date()
                try db.collection(name).compact()
                stderrLine("compacted \(name) in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
            }
            if let into {
                let t0 = Date()
                try db.writeCompactedCopy(to: into)
                let size = (try? FileManager.default.attributesOfItem(atPath: into + "/data.mdb")[.size] as? Int) ?? 0
                stderrLine("wrote \(into)/data.mdb (\(size) bytes) in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
            }
        }
    }
}
