import CLMDB
import Foundation
import SparseDB
import SparseDBCore
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// `PageWalker` reads an LMDB data file with `pread` and reports damage as sentences: it must
/// agree with LMDB on clean files, report every damaged structure, and never crash or hang.
@Suite struct PageWalkerTests {
    // MARK: Clean files

    @Test func cleanDatabaseAgreesWithLMDB() throws {
        try withTemporaryDirectory { dir in
            let db = try Self.makeDatabase(dir)
            let report = try PageWalker.check(dataFile: db + "/data.mdb")
            #expect(report.problems == [])
            #expect(report.pageSize == 4096)
            #expect(report.tables.count > 3)
            try Self.expectAgreement(report, db)
            // A directory means its data.mdb.
            #expect(try PageWalker.check(dataFile: db).isClean)
        }
    }

    /// Tables of every kind SparseDB does not use itself: integer, reverse and DUPSORT keys
    /// (sub-pages and sub-trees, DUPFIXED), values on overflow pages, deletions.
    @Test func lmdbFeaturesAreUnderstood() throws {
        try withTemporaryDirectory { dir in
            try Self.makeRawEnvironment(dir)
            let report = try PageWalker.check(dataFile: dir + "/data.mdb")
            #expect(report.problems == [])
            try Self.expectAgreement(report, dir)
            let overflow = report.tables.reduce(0) { $0 + $1.overflowPages }
            let duplicates = report.tables.reduce(0) { $0 + $1.duplicatePages }
            #expect(overflow > 0 && duplicates > 0)
        }
    }

    // MARK: Damage

    /// Random 16-byte smashes inside branch and leaf pages. Each must be reported unless it
    /// changed only bytes LMDB never interprets (free space, values, the unused key of a
    /// branch page) or keys still in order (then LMDB itself reads the file without failing).
    @Test(arguments: [false, true])
    func smashesAreReportedOrHarmless(rawEnvironment: Bool) throws {
        try withTemporaryDirectory { dir in
            let clean = dir + "/clean"
            try FileManager.default.createDirectory(atPath: clean, withIntermediateDirectories: true)
            let db = rawEnvironment ? try { try Self.makeRawEnvironment(clean); return clean }() : try Self.makeDatabase(clean)
            let file = try Damage(db, into: dir + "/damaged")
            var rng = SplitMix64(seed: rawEnvironment ? 0x5EED : 0x5A5A)
            var counts: [String: Int] = [:]
            var misses: [String] = []
            var falseAlarms: [String] = []
            var lmdbOutcomes: [String: Int] = [:]
            for trial in 0..<300 {
                let page = file.treePages.randomElement(using: &rng)!
                let offset = Int.random(in: 0...(file.pageSize - 16), using: &rng)
                let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let roles = file.changedRoles(page: page, offset: offset, bytes: bytes)
                if roles.isEmpty {
                    counts["unchanged", default: 0] += 1
                    continue
                }
                let report = try file.withPatch(page: page, offset: offset, bytes: bytes) {
                    try PageWalker.check(dataFile: file.dataFile)
                }
                let what = "trial \(trial): page \(page) offset \(offset), roles \(roles.sorted { "\($0)" < "\($1)" })"
                if !report.isClean {
                    counts["reported", default: 0] += 1
                    // How many of these LMDB itself cannot read (a sample: each costs a process).
                    if lmdbOutcomes.values.reduce(0, +) < 25 {
                        let outcome = try file.withPatch(page: page, offset: offset, bytes: bytes) { try lmdbDump(file.directory) }
                        lmdbOutcomes["\(outcome)", default: 0] += 1
                    }
                    if roles == [.freeSpace] || roles.isSubset(of: [.freeSpace, .unused]) {
                        falseAlarms.append("\(what): \(report.problems.prefix(2))")
                    }
                } else if roles.contains(.structure) {
                    misses.append(what)
                } else if roles.contains(.key) {
                    // Keys changed but still in order: LMDB must read every table without failing.
                    let outcome = try file.withPatch(page: page, offset: offset, bytes: bytes) { try lmdbDump(file.directory) }
                    if outcome == .success {
                        counts["harmless: keys still in order", default: 0] += 1
                    } else {
                        misses.append("\(what): unreported, but mdb_dump fails: \(outcome)")
                    }
                } else if roles.contains(.value) {
                    counts["harmless: value bytes only", default: 0] += 1
                } else {
                    counts["harmless: free space or unused bytes only", default: 0] += 1
                }
            }
            print("PageWalker smashes (\(rawEnvironment ? "raw LMDB" : "SparseDB")): \(counts.sorted { $0.key < $1.key }); mdb_dump on the first reported ones: \(lmdbOutcomes.sorted { $0.key < $1.key })")
            #expect(misses == [])
            #expect(falseAlarms == [])
            #expect((counts["reported"] ?? 0) >= (rawEnvironment ? 25 : 100))
        }
    }

