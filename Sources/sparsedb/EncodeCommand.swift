import ArgumentParser
import Foundation
import SparseDB

/// Text of a corpus or query line: BEIR's title + " " + text (text alone when the title is empty).
func documentText(_ object: [String: Any]) -> String {
    let title = (object["title"] as? String) ?? ""
    let text = (object["text"] as? String) ?? ""
    return title.isEmpty ? text : title + " " + text
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
        }
    }
    return out + "\""
}

func vectorLine(id: String, _ v: SparseVector) -> String {
    var s = "{\"_id\":\(jsonString(id)),\"vector\":{"
    for i in 0..<v.count {
        if i > 0 { s += "," }
        s += "\"\(v.dimensions[i])\":\(v.weights[i])"
    }
    return s + "}}"
}

func embeddingLine(id: String, _ e: [Float]) -> String {
    "{\"_id\":\(jsonString(id)),\"embedding\":[" + e.map { "\($0)" }.joined(separator: ",") + "]}"
}

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode documents or queries (JSONL with _id, title, text) to vector JSONL on stdout.")

    @Option(help: "Model folder, or 'default' (splade-tiny).") var model: String = "default"
    @Flag(help: "Input lines are documents (title + text).") var documents = false
    @Flag(help: "Input lines are queries (text).") var queries = false
    @Argument(help: "Input JSONL file.") var file: String
    @Option(help: "Keep only the K largest weights of each vector.") var maxActiveDims: Int?
    @Option(help: "Dense models: keep the first D dimensions (Matryoshka).") var truncateDimensions: Int?
    @Option(help: "Texts encoded per call (memory bound).") var chunkSize: Int = 512
    @Flag(help: "No progress output.") var quiet = false

    func validate() throws {
        if documents == queries { throw ValidationError("give exactly one of --documents or --queries") }
        if let k = maxActiveDims, k < 1 { throw ValidationError("--max-active-dims must be at least 1") }
    }

    func run() throws {
        try SparseDBCommand.guarded {
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
            for (line, bytes) in try JSONLinesReader(path: file) {
                let o = try LineFormats.object(bytes, file: file, line: line)
                ids.append(try LineFormats.id(o, file: file, line: line))
                texts.append(queries ? ((o["text"] as? String) ?? "") : documentText(o))
                if ids.count >= chunkSize { try flush() }
            }
            try flush()
            progress.finish(done)
        }
    }
}
