import Foundation
import SparseDB
import SparseDBTestSupport
import SparseDBTools
import Testing

/// The big-ann-benchmarks sparse `.csr` reader and writer: agreement with
/// tools/scale/jsonl_to_csr.py, round trips, and hostile files (every one a typed error, never a
/// trap or a huge allocation).
@Suite struct BigANNTests {
    static let fixture = fixturesDirectory + "/bigann/vectors"

    /// All rows of a `.csr` file.
    static func readAll(_ path: String, ids: BigANNReader.Ids = .companionIfPresent, dimensions: UInt32? = nil) throws
        -> [(id: String, vector: SparseVector)]
    {
        let reader = try BigANNReader(path: path, ids: ids, dimensions: dimensions)
        var rows: [(id: String, vector: SparseVector)] = []
        while let (row, id, v) = try reader.next() {
            #expect(row == rows.count)
            rows.append((id, v))
        }
        return rows
    }

    /// The records of a vector JSONL file, through the CLI's parser.
    static func readJSONL(_ path: String) throws -> [(id: String, vector: SparseVector)] {
        let reader = try VectorFileReader(InputFile(path: path), dimensions: 30_522)
        #expect(reader.format == .jsonl)
        var rows: [(id: String, vector: SparseVector)] = []
        while let r = try reader.next() { rows.append((r.id, r.vector)) }
        return rows
    }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// A `.csr` file from raw header values and arrays (no checks: for hostile files).
    static func rawFile(rows: Int64, cols: Int64, nnz: Int64, indptr: [Int64], indices: [Int32], data: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        func put<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        for v in [rows, cols, nnz] + indptr { put(v.littleEndian) }
        for v in indices { put(v.littleEndian) }
        for v in data { put(v.bitPattern.littleEndian) }
        return out
    }

    static func randomRows(seed: UInt64, count: Int, dims: UInt32 = 30_522) throws -> [(id: String, vector: SparseVector)] {
        var rng = SplitMix64(seed: seed)
        return try (0..<count).map { r in
            let n = r % 7 == 0 ? 0 : Int.random(in: 1...60, using: &rng)
            var set = Set<UInt32>()
            while set.count < n { set.insert(UInt32.random(in: 0..<dims, using: &rng)) }
            let v = try SparseVector(set.sorted().map { ($0, Float.random(in: 0...4, using: &rng)) })
            return ("r\(r)-\(UInt32.random(in: 0...UInt32.max, using: &rng))", v)
        }
    }

    // MARK: agreement with tools/scale/jsonl_to_csr.py