    /// Single byte changes in page headers (branch, leaf and overflow pages) are always damage.
    @Test(arguments: [false, true])
    func headerFlipsAreReported(rawEnvironment: Bool) throws {
        try withTemporaryDirectory { dir in
            let clean = dir + "/clean"
            try FileManager.default.createDirectory(atPath: clean, withIntermediateDirectories: true)
            let db = rawEnvironment ? try { try Self.makeRawEnvironment(clean); return clean }() : try Self.makeDatabase(clean)
            let file = try Damage(db, into: dir + "/damaged")
            var rng = SplitMix64(seed: 77)
            var misses: [String] = []
            let pages = file.treePages + file.overflowPages
            for _ in 0..<200 {
                let page = pages.randomElement(using: &rng)!
                let offset = Int.random(in: 0..<16, using: &rng)
                let old = file.clean[page * file.pageSize + offset]
                let new = old ^ UInt8.random(in: 1...255, using: &rng)
                let report = try file.withPatch(page: page, offset: offset, bytes: [new]) { try PageWalker.check(dataFile: file.dataFile) }
                if report.isClean { misses.append("page \(page) byte \(offset): \(old) → \(new)") }
            }
            #expect(misses == [])
        }
    }

    /// A branch node pointed at another page: a cycle, a shared or lost subtree, a page out of
    /// range — always reported, at least by the page accounting.
    @Test func redirectedChildrenAreReported() throws {
        try withTemporaryDirectory { dir in
            let db = try Self.makeDatabase(dir + "/clean")
            let file = try Damage(db, into: dir + "/damaged")
            #expect(!file.branchPages.isEmpty)
            var rng = SplitMix64(seed: 99)
            var misses: [String] = []
            for _ in 0..<100 {
                let page = file.branchPages.randomElement(using: &rng)!
                let base = page * file.pageSize
                let count = (file.u16(base + 12) - 16) / 2
                let node = Int.random(in: 0..<count, using: &rng)
                let offset = file.u16(base + 16 + 2 * node)
                let old = file.u16(offset + base) | file.u16(offset + base + 2) << 16
                var target = Int.random(in: 0...(file.lastPage + 3), using: &rng)
                if target == old { target += 1 }
                // mn_lo, mn_hi, mn_flags hold the child's page number (48 bits).
                let bytes: [UInt8] = [UInt8(target & 0xFF), UInt8(target >> 8 & 0xFF), UInt8(target >> 16 & 0xFF), UInt8(target >> 24 & 0xFF), 0, 0]
                let report = try file.withPatch(page: page, offset: offset, bytes: bytes) { try PageWalker.check(dataFile: file.dataFile) }
                if report.isClean { misses.append("page \(page) node \(node): \(old) → \(target)") }
            }
            #expect(misses == [])
        }
    }

