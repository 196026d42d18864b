// A host program embedding SparseDB: opens a database, stores a few documents with sparse
// vectors and payloads, searches them, deletes one, and searches again.
//
//     swift run sparsedb-example [DATABASE_DIRECTORY]
import Foundation
import SparseDB

/// A host program's own generic code over Swift's `Collection` protocol compiles next to
/// `import SparseDB`: the library's collection type is `VectorCollection`, which shadows nothing.
func describe<C: Collection>(_ items: C) -> String where C.Element: CustomStringConvertible {
    items.map(\.description).joined(separator: ", ")
}

let path = CommandLine.arguments.dropFirst().first
    ?? FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-example-\(getpid())").path
defer { if CommandLine.arguments.count < 2 { try? FileManager.default.removeItem(atPath: path) } }

do {
    let db = try Database(path: path)
    let notes = try db.collection("notes", creatingWithDimensions: 1_000)
    try notes.upsert([
        Document(id: "apple", payload: Array("fruit, red or green".utf8), vector: try SparseVector([(1, 2.0), (7, 0.5)])),
        Document(id: "banana", payload: Array("fruit, yellow".utf8), vector: try SparseVector([(1, 1.5), (9, 1.0)])),
        Document(id: "carrot", payload: Array("vegetable, orange".utf8), vector: try SparseVector([(3, 2.0), (9, 0.2)])),
    ])
    let query = try SparseVector([(1, 1.0), (9, 1.0)])
    for algorithm in SearchAlgorithm.allCases {
        let result = try notes.search(query, options: SearchOptions(k: 2, algorithm: algorithm))
        let line = result.hits.map { "\($0.id) \(String(format: "%.2f", $0.score))" }.joined(separator: ", ")
        print("\(algorithm.rawValue): \(line)")
    }
    try notes.delete(ids: ["banana"])
    let after = try notes.search(query, options: SearchOptions(k: 2))
    print("after deleting banana: \(describe(after.hits.map(\.id)))")
    if let first = after.hits.first, let payload = first.payload {
        print("top payload: \(String(decoding: payload, as: UTF8.self))")
    }
    print("documents: \(try notes.count())")

    // Text in, text out: the default model (splade-tiny, fetched by tools/fetch-model.sh) encodes
    // documents on ingest and queries on search.
    if let encoder = try? TextEncoder(path: "default") {
        let articles = try db.collection("articles", creatingWithDimensions: UInt32(encoder.dimensions))
        try articles.ingest(
            [
                TextDocument(id: "paris", text: "Paris is the capital and largest city of France."),
                TextDocument(id: "solar", text: "Solar panels convert sunlight into electricity."),
                TextDocument(id: "bread", text: "Bread is baked from flour, water and yeast."),
            ], encoder: encoder)
        let hits = try articles.search(text: "what is the capital of france", encoder: encoder, options: SearchOptions(k: 1)).hits
        print("text search: \(describe(hits.map(\.id)))")
    } else {
        print("text search: skipped (no default model; run tools/fetch-model.sh)")
    }
    db.close()
} catch {
    FileHandle.standardError.write(Data("sparsedb-example: \(error)\n".utf8))
    exit(1)
}
