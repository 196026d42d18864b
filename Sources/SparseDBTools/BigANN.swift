import Foundation
import SparseDB

#if canImport(Glibc)
import Glibc
#endif

/// The NeurIPS'23 big-ann-benchmarks sparse track's `.csr` file: little-endian
///
///     int64 rows, int64 cols, int64 nnz,
///     int64 indptr[rows + 1], int32 indices[nnz], float32 data[nnz]
///
/// (row `r` holds `indices[indptr[r] ..< indptr[r + 1]]` with their weights). The format has no
/// room for ids: they come from a companion `FILE.csr.ids` (one a line, row order, as
/// `tools/scale/jsonl_to_csr.py` writes them) or default to the row number (`"0"`, `"1"`, …).
package enum BigANN {
    /// Bytes before `indptr`.
    package static let headerBytes = 24

    /// Whether the command line reads `path` as a `.csr` file (by its name).
    package static func isBigANNPath(_ path: String) -> Bool { path.lowercased().hasSuffix(".csr") }

    /// Where the ids of `path` live: `path + ".ids"`.
    package static func idsPath(for path: String) -> String { path + ".ids" }

    /// The three header fields and the file size they imply.
    package struct Header: Equatable, Sendable {
        package var rows: Int
        package var cols: Int
        package var nnz: Int

        package init(rows: Int, cols: Int, nnz: Int) {
            self.rows = rows
            self.cols = cols
            self.nnz = nnz
        }

        /// 24 + 8 (rows + 1) + 4 nnz + 4 nnz, or nil when that overflows (a hostile header).
        package var fileSize: Int? {
            guard rows >= 0, nnz >= 0 else { return nil }
            let (r1, o1) = rows.addingReportingOverflow(1)
            let (ip, o2) = r1.multipliedReportingOverflow(by: 8)
            let (nz, o3) = nnz.multipliedReportingOverflow(by: 8)
            let (a, o4) = ip.addingReportingOverflow(nz)
            let (total, o5) = a.addingReportingOverflow(BigANN.headerBytes)
            return o1 || o2 || o3 || o4 || o5 ? nil : total
        }

        /// Byte offsets of the three arrays.
        var indptrOffset: Int { BigANN.headerBytes }
        var indicesOffset: Int { BigANN.headerBytes + 8 * (rows + 1) }
        var dataOffset: Int { indicesOffset + 4 * nnz }
    }

    /// The largest `cols` accepted: SparseDB's dimensions are 32-bit.
    package static let maxColumns = 1 << 32
}

/// Sequential little-endian reads of one region of a file through `pread`, with a bounded
/// buffer: three of these walk `indptr`, `indices` and `data` side by side, so a `.csr` file is
/// read row by row and never held in memory. A short read (the file shrank after it was checked)
/// is a typed error.
final class FileRegionReader {
    private let fd: Int32
    private let path: String
    private var offset: Int
    private let end: Int
    private var buffer: UnsafeMutableRawPointer
    private let capacity: Int
    private var available = 0
    private var position = 0

