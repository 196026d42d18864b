import Foundation
import SparseDB
import SparseDBTestSupport
import SparseDBTools
import Testing

/// The big-ann-benchmarks dense `.fbin` reader: good files (with and without an ids file),
/// truncated files, hostile headers, wrong dimensions and bad values — every bad file a typed
/// error naming it, never a trap or an allocation the header alone would suggest.
@Suite struct DenseBinTests {
    /// An `.fbin` file from raw header values and values (no checks: for hostile files).
    static func rawFile(rows: UInt32, dims: UInt32, values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        func put<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        put(rows.littleEndian)
        put(dims.littleEndian)
        for v in values { put(v.bitPattern.littleEndian) }
        return out
    }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    static func readAll(_ path: String, ids: BigANNReader.Ids = .companionIfPresent, dimensions: Int? = nil) throws
        -> [(id: String, values: [Float])]
    {
        let reader = try DenseBinReader(path: path, ids: ids, dimensions: dimensions)
        var rows: [(id: String, values: [Float])] = []
        while let (row, id, values) = try reader.next() {
            #expect(row == rows.count)
            rows.append((id, values))
        }
        return rows
    }

    static func randomRows(seed: UInt64, rows: Int, dims: Int) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<rows).map { _ in (0..<dims).map { _ in Float.random(in: -2...2, using: &rng) } }
    }

    @Test func goodFile() throws {
        let rows = Self.randomRows(seed: 3, rows: 37, dims: 5)
        try withTemporaryDirectory { dir in
            let path = dir + "/v.fbin"
            try Self.write(Self.rawFile(rows: 37, dims: 5, values: rows.flatMap { $0 }), to: path)
            // Ids are row numbers without an ids file.
            let plain = try Self.readAll(path)
            #expect(plain.map(\.id) == (0..<37).map(String.init))
            #expect(plain.map(\.values) == rows)
            #expect(try DenseBinReader(path: path).rows == 37)
            #expect(try DenseBinReader(path: path).dimensions == 5)
            // With FILE.fbin.ids.
            let ids = (0..<37).map { "doc-\($0 * 7)" }
            try (ids.joined(separator: "\n") + "\n").write(toFile: path + ".ids", atomically: true, encoding: .utf8)
            let named = try Self.readAll(path)
            #expect(named.map(\.id) == ids)
            #expect(named.map(\.values) == rows)
            // The field's dimensions, when given, must match.
            #expect(try Self.readAll(path, dimensions: 5).count == 37)
            // The ids file must match the rows.
            try (ids.dropLast().joined(separator: "\n") + "\n").write(toFile: path + ".ids", atomically: true, encoding: .utf8)
            #expect(throws: SparseDBError.self) { try Self.readAll(path) }
            try ((ids + ["extra"]).joined(separator: "\n") + "\n").write(toFile: path + ".ids", atomically: true, encoding: .utf8)
            #expect(throws: SparseDBError.self) { try Self.readAll(path) }
            // Zero rows is a valid (empty) file; the query reader returns nothing.
            try Self.write(Self.rawFile(rows: 0, dims: 8, values: []), to: dir + "/e.fbin")
            #expect(try Self.readAll(dir + "/e.fbin").isEmpty)
            // The shared query reader picks the format by name.
            #expect(try readDenseQueries(InputFile(path: dir + "/e.fbin")).isEmpty)
            unlink(path + ".ids")
            let queries = try readDenseQueries(InputFile(path: path), limit: 4)
            #expect(queries.map(\.id) == ["0", "1", "2", "3"])
            #expect(queries.map(\.values) == Array(rows.prefix(4)))
        }
    }

    /// Every truncation (and one extra byte) is refused when the file is opened.
    @Test func truncatedFile() throws {
        let full = Self.rawFile(rows: 9, dims: 3, values: Self.randomRows(seed: 5, rows: 9, dims: 3).flatMap { $0 })
        try withTemporaryDirectory { dir in
            let path = dir + "/t.fbin"
            for length in 0..<full.count {
                try Self.write(Array(full[..<length]), to: path)
                do {
                    _ = try Self.readAll(path, ids: .rowNumbers)
                    Issue.record("a truncation to \(length) of \(full.count) bytes was accepted")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput, "\(e)")
                    #expect(e.message.contains(path), "\(e.message)")
                }
            }
            try Self.write(full + [0], to: path)
            #expect(throws: SparseDBError.self) { try Self.readAll(path, ids: .rowNumbers) }
        }
    }

    /// Headers that cannot describe the file behind them, including sizes that overflow a
    /// 32-bit product and d = 0.
    @Test(arguments: [
        (UInt32.max, UInt32.max), (UInt32.max, 1), (1, UInt32.max), (1 << 30, 1 << 30), (3, 0), (0, 0), (1, 3), (0, 2), (3, 1),
    ] as [(UInt32, UInt32)])
    func badHeader(rows: UInt32, dims: UInt32) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/h.fbin"
            // The body of a 1 × 2 file behind the header.
            try Self.write(Self.rawFile(rows: rows, dims: dims, values: [1, 2]), to: path)
            do {
                _ = try Self.readAll(path)
                Issue.record("header (\(rows), \(dims)) was accepted")
            } catch let e as SparseDBError {
                #expect(e.code == .invalidInput, "\(e)")
                #expect(e.message.contains(path), "\(e.message)")
            }
        }
    }

    /// A file whose rows have the wrong length for the field; and values SparseDB refuses.
    @Test func wrongDimensionsAndValues() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/w.fbin"
            try Self.write(Self.rawFile(rows: 2, dims: 4, values: [Float](repeating: 0.5, count: 8)), to: path)
            for wrong in [3, 5, 1024] {
                do {
                    _ = try Self.readAll(path, dimensions: wrong)
                    Issue.record("rows of 4 values accepted for \(wrong) dimensions")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput)
                    #expect(e.message.contains(path) && e.message.contains("\(wrong)"), "\(e.message)")
                }
            }
            for bad: Float in [.nan, .infinity, -.infinity, 2e9, -2e9] {
                try Self.write(Self.rawFile(rows: 2, dims: 2, values: [1, 2, 3, bad]), to: path)
                do {
                    _ = try Self.readAll(path)
                    Issue.record("value \(bad) accepted")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput)
                    #expect(e.message.contains(path) && e.message.contains("row 1"), "\(e.message)")
                }
            }
            // Negative values are fine for dense rows.
            try Self.write(Self.rawFile(rows: 1, dims: 2, values: [-1, 1e9]), to: path)
            #expect(try Self.readAll(path)[0].values == [-1, 1e9])
            // Not a regular file; missing; a sparse reader refuses an .fbin name.
            #expect(throws: SparseDBError.self) { try DenseBinReader(path: dir) }
            #expect(throws: SparseDBError.self) { try DenseBinReader(path: dir + "/missing.fbin") }
            #expect(throws: SparseDBError.self) { try VectorFileReader(InputFile(path: path), dimensions: 30_522) }
        }
    }

    /// Random byte damage: read fine or a typed error, never a trap.
    @Test func damagedFilesNeverCrash() throws {
        let full = Self.rawFile(rows: 20, dims: 6, values: Self.randomRows(seed: 9, rows: 20, dims: 6).flatMap { $0 })
        var rng = SplitMix64(seed: 22)
        try withTemporaryDirectory { dir in
            let path = dir + "/m.fbin"
            for round in 0..<300 {
                var copy = full
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let limit = round % 2 == 0 ? 8 : copy.count
                    copy[Int.random(in: 0..<limit, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                try Self.write(copy, to: path)
                do { _ = try Self.readAll(path, ids: .rowNumbers) } catch is SparseDBError {}
            }
        }
    }
}
