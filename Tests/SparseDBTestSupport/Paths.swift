import Foundation

/// The repository this test build comes from.
package let repositoryDirectory: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// `../shared` beside the repository: real collections, reference vectors and runs, goldens.
package let sharedDirectory: String = URL(fileURLWithPath: repositoryDirectory).deletingLastPathComponent().appendingPathComponent("shared").path

/// Committed test fixtures (tiny model recipes, the format-1 database, tokenizer hashes).
package let fixturesDirectory = repositoryDirectory + "/Tests/Fixtures"

/// A file of the reference encoder's outputs for `collection` (doc_vectors.jsonl, run.trec, ...).
package func referencePath(_ collection: String, _ file: String) -> String {
    "\(sharedDirectory)/reference/splade-tiny/\(collection)/\(file)"
}

/// A fresh directory per test (LMDB forbids opening one environment twice, and tests run in
/// parallel), removed afterwards.
package func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

/// Path of a built product (`sparsedb`, `sparsedb-example`) next to the test bundle.
package func productPath(_ name: String) -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return repositoryDirectory + "/.build/debug/" + name
}

/// Runs a command; returns (exit status, stdout, stderr).
@discardableResult
package func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil) throws
    -> (status: Int32, out: String, err: String)
{
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try p.run()
    if let stdin {
        // Feed stdin from another thread so that a child blocked on a full stdout cannot deadlock us.
        let writer = input.fileHandleForWriting
        Thread.detachNewThread {
            writer.write(stdin)
            try? writer.close()
        }
    }
    // Read both pipes before waiting, stderr on another thread, so a full pipe cannot block the child.
    let errBox = DataBox()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errBox.data, as: UTF8.self))
}

/// Bytes handed from a reader thread to the caller; written before `group.leave()`, read after
/// `group.wait()`, which orders the accesses.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
