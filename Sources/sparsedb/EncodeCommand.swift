import ArgumentParser
import Foundation
import SparseDB
import SparseDBTools

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Encode documents or queries (JSONL with _id, title, text) to vector JSONL on stdout.")

    @Option(help: "Model folder, or 'default' (splade-tiny).") var model: String = "default"
    @Flag(help: "Input lines are documents (title + text).") var documents = false
    @Flag(help: "Input lines are queries (text).") var queries = false
    @Argument(help: "Input JSONL file ('-' = stdin).") var file: String
    @Option(parsing: .unconditional, help: "Keep only the K largest weights of each vector.") var maxActiveDims: Int?
    @Option(parsing: .unconditional, help: "Dense models: keep the first D dimensions (Matryoshka).") var truncateDimensions: Int?
    @Option(parsing: .unconditional, help: "Texts encoded per call (memory bound).") var chunkSize: Int = 512
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        if documents == queries { throw ValidationError("give exactly one of --documents or --queries") }
        if let k = maxActiveDims, k < 1 { throw ValidationError("--max-active-dims must be at least 1") }
        if let d = truncateDimensions, d < 1 { throw ValidationError("--truncate-dimensions must be at least 1") }
        if chunkSize < 1 { throw ValidationError("--chunk-size must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let encoder = try TextEncoder(path: model)
            let task: TextEncoder.Task = queries ? .query : .document
            let progress = Progress("encode", quiet: quiet)
            var ids: [String] = []
            var texts: [String] = []
            var done = 0
            func flush() throws {
                guard !ids.isEmpty else { return }
                var out = ""
                if encoder.producesSparseVectors {
                    let vectors = try encoder.encode(texts, task: task, maxActiveDims: maxActiveDims)
                    for (id, v) in zip(ids, vectors) { out += vectorLine(id: id, v) + "\n" }
                } else {
                    let vectors = try encoder.embed(texts, task: task, truncateDimensions: truncateDimensions)
                    for (id, v) in zip(ids, vectors) { out += embeddingLine(id: id, v) + "\n" }
                }
                FileHandle.standardOutput.write(Data(out.utf8))
                done += ids.count
                progress.update(done)
                ids.removeAll(keepingCapacity: true)
                texts.removeAll(keepingCapacity: true)
            }
            let input = try InputFile(path: file)
            let reader = try input.lines()
            while let (line, bytes) = try reader.next() {
                let o = try LineFormats.object(bytes, file: input.displayName, line: line)
                ids.append(try LineFormats.id(o, file: input.displayName, line: line))
                texts.append(queries ? ((o["text"] as? String) ?? "") : documentText(o))
                if ids.count >= chunkSize { try flush() }
            }
            try flush()
            progress.finish(done)
        }
    }
}