    @Test func truncationIsReported() throws {
        try withTemporaryDirectory { dir in
            let db = try Self.makeDatabase(dir + "/clean")
            let file = try Damage(db, into: dir + "/damaged")
            let needed = (file.lastPage + 1) * file.pageSize
            var rng = SplitMix64(seed: 3)
            var lengths = [0, 1, 100, 4096, 4097, 8191, 8192, 8193, 12288, needed - 1, needed - 4096]
            lengths += (0..<40).map { _ in Int.random(in: 0..<needed, using: &rng) }
            for length in lengths {
                try Data(file.clean[..<length]).write(to: URL(fileURLWithPath: file.dataFile))
                do {
                    let report = try PageWalker.check(dataFile: file.dataFile)
                    #expect(!report.isClean, "\(length) bytes")
                    #expect(report.problems.contains { $0.contains("truncated") || $0.contains("cannot be read") }, "\(length) bytes: \(report.problems.prefix(3))")
                } catch let error as SparseDBError {
                    // Too short to hold a meta page: not an LMDB file at all.
                    #expect(error.code == .foreignFormat && length < 152, "\(length) bytes: \(error)")
                }
            }
            // Trailing bytes after the last page are not damage.
            try Data(file.clean[..<needed] + [UInt8](repeating: 7, count: 5000)).write(to: URL(fileURLWithPath: file.dataFile))
            #expect(try PageWalker.check(dataFile: file.dataFile).problems == [])
        }
    }

