import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The failures a careful adversarial user found with the release build, each as a user meets it
/// through the `sparsedb` command (a crash shows as a signal, which these tests would report).
@Suite struct ReliabilityTests {
    let sparsedb = productPath("sparsedb")

    func vectorsFile(_ dir: String, lines: Int, name: String = "v.jsonl", from start: Int = 0) throws -> String {
        let all = try String(contentsOfFile: referencePath("cranfield", "doc_vectors.jsonl"), encoding: .utf8).split(separator: "\n")
        let path = dir + "/" + name
        try (all[start..<(start + lines)].joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func documents(_ db: String, collection: String = "c") throws -> Int? {
        let s = try run(sparsedb, ["stats", "--db", db])
        guard s.status == 0, let json = try JSONSerialization.jsonObject(with: Data(s.out.utf8)) as? [String: Any] else { return nil }
        return ((json["collections"] as? [[String: Any]])?.first { $0["name"] as? String == collection })?["documents"] as? Int
    }

    /// A full file system (here: a file-size limit, which fails writes the same way without
    /// needing root to mount a small tmpfs): a clean typed error, not `double free or
    /// corruption`; committed data stays; the next ingest with room works.
    @Test func fullDiskIsACleanErrorAndCommittedDataStays() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let first = try vectorsFile(dir, lines: 100, name: "a.jsonl")
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", first, "--quiet"]).status == 0)
            let size = try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int
            let more = try vectorsFile(dir, lines: 1200, name: "b.jsonl", from: 100)
            // ulimit -f counts 1024-byte blocks: allow a little growth, far less than the batch needs.
            let limited = try run(
                "/bin/bash",
                ["-c", "ulimit -f \(size / 1024 + 64); exec \"$0\" ingest --db \"$1\" --collection c --vectors \"$2\" --batch-size 1200 --quiet", sparsedb, db, more])
            #expect(limited.status == 1, "status \(limited.status): \(limited.err)")
            #expect(limited.err.contains("free some space"), "\(limited.err)")
            #expect(!limited.err.contains("double free"))
            #expect(try documents(db) == 100)
            #expect(try run(sparsedb, ["verify", "--db", db]).status == 0)
            let again = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", more, "--quiet"])
            #expect(again.status == 0, "\(again.err)")
            #expect(try documents(db) == 1300)
        }
    }

    /// Reader slots of killed processes are reclaimed: after far more SIGKILLed readers than
    /// there are slots, while this process keeps the database open, searches still work.
    @Test func staleReaderSlotsAreReclaimed() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/db"
            var config = Database.Configuration()
            config.maxReaders = 8
            let db = try Database(path: path, configuration: config)
            defer { db.close() }
            let c = try db.collection("c", creatingWithDimensions: 10)
            try c.upsert([Document(id: "a", vector: try SparseVector([(1, 1)]))])
            let holder = repositoryDirectory + "/tools/reliability/hold_reader.py"
            for round in 0..<40 {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["python3", holder, path]
                let out = Pipe()
                p.standardOutput = out
                p.standardError = FileHandle.nullDevice
                try p.run()
                let ready = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
                #expect(ready.contains("ready"), "round \(round): the holder could not get a reader slot")
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                #expect(try c.search(try SparseVector([(1, 1)])).hits.map(\.id) == ["a"], "round \(round)")
            }
            let s = try run(sparsedb, ["search", "--db", path, "--collection", "c", "--query-vectors", "-"], stdin: Data(#"{"_id": "q", "vector": {"1": 1}}"#.utf8))
            #expect(s.status == 0 && s.out.contains(" a 1 "), "\(s.err)")
        }
    }