    /// The committed fixture was written by jsonl_to_csr.py from vectors.jsonl: reading it gives
    /// the JSONL's ids and vectors (float32-exact), and our writer reproduces its bytes.
    @Test func readsAndReproducesTheScriptsOutput() throws {
        let fromCSR = try Self.readAll(Self.fixture + ".csr")
        let fromJSONL = try Self.readJSONL(Self.fixture + ".jsonl")
        #expect(fromCSR.count == 60)
        #expect(fromCSR.map(\.id) == fromJSONL.map(\.id))
        for (a, b) in zip(fromCSR, fromJSONL) { #expect(a.vector == b.vector, "\(a.id)") }
        try withTemporaryDirectory { dir in
            let out = dir + "/copy.csr"
            let writer = try BigANNWriter(path: out, columns: 30_522)
            for (id, v) in fromJSONL { try writer.append(id: id, v) }
            let header = try writer.finish()
            #expect(header == BigANN.Header(rows: 60, cols: 30_522, nnz: fromJSONL.reduce(0) { $0 + $1.vector.count }))
            #expect(try Self.bytes(out) == Self.bytes(Self.fixture + ".csr"))
            #expect(try Self.bytes(out + ".ids") == Self.bytes(Self.fixture + ".csr.ids"))
            #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        }
    }

    /// Live check against the script, when python3 with numpy is installed: the script converts
    /// our random JSONL, we read its `.csr`; the script's `--check` reads ours.
    @Test func agreesWithTheScriptLive() throws {
        let python = "/usr/bin/env"
        guard (try? run(python, ["python3", "-c", "import numpy"]))?.status == 0 else { return }
        let script = repositoryDirectory + "/tools/scale/jsonl_to_csr.py"
        try withTemporaryDirectory { dir in
            let rows = try Self.randomRows(seed: 3, count: 300)
            var jsonl = ""
            for (id, v) in rows {
                let entries = zip(v.dimensions, v.weights).map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
                jsonl += "{\"_id\": \"\(id)\", \"vector\": {\(entries)}}\n"
            }
            try jsonl.write(toFile: dir + "/v.jsonl", atomically: true, encoding: .utf8)
            let converted = try run(python, ["python3", script, dir + "/v.jsonl", dir + "/py.csr"])
            #expect(converted.status == 0, "\(converted.err)")
            let back = try Self.readAll(dir + "/py.csr")
            #expect(back.map(\.id) == rows.map(\.id))
            for (a, b) in zip(back, rows) { #expect(a.vector == b.vector) }
            let writer = try BigANNWriter(path: dir + "/ours.csr", columns: 30_522)
            for (id, v) in rows { try writer.append(id: id, v) }
            try writer.finish()
            #expect(try Self.bytes(dir + "/ours.csr") == Self.bytes(dir + "/py.csr"))
            let checked = try run(python, ["python3", script, "--check", dir + "/v.jsonl", dir + "/ours.csr"])
            #expect(checked.status == 0, "\(checked.err)")
        }
    }

    // MARK: round trips

    @Test func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let rows = try Self.randomRows(seed: 9, count: 2_000)
            let path = dir + "/r.csr"
            let writer = try BigANNWriter(path: path, columns: 30_522)
            for (id, v) in rows { try writer.append(id: id, v) }
            try writer.finish()
            let back = try Self.readAll(path)
            #expect(back.count == rows.count)
            #expect(back.map(\.id) == rows.map(\.id))
            #expect(zip(back, rows).allSatisfy { $0.vector == $1.vector })
            // Without the ids file (or told to ignore it) the ids are the row numbers.
            let numbered = try Self.readAll(path, ids: .rowNumbers)
            #expect(numbered.map(\.id) == (0..<rows.count).map(String.init))
            try FileManager.default.removeItem(atPath: path + ".ids")
            #expect(try Self.readAll(path).map(\.id) == (0..<rows.count).map(String.init))
            // Through the CLI's format switch.
            let reader = try VectorFileReader(InputFile(path: path), dimensions: 30_522)
            #expect(reader.format == .bigANN && reader.count == rows.count)
            var n = 0
            while let r = try reader.next() {
                #expect(r.vector == rows[n].vector && r.location.hasSuffix("row \(n)") && r.payload == nil)
                n += 1
            }
            #expect(n == rows.count)
        }
    }

    @Test func emptyFileOfZeroRows() throws {
        try withTemporaryDirectory { dir in
            let writer = try BigANNWriter(path: dir + "/e.csr", columns: 10)
            #expect(try writer.finish() == BigANN.Header(rows: 0, cols: 10, nnz: 0))
            #expect(try Self.bytes(dir + "/e.csr").count == 32)
            #expect(try Self.readAll(dir + "/e.csr").isEmpty)
        }
    }

    @Test func writerRefusesWhatTheFormatCannotHold() throws {
        try withTemporaryDirectory { dir in
            let writer = try BigANNWriter(path: dir + "/w.csr", columns: 100)
            #expect(throws: SparseDBError.self) { try writer.append(id: "a", try SparseVector([(100, 1)])) }
            #expect(throws: SparseDBError.self) { try writer.append(id: "line\nbreak", try SparseVector([(1, 1)])) }
            #expect(throws: SparseDBError.self) { try writer.append(id: "", try SparseVector([(1, 1)])) }
            try writer.append(id: "ok", try SparseVector([(99, 2)]))
            try writer.finish()
            // The refused rows left nothing behind.
            let back = try Self.readAll(dir + "/w.csr")
            #expect(back.count == 1 && back[0].id == "ok")
            #expect(throws: SparseDBError.self) { try BigANNWriter(path: dir + "/x.csr", columns: -1) }
            #expect(throws: SparseDBError.self) { try BigANNWriter(path: dir + "/x.csr", columns: (1 << 32) + 1) }
        }
        // An abandoned writer leaves no files.
        try withTemporaryDirectory { dir in
            do {
                let writer = try BigANNWriter(path: dir + "/a.csr", columns: 10)
                try writer.append(id: "x", try SparseVector([(1, 1)]))
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        }
    }

    // MARK: truncations

    /// Truncations of the fixture are refused when opened (the header no longer matches the
    /// size), with a typed error; no prefix is silently read as a shorter file. Every length
    /// through the header and indptr, then every 29th.
    @Test func truncationsAreRefused() throws {
        let full = try Self.bytes(Self.fixture + ".csr")
        try withTemporaryDirectory { dir in
            let path = dir + "/t.csr"
            let lengths = Array(0..<(24 + 8 * 61 + 8)) + Array(stride(from: 24 + 8 * 61 + 8, to: full.count, by: 29)) + [full.count - 1]
            for length in lengths {
                try Self.write(Array(full[..<length]), to: path)
                do {
                    _ = try Self.readAll(path, ids: .rowNumbers)
                    Issue.record("a truncation to \(length) of \(full.count) bytes was accepted")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput, "\(e)")
                }
            }
            // One byte too many is refused too.
            try Self.write(full + [0], to: path)
            #expect(throws: SparseDBError.self) { try Self.readAll(path, ids: .rowNumbers) }
        }
    }

    @Test func idsFileMustMatchTheRows() throws {
        let csr = try Self.bytes(Self.fixture + ".csr")
        let ids = try String(contentsOfFile: Self.fixture + ".csr.ids", encoding: .utf8)
        try withTemporaryDirectory { dir in
            let path = dir + "/i.csr"
            try Self.write(csr, to: path)
            var lines = ids.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            #expect(lines.count == 60)
            func attempt(_ text: String) throws { try text.write(toFile: path + ".ids", atomically: true, encoding: .utf8); _ = try Self.readAll(path) }
            // Without the final newline is fine.
            try attempt(lines.joined(separator: "\n"))
            // One missing, one extra, a blank, a control character, a long line.
            #expect(throws: SparseDBError.self) { try attempt(lines.dropLast().joined(separator: "\n") + "\n") }
            #expect(throws: SparseDBError.self) { try attempt((lines + ["extra"]).joined(separator: "\n") + "\n") }
            lines[7] = ""
            #expect(throws: SparseDBError.self) { try attempt(lines.joined(separator: "\n") + "\n") }
            lines[7] = "a\u{1}b"
            #expect(throws: SparseDBError.self) { try attempt(lines.joined(separator: "\n") + "\n") }
            lines[7] = String(repeating: "x", count: 200_000)
            #expect(throws: SparseDBError.self) { try attempt(lines.joined(separator: "\n") + "\n") }
            // An explicit ids file that does not exist.
            #expect(throws: SparseDBError.self) { try Self.readAll(path, ids: .file(dir + "/nope.ids")) }
        }
    }

    // MARK: hostile files

    @Test(arguments: [
        // (rows, cols, nnz) that cannot describe the file (or anything): refused at open, before
        // any allocation their values would suggest.
        (Int64.max, 30_522, 0), (0, 30_522, Int64.max), (Int64.max / 8, 30_522, Int64.max / 8), (1 << 61, 10, 1 << 61),
        (-1, 30_522, 0), (1, -5, 0), (1, 30_522, -1), (1, 1 << 40, 0), (Int64.min, 1, 1), (2, 10, 3),
    ] as [(Int64, Int64, Int64)])
    func hostileHeaders(rows: Int64, cols: Int64, nnz: Int64) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/h.csr"
            // A plausible body for a 1-row, 1-entry file behind the hostile header.
            try Self.write(Self.rawFile(rows: rows, cols: cols, nnz: nnz, indptr: [0, 1], indices: [3], data: [1]), to: path)
            #expect(throws: SparseDBError.self) { try Self.readAll(path) }
        }
    }

    /// Files whose header matches their size but whose contents break a rule.
    @Test func hostileContents() throws {
        let cases: [(String, [UInt8])] = [
            ("indptr[0] not 0", Self.rawFile(rows: 2, cols: 10, nnz: 2, indptr: [1, 1, 2], indices: [1, 2], data: [1, 1])),
            ("indptr[rows] not nnz", Self.rawFile(rows: 2, cols: 10, nnz: 2, indptr: [0, 1, 1], indices: [1, 2], data: [1, 1])),
            ("indptr decreasing", Self.rawFile(rows: 3, cols: 10, nnz: 2, indptr: [0, 2, 1, 2], indices: [1, 2], data: [1, 1])),
            ("indptr beyond nnz", Self.rawFile(rows: 3, cols: 10, nnz: 2, indptr: [0, 1, 1 << 40, 2], indices: [1, 2], data: [1, 1])),
            ("indptr negative", Self.rawFile(rows: 2, cols: 10, nnz: 2, indptr: [0, -5, 2], indices: [1, 2], data: [1, 1])),
            ("more entries than cols", Self.rawFile(rows: 1, cols: 2, nnz: 3, indptr: [0, 3], indices: [0, 1, 1], data: [1, 1, 1])),
            ("index negative", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [-1], data: [1])),
            ("index == cols", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [10], data: [1])),
            ("index repeated", Self.rawFile(rows: 1, cols: 10, nnz: 2, indptr: [0, 2], indices: [4, 4], data: [1, 2])),
            ("index repeated unsorted", Self.rawFile(rows: 1, cols: 10, nnz: 3, indptr: [0, 3], indices: [4, 1, 4], data: [1, 2, 3])),
            ("NaN weight", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [1], data: [.nan])),
            ("infinite weight", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [1], data: [.infinity])),
            ("negative weight", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [1], data: [-0.5])),
            ("weight over 1e9", Self.rawFile(rows: 1, cols: 10, nnz: 1, indptr: [0, 1], indices: [1], data: [2e9])),
        ]
        try withTemporaryDirectory { dir in
            for (name, bytes) in cases {
                let path = dir + "/c.csr"
                try Self.write(bytes, to: path)
                do {
                    _ = try Self.readAll(path)
                    Issue.record("\(name): accepted")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput, "\(name): \(e)")
                    #expect(e.message.contains(path), "\(name): \(e.message)")
                }
            }
            // The collection's dimensions bound the indices too.
            try Self.write(Self.rawFile(rows: 1, cols: 100, nnz: 1, indptr: [0, 1], indices: [50], data: [1]), to: dir + "/d.csr")
            #expect(try Self.readAll(dir + "/d.csr", dimensions: 51).count == 1)
            #expect(throws: SparseDBError.self) { try Self.readAll(dir + "/d.csr", dimensions: 50) }
            // Unsorted indices are accepted and sorted (scipy does not always sort rows).
            try Self.write(Self.rawFile(rows: 1, cols: 10, nnz: 3, indptr: [0, 3], indices: [7, 2, 5], data: [1, 2, 3]), to: dir + "/u.csr")
            #expect(try Self.readAll(dir + "/u.csr")[0].vector == SparseVector([(2, 2), (5, 3), (7, 1)]))
            // Not a regular file; missing.
            #expect(throws: SparseDBError.self) { try BigANNReader(path: dir) }
            #expect(throws: SparseDBError.self) { try BigANNReader(path: dir + "/missing.csr") }
        }
    }

    /// Random byte damage anywhere in a valid file: read fine or a typed error, never a trap.
    @Test func damagedFilesNeverCrash() throws {
        let full = try Self.bytes(Self.fixture + ".csr")
        var rng = SplitMix64(seed: 21)
        var refused = 0
        try withTemporaryDirectory { dir in
            let path = dir + "/m.csr"
            for round in 0..<600 {
                var copy = full
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    // Half the damage goes to the header and indptr, where it matters most.
                    let limit = round % 2 == 0 ? min(copy.count, 24 + 8 * 61) : copy.count
                    copy[Int.random(in: 0..<limit, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                try Self.write(copy, to: path)
                do { _ = try Self.readAll(path, ids: .rowNumbers) } catch is SparseDBError { refused += 1 }
            }
        }
        #expect(refused > 50)
    }
}
