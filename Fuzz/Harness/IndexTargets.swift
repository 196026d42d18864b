import SparseDBCore
import SparseDBIndex
import SparseDBStorage

// MARK: - stored bytes (SparseDBIndex)
//
// Every stored value carries CRC-32Cs, which random bytes essentially never pass. So the first
// input byte is a mode: bit 0 asks the harness to compute valid checksums over the fuzzed bytes
// (as a damaged-but-resealed or hostile database would have them), so that the decoders behind
// the checksums are exercised; bit 1 takes the key from the input instead of a fixed valid one.

/// One decoder for the whole process: a zstd context costs more than a decode. The harnesses
/// run on one thread.
nonisolated(unsafe) private let blockDecoder = BlockDecoder(codec: ZstdCodec())

extension FuzzTargets {
    /// Splits `mode ‖ [key length ‖ key] ‖ value`: the key is `fixed` unless mode bit 1 is set.
    static func keyAndValue(_ data: UnsafeRawBufferPointer, fixed: [UInt8], maxKey: Int) -> (mode: UInt8, key: [UInt8], value: [UInt8])? {
        guard let mode = data.first else { return nil }
        let rest = data.after(1)
        guard mode & 2 != 0 else { return (mode, fixed, Array(rest)) }
        let n = Int(rest.first ?? 0) % (maxKey + 1)
        let key = Array(rest.after(1).prefix(n))
        return (mode, key, Array(rest.after(1 + n)))
    }

