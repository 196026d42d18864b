import SparseDBCore

#if canImport(Glibc)
import Glibc
#endif

/// What ``PageWalker`` found in an LMDB data file: the damage, as sentences that name the table,
/// the page and what is wrong, and what each table's tree holds.
package struct PageReport: Sendable {
    package enum TableKind: Sendable, Equatable {
        /// LMDB's free-page table (`FREE_DBI`): pages freed by each transaction.
        case freePages
        /// The main table (`MAIN_DBI`), which lists the named tables.
        case main
        /// A named table, found in the main table.
        case named
    }

    /// One tree: what its `MDB_db` record says, and what the walk found.
    package struct Table: Sendable {
        package var name: String
        package var kind: TableKind
        /// The root page, or `nil` for an empty table.
        package var root: UInt64?
        package var recordedDepth: Int
        package var recordedEntries: UInt64
        package var recordedBranchPages: UInt64
        package var recordedLeafPages: UInt64
        package var recordedOverflowPages: UInt64
        package var branchPages = 0
        package var leafPages = 0
        package var overflowPages = 0
        /// Pages of sorted-duplicate sub-trees (`MDB_DUPSORT` tables only; LMDB counts them apart).
        package var duplicatePages = 0
        /// Entries found (for `MDB_DUPSORT` tables, data items, as LMDB counts them).
        package var entries: UInt64 = 0
        /// Whether damage was found in this tree (its counts are then incomplete).
        package var damaged = false

        package var pages: Int { branchPages + leafPages + overflowPages + duplicatePages }
    }

    /// The damage found, at most `limit` sentences; ``omittedProblems`` counts the rest.
    package var problems: [String] = []
    package var omittedProblems = 0
    /// The free-page table, the main table, then the named tables in key order.
    package var tables: [Table] = []
    package var pageSize = 0
    /// The last page in use (`mm_last_pg` of the meta page used).
    package var lastPage: UInt64 = 0
    /// The transaction that wrote the meta page used.
    package var txnid: UInt64 = 0
    /// Which meta page (0 or 1) was used: the valid one with the larger txnid, as LMDB picks it.
    package var metaPage = 0
    /// Pages the free-page table lists as free.
    package var freePages = 0
    package var fileSize: UInt64 = 0

    package var isClean: Bool { problems.isEmpty && omittedProblems == 0 }

    /// Pages per named table (and the main and free-page tables under their display names).
    package var pagesPerTable: [String: Int] {
        Dictionary(tables.map { ($0.name, $0.pages) }, uniquingKeysWith: +)
    }

    /// One line per table, e.g. `table "term": 37 pages (1 branch, 36 leaf, 0 overflow), 2961 entries, depth 2`.
    package var summary: [String] {
        let head = "data file: \(fileSize) bytes, \(pageSize)-byte pages, last page \(lastPage), txnid \(txnid) (meta page \(metaPage)), \(freePages) free pages"
        return [head] + tables.map { t in
            let name = t.kind == .named ? "table \"\(t.name)\"" : t.name
            let dups = t.duplicatePages > 0 ? ", \(t.duplicatePages) in duplicate sub-trees" : ""
            return "\(name): \(t.pages) pages (\(t.branchPages) branch, \(t.leafPages) leaf, \(t.overflowPages) overflow\(dups)), \(t.entries) entries, depth \(t.recordedDepth)\(t.damaged ? ", damaged" : "")"
        }
    }
}