    /// A truncated data file is a typed error on open, never SIGBUS.
    @Test(arguments: ["zero", "meta", "half"])
    func truncatedDataFilesAreErrors(cut: String) throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 600)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            let size = try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int
            let length = cut == "zero" ? 0 : cut == "meta" ? 8192 : size / 2
            #expect(truncate(db + "/data.mdb", off_t(length)) == 0)
            for args in [["verify"], ["stats"], ["search", "--collection", "c", "--query-vectors", file], ["ingest", "--collection", "c", "--vectors", file]] {
                let r = try run(sparsedb, [args[0], "--db", db] + args.dropFirst())
                #expect(r.status == 1, "\(args[0]) on a file cut to \(length): status \(r.status) \(r.err)")
                // verify reports what it finds on stdout (exit 1); the others fail with an error.
                let said = args[0] == "verify" ? r.out + r.err : r.err
                #expect(said.contains("truncated") || said.contains("empty"), "\(args[0]): \(said)")
            }
        }
    }

    /// Page damage inside LMDB's B-trees (16-byte smashes, as a bad disk leaves): `verify`
    /// reports it from the file without letting LMDB read the damaged pages — exit 1 with what is
    /// wrong, or 0 when the smash hit bytes nothing reads — and never crashes.
    @Test func damagedPagesAreReportedByVerifyNotCrashes() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 800)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet", "--batch-size", "100"]).status == 0)
            let clean = try Data(contentsOf: URL(fileURLWithPath: db + "/data.mdb"))
            var rng = SplitMix64(seed: 99)
            var reported = 0
            for round in 0..<40 {
                var bytes = clean
                let pages = bytes.count / 4096
                let page = Int.random(in: 2..<pages, using: &rng)
                let offset = page * 4096 + Int.random(in: 0..<(4096 - 16), using: &rng)
                for k in 0..<16 { bytes[offset + k] = UInt8.random(in: 0...255, using: &rng) }
                let copy = dir + "/copy\(round)"
                try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
                try bytes.write(to: URL(fileURLWithPath: copy + "/data.mdb"))
                let r = try run(sparsedb, ["verify", "--db", copy])
                #expect(r.status == 0 || r.status == 1, "round \(round): status \(r.status) \(r.err)")
                if r.status == 1 { reported += 1 }
                try FileManager.default.removeItem(atPath: copy)
            }
            #expect(reported > 0)
        }
    }

    /// Damage to one LMDB node of `table` with `tools/reliability/damage_node.py` (a copy of
    /// `db` at `copy`); returns what the script says it changed.
    func damagedCopy(_ db: String, _ copy: String, table: String, mode: String) throws -> String {
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: db + "/data.mdb", toPath: copy + "/data.mdb")
        let r = try run("/usr/bin/env", ["python3", repositoryDirectory + "/tools/reliability/damage_node.py", copy, table, mode])
        try #require(r.status == 0, "damage_node.py: \(r.err)")
        return r.out
    }

    /// A damaged value size in a leaf node (LMDB then hands out a value that runs ~235 MB past
    /// the end of the file, RELIABILITY.md finding 2), of a value in the page (a document record)
    /// or on overflow pages (a group of forward rows): every command that reads the value fails
    /// with a typed error naming the table, instead of dying with SIGBUS; verify names the damage.
    @Test(arguments: ["forward-row", "document"])
    func damagedValueSizesAreTypedErrors(table: String) throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 600)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            let copy = dir + "/damaged"
            let changed = try damagedCopy(db, copy, table: table, mode: "size")
            let v = try run(sparsedb, ["verify", "--db", copy])
            // A document record is a node in its leaf page: its size now runs past the file. A
            // group of forward rows (format 4, ~64 KiB) lies on overflow pages: its size no longer
            // fits the overflow run its node points at.
            let named = table == "document" ? v.out.contains("past the end") : v.out.contains("overflow run of 16 pages cannot hold")
            #expect(v.status == 1 && named, "verify: \(v.status) \(v.out) \(v.err)")
            // The queries are the documents themselves, so each one's own row or record is read.
            for algorithm in SearchAlgorithm.allCases {
                let r = try run(sparsedb, ["search", "--db", copy, "--collection", "c", "--query-vectors", file, "--algorithm", algorithm.rawValue])
                #expect(r.status == 1, "\(algorithm) after \(changed): status \(r.status) \(r.err.suffix(300))")
                #expect(r.err.contains("table '\(table)'") && r.err.contains("damaged") && r.err.contains("sparsedb verify"), "\(algorithm): \(r.err)")
            }
            // In process: the typed error (only once the commands above showed it does not crash).
            var config = Database.Configuration.readOnlyExisting
            config.postingCacheBytes = 0
            let opened = try Database(path: copy, configuration: config)
            defer { opened.close() }
            let c = try opened.collection("c")
            let queries = try readVectors(file, limit: 600)
            var failed = 0
            for q in queries {
                do {
                    let hits = try c.search(q.vector, options: SearchOptions(k: 10)).hits.map { ($0.id, $0.score) }
                    #expect(topKMismatch(hits, docs: queries, query: q.vector, k: 10) == nil, "query \(q.id): a silently wrong answer")
                } catch let e as SparseDBError {
                    #expect(e.code == .corrupt && e.message.contains(table), "\(e)")
                    failed += 1
                }
            }
            #expect(failed > 0)
        }
    }

    /// A damaged node offset (LMDB then reads a node header from outside its page, RELIABILITY.md
    /// finding 3) or value size in a table that statistics scan: `stats` and `compact` refuse
    /// with a typed error that points at `verify`, instead of dying inside liblmdb; the
    /// undamaged database's statistics count every document.
    @Test(arguments: ["offset", "size"])
    func statsOnDamagedPagesIsATypedError(mode: String) throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 600)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            #expect(try documents(db) == 600)
            for table in ["term", "posting-block", "forward-row"] {
                let copy = dir + "/\(table)"
                let changed = try damagedCopy(db, copy, table: table, mode: mode)
                let v = try run(sparsedb, ["verify", "--db", copy])
                #expect(v.status == 1 && v.out.contains("table \"\(table)\""), "verify after \(changed): \(v.out) \(v.err)")
                let r = try run(sparsedb, ["stats", "--db", copy])
                #expect(r.status == 1, "stats after \(changed): status \(r.status) \(r.err.suffix(300))")
                #expect(r.err.contains("page structure is damaged") && r.err.contains("sparsedb verify --db"), "\(r.err)")
                // Compaction rewrites most pages: it refuses before writing (a write transaction
                // rewriting a damaged page can corrupt LMDB's heap without faulting).
                let k = try run(sparsedb, ["compact", "--db", copy])
                #expect(k.status == 1 && k.err.contains("page structure is damaged"), "compact after \(changed): status \(k.status) \(k.err.suffix(300))")
                let opened = try Database(path: copy, configuration: .readOnlyExisting)
                defer { opened.close() }
                for statistics in [{ _ = try opened.statistics() }, { _ = try opened.collection("c").statistics() }] {
                    let e = #expect(throws: SparseDBError.self) { try statistics() }
                    #expect(e?.code == .corrupt, "\(String(describing: e))")
                }
            }
        }
    }

    /// The previous meta page's transaction id raised to the current one + 1 (RELIABILITY.md
    /// finding 4's reproducer): the ids stay consecutive, LMDB would open the snapshot before the
    /// last commit, and only the last pages the two meta pages record tell; verify and stats
    /// report it instead of showing the older snapshot as the database.
    @Test func rolledBackMetaPageWithConsecutiveIdsIsReported() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 300)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            let more = try vectorsFile(dir, lines: 300, name: "w.jsonl", from: 300)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", more, "--quiet"]).status == 0)
            let copy = dir + "/damaged"
            let changed = try damagedCopy(db, copy, table: "-", mode: "meta-txnid")
            let v = try run(sparsedb, ["verify", "--db", copy])
            #expect(v.status == 1 && v.out.contains("older snapshot"), "verify after \(changed): \(v.out) \(v.err)")
            let s = try run(sparsedb, ["stats", "--db", copy])
            #expect(s.status == 1 && s.err.contains("sparsedb verify"), "stats: \(s.out) \(s.err)")
        }
    }

    /// Finding 4 when the lost commit did not grow the file: both meta pages record the same
    /// last page and consecutive ids, so the page walk cannot tell; the commit stamp
    /// (format-spec.md §3a) can: the snapshot LMDB opens records an older commit than the id LMDB
    /// reports. Opening refuses (stats, search, the API), verify names it; the undamaged
    /// database stays sound.
    @Test func rolledBackCommitThatReusedFreePagesIsReported() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 300)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            let ids = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["_id"] as! String
            }
            // Delete one document per commit until a commit takes only freed pages.
            var reused = false
            for id in ids.prefix(30) {
                try (id + "\n").write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
                #expect(try run(sparsedb, ["delete", "--db", db, "--collection", "c", "--ids", dir + "/ids.txt"]).status == 0)
                let (a, b) = try metaLastPages(db + "/data.mdb")
                if a == b { reused = true; break }
            }
            try #require(reused, "no delete reused freed pages only")
            let copy = dir + "/damaged"
            let changed = try damagedCopy(db, copy, table: "-", mode: "meta-txnid")
            let v = try run(sparsedb, ["verify", "--db", copy])
            #expect(v.status == 1 && v.out.contains("older snapshot"), "verify after \(changed): \(v.out) \(v.err)")
            for command in [["stats", "--db", copy], ["search", "--db", copy, "--collection", "c", "--query-vectors", file, "--k", "3"]] {
                let r = try run(sparsedb, command)
                #expect(r.status == 1 && r.err.contains("older snapshot"), "\(command[0]): \(r.status) \(r.err)")
            }
            let e = #expect(throws: SparseDBError.self) { _ = try Database(path: copy, configuration: .readOnlyExisting) }
            #expect(e?.code == .corrupt, "\(String(describing: e))")
            let sound = try run(sparsedb, ["verify", "--db", db])
            #expect(sound.status == 0, "\(sound.out) \(sound.err)")
        }
    }

    /// The last page each of the two LMDB meta pages records (`mm_last_pg`, byte 136 of each).
    func metaLastPages(_ file: String) throws -> (UInt64, UInt64) {
        let data = try Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped).prefix(8192)
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) } }
        return (u64(136), u64(4096 + 136))
    }

    /// Input from a pipe is read once and ingested (no silent empty ingest); `-` is standard input.
    @Test func pipesAndStandardInput() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 50)
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            let r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", "-", "--batch-size", "20", "--quiet"], stdin: data)
            #expect(r.status == 0, "\(r.err)")
            #expect(try documents(db) == 50)
            // A process substitution is a pipe too.
            let p = try run("/bin/bash", ["-c", "exec \"$0\" ingest --db \"$1\" --collection d --vectors <(cat \"$2\") --quiet", sparsedb, db, file])
            #expect(p.status == 0, "\(p.err)")
            #expect(try documents(db, collection: "d") == 50)
            // On a pipe, a bad line stops the ingest after the batches before it (documented).
            var bad = data
            bad.append(Data(#"{"_id": "bad", "vector": {"1": -1}}"# .utf8))
            bad.append(0x0A)
            let b = try run(sparsedb, ["ingest", "--db", db, "--collection", "e", "--vectors", "-", "--batch-size", "20", "--quiet"], stdin: bad)
            #expect(b.status == 1 && b.err.contains("<stdin>:51") && b.err.contains("negative"), "\(b.err)")
            #expect(try documents(db, collection: "e") == 40)
        }
    }

    /// The smaller ones: each a clear error, and refused input leaves nothing behind.
    @Test func smallerOnes() throws {
        try withTemporaryDirectory { dir in
            let db = dir + "/db"
            let file = try vectorsFile(dir, lines: 20)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", file, "--quiet"]).status == 0)
            var r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", file, "--k", "-5"])
            #expect(r.status != 0 && r.err.contains("--k must be at least 1"), "\(r.err)")
            r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", file, "--max-query-terms", "0"])
            #expect(r.status != 0 && r.err.contains("--max-query-terms"), "\(r.err)")
            for bad in ["5", "1048577", "x"] {
                r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", file, "--max-query-terms", "2", "--candidates", bad])
                #expect(r.status != 0 && r.err.contains("--candidates"), "\(bad): \(r.err)")
            }
            for (command, bad) in [("search", "0"), ("search", "16777217"), ("bench", "-3"), ("bench", "x")] {
                r = try run(sparsedb, [command, "--db", db, "--collection", "c", "--query-vectors", file, "--postings-per-term", bad])
                #expect(r.status != 0 && r.err.contains("--postings-per-term"), "\(command) \(bad): \(r.err)")
            }
            r = try run(sparsedb, ["bench", "--db", db, "--collection", "c", "--query-vectors", file, "--forward-cache-mb", "-1"])
            #expect(r.status != 0 && r.err.contains("--forward-cache-mb"), "\(r.err)")
            r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query", "  "])
            #expect(r.status != 0 && r.err.contains("empty"), "\(r.err)")
            for flag in ["--vectors", "--corpus"] {
                r = try run(sparsedb, ["ingest", "--db", db, "--collection", "c", flag, dir])
                #expect(r.status == 1 && r.err.contains("is a directory"), "\(flag): \(r.err)")
            }
            r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", dir])
            #expect(r.status == 1 && r.err.contains("is a directory"), "\(r.err)")
            r = try run(sparsedb, ["encode", "--documents", dir])
            #expect(r.status == 1 && r.err.contains("is a directory"), "\(r.err)")
            // Ingest never writes a database into a directory holding other files.
            let other = dir + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
            r = try run(sparsedb, ["ingest", "--db", other, "--collection", "c", "--vectors", file])
            #expect(r.status == 1 && !FileManager.default.fileExists(atPath: other + "/data.mdb"), "\(r.err)")
            // A byte-order mark is accepted by both ingest paths.
            let bom = dir + "/bom.jsonl"
            try Data([0xEF, 0xBB, 0xBF] + Array(#"{"_id": "x1", "vector": {"3": 1}}"#.utf8) + [0x0A]).write(to: URL(fileURLWithPath: bom))
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", bom, "--quiet"]).status == 0)
            // Ids with leading and trailing spaces can be deleted.
            let spaced = dir + "/spaced.jsonl"
            try (#"{"_id": " padded id ", "vector": {"3": 1}}"# + "\n").write(toFile: spaced, atomically: true, encoding: .utf8)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", spaced, "--quiet"]).status == 0)
            try " padded id \n".write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
            r = try run(sparsedb, ["delete", "--db", db, "--collection", "c", "--ids", dir + "/ids.txt"])
            #expect(r.status == 0 && r.err.contains("deleted 1 documents"), "\(r.err)")
            // An id with white space cannot be written into a TREC run: a clear error, not a broken run.
            try (#"{"_id": "two words", "vector": {"3": 5}}"# + "\n").write(toFile: spaced, atomically: true, encoding: .utf8)
            #expect(try run(sparsedb, ["ingest", "--db", db, "--collection", "c", "--vectors", spaced, "--quiet"]).status == 0)
            r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", "-"], stdin: Data(#"{"_id": "q", "vector": {"3": 1}}"#.utf8))
            #expect(r.status == 1 && r.err.contains("TREC"), "\(r.err)")
            r = try run(sparsedb, ["search", "--db", db, "--collection", "c", "--query-vectors", "-", "--format", "jsonl"], stdin: Data(#"{"_id": "q", "vector": {"3": 1}}"#.utf8))
            #expect(r.status == 0 && r.out.contains("two words"), "\(r.err)")
        }
    }
}
