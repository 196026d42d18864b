import Foundation
import SparseDB

#if canImport(Glibc)
import Glibc
#endif

func printLine(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

func stderrLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Text of a corpus line: BEIR's title + " " + text (text alone when the title is empty).
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
    "{\"_id\":\(jsonString(id)),\"dense\":[" + e.map { "\($0)" }.joined(separator: ",") + "]}"
}

/// JSON text of `object` (sorted keys).
func jsonText(_ object: Any, pretty: Bool = false) throws -> String {
    var options: JSONSerialization.WritingOptions = [.sortedKeys]
    if pretty { options.insert(.prettyPrinted) }
    return String(decoding: try JSONSerialization.data(withJSONObject: object, options: options), as: UTF8.self)
}

/// Progress on stderr: a rewriting line on a terminal, plain lines every few seconds otherwise.
final class Progress {
    let label: String
    let total: Int?
    let start = Date()
    private var lastPrint = Date.distantPast
    private let tty = isatty(2) != 0
    let quiet: Bool

    init(_ label: String, total: Int? = nil, quiet: Bool = false) {
        self.label = label
        self.total = total
        self.quiet = quiet
    }

    func update(_ done: Int, force: Bool = false) {
        guard !quiet else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= (tty ? 0.2 : 5) else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        var text = "\(label): \(done)"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
            if tty {
                let filled = Int(fraction * 30)
                text = "\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] \(done)/\(total)"
            } else {
                text += "/\(total)"
            }
            text += " (\(String(format: "%.1f", 100 * fraction))%) \(String(format: "%.0f", rate))/s ETA \(String(format: "%.0f", eta))s"
        } else {
            text += " \(String(format: "%.0f", rate))/s"
        }
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish(_ done: Int) {
        guard !quiet else { return }
        update(done, force: true)
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// On Ctrl-C (SIGINT) or SIGTERM during an ingest: say how far it got and how to resume, then
/// end the process at once. The write transaction in flight is simply not committed (LMDB
/// discards it); every committed batch stays.
enum InterruptNotice {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func set(_ v: Int) { lock.withLock { value = v } }
        var current: Int { lock.withLock { value } }
    }

    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func install(label: String) -> Counter {
        let counter = Counter()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                stderrLine("\nsparsedb: \(label) interrupted: \(counter.current) documents are stored; run the same command again to resume")
                _exit(130)
            }
            source.resume()
            sources.append(source)
        }
        return counter
    }
}