/// A read-only structural check of an LMDB 0.9 data file (`data.mdb`) that never lets LMDB touch
/// it: the file is read with `pread`, page by page, and every field is bounds-checked before it
/// is used, so that any damage becomes a sentence in the report instead of a crash.
///
/// It reads both meta pages and picks the valid one with the larger txnid, as LMDB does, then
/// walks the main table's B-tree, every named table it lists and the free-page table, checking
/// each page (its number, flags, free-space bounds, node offsets and sizes, that the nodes tile
/// the node area exactly as LMDB packs them, key order and the parent's key range, overflow
/// runs, child page numbers, depth) and each tree's counts against its `MDB_db` record, and
/// finally that every page up to the last is either in exactly one tree or listed as free.
///
/// Work and memory are bounded by the file: each page is read at most once (a bitmap of pages
/// seen, sized by the file, also catches cycles), recursion by LMDB's 32-level cursor stack.
///
/// Layouts are those of LMDB 0.9.24 (`mdb.c`) on a 64-bit little-endian machine: `pgno_t` and
/// `size_t` are 8 bytes, `indx_t` 2, `PAGEBASE` 0 (not an `MDB_DEVEL` build).
package struct PageWalker {
    /// Checks the data file at `path` (or `path/data.mdb` when `path` is a directory), keeping at
    /// most `limit` problem sentences.
    ///
    /// Throws `.notFound` or `.io` when the file cannot be read, and `.foreignFormat` when it is
    /// not an LMDB data file at all (empty, or no meta page with LMDB's magic number); damage to
    /// an LMDB file, including to one or both meta pages, is reported as problems.
    package static func check(dataFile path: String, limit: Int = 1000) throws -> PageReport {
        var file = path
        var info = stat()
        guard stat(file, &info) == 0 else {
            let code = errno
            throw SparseDBError(code == ENOENT ? .notFound : .io, "\(file): \(String(cString: strerror(code)))")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            file += "/data.mdb"
            guard stat(file, &info) == 0 else {
                let code = errno
                throw SparseDBError(code == ENOENT ? .notFound : .io, "\(file): \(String(cString: strerror(code)))")
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SparseDBError(.invalidInput, "\(file) is not a regular file")
        }
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw SparseDBError(code == ENOENT ? .notFound : .io, "\(file): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        let walk = Walk(fd: fd, path: file, fileSize: UInt64(max(0, info.st_size)), limit: limit)
        return try walk.run()
    }
}

// MARK: - Layout (LMDB 0.9.24, mdb.c and lmdb.h, x86_64)

private enum Layout {
    /// `PAGEHDRSZ` = offsetof(MDB_page, mp_ptrs): mp_pgno (8), mp_pad (2), mp_flags (2),
    /// mp_lower (2), mp_upper (2) — or, for overflow pages, mp_pages (4) in place of lower/upper.
    static let pageHeader = 16
    static let pgnoOffset = 0, padOffset = 8, flagsOffset = 10, lowerOffset = 12, upperOffset = 14, pagesOffset = 12

    // Page flags (mp_flags).
    static let pBranch = 0x01, pLeaf = 0x02, pOverflow = 0x04, pMeta = 0x08, pDirty = 0x10, pLeaf2 = 0x20, pSubp = 0x40

    /// `NODESIZE` = offsetof(MDB_node, mn_data): mn_lo, mn_hi (data size, or with mn_flags the
    /// child page number on branch pages), mn_flags, mn_ksize, each a 16-bit word.
    static let nodeHeader = 8
    // Node flags (mn_flags, leaf pages).
    static let fBigData = 0x01, fSubData = 0x02, fDupData = 0x04

    /// `MDB_db`: md_pad u32, md_flags u16, md_depth u16, then md_branch_pages, md_leaf_pages,
    /// md_overflow_pages, md_entries, md_root, each 8 bytes.
    static let dbRecord = 48

    /// `MDB_meta`, after the page header: mm_magic u32, mm_version u32, mm_address (8),
    /// mm_mapsize (8), mm_dbs[2] (FREE_DBI, MAIN_DBI), mm_last_pg (8), mm_txnid (8).
    static let magicOffset = 16, versionOffset = 20, addressOffset = 24, mapSizeOffset = 32
    static let freeDBOffset = 40, mainDBOffset = 88, lastPageOffset = 136, txnidOffset = 144
    static let metaEnd = 152
    static let magic: UInt32 = 0xBEEF_C0DE
    static let dataVersion: UInt32 = 1

    // Table flags (md_flags; lmdb.h).
    static let reverseKey = 0x02, dupSort = 0x04, integerKey = 0x08, dupFixed = 0x10, integerDup = 0x20, reverseDup = 0x40
    static let persistentTableFlags = reverseKey | dupSort | integerKey | dupFixed | integerDup | reverseDup

    /// `P_INVALID`: the root of an empty tree.
    static let invalidPage = UInt64.max
    /// `MDB_MAXKEYSIZE`.
    static let maxKeySize = 511
    /// `CURSOR_STACK`: no tree LMDB can read is deeper.
    static let maxDepth = 32
    /// Page sizes LMDB 0.9 can have written (the OS page size, at most `MAX_PAGESIZE` = 32 KiB).
    static let pageSizes = [4096, 8192, 16384, 32768, 2048, 1024, 512]
}

/// An `MDB_db` record.
private struct DBRecord {
    var pad: UInt32
    var flags: Int
    var depth: Int
    var branchPages: UInt64
    var leafPages: UInt64
    var overflowPages: UInt64
    var entries: UInt64
    var root: UInt64

    init(_ b: Bytes, at o: Int) {
        pad = b.u32(o)
        flags = b.u16(o + 4)
        depth = b.u16(o + 6)
        branchPages = b.u64(o + 8)
        leafPages = b.u64(o + 16)
        overflowPages = b.u64(o + 24)
        entries = b.u64(o + 32)
        root = b.u64(o + 40)
    }
}

/// Bytes read from the file. Every accessor is total: it returns 0 (or an empty key) outside the
/// buffer instead of trapping, although callers check bounds before reading.
private struct Bytes {
    var raw: [UInt8]

    init(count: Int) { raw = [UInt8](repeating: 0, count: count) }

    var count: Int { raw.count }

    func contains(_ offset: Int, _ length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= raw.count && length <= raw.count - offset
    }

    func u16(_ o: Int) -> Int {
        guard o >= 0 && o <= raw.count - 2 else { return 0 }
        return Int(raw[o]) | Int(raw[o + 1]) << 8
    }

    func u32(_ o: Int) -> UInt32 {
        guard contains(o, 4) else { return 0 }
        var v: UInt32 = 0
        for i in (0..<4).reversed() { v = v << 8 | UInt32(raw[o + i]) }
        return v
    }

    func u64(_ o: Int) -> UInt64 {
        guard contains(o, 8) else { return 0 }
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(raw[o + i]) }
        return v
    }

    func slice(_ o: Int, _ length: Int) -> ArraySlice<UInt8> {
        guard contains(o, length) else { return [] }
        return raw[o..<(o + length)]
    }
}

/// How a tree orders its keys (`mdb_default_cmp`).
private enum KeyOrder {
    /// `mdb_cmp_memn`: memcmp, then the shorter first.
    case lexical
    /// `mdb_cmp_memnr`: bytes compared from the end.
    case reverse
    /// `mdb_cmp_cint` / `mdb_cmp_long`: unsigned little-endian integers of one size.
    case integer

    init(tableFlags f: Int) {
        self = (f & Layout.reverseKey) != 0 ? .reverse : (f & Layout.integerKey) != 0 ? .integer : .lexical
    }

    init(duplicateFlags f: Int) {
        self = (f & Layout.integerDup) != 0 ? .integer : (f & Layout.reverseDup) != 0 ? .reverse : .lexical
    }

    /// -1, 0 or 1; `nil` when integer keys differ in size (LMDB compares them wrongly then).
    func compare(_ a: Key, _ b: Key) -> Int? {
        guard a.isValid && b.isValid else { return 0 }  // never: keys are made from checked nodes
        if self == .integer && a.count != b.count { return nil }
        if a.count == 0 || b.count == 0 { return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1) }
        return a.bytes.withUnsafeBufferPointer { pa in
            b.bytes.withUnsafeBufferPointer { pb in
                let x = pa.baseAddress! + a.start, y = pb.baseAddress! + b.start
                switch self {
                case .lexical:
                    let c = memcmp(x, y, min(a.count, b.count))
                    if c != 0 { return c < 0 ? -1 : 1 }
                case .reverse, .integer:
                    // From the last byte down (little-endian integers compare the same way).
                    var i = a.count, j = b.count
                    while i > 0 && j > 0 {
                        i -= 1
                        j -= 1
                        if x[i] != y[j] { return x[i] < y[j] ? -1 : 1 }
                    }
                }
                return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
            }
        }
    }
}

/// A key: `count` bytes at `start` in a page's (or a parent page's) buffer.
private struct Key {
    var bytes: [UInt8]
    var start: Int
    var count: Int

    var isValid: Bool { start >= 0 && count >= 0 && start <= bytes.count && count <= bytes.count - start }
    var slice: ArraySlice<UInt8> { isValid ? bytes[start..<(start + count)] : [] }
}

/// A set of page numbers below a bound fixed by the file's size.
private struct PageSet {
    private var words: [UInt64]
    let bound: UInt64

    init(bound: UInt64) {
        self.bound = bound
        words = [UInt64](repeating: 0, count: Int((bound + 63) / 64))
    }

    func contains(_ p: UInt64) -> Bool {
        p < bound && words[Int(p / 64)] & (1 << (p % 64)) != 0
    }

