import SparseDBCore
import SparseDBStorage

/// Fixed-width rows of a flat field (dense embeddings, or CSR codes with a flat index), kept in
/// chunks of up to ``rowsPerChunk`` documents (format-spec.md §10): chunk `c` holds the rows of
/// documents `c·256 ..< (c+1)·256` that carry the field, in document order. New documents always
/// get larger ids, so ingest only ever appends rows (to the last chunk, or new chunks); a
/// compaction drops the rows of deleted documents and bumps the field's epoch.
package enum FlatStore {
    package static let rowsPerChunk = 256
    package static let chunkShift: UInt32 = 8

    /// What a row holds.
    package enum Layout: UInt8, Sendable {
        case denseF32 = 0
        case denseF16 = 1
        /// k slots of (u16 dimension, value); unused slots have value 0.
        case csrF32 = 2
        case csrF16 = 3

        package var isCSR: Bool { self == .csrF32 || self == .csrF16 }
        package var isHalf: Bool { self == .denseF16 || self == .csrF16 }

        /// Stored bytes of one row of `width` values (dense) or slots (csr).
        package func rowBytes(width: Int) -> Int {
            let value = isHalf ? 2 : 4
            return isCSR ? width * (2 + value) : width * value
        }

        package static func of(_ field: FieldRecord) -> Layout {
            switch (field.kind == FieldKind.csr.rawValue, field.isHalfPrecision) {
            case (false, false): .denseF32
            case (false, true): .denseF16
            case (true, false): .csrF32
            case (true, true): .csrF16
            }
        }
    }

    /// Values per row: the dimensions of a dense field, the slots (k) of a csr field.
    package static func width(_ field: FieldRecord) -> Int {
        field.kind == FieldKind.csr.rawValue ? (field.activeDimensions ?? 0) : Int(field.dimensions)
    }

    /// A chunk decoded into plain arrays (values widened to f32, or a dense f16 chunk's values
    /// as stored: see `decode(key:_:field:keepingHalves:)`).
    package struct Chunk: Sendable {
        package var layout: Layout
        package var width: Int
        package var documents: [UInt32] = []
        /// documents.count × width values (empty when `halves` holds them).
        package var values: [Float] = []
        /// A dense f16 chunk decoded with `keepingHalves`: documents.count × width binary16 bit
        /// patterns, as stored (then `values` is empty).
        package var halves: [UInt16] = []
        /// csr: documents.count × width dimensions (empty for dense).
        package var dimensions: [UInt16] = []

        package init(layout: Layout, width: Int) {
            self.layout = layout
            self.width = width
        }

        package var count: Int { documents.count }
    }

    package static func chunkIndex(_ doc: UInt32) -> UInt32 { doc >> chunkShift }

    // MARK: encoding

    /// The sealed record of `chunk` under `key`.
    package static func encode(key: [UInt8], _ chunk: Chunk) -> [UInt8] {
        let n = chunk.count
        var w = ByteWriter(capacity: 8 + 4 * n + chunk.layout.rowBytes(width: chunk.width) * n)
        w.u8(chunk.layout.rawValue)
        w.u8(0)
        w.u16le(UInt16(n))
        w.u32le(UInt32(chunk.width))
        for d in chunk.documents { w.u32le(d) }
        for r in 0..<n {
            let base = r * chunk.width
            if chunk.layout.isCSR {
                for j in 0..<chunk.width { w.u16le(chunk.dimensions[base + j]) }
            }
            for j in 0..<chunk.width {
                let x = chunk.values[base + j]
                if chunk.layout.isHalf { w.u16le(Float16(x).bitPattern) } else { w.f32le(x) }
            }
        }
        return Records.sealed(key: key, body: w.bytes)
    }

    /// Checks and decodes a stored chunk. With `keepingHalves`, a dense f16 chunk's values are
    /// kept as stored in `halves` (checked finite; every finite half is within
    /// ``SparseVector/maxWeight``), not widened into `values`: the scan keeps f16 rows in f16, and
    /// widening each value to narrow it again cost a cold scan more than the f32 field's.
    package static func decode(
        key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, field: FieldRecord, keepingHalves: Bool = false
    ) throws -> Chunk {
        let label = "flat chunk \(Keys.part(key, 2).map(String.init) ?? "?") of field '\(field.name)'"
        let body = try Records.checkedBody(key: key, value, what: label)
        var r = ByteReader(body)
        guard let raw = r.u8(), let layout = Layout(rawValue: raw), r.u8() == 0, let n16 = r.u16le(), let width32 = r.u32le() else {
            throw SparseDBError(.corrupt, "\(label) has a malformed header")
        }
        let n = Int(n16)
        let width = Int(width32)
        guard layout == Layout.of(field), width == self.width(field), n >= 1, n <= rowsPerChunk else {
            throw SparseDBError(.corrupt, "\(label) does not match its field (layout \(raw), width \(width), \(n) rows)")
        }
        guard r.remaining == n * (4 + layout.rowBytes(width: width)) else {
            throw SparseDBError(.corrupt, "\(label) has \(r.remaining) bytes of rows, expected \(n * (4 + layout.rowBytes(width: width)))")
        }
        var chunk = Chunk(layout: layout, width: width)
        chunk.documents.reserveCapacity(n)
        let expectedChunk = Keys.part(key, 2) ?? 0
        for _ in 0..<n {
            let d = r.u32le()!
            guard chunkIndex(d) == expectedChunk, (chunk.documents.last.map { d > $0 } ?? true) else {
                throw SparseDBError(.corrupt, "\(label) lists document \(d) out of place")
            }
            chunk.documents.append(d)
        }
        if keepingHalves && layout == .denseF16 {
            var nonFinite = false
            chunk.halves = [UInt16](unsafeUninitializedCapacity: n * width) { out, count in
                for i in 0..<n * width {
                    let h = r.u16le()!
                    nonFinite = nonFinite || h & 0x7c00 == 0x7c00  // all exponent bits: infinity or NaN
                    out[i] = h
                }
                count = n * width
            }
            guard !nonFinite else { throw SparseDBError(.corrupt, "\(label) holds a value out of range") }
            return chunk
        }
        chunk.values = [Float](repeating: 0, count: n * width)
        if layout.isCSR { chunk.dimensions = [UInt16](repeating: 0, count: n * width) }
        for row in 0..<n {
            let base = row * width
            if layout.isCSR {
                for j in 0..<width { chunk.dimensions[base + j] = r.u16le()! }
            }
            for j in 0..<width {
                let x = layout.isHalf ? Float(Float16(bitPattern: r.u16le()!)) : r.f32le()!
                guard x.isFinite, abs(x) <= SparseVector.maxWeight else { throw SparseDBError(.corrupt, "\(label) holds a value out of range") }
                chunk.values[base + j] = x
            }
            if layout.isCSR {
                // Used slots first, dimensions strictly increasing and in range; unused slots are zero.
                var previous: Int = -1
                var used = true
                for j in 0..<width {
                    let d = Int(chunk.dimensions[base + j])
                    let x = chunk.values[base + j]
                    if x == 0 {
                        used = false
                        guard d == 0 else { throw SparseDBError(.corrupt, "\(label) has an unused slot with a dimension") }
                        continue
                    }
                    guard used, d > previous, d < field.dimensions, x > 0 else {
                        throw SparseDBError(.corrupt, "\(label) has a malformed code in the row of document \(chunk.documents[row])")
                    }
                    previous = d
                }
            }
        }
        return chunk
    }

    /// The rows of a stored dense f32 chunk record (`crc ‖ body`, §10), in place: `rows × width`
    /// `f32le` values, row after row. The record must be the one a scan decoded (checked by its
    /// stored checksum, row count and layout; the checksum itself was verified then), else the
    /// chunk is reported corrupt.
    package static func storedF32Rows(
        _ value: UnsafeRawBufferPointer, rows n: Int, width: Int, checksum: UInt32, label: @autoclosure () -> String
    ) throws -> UnsafeRawBufferPointer {
        let rowsAt = 4 + 8 + 4 * n
        guard value.count == rowsAt + n * width * 4, UInt32(littleEndian: value.loadUnaligned(as: UInt32.self)) == checksum,
            value[4] == Layout.denseF32.rawValue, Int(UInt16(littleEndian: value.loadUnaligned(fromByteOffset: 6, as: UInt16.self))) == n
        else { throw SparseDBError(.corrupt, "\(label()) is not the record its scan read") }
        return UnsafeRawBufferPointer(rebasing: value[rowsAt...])
    }

    // MARK: rows

    /// The stored row of a dense vector: checked (length, finite, bounded; nonzero for cosine),
    /// normalized for cosine fields, and representable in f16 for half-precision fields.
    package static func denseRow(_ v: [Float], field: FieldRecord, document: String) throws -> [Float] {
        guard v.count == Int(field.dimensions) else {
            throw SparseDBError(.invalidInput, "document '\(document)': field '\(field.name)' takes \(field.dimensions) values, got \(v.count)")
        }
        var norm2 = 0.0
        for (i, x) in v.enumerated() {
            guard x.isFinite else { throw SparseDBError(.invalidInput, "document '\(document)': value \(i) of field '\(field.name)' is \(x)") }
            guard abs(x) <= SparseVector.maxWeight else {
                throw SparseDBError(.invalidInput, "document '\(document)': value \(i) of field '\(field.name)' is \(x), beyond ±\(SparseVector.maxWeight)")
            }
            norm2 += Double(x) * Double(x)
        }
        var row = v
        if field.isCosine {
            guard norm2 > 0 else { throw SparseDBError(.invalidInput, "document '\(document)': a zero vector has no direction for cosine field '\(field.name)'") }
            let inv = 1 / norm2.squareRoot()
            row = v.map { Float(Double($0) * inv) }
        }
        if field.isHalfPrecision {
            for (i, x) in row.enumerated() where abs(x) > Float(Float16.greatestFiniteMagnitude) {
                throw SparseDBError(.invalidInput, "document '\(document)': value \(i) of field '\(field.name)' is \(x), beyond half precision (±65504)")
            }
            row = row.map { Float(Float16($0)) }
        }
        return row
    }

    /// The stored slots of a CSR code: at most k active dimensions (or its k largest when the
    /// field keeps the largest), in increasing dimension order, padded with empty slots.
    package static func csrRow(_ v: SparseVector, field: FieldRecord, document: String) throws -> (dims: [UInt16], values: [Float]) {
        let k = field.activeDimensions ?? 0
        var code = v.droppingZeros()
        if code.count > k {
            guard field.keepLargest == true else {
                throw SparseDBError(
                    .invalidInput, "document '\(document)': \(code.count) active dimensions, field '\(field.name)' holds at most \(k)")
            }
            code = code.keepingLargest(k)
        }
        var dims = [UInt16](repeating: 0, count: k)
        var values = [Float](repeating: 0, count: k)
        for (j, (d, x)) in zip(code.dimensions, code.weights).enumerated() {
            dims[j] = UInt16(d)
            let stored = field.isHalfPrecision ? Float(Float16(x)) : x
            guard stored.isFinite, stored > 0 else {
                throw SparseDBError(.invalidInput, "document '\(document)': weight \(x) of dimension \(d) is not representable in field '\(field.name)'")
            }
            values[j] = stored
        }
        return (dims, values)
    }

    /// Rows of one batch for one field, in increasing document order.
    package struct PendingRows {
        package var documents: [UInt32] = []
        package var values: [Float] = []
        package var dimensions: [UInt16] = []

        package init() {}
    }

    /// Checks one document's value for a flat field and appends its row to `rows`.
    package static func addRow(_ value: FieldValue, field: FieldRecord, document: UInt32, externalId: String, to rows: inout PendingRows) throws {
        switch value {
        case .dense(let v):
            rows.values.append(contentsOf: try denseRow(v, field: field, document: externalId))
        case .sparse(let v):
            let (dims, values) = try csrRow(v, field: field, document: externalId)
            rows.dimensions.append(contentsOf: dims)
            rows.values.append(contentsOf: values)
        }
        rows.documents.append(document)
    }

    /// Appends rows to the field's chunks (documents larger than every stored one).
    package static func append(_ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, rows: PendingRows) throws {
        let width = self.width(field)
        let layout = Layout.of(field)
        var start = 0
        while start < rows.documents.count {
            let index = chunkIndex(rows.documents[start])
            var end = start
            while end < rows.documents.count && chunkIndex(rows.documents[end]) == index { end += 1 }
            let key = Keys.flatChunk(c, field.id, index)
            var chunk = try key.withUnsafeBytes { k in
                try txn.withValue(key, in: txn.table(.flatChunk)) { b throws -> Chunk in
                    guard let b else { return Chunk(layout: layout, width: width) }
                    return try decode(key: k, b, field: field)
                }
            }
            chunk.documents.append(contentsOf: rows.documents[start..<end])
            chunk.values.append(contentsOf: rows.values[(start * width)..<(end * width)])
            if layout.isCSR { chunk.dimensions.append(contentsOf: rows.dimensions[(start * width)..<(end * width)]) }
            try txn.putAppending(encode(key: key, chunk), forKey: key, in: txn.table(.flatChunk))
            start = end
        }
    }

    /// Drops the rows of `deleted` documents from every chunk of the field; returns the rows kept.
    package static func compact(_ txn: borrowing Transaction, collection c: UInt32, field: FieldRecord, deleted: DocumentBitmap) throws -> UInt64 {
        var rewrites: [([UInt8], Chunk?)] = []
        var kept: UInt64 = 0
        try txn.scan(prefix: Keys.field(c, field.id), in: txn.table(.flatChunk)) { k, v in
            var chunk = try decode(key: k, v, field: field)
            let keep = chunk.documents.indices.filter { !deleted.contains(chunk.documents[$0]) }
            kept += UInt64(keep.count)
            guard keep.count < chunk.count else { return true }
            var next = Chunk(layout: chunk.layout, width: chunk.width)
            for i in keep {
                next.documents.append(chunk.documents[i])
                next.values.append(contentsOf: chunk.values[(i * chunk.width)..<((i + 1) * chunk.width)])
                if chunk.layout.isCSR { next.dimensions.append(contentsOf: chunk.dimensions[(i * chunk.width)..<((i + 1) * chunk.width)]) }
            }
            chunk = next
            rewrites.append((Array(k), chunk.count > 0 ? chunk : nil))
            return true
        }
        for (key, chunk) in rewrites {
            if let chunk { try txn.put(encode(key: key, chunk), forKey: key, in: txn.table(.flatChunk)) } else { try txn.delete(key, in: txn.table(.flatChunk)) }
        }
        return kept
    }
}