    /// `BlockDecoder.decode(key:_:)`: a posting block under the key of term 2054, first
    /// document 1000 (or a key from the input, 0…20 bytes). Mode bit 0 rewrites both checksums
    /// of the header (over key ‖ header, and over the stored payload). An accepted block has
    /// 1…256 strictly increasing documents from the key's first document to first + span, and
    /// non-zero impact codes.
    package static func postingBlock(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        guard let split = keyAndValue(data, fixed: Keys.postingBlock(1, 2, 2054, 1000), maxKey: 20) else { return false }
        let key = split.key
        var block = split.value
        if split.mode & 1 != 0, block.count >= PostingBlock.headerSize {
            let payloadCRC = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[PostingBlock.headerSize...])) }
            put(payloadCRC, at: 12, in: &block)
            let headerCRC = key.withUnsafeBytes { k in block.withUnsafeBytes { Records.checksum(key: k, UnsafeRawBufferPointer(rebasing: $0[0..<16])) } }
            put(headerCRC, at: 16, in: &block)
        }
        let decoded = try refusing { () throws -> (PostingBlock.Header, [UInt32], [UInt8]) in
            try key.withUnsafeBytes { k in
                try block.withUnsafeBytes { b in
                    let (header, n) = try blockDecoder.decode(key: k, b)
                    guard n >= 1, n <= PostingBlock.maxCount else { return (header, [], []) }
                    return (header, Array(UnsafeBufferPointer(start: blockDecoder.documents, count: n)),
                            Array(UnsafeBufferPointer(start: blockDecoder.codes, count: n)))
                }
            }
        }
        guard let decoded else { return false }
        let (header, documents, codes) = decoded
        let first = key.withUnsafeBytes { Keys.part($0, 3) }
        try require(documents.count == header.count && (1...PostingBlock.maxCount).contains(header.count), "decoded \(documents.count) postings, header says \(header.count)")
        try require(header.blockMax.isFinite && header.blockMax > 0 && header.blockMax <= SparseVector.maxWeight, "accepted block-max \(header.blockMax)")
        try require(header.flags & ~PostingBlock.flagZstd == 0, "accepted flags \(header.flags)")
        try require(documents.first == first, "first document \(documents[0]) is not the key's \(String(describing: first))")
        try require(zip(documents, documents.dropFirst()).allSatisfy { $0 < $1 }, "documents not strictly increasing")
        try require(documents.last! == documents[0] &+ header.span, "last document \(documents.last!) is not first + span \(header.span)")
        try require(!codes.contains(0), "zero impact code accepted")
        return true
    }

    /// The record decoders of format-spec.md §5–§8, the decoder chosen by mode bits 2…:
    /// 0 `parseDocument` (with and without the payload), 1 `parseExternalId`, 2 `parseTerm`,
    /// 3 and 4 `checkedForwardRow` + `dot` + `parseForwardRow` (30,522 and 2³² dimensions),
    /// 5 `ForwardRows.group` (§8a) and each row it holds as in 3.
    /// Mode bit 0 seals the fuzzed value: `Records.sealed(key:body:)` for documents and rows,
    /// the CRC slot rewritten for id-map entries, term statistics and row groups.
    package static func records(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool {
        guard let mode = data.first else { return false }
        let which = Int(mode >> 2) % 6
        let fixed: [UInt8] =
            switch which {
            case 0: Keys.document(1, 42)
            case 1: Keys.externalId(1, "doc-42")
            case 2: Keys.term(1, 2, 2054)
            default: Keys.forwardRow(1, 2, 42)
            }
        guard let split = keyAndValue(data, fixed: fixed, maxKey: 32) else { return false }
        let key = split.key
        var value = split.value
        let seal = mode & 1 != 0
        switch which {
        case 0:
            if seal { value = Records.sealed(key: key, body: value) }
            let withPayload = try refusing { try with(key, value) { try Records.parseDocument(key: $0, $1) } }
            let withoutPayload = try refusing { try with(key, value) { try Records.parseDocument(key: $0, $1, includePayload: false) } }
            try require((withPayload == nil) == (withoutPayload == nil), "includePayload changes whether a document record is accepted")
            guard let document = withPayload else { return false }
            try require(withoutPayload?.id == document.id && withoutPayload?.payload == nil, "includePayload: false changes the id or keeps a payload")
            let flags = value[4]
            try require((document.payload != nil) == (flags & 1 != 0), "payload flag \(flags) but payload \(document.payload == nil ? "absent" : "present")")
            try require(document.id.utf8.count == Int(value[5]) | Int(value[6]) << 8, "id length disagrees with the record")
            return true
        case 1:
            if seal, value.count >= 8 { put(Records.checksum(key: key, value[0..<4]), at: 4, in: &value) }
            guard let document = try refusing({ try with(key, value) { try Records.parseExternalId(key: $0, $1) } }) else { return false }
            try require(value.count == 8 && document == UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24,
                        "id map entry decoded to \(document)")
            return true
        case 2:
            if seal, value.count >= 16 { put(Records.checksum(key: key, value[0..<12]), at: 12, in: &value) }
            guard let s = try refusing({ try with(key, value) { try Records.parseTerm(key: $0, $1) } }) else { return false }
            try require(s.maxWeight.isFinite && s.maxWeight > 0 && s.maxWeight <= SparseVector.maxWeight && s.blocks > 0 && s.postings >= s.blocks,
                        "term statistics \(s) accepted")
            return true
        case 3, 4:
            if seal { value = Records.sealed(key: key, body: value) }
            return try forwardRow(key: key, value: value, dimensions: which == 3 ? 30_522 : .max)
        default:
            return try rowGroup(key: key, value: value, seal: seal)
        }
    }

    /// `ForwardRows.group` on any value (with `seal`, its checksum slot rewritten over the
    /// table its slot count names, when that fits): an accepted group's slots must tile its rows
    /// area, start and end with a row, and each row be checked like a single row under its own
    /// document's key.
    static func rowGroup(key: [UInt8], value: [UInt8], seal: Bool) throws(FuzzFinding) -> Bool {
        var value = value
        if seal, value.count >= 12 {
            let slots = Int(value[4]) | Int(value[5]) << 8 | Int(value[6]) << 16 | Int(value[7]) << 24
            if slots <= (value.count - 8) / 4 { put(Records.checksum(key: key, value[4..<(8 + 4 * slots)]), at: 0, in: &value) }
        }
        guard key.count == 12 else { return false }
        let parsed = try refusing {
            try with(key, value) { k, v -> (slots: Int, rows: [(UInt32, [UInt8])], firstAndLast: Bool) in
                let g = try ForwardRows.group(key: k, v)
                let rows = (0..<g.slots).compactMap { i in g.row(i).map { (g.first &+ UInt32(i), [UInt8]($0)) } }
                return (g.slots, rows, g.row(0) != nil && g.row(g.slots - 1) != nil)
            }
        }
        guard let parsed else { return false }
        let covered = parsed.rows.reduce(0) { $0 + $1.1.count }
        try require(covered + 8 + 4 * parsed.slots == value.count, "an accepted group's rows do not tile its value")
        try require(parsed.firstAndLast, "an accepted group starts or ends with an empty slot")
        let c = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
        let f = UInt32(key[4]) << 24 | UInt32(key[5]) << 16 | UInt32(key[6]) << 8 | UInt32(key[7])
        for (doc, row) in parsed.rows {
            _ = try forwardRow(key: Keys.forwardRow(c, f, doc), value: row, dimensions: 30_522)
        }
        return true
    }

    /// A query that touches the first dimensions, SPLADE's range and the top of the 32-bit range.
    static let query: (dimensions: [UInt32], weights: [Float]) = (
        [0, 1, 2, 3, 7, 100, 1000, 2054, 30_521, 65_535, 1 << 20, .max - 1, .max],
        [1, 0.5, 2, 0.25, 3, 1.5, 0.125, 4, 0.75, 1, 2, 0.5, 8]
    )

    /// `checkedForwardRow` and `dot` on any row it accepts (no trap on garbage gaps); then
    /// `parseForwardRow`, whose accepted vector must be sorted and in range, and whose merge with
    /// the query in `dot` must equal the dot product computed from the decoded vector.
    static func forwardRow(key: [UInt8], value: [UInt8], dimensions: UInt32) throws(FuzzFinding) -> Bool {
        let query = Self.query
        let merged = try refusing {
            try with(key, value) { k, v in
                let row = try Records.checkedForwardRow(key: k, v)
                return try query.dimensions.withUnsafeBufferPointer { qd in
                    try query.weights.withUnsafeBufferPointer { qw in try Records.dot(queryDimensions: qd, queryWeights: qw, row: row) }
                }
            }
        }
        guard let vector = try refusing({ try with(key, value) { try Records.parseForwardRow(key: $0, $1, dimensions: dimensions) } }) else {
            return merged != nil
        }
        try require(merged != nil, "parseForwardRow accepts a row that dot refuses")
        try require(vector.dimensions.count == vector.weights.count, "vector arrays differ in length")
        for i in vector.dimensions.indices {
            try require(vector.dimensions[i] < dimensions, "dimension \(vector.dimensions[i]) out of range \(dimensions)")
            try require(i == 0 || vector.dimensions[i - 1] < vector.dimensions[i], "dimensions not increasing at \(i)")
        }
        // Stored weights are not range-checked on read (only checksummed), so compare bit patterns
        // and treat NaN as equal to NaN.
        let expected = SparseVectorDot.exact(vector, query.dimensions, query.weights)
        try require(same(merged!, expected), "dot \(merged!) but the decoded vector gives \(expected)")
        let selfDot = try refusing {
            try with(key, value) { k, v in
                let row = try Records.checkedForwardRow(key: k, v)
                return try vector.dimensions.withUnsafeBufferPointer { qd in
                    try vector.weights.withUnsafeBufferPointer { qw in try Records.dot(queryDimensions: qd, queryWeights: qw, row: row) }
                }
            }
        }
        let selfExpected = SparseVectorDot.exact(vector, vector.dimensions, vector.weights)
        try require(selfDot.map { same($0, selfExpected) } == true, "self dot \(String(describing: selfDot)) but expected \(selfExpected)")
        return true
    }

    static func same(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    static func with<R>(_ key: [UInt8], _ value: [UInt8], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R) throws -> R {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try body(k, v) } }
    }

    static func put(_ crc: UInt32, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(offset..<(offset + 4), with: $0) }
    }
}

extension Records {
    /// CRC-32C of `key ‖ bytes`.
    static func checksum(key: [UInt8], _ bytes: ArraySlice<UInt8>) -> UInt32 {
        Array(bytes).withUnsafeBytes { checksum(key: key, $0) }
    }
}

/// The reference for `Records.dot`: a merge over the decoded vector, in increasing dimension
/// order, in double precision — the order `dot` promises.
enum SparseVectorDot {
    static func exact(_ v: SparseVector, _ qd: [UInt32], _ qw: [Float]) -> Double {
        var sum = 0.0
        var j = 0
        for i in v.dimensions.indices {
            while j < qd.count && qd[j] < v.dimensions[i] { j += 1 }
            if j < qd.count && qd[j] == v.dimensions[i] {
                sum += Double(v.weights[i]) * Double(qw[j])
                j += 1
            }
        }
        return sum
    }
}