    /// Adds `p`; false if it was there already (or is out of range).
    mutating func insert(_ p: UInt64) -> Bool {
        guard p < bound else { return false }
        let i = Int(p / 64), bit: UInt64 = 1 << (p % 64)
        if words[i] & bit != 0 { return false }
        words[i] |= bit
        return true
    }
}

/// The tree being walked.
private struct Tree {
    enum Kind { case freePages, main, named, duplicates }
    var label: String
    var kind: Kind
    var order: KeyOrder
    var record: DBRecord
    /// Named tables with `MDB_DUPSORT`: leaf nodes may hold sub-pages and sub-trees.
    var dupSort = false
    var dupFixed = false
    var dupOrder = KeyOrder.lexical
    /// `MDB_DUPFIXED` sub-trees: leaf pages are `P_LEAF2`, keys of this size without nodes.
    var leaf2KeySize: Int?
}

/// What a walk of one tree found.
private struct Counts {
    var branchPages = 0
    var leafPages = 0
    var overflowPages = 0
    var duplicatePages = 0
    var entries: UInt64 = 0
    var damaged = false
    /// The level of the first leaf (all leaves must be at one level).
    var leafLevel: Int?
}

/// One node of a branch or leaf page, with its bounds checked.
private struct Node {
    var offset: Int
    var size: Int
    var flags: Int
    var keySize: Int
    /// Leaf: the data size. Branch: unused.
    var dataSize: Int
    /// Branch: the child page.
    var child: UInt64
    var dataOffset: Int { offset + Layout.nodeHeader + keySize }
}

private final class Walk {
    let fd: Int32
    let path: String
    let fileSize: UInt64
    let limit: Int
    var report = PageReport()

    var pageSize = 4096
    var lastPage: UInt64 = 0
    /// Pages that can be read: up to the last page and inside the file.
    var readable: UInt64 = 0
    var txnid: UInt64 = 0
    var nodeMax = 0
    var used = PageSet(bound: 0)
    var free = PageSet(bound: 0)

    init(fd: Int32, path: String, fileSize: UInt64, limit: Int) {
        self.fd = fd
        self.path = path
        self.fileSize = fileSize
        self.limit = limit
        report.fileSize = fileSize
    }

    // MARK: Reporting

    func problem(_ what: String) {
        if report.problems.count < limit {
            report.problems.append(what)
        } else {
            report.omittedProblems += 1
        }
    }

    func problem(_ tree: Tree, _ page: UInt64, _ what: String, _ counts: inout Counts) {
        counts.damaged = true
        problem("\(tree.label), page \(page): \(what)")
    }

    static func hex(_ v: Int) -> String { "0x" + String(v, radix: 16) }