    init(fd: Int32, path: String, offset: Int, length: Int, bufferBytes: Int = 1 << 18) {
        self.fd = fd
        self.path = path
        self.offset = offset
        end = offset + length
        capacity = bufferBytes
        buffer = .allocate(byteCount: bufferBytes, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Moves `count` bytes of the region to `out` (which must hold `count` bytes).
    func read(into out: UnsafeMutableRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            if position == available { try refill(wanted: count - done) }
            let n = min(count - done, available - position)
            (out + done).copyMemory(from: buffer + position, byteCount: n)
            position += n
            done += n
        }
    }

    private func refill(wanted: Int) throws {
        let left = end - offset
        guard left > 0 else { throw SparseDBError(.corrupt, "\(path): read past the end of a region (internal)") }
        let want = min(capacity, left)
        var got = 0
        while got < want {
            let n = pread(fd, buffer + got, want - got, off_t(offset + got))
            if n < 0 {
                if errno == EINTR { continue }
                throw SparseDBError(.io, "\(path): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw SparseDBError(.invalidInput, "\(path): the file ended early (it was truncated while being read)") }
            got += n
        }
        offset += want
        available = want
        position = 0
    }

    func readInt64() throws -> Int64 {
        var v: Int64 = 0
        try withUnsafeMutableBytes(of: &v) { try read(into: $0.baseAddress!, count: 8) }
        return Int64(littleEndian: v)
    }
}

/// Ids one a line from a companion file, streamed; every line is checked like a JSONL `_id`
/// (1…500 bytes of UTF-8, no control characters). A line longer than 64 KiB is refused without
/// reading the rest of it into memory.
final class IdLineReader {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private(set) var line = 0
    static let maxLineBytes = 64 << 10

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    private func fill() throws -> Bool {
        if start > 0 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SparseDBError(.io, "\(path): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    /// The next line (without its newline and a trailing CR), or nil at the end of the file.
    func next() throws -> String? {
        var scanned = start
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                var bytes = buffer[start..<nl]
                if bytes.last == 0x0D { bytes = bytes.dropLast() }
                start = nl + 1
                line += 1
                return try text(bytes)
            }
            scanned = buffer.count
            if buffer.count - start > Self.maxLineBytes {
                throw SparseDBError(.invalidInput, "\(path):\(line + 1): line is longer than \(Self.maxLineBytes >> 10) KiB")
            }
            if eof {
                guard start < buffer.count else { return nil }
                let bytes = buffer[start...]
                start = buffer.count
                line += 1
                return try text(bytes)
            }
            let before = start
            if try !fill() { eof = true }
            scanned -= before
        }
    }

    private func text(_ bytes: ArraySlice<UInt8>) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw SparseDBError(.invalidInput, "\(path):\(line): id is not valid UTF-8")
        }
        try LineFormats.checkId(s, file: path, line: line)
        return s
    }
}

/// Reads a big-ann-benchmarks `.csr` file row by row (see ``BigANN``).
///
/// Opening checks the header against the file's size (the three arrays must fill it exactly;
/// sizes that overflow are refused), and that `indptr` starts at 0 and ends at `nnz`. Each row is
/// checked as it is read: its `indptr` entry lies between the previous one and `nnz`, it holds
/// at most `cols` entries, every index lies in `0 ..< cols` (and below `dimensions`, when
/// given), indices do not repeat, and weights are what ``SparseVector`` accepts (finite, ≥ 0,
/// ≤ 10⁹). A file that breaks any of this is a ``SparseDBError`` naming the file and row —
/// never a trap, and never an allocation larger than the file's own data.
package final class BigANNReader {
    /// Where the ids come from.
    package enum Ids: Sendable {
        /// `FILE.ids` when it exists, else the row numbers.
        case companionIfPresent
        /// This file, one id a line (it must exist).
        case file(String)
        /// The row numbers, `"0"`, `"1"`, …
        case rowNumbers
    }

    package let path: String
    package let header: BigANN.Header
    /// The ids file being read, or nil when ids are row numbers.
    package let idsPath: String?
    private let fd: Int32
    private let dimensions: UInt32?
    private let indptr: FileRegionReader
    private let indices: FileRegionReader
    private let data: FileRegionReader
    private let ids: IdLineReader?
    private var row = 0
    private var rowStart: Int64 = 0
    private var dimensionBuffer: [Int32] = []
    private var weightBuffer: [Float] = []

    /// Opens `path` and checks its header (see the type's documentation).
    ///
    /// - Parameter dimensions: when given, every index must also be below it (the collection's
    ///   dimensions).
    package init(path: String, ids: Ids = .companionIfPresent, dimensions: UInt32? = nil) throws {
        self.path = path
        self.dimensions = dimensions
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SparseDBError(errno == ENOENT ? .notFound : .io, "\(path): \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer { if !ok { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SparseDBError(.invalidInput, "\(path): a .csr file must be a regular file (it is read at three places at once)")
        }
        let size = Int(st.st_size)
        guard size >= BigANN.headerBytes else {
            throw SparseDBError(
                .invalidInput, "\(path): \(size) bytes, shorter than the \(BigANN.headerBytes)-byte .csr header (int64 rows, cols, nnz)")
        }
        var raw = [Int64](repeating: 0, count: 3)
        let got = raw.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 24, 0) }
        guard got == 24 else { throw SparseDBError(.io, "\(path): cannot read the header") }
        let (rows, cols, nnz) = (Int64(littleEndian: raw[0]), Int64(littleEndian: raw[1]), Int64(littleEndian: raw[2]))
        func refuse(_ what: String) -> SparseDBError {
            SparseDBError(.invalidInput, "\(path): not a valid .csr file: \(what) (header: rows \(rows), cols \(cols), nnz \(nnz); file \(size) bytes)")
        }
        guard rows >= 0, nnz >= 0, cols >= 0 else { throw refuse("a negative header field") }
        guard cols <= BigANN.maxColumns else { throw refuse("cols is larger than 2^32") }
        let h = BigANN.Header(rows: Int(rows), cols: Int(cols), nnz: Int(nnz))
        guard let expected = h.fileSize else { throw refuse("the sizes overflow") }
        if expected > size { throw refuse("the file is truncated: the header needs \(expected) bytes") }
        if expected < size { throw refuse("\(size - expected) bytes after the data the header describes") }
        header = h
        // indptr[0] and indptr[rows]: read up front, so that a file whose rows do not add up to
        // nnz is refused before the first row is used.
        var ends = [Int64](repeating: 0, count: 1)
        _ = ends.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, off_t(h.indptrOffset)) }
        guard Int64(littleEndian: ends[0]) == 0 else { throw refuse("indptr[0] is \(Int64(littleEndian: ends[0])), not 0") }
        _ = ends.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, off_t(h.indptrOffset + 8 * h.rows)) }
        guard Int64(littleEndian: ends[0]) == nnz else { throw refuse("indptr[rows] is \(Int64(littleEndian: ends[0])), not nnz") }
        indptr = FileRegionReader(fd: fd, path: path, offset: h.indptrOffset + 8, length: 8 * h.rows)
        indices = FileRegionReader(fd: fd, path: path, offset: h.indicesOffset, length: 4 * h.nnz)
        data = FileRegionReader(fd: fd, path: path, offset: h.dataOffset, length: 4 * h.nnz)
        let idsPath = ids.file(for: path)
        self.idsPath = idsPath
        self.ids = try idsPath.map { try IdLineReader(path: $0) }
        self.fd = fd
        ok = true
    }

    deinit { close(fd) }

    /// Rows read so far.
    package var rowsRead: Int { row }

    /// The next row as (row number from 0, id, vector), or nil after the last row (when the ids
    /// file, if any, must be used up too).
    package func next() throws -> (row: Int, id: String, vector: SparseVector)? {
        guard let id = try IdLineReader.id(from: ids, row: row, rows: header.rows, of: path) else { return nil }
        let r = row
        func refuse(_ what: String) -> SparseDBError {
            SparseDBError(.invalidInput, "\(path): row \(r) (id '\(id)'): \(what)")
        }
        let end = try indptr.readInt64()
        guard end >= rowStart, end <= Int64(header.nnz) else {
            throw refuse("indptr[\(r + 1)] = \(end) is outside \(rowStart)...\(header.nnz) (rows must be in order)")
        }
        let count = Int(end - rowStart)
        guard count <= header.cols else { throw refuse("\(count) entries but only \(header.cols) columns") }
        rowStart = end
        row += 1
        if dimensionBuffer.count < count {
            dimensionBuffer = [Int32](repeating: 0, count: count)
            weightBuffer = [Float](repeating: 0, count: count)
        }
        try dimensionBuffer.withUnsafeMutableBytes { try indices.read(into: $0.baseAddress!, count: 4 * count) }
        try weightBuffer.withUnsafeMutableBytes { try data.read(into: $0.baseAddress!, count: 4 * count) }
        var dims = [UInt32]()
        var weights = [Float]()
        dims.reserveCapacity(count)
        weights.reserveCapacity(count)
        var sorted = true
        for i in 0..<count {
            let d = Int64(Int32(littleEndian: dimensionBuffer[i]))
            guard d >= 0, d < Int64(header.cols) else { throw refuse("index \(d) is outside 0..<\(header.cols) (cols)") }
            if let dimensions, d >= Int64(dimensions) {
                throw refuse("dimension \(d) is out of range (0..<\(dimensions))")
            }
            if let last = dims.last, UInt32(d) <= last { sorted = false }
            dims.append(UInt32(d))
            weights.append(Float(bitPattern: UInt32(littleEndian: weightBuffer[i].bitPattern)))
        }
        do {
            let v = sorted ? try SparseVector(dimensions: dims, weights: weights) : try SparseVector(zip(dims, weights))
            return (r, id, v)
        } catch let e as SparseDBError {
            throw e.prefixed("\(path): row \(r) (id '\(id)')")
        }
    }
}