    @Test func metaPagesAreChecked() throws {
        try withTemporaryDirectory { dir in
            let db = try Self.makeDatabase(dir + "/clean")
            let file = try Damage(db, into: dir + "/damaged")
            let clean = try PageWalker.check(dataFile: file.dataFile)
            let older = 1 - clean.metaPage
            // The older meta page damaged: reported (LMDB refuses the file), the newer one used.
            var report = try file.withPatch(page: older, offset: 16, bytes: [0]) { try PageWalker.check(dataFile: file.dataFile) }
            #expect(report.problems.count == 1 && report.problems[0].hasPrefix("meta page \(older)"), "\(report.problems)")
            #expect(report.txnid == clean.txnid)
            // The newer one damaged: reported, and the walk uses the older snapshot.
            report = try file.withPatch(page: clean.metaPage, offset: 20, bytes: [9]) { try PageWalker.check(dataFile: file.dataFile) }
            #expect(report.problems.first?.hasPrefix("meta page \(clean.metaPage): data format version") == true, "\(report.problems)")
            #expect(report.txnid == clean.txnid - 1)
            // The older meta page's transaction id made larger: LMDB would open the older
            // snapshot (losing the last commit), and the walker says so.
            report = try file.withPatch(page: older, offset: 144 + 4, bytes: [0xB4]) { try PageWalker.check(dataFile: file.dataFile) }
            #expect(report.metaPage == older)
            #expect(report.problems.contains { $0.contains("not consecutive") }, "\(report.problems)")
            #expect(clean.problems.isEmpty)
            // A huge last page must neither allocate by it nor take long.
            let huge: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0x40]
            let started = ContinuousClock.now
            report = try file.withPatch(page: clean.metaPage, offset: 136, bytes: huge) { try PageWalker.check(dataFile: file.dataFile) }
            #expect(report.problems.contains { $0.contains("truncated") })
            #expect(ContinuousClock.now - started < .seconds(10))
            // Both damaged: not LMDB any more.
            try file.withPatch(page: 0, offset: 16, bytes: [0]) {
                try file.withPatch(page: 1, offset: 16, bytes: [0]) {
                    let error = #expect(throws: SparseDBError.self) { try PageWalker.check(dataFile: file.dataFile) }
                    #expect(error?.code == .foreignFormat)
                }
            }
            // A smashed table count in the meta page's main-table record.
            report = try file.withPatch(page: clean.metaPage, offset: 88 + 32, bytes: [0x55]) { try PageWalker.check(dataFile: file.dataFile) }
            #expect(report.problems.contains { $0.contains("main table") && $0.contains("entries") }, "\(report.problems)")
        }
    }

    @Test func foreignFilesAreRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/data.mdb"
            let missing = #expect(throws: SparseDBError.self) { try PageWalker.check(dataFile: path) }
            #expect(missing?.code == .notFound)
            var rng = SplitMix64(seed: 1)
            for size in [0, 10, 4096, 20000] {
                try Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: path))
                let error = #expect(throws: SparseDBError.self, "\(size)") { try PageWalker.check(dataFile: path) }
                #expect(error?.code == .foreignFormat)
            }
        }
    }

    /// Several random smashes anywhere (meta, free and overflow pages included), and random
    /// page-sized garbage: the walker always returns, quickly, and reports most of it.
    @Test func fuzzNeverCrashes() throws {
        try withTemporaryDirectory { dir in
            let db = try Self.makeDatabase(dir + "/clean")
            let file = try Damage(db, into: dir + "/damaged")
            var rng = SplitMix64(seed: 2024)
            var reported = 0, thrown = 0
            var slowest = Duration.zero
            let trials = 150
            for trial in 0..<trials {
                var patches: [(Int, [UInt8])] = []
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let length = trial % 10 == 0 ? file.pageSize : Int.random(in: 1...64, using: &rng)
                    let at = Int.random(in: 0...(file.clean.count - length), using: &rng)
                    patches.append((at, (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }))
                }
                var damaged = file.clean
                for (at, bytes) in patches { damaged.replaceSubrange(at..<(at + bytes.count), with: bytes) }
                try Data(damaged).write(to: URL(fileURLWithPath: file.dataFile))
                let started = ContinuousClock.now
                do {
                    let report = try PageWalker.check(dataFile: file.dataFile, limit: 20)
                    if !report.isClean { reported += 1 }
                    #expect(report.problems.count <= 20)
                } catch let error as SparseDBError {
                    #expect(error.code == .foreignFormat)
                    thrown += 1
                }
                slowest = max(slowest, ContinuousClock.now - started)
            }
            print("PageWalker fuzz: \(reported) of \(trials) reported, \(thrown) not LMDB; slowest walk \(slowest)")
            #expect(reported + thrown > trials / 4)
            #expect(slowest < .seconds(10))
        }
    }

    // MARK: Fixtures

    /// A SparseDB database: a few thousand documents in several commits, deletions and a
    /// compaction (so that the free list holds pages). Returns its directory.
    static func makeDatabase(_ dir: String) throws -> String {
        let path = dir + "/db"
        let db = try Database(path: path)
        defer { db.close() }
        let c = try db.collection("c", creatingWithDimensions: 5000)
        let docs = try randomDocuments(count: 3000, dims: 5000, seed: 11).map { Document(id: $0.id, vector: $0.vector) }
        for start in stride(from: 0, to: 2500, by: 500) { try c.upsert(Array(docs[start..<(start + 500)])) }
        try c.delete(ids: stride(from: 0, to: 2500, by: 3).map { docs[$0].id })
        try c.compact()
        try c.upsert(Array(docs[2500...]))
        try c.delete(ids: stride(from: 1, to: 3000, by: 7).map { docs[$0].id })
        return path
    }

    /// A plain LMDB environment with integer, reverse-key, DUPSORT (with sub-pages and
    /// sub-trees), DUPFIXED and big-value tables, written in several transactions with deletions.
    static func makeRawEnvironment(_ dir: String) throws {
        var envp: OpaquePointer?
        try lmdb(mdb_env_create(&envp))
        let env = envp!
        defer { mdb_env_close(env) }
        try lmdb(mdb_env_set_maxdbs(env, 16))
        try lmdb(mdb_env_set_mapsize(env, 256 << 20))
        try lmdb(mdb_env_open(env, dir, 0, 0o644))
        var rng = SplitMix64(seed: 42)
        let tables: [(String, Int32)] = [
            ("plain", 0), ("integer", MDB_INTEGERKEY), ("reverse", MDB_REVERSEKEY), ("dups", MDB_DUPSORT),
            ("fixed", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP),
        ]
        for round in 0..<4 {
            var txnp: OpaquePointer?
            try lmdb(mdb_txn_begin(env, nil, 0, &txnp))
            let txn = txnp!
            for (name, flags) in tables {
                var dbi: MDB_dbi = 0
                try lmdb(mdb_dbi_open(txn, name, UInt32(flags | MDB_CREATE), &dbi))
                for i in 0..<1500 {
                    let key: [UInt8]
                    var value: [UInt8]
                    switch name {
                    case "integer":
                        key = withUnsafeBytes(of: UInt64(rng.next() % 100_000).littleEndian, Array.init)
                        value = [UInt8](repeating: UInt8(i & 0xFF), count: Int(rng.next() % 40))
                    case "dups":
                        key = Array("k\(rng.next() % 60)".utf8)  // some keys get hundreds of items: sub-trees
                        value = (0..<Int(1 + rng.next() % 30)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    case "fixed":
                        key = Array("f\(rng.next() % 200)".utf8)
                        value = withUnsafeBytes(of: UInt32(truncatingIfNeeded: rng.next()).littleEndian, Array.init)
                    default:
                        key = (0..<Int(1 + rng.next() % 24)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                        // A few values take overflow pages.
                        value = [UInt8](repeating: UInt8(i & 0xFF), count: i % 50 == 0 ? Int(2000 + rng.next() % 9000) : Int(rng.next() % 300))
                    }
                    try put(txn, dbi, key, &value)
                }
                // Delete about a third of what is there.
                var cursorp: OpaquePointer?
                try lmdb(mdb_cursor_open(txn, dbi, &cursorp))
                var k = MDB_val(), v = MDB_val()
                while mdb_cursor_get(cursorp, &k, &v, MDB_NEXT) == 0 {
                    if rng.next() % 3 == 0 { try lmdb(mdb_cursor_del(cursorp, 0)) }
                }
                mdb_cursor_close(cursorp)
            }
            if round == 2 {
                var dbi: MDB_dbi = 0
                try lmdb(mdb_dbi_open(txn, "dropped", UInt32(MDB_CREATE), &dbi))
                var value = [UInt8](repeating: 1, count: 5000)
                try put(txn, dbi, Array("x".utf8), &value)
                try lmdb(mdb_drop(txn, dbi, 1))
            }
            try lmdb(mdb_txn_commit(txn))
        }
    }

    static func put(_ txn: OpaquePointer, _ dbi: MDB_dbi, _ key: [UInt8], _ value: inout [UInt8]) throws {
        var key = key
        try key.withUnsafeMutableBytes { k in
            try value.withUnsafeMutableBytes { v in
                var kv = MDB_val(mv_size: k.count, mv_data: k.baseAddress)
                var vv = MDB_val(mv_size: v.count, mv_data: v.baseAddress ?? UnsafeMutableRawPointer(k.baseAddress!))
                try lmdb(mdb_put(txn, dbi, &kv, &vv, 0))
            }
        }
    }

    static func lmdb(_ rc: Int32) throws {
        if rc != 0 { throw SparseDBError(.storage, String(cString: mdb_strerror(rc))) }
    }

    /// The walker's tables against `mdb_stat -a -f` (LMDB's own counts).
    static func expectAgreement(_ report: PageReport, _ dir: String) throws {
        let result = try run("/usr/bin/mdb_stat", ["-a", "-f", dir])
        #expect(result.status == 0, "\(result.err)")
        var stats: [String: [String: UInt64]] = [:]
        var current = ""
        var freePages: UInt64?
        for line in result.out.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("Status of ") {
                current = String(text.dropFirst("Status of ".count))
            } else if text == "Freelist Status" {
                current = "free-page table"
            } else if text.hasPrefix("Free pages: ") {
                freePages = UInt64(text.dropFirst("Free pages: ".count))
            } else if let colon = text.firstIndex(of: ":"), let value = UInt64(text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)) {
                stats[current, default: [:]][String(text[..<colon])] = value
            }
        }
        #expect(freePages == UInt64(report.freePages))
        #expect(report.tables.count == stats.count, "\(report.tables.map(\.name)) vs \(stats.keys.sorted())")
        for table in report.tables {
            let name = table.kind == .main ? "Main DB" : table.name
            guard let s = stats[name] else {
                Issue.record("mdb_stat does not list \(name)")
                continue
            }
            #expect(!table.damaged)
            #expect(s["Entries"] == table.entries && table.entries == table.recordedEntries, "\(name)")
            #expect(s["Branch pages"] == UInt64(table.branchPages), "\(name)")
            #expect(s["Leaf pages"] == UInt64(table.leafPages), "\(name)")
            #expect(s["Overflow pages"] == UInt64(table.overflowPages), "\(name)")
            #expect(s["Tree depth"] == UInt64(table.recordedDepth), "\(name)")
        }
    }
}