    static func quoted(_ bytes: ArraySlice<UInt8>) -> String {
        var s = "\""
        for b in bytes {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
                s.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
            }
        }
        return s + "\""
    }

    // MARK: Reading

    /// Reads `buffer.count` bytes at `offset`; false on a short read or an error.
    func read(_ offset: UInt64, into buffer: inout Bytes) -> Bool {
        let total = buffer.count
        guard total > 0 else { return true }
        guard offset <= UInt64(Int64.max) - UInt64(total) else { return false }
        var done = 0
        let ok: Bool = buffer.raw.withUnsafeMutableBytes { raw in
            while done < total {
                let n = pread(fd, raw.baseAddress! + done, total - done, off_t(offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        return ok
    }

    func readPage(_ pgno: UInt64) -> Bytes? {
        var page = Bytes(count: pageSize)
        return read(pgno * UInt64(pageSize), into: &page) ? page : nil
    }

    // MARK: Meta pages

    struct Meta {
        var page: Int
        var flags: Int
        var pgno: UInt64
        var magic: UInt32
        var version: UInt32
        var pageSize: Int
        var free: DBRecord
        var main: DBRecord
        var lastPage: UInt64
        var txnid: UInt64

        init(page: Int, _ b: Bytes) {
            self.page = page
            pgno = b.u64(Layout.pgnoOffset)
            flags = b.u16(Layout.flagsOffset)
            magic = b.u32(Layout.magicOffset)
            version = b.u32(Layout.versionOffset)
            free = DBRecord(b, at: Layout.freeDBOffset)
            main = DBRecord(b, at: Layout.mainDBOffset)
            pageSize = Int(free.pad)  // mm_psize is mm_dbs[FREE_DBI].md_pad
            lastPage = b.u64(Layout.lastPageOffset)
            txnid = b.u64(Layout.txnidOffset)
        }

        var hasMagic: Bool { magic == Layout.magic }

        /// What is wrong with this meta page, or nil. LMDB itself (`mdb_env_read_header`) checks
        /// the flag, the magic and the version, and refuses the file if either page fails.
        func damage(expectedPageSize: Int?) -> String? {
            if !hasMagic { return "magic number is \(Walk.hex(Int(magic))), not LMDB's 0xbeefc0de" }
            if (flags & Layout.pMeta) == 0 { return "page flags \(Walk.hex(flags)) lack P_META" }
            if flags != Layout.pMeta { return "page flags \(Walk.hex(flags)) are not just P_META" }
            if version != Layout.dataVersion { return "data format version is \(version), not \(Layout.dataVersion)" }
            if pgno != UInt64(page) { return "page header says it is page \(pgno)" }
            if !Layout.pageSizes.contains(pageSize) { return "page size \(pageSize) is not one LMDB uses" }
            if let expectedPageSize, pageSize != expectedPageSize {
                return "page size \(pageSize) differs from the other meta page's \(expectedPageSize)"
            }
            if lastPage < 1 { return "last page \(lastPage) is impossible" }
            return nil
        }
    }

    func readMeta(_ page: Int, at offset: UInt64) -> Meta? {
        var b = Bytes(count: Layout.metaEnd)
        return read(offset, into: &b) ? Meta(page: page, b) : nil
    }

    // MARK: The walk

    func run() throws -> PageReport {
        guard fileSize > 0 else {
            throw SparseDBError(.foreignFormat, "\(path) is empty: not an LMDB data file")
        }
        // Meta page 0 is at offset 0; page 1 at offset mm_psize of page 0 (as LMDB reads them).
        let meta0 = readMeta(0, at: 0)
        var meta1: Meta?
        if let meta0, meta0.hasMagic, Layout.pageSizes.contains(meta0.pageSize) {
            meta1 = readMeta(1, at: UInt64(meta0.pageSize))
        } else {
            // Page 0 is damaged: look for page 1 at each page size LMDB could have used.
            for size in Layout.pageSizes {
                if let m = readMeta(1, at: UInt64(size)), m.hasMagic, m.pageSize == size {
                    meta1 = m
                    break
                }
            }
        }
        guard meta0?.hasMagic == true || meta1?.hasMagic == true else {
            if fileSize < UInt64(Layout.metaEnd) {
                throw SparseDBError(.foreignFormat, "\(path) is only \(fileSize) bytes and holds no LMDB meta page: not an LMDB data file")
            }
            throw SparseDBError(.foreignFormat, "\(path) has no LMDB meta page (magic number 0xbeefc0de): not an LMDB data file")
        }

        let damage0 = meta0.map { $0.damage(expectedPageSize: nil) } ?? "cannot be read: the file is only \(fileSize) bytes"
        let damage1 = meta1.map { $0.damage(expectedPageSize: damage0 == nil ? meta0?.pageSize : nil) }
            ?? "cannot be read: the file ends before it"
        if let damage0 { problem("meta page 0: \(damage0)") }
        if let damage1 { problem("meta page 1: \(damage1)") }
        // LMDB (mdb_env_pick_meta) takes page 1 only if its txnid is larger: page 0 on a tie.
        let valid0 = damage0 == nil ? meta0 : nil, valid1 = damage1 == nil ? meta1 : nil
        let chosen: Meta?
        if let valid0, let valid1 {
            chosen = valid0.txnid < valid1.txnid ? valid1 : valid0
        } else {
            chosen = valid0 ?? valid1
        }
        guard let meta = chosen else {
            problem("no valid meta page: LMDB cannot open this file; restore it from a copy")
            return report
        }
        // LMDB writes transaction t into meta page t % 2, so once both pages have been written
        // their ids are consecutive. Ids further apart mean a damaged id, and LMDB may then open
        // an older snapshot than the last commit (silently losing it): report it. (A page still
        // at id 0, as in a new or freshly copied file, is not compared.)
        if let valid0, let valid1, min(valid0.txnid, valid1.txnid) > 0,
            max(valid0.txnid, valid1.txnid) - min(valid0.txnid, valid1.txnid) != 1 {
            problem(
                "meta pages: transaction ids \(valid0.txnid) (page 0) and \(valid1.txnid) (page 1) are not consecutive: one is damaged, and LMDB opens page \(meta.page), which may be an older snapshot than the last commit; restore from a copy")
        } else if let valid0, let valid1, min(valid0.txnid, valid1.txnid) > 0 {
            // Consecutive ids can still be a damaged one (the older page's id raised by exactly
            // two). The file's last page never goes down from one commit to the next, so a newer
            // page recording an earlier last page than the older one is an older snapshot.
            let (older, newer) = valid0.txnid < valid1.txnid ? (valid0, valid1) : (valid1, valid0)
            if newer.lastPage < older.lastPage {
                problem(
                    "meta pages: page \(newer.page) (transaction \(newer.txnid)) records last page \(newer.lastPage), before page \(older.page)'s (transaction \(older.txnid)) \(older.lastPage), which a later commit cannot do: its transaction id is damaged, and LMDB opens it, an older snapshot than the last commit; restore from a copy")
            }
        }
        pageSize = meta.pageSize
        lastPage = meta.lastPage
        txnid = meta.txnid
        nodeMax = (((pageSize - Layout.pageHeader) / 2) & ~1) - 2
        report.pageSize = pageSize
        report.lastPage = lastPage
        report.txnid = txnid
        report.metaPage = meta.page

        // The file must hold every page up to the last one.
        let filePages = fileSize / UInt64(pageSize)
        if lastPage >= filePages {
            let needed = lastPage.multipliedReportingOverflow(by: UInt64(pageSize))
            let end = needed.overflow ? "past 2^64" : "at byte \(needed.partialValue + UInt64(pageSize))"
            problem("file: \(fileSize) bytes, but meta page \(meta.page) says the last page is \(lastPage), which ends \(end): the file was truncated (or the meta page is damaged)")
        }
        readable = lastPage < filePages ? lastPage + 1 : filePages
        used = PageSet(bound: readable)
        free = PageSet(bound: readable)
        _ = used.insert(0)
        _ = used.insert(1)

        // The main table, then each named table it lists, then the free-page table.
        let mainTree = Tree(label: "main table", kind: .main, order: KeyOrder(tableFlags: meta.main.flags), record: meta.main)
        var named: [(name: ArraySlice<UInt8>, record: DBRecord, page: UInt64)] = []
        let mainCounts = walkTree(mainTree) { name, record, page in named.append((name, record, page)) }
        var tables = [summary(mainTree, name: "main table", kind: .main, mainCounts)]

        for table in named {
            let label = "table \(Walk.quoted(table.name))"
            var tree = Tree(label: label, kind: .named, order: KeyOrder(tableFlags: table.record.flags), record: table.record)
            tree.dupSort = table.record.flags & Layout.dupSort != 0
            tree.dupFixed = tree.dupSort && table.record.flags & Layout.dupFixed != 0
            tree.dupOrder = KeyOrder(duplicateFlags: table.record.flags)
            let counts = walkTree(tree) { _, _, _ in }
            tables.append(summary(tree, name: String(decoding: table.name, as: UTF8.self), kind: .named, counts))
        }

        let freeTree = Tree(label: "free-page table", kind: .freePages, order: .integer, record: meta.free)
        let freeCounts = walkTree(freeTree) { _, _, _ in }
        tables.insert(summary(freeTree, name: "free-page table", kind: .freePages, freeCounts), at: 0)
        report.tables = tables

        checkCoverage()
        return report
    }

    func summary(_ tree: Tree, name: String, kind: PageReport.TableKind, _ c: Counts) -> PageReport.Table {
        var t = PageReport.Table(
            name: name, kind: kind, root: tree.record.root == Layout.invalidPage ? nil : tree.record.root,
            recordedDepth: tree.record.depth, recordedEntries: tree.record.entries,
            recordedBranchPages: tree.record.branchPages, recordedLeafPages: tree.record.leafPages,
            recordedOverflowPages: tree.record.overflowPages)
        t.branchPages = c.branchPages
        t.leafPages = c.leafPages
        t.overflowPages = c.overflowPages
        t.duplicatePages = c.duplicatePages
        t.entries = c.entries
        t.damaged = c.damaged
        return t
    }

    /// Every page from 2 to the last must be in exactly one tree or listed as free
    /// ("Each non-metapage up to mm_last_pg is reachable exactly once in the snapshot", mdb.c).
    func checkCoverage() {
        guard readable > 2 else { return }
        var both: [UInt64] = [], neither: [UInt64] = []
        var bothCount = 0, neitherCount = 0
        for p in 2..<readable {
            let u = used.contains(p), f = free.contains(p)
            if u && f {
                bothCount += 1
                if both.count < 8 { both.append(p) }
            } else if !u && !f {
                neitherCount += 1
                if neither.count < 8 { neither.append(p) }
            }
        }
        func list(_ pages: [UInt64], _ count: Int) -> String {
            pages.map(String.init).joined(separator: ", ") + (count > pages.count ? ", …" : "")
        }
        if bothCount > 0 {
            problem("free list: \(bothCount) page\(bothCount == 1 ? " is" : "s are") in use by a table and also listed as free (\(list(both, bothCount))): a write would reuse them and destroy data")
        }
        if neitherCount > 0 {
            problem("file: \(neitherCount) page\(neitherCount == 1 ? " is" : "s are") in no table and not in the free list (\(list(neither, neitherCount))): lost from a damaged tree, or leaked")
        }
    }

    // MARK: Trees

    /// Walks `tree` from its root; `onTable` receives each named-table record of the main table.
    func walkTree(_ tree: Tree, onTable: (ArraySlice<UInt8>, DBRecord, UInt64) -> Void) -> Counts {
        var counts = Counts()
        let r = tree.record
        if let bad = recordDamage(tree) {
            counts.damaged = true
            problem("\(tree.label): \(bad)")
        }
        if r.root == Layout.invalidPage {
            if r.depth != 0 || r.branchPages != 0 || r.leafPages != 0 || r.overflowPages != 0 || r.entries != 0 {
                counts.damaged = true
                problem("\(tree.label): empty (no root page), but its record says depth \(r.depth), \(r.branchPages) branch, \(r.leafPages) leaf and \(r.overflowPages) overflow pages, \(r.entries) entries")
            }
            return counts
        }
        if r.depth < 1 || r.depth > Layout.maxDepth {
            counts.damaged = true
            problem("\(tree.label): recorded depth \(r.depth) is impossible (1…\(Layout.maxDepth))")
        }
        guard claim(r.root, tree, from: "its root", &counts) else { return counts }
        visit(r.root, level: 1, low: nil, high: nil, tree, &counts, onTable)

        if !counts.damaged {
            var wrong: [String] = []
            if UInt64(counts.branchPages) != r.branchPages { wrong.append("\(counts.branchPages) branch pages (record: \(r.branchPages))") }
            if UInt64(counts.leafPages) != r.leafPages { wrong.append("\(counts.leafPages) leaf pages (record: \(r.leafPages))") }
            if UInt64(counts.overflowPages) != r.overflowPages { wrong.append("\(counts.overflowPages) overflow pages (record: \(r.overflowPages))") }
            if counts.entries != r.entries { wrong.append("\(counts.entries) entries (record: \(r.entries))") }
            if !wrong.isEmpty {
                counts.damaged = true
                problem("\(tree.label): the tree holds \(wrong.joined(separator: ", ")): its record is damaged")
            }
        }
        return counts
    }

    /// What is wrong with the fields of a tree's record that LMDB sets once (mdb_dbi_open,
    /// mdb_cursor_put's sub-tree set-up): md_pad is 0 except in MDB_DUPFIXED sub-trees, where
    /// it is the fixed item size.
    func recordDamage(_ tree: Tree) -> String? {
        let r = tree.record
        switch tree.kind {
        case .freePages:
            return nil  // md_pad and md_flags of FREE_DBI hold the page size and environment flags
        case .main, .named:
            if r.flags & ~Layout.persistentTableFlags != 0 { return "flags \(Walk.hex(r.flags)) include bits LMDB never stores" }
            if r.pad != 0 { return "unused record field md_pad is \(r.pad), not 0 as LMDB writes it" }
        case .duplicates:
            let expected = tree.dupFixed ? Layout.dupFixed | (tree.dupOrder == .integer ? Layout.integerKey : 0) : 0
            if r.flags != expected { return "flags \(Walk.hex(r.flags)), not \(Walk.hex(expected)) as LMDB sets them for this table's duplicates" }
            if tree.dupFixed ? !(1...Layout.maxKeySize).contains(Int(r.pad)) : r.pad != 0 {
                return "item size field md_pad is \(r.pad)\(tree.dupFixed ? "" : ", not 0 as LMDB writes it")"
            }
        }
        return nil
    }

    /// Takes page `pgno` (and `extra` pages after it) for a tree: false, with the problem
    /// reported, if it is a meta page, past the last page, beyond the file or already taken.
    func claim(_ pgno: UInt64, _ tree: Tree, from: @autoclosure () -> String, extra: UInt64 = 0, _ counts: inout Counts) -> Bool {
        var what: String { "\(tree.label): \(from()) is page \(pgno)" }
        if pgno < 2 {
            counts.damaged = true
            problem("\(what), a meta page")
            return false
        }
        if pgno > lastPage || extra > lastPage - pgno {
            counts.damaged = true
            problem(extra == 0 ? "\(what), past the last page \(lastPage)" : "\(what), whose \(extra + 1)-page run ends past the last page \(lastPage)")
            return false
        }
        if pgno + extra >= readable {
            counts.damaged = true
            problem("\(what), beyond the end of the truncated file")
            return false
        }
        for p in pgno...(pgno + extra) where !used.insert(p) {
            counts.damaged = true
            problem(p == pgno ? "\(what), which was reached before: a cycle, or a page shared by two trees"
                : "\(what), whose run includes page \(p), which was reached before")
            return false
        }
        return true
    }

    /// Checks page `pgno` of `tree` at `level` (root = 1), whose keys must lie in [low, high).
    func visit(
        _ pgno: UInt64, level: Int, low: Key?, high: Key?, _ tree: Tree,
        _ counts: inout Counts, _ onTable: (ArraySlice<UInt8>, DBRecord, UInt64) -> Void
    ) {
        guard let page = readPage(pgno) else {
            problem(tree, pgno, "cannot be read", &counts)
            return
        }
        let fieldPgno = page.u64(Layout.pgnoOffset)
        if fieldPgno != pgno {
            problem(tree, pgno, "its header says it is page \(fieldPgno)", &counts)
            return
        }
        let flags = page.u16(Layout.flagsOffset)
        let pad = page.u16(Layout.padOffset)
        let isBranch = flags == Layout.pBranch
        let isLeaf2 = flags == Layout.pLeaf | Layout.pLeaf2 && tree.leaf2KeySize != nil
        let isLeaf = flags == Layout.pLeaf || isLeaf2
        guard isBranch || isLeaf else {
            problem(tree, pgno, "flags \(Walk.hex(flags)) are not those of a branch or leaf page\(Walk.describeFlags(flags))", &counts)
            return
        }
        if isLeaf2 {
            if pad != tree.leaf2KeySize {
                problem(tree, pgno, "fixed-size key length \(pad) differs from the tree's \(tree.leaf2KeySize ?? 0)", &counts)
                return
            }
        } else if pad != 0 {
            problem(tree, pgno, "unused header field mp_pad is \(pad), not 0 as LMDB writes it", &counts)
            return
        }
        let lower = page.u16(Layout.lowerOffset), upper = page.u16(Layout.upperOffset)
        if lower < Layout.pageHeader || lower % 2 != 0 || upper > pageSize || lower > upper {
            problem(tree, pgno, "free-space bounds (lower \(lower), upper \(upper)) are impossible in a \(pageSize)-byte page", &counts)
            return
        }
        let n = (lower - Layout.pageHeader) / 2
        if n == 0 {
            problem(tree, pgno, "\(isBranch ? "branch" : "leaf") page has no entries", &counts)
            return
        }
        if isBranch && n < 2 && tree.kind != .freePages {
            problem(tree, pgno, "branch page has a single child (LMDB asserts at least two)", &counts)
            return
        }
        // Depth: every leaf is at the recorded depth, every branch above it.
        let depth = tree.record.depth
        let depthKnown = (1...Layout.maxDepth).contains(depth)
        if isBranch && (depthKnown ? level >= depth : level >= Layout.maxDepth) {
            problem(tree, pgno, "branch page at level \(level), but the tree's record says depth \(depth)", &counts)
            return
        }
        if isLeaf {
            if depthKnown && level != depth {
                problem(tree, pgno, "leaf page at level \(level), but the tree's record says depth \(depth)", &counts)
                return
            }
            if let first = counts.leafLevel, first != level {
                problem(tree, pgno, "leaf page at level \(level), but other leaves are at level \(first)", &counts)
                return
            }
            counts.leafLevel = level
        }

        if isLeaf2 {
            let ks = tree.leaf2KeySize ?? 0
            guard ks > 0, Layout.pageHeader + n * ks <= pageSize, upper - lower == pageSize - Layout.pageHeader - n * ks else {
                problem(tree, pgno, "\(n) fixed-size keys of \(ks) bytes do not fit the free-space bounds (lower \(lower), upper \(upper))", &counts)
                return
            }
            let keys = (0..<n).map { Key(bytes: page.raw, start: Layout.pageHeader + $0 * ks, count: ks) }
            if let bad = checkOrder(keys, from: 0, low: low, high: high, tree.order) {
                problem(tree, pgno, bad, &counts)
                return
            }
            counts.leafPages += 1
            counts.entries += UInt64(n)
            return
        }

        // Nodes: offsets inside the node area, sizes inside the page, packed without gaps.
        var nodes: [Node] = []
        nodes.reserveCapacity(n)
        for i in 0..<n {
            let offset = page.u16(Layout.pageHeader + 2 * i)
            if offset < upper || offset % 2 != 0 || offset > pageSize - Layout.nodeHeader {
                problem(tree, pgno, "node \(i) is at offset \(offset), outside the node area [\(upper), \(pageSize))", &counts)
                return
            }
            let lo = page.u16(offset), hi = page.u16(offset + 2), nflags = page.u16(offset + 4), ksize = page.u16(offset + 6)
            var node = Node(offset: offset, size: 0, flags: nflags, keySize: ksize, dataSize: 0, child: 0)
            var size = Layout.nodeHeader + ksize
            if isBranch {
                node.child = UInt64(lo) | UInt64(hi) << 16 | UInt64(nflags) << 32
            } else {
                node.dataSize = lo | hi << 16
                size += (nflags & Layout.fBigData) != 0 ? 8 : node.dataSize
            }
            node.size = (size + 1) & ~1
            if node.size > pageSize - offset {
                problem(tree, pgno, "node \(i) at offset \(offset) (key \(ksize) bytes\(isBranch ? "" : ", data \(node.dataSize) bytes")) runs past the end of the page", &counts)
                return
            }
            if ksize > Layout.maxKeySize {
                problem(tree, pgno, "node \(i) has a key of \(ksize) bytes, more than LMDB's \(Layout.maxKeySize)", &counts)
                return
            }
            nodes.append(node)
        }
        // Sorted by offset (packed as offset << 16 | size: both below 2^16), they must tile
        // [upper, pageSize) exactly.
        var packed = nodes.map { $0.offset << 16 | $0.size }
        if !Walk.isIncreasing(packed) {
            packed.reverse()  // the usual order: LMDB adds each node below the previous ones
            if !Walk.isIncreasing(packed) { packed.sort() }
        }
        var expected = upper
        for p in packed {
            let offset = p >> 16
            if offset != expected {
                problem(tree, pgno, offset > expected
                    ? "gap before the node at offset \(offset): the node sizes do not add up (LMDB packs nodes)"
                    : "node at offset \(offset) overlaps the one before it", &counts)
                return
            }
            expected = offset + (p & 0xFFFF)
        }
        if expected != pageSize {
            problem(tree, pgno, "the nodes end at offset \(expected), not at the end of the page", &counts)
            return
        }
        let keys = nodes.map { Key(bytes: page.raw, start: $0.offset + Layout.nodeHeader, count: $0.keySize) }
        if let bad = checkOrder(keys, from: isBranch ? 1 : 0, low: low, high: high, tree.order) {
            problem(tree, pgno, bad, &counts)
            return
        }

        if isBranch {
            counts.branchPages += 1
            for (i, node) in nodes.enumerated() {
                let childLow = i == 0 ? low : keys[i]
                let childHigh = i + 1 < nodes.count ? keys[i + 1] : high
                if claim(node.child, tree, from: "page \(pgno), child \(i),", &counts) {
                    visit(node.child, level: level + 1, low: childLow, high: childHigh, tree, &counts, onTable)
                }
            }
            return
        }

        counts.leafPages += 1
        for (i, node) in nodes.enumerated() {
            checkLeafNode(node, key: keys[i], index: i, page: page, pgno: pgno, tree, &counts, onTable)
        }
    }

    static func isIncreasing(_ values: [Int]) -> Bool {
        var i = 1
        while i < values.count {
            if values[i - 1] >= values[i] { return false }
            i += 1
        }
        return true
    }

    static func describeFlags(_ f: Int) -> String {
        if f & Layout.pMeta != 0 { return " (a meta page)" }
        if f == Layout.pOverflow { return " (an overflow page)" }
        if f & Layout.pDirty != 0 { return " (P_DIRTY is never written to the file)" }
        return ""
    }

    /// The first key-order problem among `keys[from...]`: increasing, inside [low, high).
    func checkOrder(_ keys: [Key], from: Int, low: Key?, high: Key?, _ order: KeyOrder) -> String? {
        guard from < keys.count else { return nil }
        for i in from..<keys.count {
            if order == .integer && keys[i].count != 4 && keys[i].count != 8 {
                return "key \(i) is \(keys[i].count) bytes, not an integer key (4 or 8 bytes)"
            }
            if i > from {
                guard let c = order.compare(keys[i - 1], keys[i]) else { return "integer keys \(i - 1) and \(i) differ in size" }
                if c >= 0 { return "key \(i) is not greater than key \(i - 1): keys out of order" }
            }
        }
        if let low {
            let c = order.compare(low, keys[from])
            if c == nil || c! > 0 { return "key \(from) is below the range its parent branch gives this page" }
        }
        if let high {
            let c = order.compare(keys[keys.count - 1], high)
            if c == nil || c! >= 0 { return "key \(keys.count - 1) is not below the next key in its parent branch" }
        }
        return nil
    }

    func checkLeafNode(
        _ node: Node, key: Key, index i: Int, page: Bytes, pgno: UInt64, _ tree: Tree, _ counts: inout Counts,
        _ onTable: (ArraySlice<UInt8>, DBRecord, UInt64) -> Void
    ) {
        let f = node.flags
        let allowed: Bool
        switch tree.kind {
        case .freePages: allowed = f == 0 || f == Layout.fBigData
        case .main: allowed = f == 0 || f == Layout.fBigData || f == Layout.fSubData
        case .named: allowed = f == 0 || f == Layout.fBigData || (tree.dupSort && (f == Layout.fDupData || f == Layout.fDupData | Layout.fSubData))
        case .duplicates: allowed = f == 0 && node.dataSize == 0
        }
        guard allowed else {
            problem(tree, pgno, "node \(i) has flags \(Walk.hex(f)) and \(node.dataSize) data bytes, which this table cannot hold", &counts)
            return
        }
        if f & Layout.fBigData == 0 && Layout.nodeHeader + node.keySize + node.dataSize > nodeMax {
            problem(tree, pgno, "node \(i) holds \(node.dataSize) data bytes in the page, more than LMDB puts there", &counts)
            return
        }
        if f == Layout.fBigData {
            // The data is on an overflow run whose first page number is the node's data.
            let first = page.u64(node.dataOffset)
            let needed = UInt64((Layout.pageHeader - 1 + node.dataSize) / pageSize + 1)  // OVPAGES
            guard let run = checkOverflow(first, needed: needed, node: i, pgno: pgno, tree, &counts) else { return }
            counts.overflowPages += Int(run)
            counts.entries += 1
            if tree.kind == .freePages {
                readFreeList(key: key.slice, dataAt: first * UInt64(pageSize) + UInt64(Layout.pageHeader), size: node.dataSize, inline: nil, pgno: pgno, tree, &counts)
            }
            return
        }
        switch tree.kind {
        case .freePages:
            counts.entries += 1
            readFreeList(key: key.slice, dataAt: 0, size: node.dataSize, inline: page.slice(node.dataOffset, node.dataSize), pgno: pgno, tree, &counts)
        case .main:
            counts.entries += 1
            if f == Layout.fSubData {
                guard node.dataSize == Layout.dbRecord else {
                    problem(tree, pgno, "table record \(Walk.quoted(key.slice)) is \(node.dataSize) bytes, not \(Layout.dbRecord)", &counts)
                    return
                }
                onTable(key.slice, DBRecord(page, at: node.dataOffset), pgno)
            }
        case .named:
            if f == Layout.fDupData {
                checkSubPage(page, at: node.dataOffset, size: node.dataSize, node: i, pgno: pgno, tree, &counts)
            } else if f == Layout.fDupData | Layout.fSubData {
                guard node.dataSize == Layout.dbRecord else {
                    problem(tree, pgno, "node \(i): duplicate sub-tree record is \(node.dataSize) bytes, not \(Layout.dbRecord)", &counts)
                    return
                }
                let record = DBRecord(page, at: node.dataOffset)
                var sub = Tree(label: "\(tree.label) (duplicates of key \(i) on page \(pgno))", kind: .duplicates, order: tree.dupOrder, record: record)
                sub.dupFixed = tree.dupFixed
                sub.dupOrder = tree.dupOrder
                if tree.dupFixed { sub.leaf2KeySize = Int(record.pad) }
                let c = walkTree(sub) { _, _, _ in }
                counts.duplicatePages += c.branchPages + c.leafPages + c.overflowPages
                counts.entries += c.entries
                if c.damaged { counts.damaged = true }
            } else {
                counts.entries += 1
            }
        case .duplicates:
            counts.entries += 1
        }
    }

    /// Checks the overflow run starting at `first` that must span at least `needed` pages;
    /// returns its length.
    func checkOverflow(_ first: UInt64, needed: UInt64, node i: Int, pgno: UInt64, _ tree: Tree, _ counts: inout Counts) -> UInt64? {
        var from: String { "page \(pgno), node \(i)'s overflow data" }
        if first < 2 || first > lastPage || first >= readable {
            _ = claim(first, tree, from: from, &counts)  // reports why
            return nil
        }
        guard let head = readPage(first) else {
            problem(tree, first, "cannot be read", &counts)
            return nil
        }
        let fieldPgno = head.u64(Layout.pgnoOffset), flags = head.u16(Layout.flagsOffset)
        let pad = head.u16(Layout.padOffset), pages = UInt64(head.u32(Layout.pagesOffset))
        let problemHere: String? =
            fieldPgno != first ? "overflow page (from page \(pgno), node \(i)): its header says it is page \(fieldPgno)"
            : flags != Layout.pOverflow ? "page \(pgno), node \(i) refers to it as overflow data, but its flags are \(Walk.hex(flags))\(Walk.describeFlags(flags))"
            : pad != 0 ? "overflow page: unused header field mp_pad is \(pad), not 0 as LMDB writes it"
            : pages < needed ? "overflow run of \(pages) pages cannot hold the \(needed) pages of data page \(pgno), node \(i) stores"
            : nil
        if let problemHere {
            problem(tree, first, problemHere, &counts)
            return nil
        }
        guard claim(first, tree, from: from, extra: pages - 1, &counts) else { return nil }
        return pages
    }

    /// A free-page record: key = the txnid that freed the pages, data = an IDL (count, then
    /// that many page numbers in decreasing order, as midl.h keeps them).
    func readFreeList(key: ArraySlice<UInt8>, dataAt offset: UInt64, size: Int, inline: ArraySlice<UInt8>?, pgno: UInt64, _ tree: Tree, _ counts: inout Counts) {
        var k = Bytes(count: 0)
        k.raw = Array(key)
        let id = k.u64(0)
        if key.count != 8 || id > txnid {
            problem(tree, pgno, "free-list key \(id) (\(key.count) bytes) is not the id of a transaction up to \(txnid)", &counts)
            return
        }
        guard size >= 8 && size % 8 == 0 else {
            problem(tree, pgno, "free-list record of transaction \(id) is \(size) bytes, not a list of 8-byte page numbers", &counts)
            return
        }
        // Read the list in chunks, so that a record's size never decides an allocation.
        let chunkIDs = 4096
        var chunk = Bytes(count: 0)
        var chunkStart = 0, chunkEnd = 0  // ID indices held in `chunk`
        func entry(_ index: Int) -> UInt64? {
            if index < chunkStart || index >= chunkEnd {
                let count = min(chunkIDs, size / 8 - index)
                if let inline {
                    chunk.raw = Array(inline.dropFirst(index * 8).prefix(count * 8))
                } else {
                    chunk = Bytes(count: count * 8)
                    guard read(offset + UInt64(index * 8), into: &chunk) else { return nil }
                }
                chunkStart = index
                chunkEnd = index + count
            }
            return chunk.u64((index - chunkStart) * 8)
        }
        guard let count = entry(0) else {
            problem(tree, pgno, "free-list record of transaction \(id) cannot be read", &counts)
            return
        }
        guard count <= UInt64(size / 8 - 1) else {
            problem(tree, pgno, "free-list record of transaction \(id) claims \(count) pages but has room for \(size / 8 - 1)", &counts)
            return
        }
        var previous = UInt64.max
        for index in 1..<(Int(count) + 1) {
            guard let page = entry(index) else {
                problem(tree, pgno, "free-list record of transaction \(id) cannot be read", &counts)
                return
            }
            if page < 2 || page > lastPage {
                problem(tree, pgno, "free list of transaction \(id) lists page \(page), \(page < 2 ? "a meta page" : "past the last page \(lastPage)")", &counts)
                return
            }
            if page >= previous {
                problem(tree, pgno, "free list of transaction \(id) is not in decreasing order (page \(page) after \(previous))", &counts)
                return
            }
            previous = page
            if page < readable && !free.insert(page) {
                problem(tree, pgno, "free list of transaction \(id) lists page \(page), which another record lists too", &counts)
                return
            }
            report.freePages += 1
        }
    }

    /// A sorted-duplicates sub-page: a small leaf page (P_LEAF|P_SUBP, P_LEAF2 for
    /// MDB_DUPFIXED) inside the node's data, whose keys are the data items.
    func checkSubPage(_ page: Bytes, at base: Int, size: Int, node i: Int, pgno: UInt64, _ tree: Tree, _ counts: inout Counts) {
        var what: String { "node \(i)'s duplicates sub-page" }
        guard size >= Layout.pageHeader, page.contains(base, size) else {
            problem(tree, pgno, "\(what) is \(size) bytes, shorter than a page header", &counts)
            return
        }
        let flags = page.u16(base + Layout.flagsOffset)
        let leaf2 = flags & Layout.pLeaf2 != 0
        let known = Layout.pLeaf | Layout.pSubp | Layout.pDirty | Layout.pLeaf2
        if flags & (Layout.pLeaf | Layout.pSubp) != Layout.pLeaf | Layout.pSubp || flags & ~known != 0 || leaf2 != tree.dupFixed {
            problem(tree, pgno, "\(what) has flags \(Walk.hex(flags))", &counts)
            return
        }
        let lower = page.u16(base + Layout.lowerOffset), upper = page.u16(base + Layout.upperOffset)
        if lower < Layout.pageHeader || lower % 2 != 0 || upper > size || lower > upper {
            problem(tree, pgno, "\(what) has impossible free-space bounds (lower \(lower), upper \(upper), size \(size))", &counts)
            return
        }
        let n = (lower - Layout.pageHeader) / 2
        if n == 0 {
            problem(tree, pgno, "\(what) holds no items", &counts)
            return
        }
        var keys: [Key] = []
        if leaf2 {
            let ks = page.u16(base + Layout.padOffset)
            guard ks > 0, Layout.pageHeader + n * ks <= size else {
                problem(tree, pgno, "\(what): \(n) fixed-size items of \(ks) bytes do not fit in \(size) bytes", &counts)
                return
            }
            keys = (0..<n).map { Key(bytes: page.raw, start: base + Layout.pageHeader + $0 * ks, count: ks) }
        } else {
            var spans: [(Int, Int)] = []
            for j in 0..<n {
                let offset = page.u16(base + Layout.pageHeader + 2 * j)
                guard offset >= upper, offset % 2 == 0, offset <= size - Layout.nodeHeader else {
                    problem(tree, pgno, "\(what): item \(j) is at offset \(offset), outside [\(upper), \(size))", &counts)
                    return
                }
                let lo = page.u16(base + offset), hi = page.u16(base + offset + 2)
                let nflags = page.u16(base + offset + 4), ksize = page.u16(base + offset + 6)
                let length = (Layout.nodeHeader + ksize + 1) & ~1
                guard lo == 0 && hi == 0 && nflags == 0, ksize <= Layout.maxKeySize, length <= size - offset else {
                    problem(tree, pgno, "\(what): item \(j) (flags \(Walk.hex(nflags)), \(ksize) bytes) is malformed", &counts)
                    return
                }
                spans.append((offset, length))
                keys.append(Key(bytes: page.raw, start: base + offset + Layout.nodeHeader, count: ksize))
            }
            var expected = upper
            for (offset, length) in spans.sorted(by: { $0.0 < $1.0 }) {
                guard offset == expected else {
                    problem(tree, pgno, "\(what): items overlap or leave a gap at offset \(offset)", &counts)
                    return
                }
                expected = offset + length
            }
            if expected != size {
                problem(tree, pgno, "\(what): items end at offset \(expected), not at its end \(size)", &counts)
                return
            }
        }
        if let bad = checkOrder(keys, from: 0, low: nil, high: nil, tree.dupOrder) {
            problem(tree, pgno, "\(what): \(bad)", &counts)
            return
        }
        counts.entries += UInt64(n)
    }
}