/// big-ann-benchmarks' dense `.fbin` file: little-endian `u32 n, u32 d`, then `n·d` float32
/// values, row after row. Like `.csr`, ids come from `FILE.fbin.ids` (one a line) or default
/// to the row numbers.
package enum DenseBin {
    /// Bytes before the first value.
    package static let headerBytes = 8

    /// Whether the command line reads `path` as an `.fbin` file (by its name).
    package static func isDenseBinPath(_ path: String) -> Bool { path.lowercased().hasSuffix(".fbin") }

    /// 8 + 4·rows·dimensions, or nil when that overflows.
    package static func fileSize(rows: Int, dimensions: Int) -> Int? {
        guard rows >= 0, dimensions >= 0 else { return nil }
        let (values, o1) = rows.multipliedReportingOverflow(by: dimensions)
        let (bytes, o2) = values.multipliedReportingOverflow(by: 4)
        let (total, o3) = bytes.addingReportingOverflow(headerBytes)
        return o1 || o2 || o3 ? nil : total
    }
}

/// Reads a big-ann-benchmarks `.fbin` file row by row (see ``DenseBin``).
///
/// Opening checks the header against the file's size (the rows must fill it exactly; sizes that
/// overflow are refused), that `d` is at least 1, and — when `dimensions` is given — that `d`
/// equals it. Every value must be finite and within ±10⁹ (``SparseVector/maxWeight``). A file
/// that breaks any of this is a ``SparseDBError`` naming the file (and row) — never a trap.
package final class DenseBinReader {
    package let path: String
    /// Rows (`n`) and values per row (`d`) from the header.
    package let rows: Int
    package let dimensions: Int
    /// The ids file being read, or nil when ids are row numbers.
    package let idsPath: String?
    private let fd: Int32
    private let values: FileRegionReader
    private let ids: IdLineReader?
    private var row = 0

    /// Opens `path` and checks its header (see the type's documentation).
    package init(path: String, ids: BigANNReader.Ids = .companionIfPresent, dimensions: Int? = nil) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SparseDBError(errno == ENOENT ? .notFound : .io, "\(path): \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer { if !ok { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SparseDBError(.invalidInput, "\(path): an .fbin file must be a regular file") }
        let size = Int(st.st_size)
        guard size >= DenseBin.headerBytes else {
            throw SparseDBError(.invalidInput, "\(path): \(size) bytes, shorter than the 8-byte .fbin header (u32 rows, u32 dimensions)")
        }
        var raw = [UInt32](repeating: 0, count: 2)
        let got = raw.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, 0) }
        guard got == 8 else { throw SparseDBError(.io, "\(path): cannot read the header") }
        let (n, d) = (Int(UInt32(littleEndian: raw[0])), Int(UInt32(littleEndian: raw[1])))
        func refuse(_ what: String) -> SparseDBError {
            SparseDBError(.invalidInput, "\(path): not a valid .fbin file: \(what) (header: rows \(n), dimensions \(d); file \(size) bytes)")
        }
        guard d >= 1 else { throw refuse("dimensions is 0") }
        guard let expected = DenseBin.fileSize(rows: n, dimensions: d) else { throw refuse("the sizes overflow") }
        if expected > size { throw refuse("the file is truncated: the header needs \(expected) bytes") }
        if expected < size { throw refuse("\(size - expected) bytes after the data the header describes") }
        if let dimensions, d != dimensions {
            throw SparseDBError(.invalidInput, "\(path): rows of \(d) values; the field takes \(dimensions)")
        }
        rows = n
        self.dimensions = d
        values = FileRegionReader(fd: fd, path: path, offset: DenseBin.headerBytes, length: expected - DenseBin.headerBytes, bufferBytes: 1 << 20)
        let idsPath = ids.file(for: path)
        self.idsPath = idsPath
        self.ids = try idsPath.map { try IdLineReader(path: $0) }
        self.fd = fd
        ok = true
    }

    deinit { close(fd) }

    /// The next row as (row number from 0, id, values), or nil after the last row (when the ids
    /// file, if any, must be used up too).
    package func next() throws -> (row: Int, id: String, values: [Float])? {
        guard let id = try IdLineReader.id(from: ids, row: row, rows: rows, of: path) else { return nil }
        let r = row
        var out = [Float](repeating: 0, count: dimensions)
        try out.withUnsafeMutableBytes { try values.read(into: $0.baseAddress!, count: 4 * dimensions) }
        for i in 0..<dimensions {
            let x = Float(bitPattern: UInt32(littleEndian: out[i].bitPattern))
            guard x.isFinite, abs(x) <= SparseVector.maxWeight else {
                throw SparseDBError(.invalidInput, "\(path): row \(r) (id '\(id)'): value \(i) is \(x) (values must be finite, within ±\(SparseVector.maxWeight))")
            }
            out[i] = x
        }
        row += 1
        return (r, id, out)
    }
}