/// What a byte of a clean branch or leaf page is to LMDB.
enum ByteRole: Hashable {
    /// Page header, offset array, node headers, and values LMDB interprets (overflow page
    /// numbers, table records, duplicate sub-pages).
    case structure
    /// Between mp_lower and mp_upper.
    case freeSpace
    /// Padding of odd-sized nodes, and the key of a branch page's first node (never compared).
    case unused
    case key
    /// A plain value (or a free-list page number: the walker checks those).
    case value
}

/// A copy of a clean data file to damage in place, patch by patch.
struct Damage {
    let directory: String
    let dataFile: String
    let clean: [UInt8]
    let pageSize: Int
    let lastPage: Int
    /// Branch and leaf pages in use by some table (not listed as free by LMDB).
    let treePages: [Int]
    let branchPages: [Int]
    let overflowPages: [Int]

    init(_ cleanDirectory: String, into directory: String) throws {
        self.directory = directory
        dataFile = directory + "/data.mdb"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        clean = [UInt8](try Data(contentsOf: URL(fileURLWithPath: cleanDirectory + "/data.mdb")))
        try Data(clean).write(to: URL(fileURLWithPath: dataFile))
        let report = try PageWalker.check(dataFile: dataFile)
        pageSize = report.pageSize
        lastPage = Int(report.lastPage)
        // Free pages as LMDB lists them (mdb_stat -fff: one line per page or run "page[span]").
        let stat = try run("/usr/bin/mdb_stat", ["-fff", directory])
        var free = Set<Int>()
        for line in stat.out.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            let parts = text.split(separator: "[")
            guard let first = Int(parts[0]) else { continue }
            let span = parts.count > 1 ? Int(parts[1].dropLast()) ?? 1 : 1
            for p in first..<(first + span) { free.insert(p) }
        }
        var tree: [Int] = [], branch: [Int] = [], overflow: [Int] = []
        for p in 2...lastPage where !free.contains(p) {
            let base = p * pageSize
            let pgno = clean[base..<(base + 8)].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard pgno == p else { continue }
            switch Int(clean[base + 10]) | Int(clean[base + 11]) << 8 {
            case 1: tree.append(p); branch.append(p)
            case 2: tree.append(p)
            case 4: overflow.append(p)
            default: break
            }
        }
        treePages = tree
        branchPages = branch
        overflowPages = overflow
    }

    func u16(_ at: Int) -> Int { Int(clean[at]) | Int(clean[at + 1]) << 8 }

    /// Writes `bytes` at `offset` in `page`, runs `body`, and restores the clean bytes.
    func withPatch<R>(page: Int, offset: Int, bytes: [UInt8], _ body: () throws -> R) throws -> R {
        let at = page * pageSize + offset
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dataFile))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(at))
        try handle.write(contentsOf: bytes)
        defer {
            try? handle.seek(toOffset: UInt64(at))
            try? handle.write(contentsOf: clean[at..<(at + bytes.count)])
        }
        return try body()
    }

    /// The roles, in the clean page, of the bytes that `bytes` at `offset` would change.
    func changedRoles(page: Int, offset: Int, bytes: [UInt8]) -> Set<ByteRole> {
        let roles = self.roles(page)
        var changed = Set<ByteRole>()
        for (i, b) in bytes.enumerated() where clean[page * pageSize + offset + i] != b {
            changed.insert(roles[offset + i])
        }
        return changed
    }

    /// What each byte of branch or leaf page `page` is, from its clean bytes.
    func roles(_ page: Int) -> [ByteRole] {
        let base = page * pageSize
        var roles = [ByteRole](repeating: .structure, count: pageSize)
        let flags = u16(base + 10), lower = u16(base + 12), upper = u16(base + 14)
        for i in lower..<upper { roles[i] = .freeSpace }
        let isBranch = flags == 1
        for i in 0..<((lower - 16) / 2) {
            let node = u16(base + 16 + 2 * i)
            let ksize = u16(base + node + 6), nflags = u16(base + node + 4)
            let dsize = isBranch ? 0 : (nflags & 1 != 0 ? 8 : u16(base + node) | u16(base + node + 2) << 16)
            for j in 0..<ksize { roles[node + 8 + j] = isBranch && i == 0 ? .unused : .key }
            for j in 0..<dsize { roles[node + 8 + ksize + j] = nflags & 7 == 0 ? .value : .structure }
            if (8 + ksize + dsize) % 2 == 1 { roles[node + 8 + ksize + dsize] = .unused }
            if !isBranch && nflags == 4 { subPageRoles(at: node + 8 + ksize, size: dsize, base: base, &roles) }
        }
        return roles
    }

    /// A DUPSORT sub-page (node flag F_DUPDATA): a small leaf page whose keys are the items.
    func subPageRoles(at start: Int, size: Int, base: Int, _ roles: inout [ByteRole]) {
        let flags = u16(base + start + 10), lower = u16(base + start + 12), upper = u16(base + start + 14)
        let count = (lower - 16) / 2
        if flags & 0x20 != 0 {  // P_LEAF2: items of mp_pad bytes after the header, then slack
            let ks = u16(base + start + 8)
            for j in 16..<size { roles[start + j] = j < 16 + count * ks ? .key : .freeSpace }
            return
        }
        for j in lower..<upper { roles[start + j] = .freeSpace }
        for i in 0..<count {
            let node = start + u16(base + start + 16 + 2 * i)
            let ksize = u16(base + node + 6)
            for j in 0..<ksize { roles[node + 8 + j] = .key }
            if ksize % 2 == 1 { roles[node + 8 + ksize] = .unused }
        }
    }
}

enum LMDBOutcome: Equatable, CustomStringConvertible {
    case success
    case failure(Int32)
    case signal(Int32)
    case timeout

    var description: String {
        switch self {
        case .success: "success"
        case .failure(let s): "exit status \(s)"
        case .signal(let s): "killed by signal \(s)"
        case .timeout: "timed out"
        }
    }
}

/// Runs LMDB's own `mdb_dump -a` on `directory` in a child process (it may crash there).
func lmdbDump(_ directory: String) throws -> LMDBOutcome {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/mdb_dump")
    p.arguments = ["-a", directory]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(20)
    while p.isRunning {
        if Date() > deadline {
            p.terminate()
            p.waitUntilExit()
            return .timeout
        }
        usleep(2000)
    }
    if p.terminationReason == .uncaughtSignal { return .signal(p.terminationStatus) }
    return p.terminationStatus == 0 ? .success : .failure(p.terminationStatus)
}
