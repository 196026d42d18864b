import Foundation
import SparseDB
import SparseDBTools

/// A BEIR corpus (`{"_id", "title", "text", ...}` lines) as text documents; the line's other
/// fields become the payload. A malformed line stops the ingest with an error naming the file
/// and line (committed batches stay).
struct CorpusSource: TextDocumentSource {
    let reader: JSONLinesReader
    /// Attributes whose values are read from each line's fields.
    let attributes: [AttributeField]

    init(_ file: InputFile, attributes: [AttributeField] = []) throws {
        reader = try file.lines()
        self.attributes = attributes
    }

    mutating func next() throws -> TextDocument? {
        guard let (line, bytes) = try reader.next() else { return nil }
        let path = reader.file.displayName
        var o = try LineFormats.object(bytes, file: path, line: line)
        let id = try LineFormats.id(o, file: path, line: line)
        let text = documentText(o)
        let values = try LineFormats.attributeValues(o, declared: attributes, file: path, line: line)
        o["_id"] = nil
        return TextDocument(id: id, text: text, payload: LineFormats.payload(o), attributes: values)
    }
}