/// Dense query vectors from an `.fbin` file (by its name) or JSONL lines `{"_id", "dense": [...]}`
/// (`-` = standard input), at most `limit` of them; the searched field checks their length.
package func readDenseQueries(_ input: InputFile, limit: Int? = nil) throws -> [(id: String, values: [Float])] {
    var out: [(id: String, values: [Float])] = []
    if DenseBin.isDenseBinPath(input.path) {
        let reader = try DenseBinReader(path: input.path)
        while out.count < (limit ?? .max), let (_, id, values) = try reader.next() { out.append((id, values)) }
    } else {
        let reader = try input.lines()
        while out.count < (limit ?? .max), let (line, bytes) = try reader.next() {
            let r = try LineFormats.denseRecord(bytes, file: input.displayName, line: line, dimensions: nil)
            out.append((r.id, r.values))
        }
    }
    return out
}

/// Writes a big-ann-benchmarks `.csr` file (and its `.ids` file) one row at a time, without
/// knowing the number of rows up front: indices and weights go to side files and are copied
/// behind the header and `indptr` by ``finish()``; the files appear only then (written to
/// `.partial` names and renamed). Memory use is bounded by the write buffers.
package final class BigANNWriter {
    package let path: String
    package let columns: Int
    private let writeIds: Bool
    private var indptrFile: BufferedFile
    private var indicesFile: BufferedFile
    private var dataFile: BufferedFile
    private var idsFile: BufferedFile?
    private var rows = 0
    private var nnz: Int64 = 0
    private var finished = false

    /// - Parameters:
    ///   - columns: the header's `cols` (e.g. 30,522); every dimension written must be below it.
    ///   - writeIds: also write `path.ids`, one id a line.
    package init(path: String, columns: Int, writeIds: Bool = true) throws {
        guard columns >= 0, columns <= BigANN.maxColumns else {
            throw SparseDBError(.invalidInput, "a .csr file holds 0 ... 2^32 columns, not \(columns)")
        }
        self.path = path
        self.columns = columns
        self.writeIds = writeIds
        indptrFile = try BufferedFile(path + ".indptr.partial")
        indicesFile = try BufferedFile(path + ".indices.partial")
        dataFile = try BufferedFile(path + ".data.partial")
        idsFile = writeIds ? try BufferedFile(BigANN.idsPath(for: path) + ".partial") : nil
    }

    deinit {
        if !finished {
            for p in [".indptr.partial", ".indices.partial", ".data.partial", ".partial"] { unlink(path + p) }
            unlink(BigANN.idsPath(for: path) + ".partial")
        }
    }

    /// Appends one row.
    package func append(id: String, _ vector: SparseVector) throws {
        precondition(!finished, "BigANNWriter.append after finish")
        if writeIds { try LineFormats.checkId(id, file: path + ".ids", line: rows + 1) }
        if let last = vector.dimensions.last, Int(last) >= columns {
            throw SparseDBError(.invalidInput, "row \(rows) ('\(id)'): dimension \(last) does not fit \(columns) columns")
        }
        if let last = vector.dimensions.last, last > UInt32(Int32.max) {
            throw SparseDBError(.invalidInput, "row \(rows) ('\(id)'): dimension \(last) does not fit the format's int32 indices")
        }
        // Everything checked: now the row is written to all files or the writer is unusable.
        if writeIds { try idsFile!.write(Array((id + "\n").utf8)) }
        try vector.dimensions.withUnsafeBufferPointer { d in
            let le = d.map { Int32(bitPattern: $0).littleEndian }
            try le.withUnsafeBytes { try indicesFile.write($0) }
        }
        try vector.weights.withUnsafeBufferPointer { w in
            let le = w.map { $0.bitPattern.littleEndian }
            try le.withUnsafeBytes { try dataFile.write($0) }
        }
        nnz += Int64(vector.count)
        var end = nnz.littleEndian
        try withUnsafeBytes(of: &end) { try indptrFile.write($0) }
        rows += 1
    }

    /// Writes the file (header, indptr, indices, data) and the ids file; returns the header.
    @discardableResult
    package func finish() throws -> BigANN.Header {
        precondition(!finished, "BigANNWriter.finish twice")
        try indptrFile.close()
        try indicesFile.close()
        try dataFile.close()
        try idsFile?.close()
        let out = try BufferedFile(path + ".partial")
        var head = [Int64(rows), Int64(columns), nnz, 0].map { $0.littleEndian }
        try head.withUnsafeMutableBytes { try out.write(UnsafeRawBufferPointer($0)) }
        for side in [".indptr.partial", ".indices.partial", ".data.partial"] {
            try out.append(contentsOf: path + side)
            unlink(path + side)
        }
        try out.close(sync: true)
        guard rename(path + ".partial", path) == 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
        if writeIds, rename(BigANN.idsPath(for: path) + ".partial", BigANN.idsPath(for: path)) != 0 {
            throw SparseDBError(.io, "\(BigANN.idsPath(for: path)): \(String(cString: strerror(errno)))")
        }
        finished = true
        return BigANN.Header(rows: rows, cols: columns, nnz: Int(nnz))
    }
}

