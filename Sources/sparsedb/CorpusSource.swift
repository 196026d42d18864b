import Foundation
import SparseDB
import SparseDBTools

/// A BEIR corpus (`{"_id", "title", "text", ...}` lines) as text documents; the line's other
/// fields become the payload. A malformed line stops the ingest with an error naming the file
/// and line (committed batches stay).
struct CorpusSource: TextDocumentSource {
    let reader: JSONLinesReader

    init(_ file: InputFile) throws { reader = try file.lines() }

    mutating func next() throws -> TextDocument? {
        guard let (line, bytes) = try reader.next() else { return nil }
        let path = reader.file.displayName
        var o = try LineFormats.object(bytes, file: path, line: line)
        let id = try LineFormats.id(o, file: path, line: line)
        let text = documentText(o)
        o["_id"] = nil
        return TextDocument(id: id, text: text, payload: LineFormats.payload(o))
    }
}