/// A file written through a 1 MiB buffer.
private final class BufferedFile {
    let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []

    init(_ path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SparseDBError(.io, "\(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(1 << 20)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Copies the whole file at `source` to the end of this one.
    func append(contentsOf source: String) throws {
        try flush()
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw SparseDBError(.io, "\(source): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(src) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(src, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SparseDBError(.io, "\(source): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return }
            try chunk.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SparseDBError(errno == ENOSPC || errno == EDQUOT ? .diskFull : .io, "\(path): write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    func close(sync: Bool = false) throws {
        try flush()
        if sync, fsync(fd) != 0 { throw SparseDBError(.io, "\(path): fsync failed: \(String(cString: strerror(errno)))") }
        guard Glibc.close(fd) == 0 else { throw SparseDBError(.io, "\(path): close failed: \(String(cString: strerror(errno)))") }
        fd = -1
    }
}

/// One vector record of an input file, whatever its format.
package struct VectorRecord: Sendable {
    /// The external id.
    package var id: String
    package var vector: SparseVector
    /// Other JSON fields of a JSONL line (a `.csr` row has none).
    package var payload: [UInt8]?
    /// Where the record is, for messages: `file:line` or `file: row N`.
    package var location: String
    /// The line number (JSONL, from 1) or row number (`.csr`, from 0).
    package var ordinal: Int
}

/// Vector records from either input format the command line accepts, chosen by the file name:
/// a big-ann-benchmarks `.csr` file (ids from `FILE.csr.ids`, else row numbers) or vector JSONL
/// (`{"_id", "vector": {"DIM": weight}}` lines, `-` = standard input). Both are streamed.
package final class VectorFileReader {
    package enum Format: String, Sendable { case jsonl, bigANN = "csr" }

    package let input: InputFile
    package let format: Format
    private let lines: JSONLinesReader?
    private let csr: BigANNReader?
    private let dimensions: UInt32

    /// Opens `input`; every dimension must be below `dimensions`.
    package init(_ input: InputFile, dimensions: UInt32) throws {
        self.input = input
        self.dimensions = dimensions
        if DenseBin.isDenseBinPath(input.path) {
            throw SparseDBError(.invalidInput, "\(input.displayName): an .fbin file holds dense vectors; give --kind dense (or a dense field)")
        }
        if BigANN.isBigANNPath(input.path) {
            format = .bigANN
            csr = try BigANNReader(path: input.path, dimensions: dimensions)
            lines = nil
        } else {
            format = .jsonl
            lines = try input.lines()
            csr = nil
        }
    }

    /// Number of records when the format says it up front (`.csr`), else nil.
    package var count: Int? { csr?.header.rows }

    /// The next record, or nil at the end.
    package func next() throws -> VectorRecord? {
        if let csr {
            guard let (row, id, vector) = try csr.next() else { return nil }
            return VectorRecord(id: id, vector: vector, payload: nil, location: "\(input.displayName): row \(row)", ordinal: row)
        }
        guard let (line, bytes) = try lines!.next() else { return nil }
        let r = try LineFormats.vectorRecord(bytes, file: input.displayName, line: line, dimensions: dimensions)
        return VectorRecord(id: r.id, vector: r.vector, payload: r.payload, location: "\(input.displayName):\(line)", ordinal: line)
    }
}

extension BigANNReader.Ids {
    /// The ids file this choice names for the data file `path`, or nil for row numbers.
    func file(for path: String) -> String? {
        switch self {
        case .rowNumbers: return nil
        case .file(let p): return p
        case .companionIfPresent:
            let companion = BigANN.idsPath(for: path)
            return FileManager.default.fileExists(atPath: companion) ? companion : nil
        }
    }
}

extension IdLineReader {
    /// The id of row `row` of the `rows` rows of `path`: the next line of `ids`, or the row
    /// number without an ids file; nil after the last row, once the ids are used up too.
    static func id(from ids: IdLineReader?, row: Int, rows: Int, of path: String) throws -> String? {
        guard row < rows else {
            if let ids, let extra = try ids.next() {
                throw SparseDBError(.invalidInput, "\(ids.path):\(ids.line): more ids than the \(rows) rows of \(path) (next: '\(extra.prefix(40))')")
            }
            return nil
        }
        guard let ids else { return String(row) }
        guard let next = try ids.next() else {
            throw SparseDBError(.invalidInput, "\(ids.path): \(ids.line) ids for the \(rows) rows of \(path)")
        }
        return next
    }
}
