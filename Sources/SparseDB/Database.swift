import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBSearch
import SparseDBStorage

/// An embedded SparseDB database: a directory holding one LMDB environment with any number of
/// collections.
///
/// ```swift
/// let db = try Database(path: "vectors.sdb")
/// let docs = try db.collection("docs", creatingWithDimensions: 30_522)
/// try docs.upsert([Document(id: "d1", vector: try SparseVector([(2054, 1.2), (7592, 0.5)]))])
/// let hits = try docs.search(try SparseVector([(2054, 1.0)])).hits
/// db.close()
/// ```
///
/// A `Database` is safe to share between threads: reads run concurrently on MVCC snapshots,
/// writes are serialized. LMDB allows one environment per directory per process, so every
/// `Database` opened on the same directory in one process shares it; ``close()`` closes it for
/// all of them.
public final class Database: Sendable {
    /// Settings fixed when a database is opened.
    public struct Configuration: Sendable {
        /// Initial size of the memory map in bytes. The map doubles by itself whenever a write
        /// needs more room, so this only matters for the first writes. Default 1 GiB.
        public var initialMapSize: Int = 1 << 30
        /// Open without write access; writes then fail.
        public var readOnly: Bool = false
        /// Create the directory and the database when absent (ignored when `readOnly`).
        public var createIfMissing: Bool = true
        /// Maximum concurrent read transactions across all processes (LMDB reader slots; each
        /// running search holds one). Slots of processes that died are reclaimed on open and
        /// whenever the table fills up. Default 126.
        public var maxReaders: UInt32 = 126
        /// zstd level for posting blocks written by ingest; 0 (the default) stores them without
        /// compression. On SPLADE lists zstd saves about 3 % of a block (its payload is varint
        /// gaps and one impact byte a posting, close to random) for about a tenth of an ingest's
        /// CPU time, so ingest leaves it to compaction (``compactionCompressionLevel``).
        public var compressionLevel: Int32 = 0
        /// zstd level for posting blocks rewritten by compaction (offline, so it may be slower);
        /// 0 stores them without compression.
        public var compactionCompressionLevel: Int32 = 19
        /// Bytes of decoded posting data kept in memory between queries (0 disables the cache;
        /// every query then decodes the blocks it touches from the memory map).
        public var postingCacheBytes: Int = 512 << 20
        /// Bytes of decoded flat rows (dense and CSR fields) kept in memory between queries
        /// (0 disables the cache; every scan then checks and decodes the rows from the map).
        /// Dense rows are kept at 2 bytes a value where possible: an f16 field's as stored, and
        /// an f32 field's as a half-precision copy when all of the field's copies fit this
        /// budget (about `documents × (2 × dimensions + 12)` bytes), which halves what a scan
        /// reads; results stay exact (candidates are rescored from the stored f32 rows).
        public var flatCacheBytes: Int = 1 << 30
        /// Bytes of sparse forward rows kept in memory for ``SearchOptions/postingsPerTerm``
        /// searches (about 4 bytes a posting of the field: 1 M SPLADE documents take 440 MB),
        /// filled by the first such queries; 0 = score from the stored rows. Rows past the
        /// budget are scored from the stored rows (slower, same hits).
        public var forwardCacheBytes: Int = 1 << 30

        /// The defaults: read-write, created when missing.
        public init() {}

        /// Open an existing database for reading and writing; never create one.
        public static var existing: Configuration {
            var c = Configuration()
            c.createIfMissing = false
            return c
        }

        /// Open an existing database read-only.
        public static var readOnlyExisting: Configuration {
            var c = existing
            c.readOnly = true
            return c
        }
    }

    /// The database directory.
    public let path: String
    let store: OpenStore

    /// Opens (and, unless told otherwise, creates) the database in directory `path`.
    ///
    /// - Throws: ``SparseDBError`` with code `.foreignFormat` when the directory holds something
    ///   that is not a SparseDB database, `.olderFormat` when it was written by an older format
    ///   (see ``upgrade(path:)``), `.newerFormat` when by a newer one, `.notFound` when it does
    ///   not exist and `createIfMissing` is false, `.corrupt` when its data file is truncated.
    public init(path: String, configuration: Configuration = Configuration()) throws {
        self.path = path
        store = try EnvironmentRegistry.shared.open(path: path, configuration: configuration)
    }

    /// Closes the database: waits for running transactions, then releases the environment.
    /// Every later call on this database, its collections, or any other `Database` on the same
    /// directory in this process throws `.closed`. Safe to call more than once.
    public func close() {
        EnvironmentRegistry.shared.close(store)
    }

    package var env: LMDBEnvironment { store.env }
    package var engine: QueryEngine { store.engine }
    var configuration: Configuration { store.configuration }

    /// Empties this process's query caches: the posting cache (term directories, decoded
    /// blocks, term statistics, the cached sets of deleted documents), the decoded rows of flat
    /// fields, and the evaluated payload filters, shared by every `Database` open on this
    /// directory in this process. The next queries read and decode everything they touch again
    /// — a benchmark's cold start (`sparsedb bench --cold`).
    ///
    /// This does not evict the operating system's page cache: the data file's pages stay in
    /// memory (and mapped) and are read from there, not from the disk.
    public func dropCaches() {
        engine.cache.removeAll()
        engine.flatCache.removeAll()
        engine.forwardCache.removeAll()
        engine.filterCache.removeAll()
    }

    /// The names of the collections, sorted.
    public func collectionNames() throws -> [String] {
        try env.read { txn in try Catalog.collectionNames(txn) }.sorted()
    }

    /// The existing collection `name`.
    ///
    /// - Throws: `.notFound` when there is no such collection.
    public func collection(_ name: String) throws -> VectorCollection {
        guard let record = try env.read({ txn in try Catalog.loadCollection(txn, name: name) }) else {
            throw SparseDBError(.notFound, "no collection '\(name)' in \(path)")
        }
        return try VectorCollection(database: self, record: record)
    }

    /// Creates collection `name` with `schema`.
    ///
    /// - Throws: `.alreadyExists` when it exists; `.invalidInput` for a bad name or schema.
    @discardableResult
    public func createCollection(_ name: String, schema: CollectionSchema) throws -> VectorCollection {
        try collection(name, schema: schema, mustBeNew: true)
    }

    /// The collection `name`, created with `schema` when it does not exist yet.
    ///
    /// - Throws: `.invalidInput` when it exists with a different schema.
    public func collection(_ name: String, creatingWith schema: CollectionSchema) throws -> VectorCollection {
        try collection(name, schema: schema, mustBeNew: false)
    }

    /// The collection `name`, created with one sparse field of `dimensions` dimensions (indices
    /// `0..<dimensions`) when it does not exist yet.
    public func collection(_ name: String, creatingWithDimensions dimensions: UInt32) throws -> VectorCollection {
        if let existing = try env.read({ txn in try Catalog.loadCollection(txn, name: name) }) {
            return try VectorCollection(database: self, record: existing)
        }
        return try collection(name, schema: .sparse(dimensions: dimensions), mustBeNew: false)
    }

    private func collection(_ name: String, schema: CollectionSchema, mustBeNew: Bool) throws -> VectorCollection {
        try CollectionRecord.checkName(name, what: "collection")
        let (fields, attributes) = try schema.records(collection: name)
        let record = try env.write { txn -> CollectionRecord in
            if let existing = try Catalog.loadCollection(txn, name: name) {
                if mustBeNew { throw SparseDBError(.alreadyExists, "collection '\(name)' already exists in \(path)") }
                // Compared as stored (an automatic CSR index resolved), not as given.
                let requested = CollectionSchema(CollectionRecord(id: 0, name: name, fields: fields, attributes: attributes))
                guard CollectionSchema(existing) == requested else {
                    throw SparseDBError(
                        .invalidInput, "collection '\(name)' exists with another schema (\(CollectionSchema(existing).summary)), not \(schema.summary)")
                }
                return existing
            }
            let record = CollectionRecord(id: try Catalog.takeCollectionId(txn), name: name, fields: fields, attributes: attributes)
            try Catalog.saveCollection(txn, record)
            return record
        }
        return try VectorCollection(database: self, record: record)
    }

    /// Deletes collection `name` and everything in it, in one transaction.
    ///
    /// - Throws: `.notFound` when there is no such collection.
    public func dropCollection(_ name: String) throws {
        try env.write { txn in
            guard let record = try Catalog.loadCollection(txn, name: name) else {
                throw SparseDBError(.notFound, "no collection '\(name)' in \(path)")
            }
            let prefix = Keys.collection(record.id)
            for table in Table.allCases where table != .meta && table != .commit { try txn.deleteAll(prefix: prefix, in: txn.table(table)) }
            try txn.delete(Catalog.collectionKey(name), in: txn.table(.meta))
        }
    }

    /// Sizes and counts of the whole database.
    ///
    /// Statistics scan every table of every collection through LMDB, which trusts its own pages
    /// (a damaged B-tree page can crash the process that reads it), and `sparsedb stats` is what
    /// a user runs on a suspect database. So the data file's page structure is checked first,
    /// with the page walker `verify` uses: damage is a `.corrupt` error that says to run
    /// `sparsedb verify`. The check reads every page in use once (format-spec.md §14).
    public func statistics() throws -> DatabaseStatistics {
        try checkPagesBeforeScanning()
        var stats = DatabaseStatistics(path: path, formatVersion: Int(try env.read { txn in try Catalog.formatVersion(txn) }))
        for name in try collectionNames() { stats.collections.append(try collection(name).scanStatistics()) }
        stats.bytesOnDisk = LMDBEnvironment.fileSize(path + "/data.mdb") ?? 0
        stats.bytesUsed = env.usedBytes()
        stats.mapSize = env.mapSize
        return stats
    }

    /// Checks every stored structure; returns the problems found (empty when the database is sound).
    ///
    /// First the data file's page structure (LMDB's B-trees), read from the file without going
    /// through LMDB, so that damage there is reported instead of crashing the process; then,
    /// when the pages are sound, every record's checksum and every cross-reference of every
    /// collection (format-spec.md §12).
    public func verify() throws -> [String] {
        let pages = try checkPages()
        if !pages.isEmpty { return pages }
        var problems: [String] = []
        for name in try collectionNames() {
            do { problems += try collection(name).verify() } catch let error as SparseDBError {
                problems.append("collection '\(name)': \(error.message)")
            }
        }
        return problems
    }

    /// The page-structure problems of the data file, read while a read transaction pins the
    /// snapshot being checked (so a concurrent writer cannot reuse its pages meanwhile).
    private func checkPages() throws -> [String] {
        for _ in 0..<5 {
            let (snapshot, report, stamp) = try env.read { txn in
                (txn.id, try PageWalker.check(dataFile: path + "/data.mdb"), try Catalog.commitStampProblem(txn))
            }
            // A commit between beginning the snapshot and reading the meta page: walk again.
            if UInt64(truncatingIfNeeded: snapshot) != report.txnid && report.isClean { continue }
            return Self.pageProblems(report) + (stamp.map { [$0] } ?? [])
        }
        return []
    }

    /// Throws `.corrupt` when the data file's page structure is damaged, before a caller scans
    /// tables through LMDB. The walk runs inside a read transaction, which keeps a concurrent
    /// writer from reusing the pages being walked; whatever snapshot the caller then reads holds
    /// only pages walked here or written by later commits.
    func checkPagesBeforeScanning() throws {
        let report = try env.read { _ in try PageWalker.check(dataFile: path + "/data.mdb", limit: 3) }
        guard !report.isClean else { return }
        let more = report.problems.count - 1 + report.omittedProblems
        throw SparseDBError(
            .corrupt,
            "\(path): the data file's page structure is damaged (\(report.problems.first ?? "")\(more > 0 ? "; and \(more) more problems" : "")), so its tables were not read (LMDB trusts its pages and could crash on these): run `sparsedb verify --db \(path)` for the full report, and restore the database from a copy"
        )
    }

    static func pageProblems(_ report: PageReport) -> [String] {
        guard !report.isClean else { return [] }
        var out = report.problems.map { "data file: \($0)" }
        if report.omittedProblems > 0 { out.append("data file: \(report.omittedProblems) more problems") }
        out.append(
            "data file: LMDB's page structure is damaged; SparseDB did not read the records (LMDB trusts its pages). Restore the database from a copy and do not write to this one")
        return out
    }

    /// Checks the database in directory `path` without trusting its pages: the data file's page
    /// structure first (so that a damaged file is reported, not a crash), then — only when it is
    /// sound — opens it read-only and checks every record and reference (``verify()``).
    public static func verify(path: String) throws -> [String] {
        guard let size = LMDBEnvironment.fileSize(path + "/data.mdb") else { throw SparseDBError(.notFound, "no database at \(path)") }
        if size > 0 {
            let pages = pageProblems(try PageWalker.check(dataFile: path + "/data.mdb"))
            if !pages.isEmpty { return pages }
        }
        let db: Database
        do {
            db = try Database(path: path, configuration: .readOnlyExisting)
        } catch let error as SparseDBError where error.code == .corrupt {
            // Damage that opening already sees (an older snapshot than the last commit) is a
            // finding of verify, not a failure to run it.
            return [error.message]
        }
        return try db.verify()
    }

    /// Writes a compacted copy of the database into `target` (a new or empty directory): every
    /// table is written again in key order from one snapshot, so the copy holds no free pages and
    /// its pages are full — the smallest file for the data. The database stays open and usable
    /// meanwhile. On an error, the files the copy made in `target` are removed.
    ///
    /// - Throws: `.corrupt`, before anything is written, when the data file's page structure is
    ///   damaged (the copy follows every page through LMDB, which trusts them).
    public func writeCompactedCopy(to target: String) throws {
        try checkPagesBeforeScanning()
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let created: Bool
        if fm.fileExists(atPath: target, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try? fm.contentsOfDirectory(atPath: target))?.isEmpty == true else {
                throw SparseDBError(.invalidInput, "\(target) must be a new or empty directory")
            }
            created = false
        } else {
            do { try fm.createDirectory(atPath: target, withIntermediateDirectories: true) } catch {
                throw SparseDBError(.io, "cannot create \(target): \(error.localizedDescription)")
            }
            created = true
        }
        do {
            try env.copyPacked(to: target, last: Table.meta.name, beforeCommit: env.beforeCommit)
        } catch {
            for file in ["data.mdb", "lock.mdb"] { try? fm.removeItem(atPath: target + "/" + file) }
            if created { try? fm.removeItem(atPath: target) }
            throw error
        }
    }


    /// Upgrades the database in directory `path` to the format this SparseDB writes, in place and
    /// in one transaction (all or nothing); a database already in the current format is left
    /// alone. Close every other process's handle first. Returns the format version it had.
    ///
    /// - Throws: `.newerFormat` for a format this SparseDB cannot read; `.corrupt` when a
    ///   checksum of the old data fails (nothing is changed then).
    @discardableResult
    public static func upgrade(path: String) throws -> Int {
        guard EnvironmentRegistry.shared.isOpen(path: path) == false else {
            throw SparseDBError(.invalidInput, "\(path) is open in this process; close it before upgrading")
        }
        guard LMDBEnvironment.fileSize(path + "/data.mdb") != nil else { throw SparseDBError(.notFound, "no database at \(path)") }
        let env = try LMDBEnvironment(path: path, mapSize: 1 << 30, readOnly: false, maxReaders: 126)
        defer { env.close() }
        return Int(try FormatUpgrade.upgrade(env))
    }

    /// The format version of the database in directory `path`, without opening it for use.
    public static func formatVersion(path: String) throws -> Int {
        guard LMDBEnvironment.fileSize(path + "/data.mdb") != nil else { throw SparseDBError(.notFound, "no database at \(path)") }
        let env = try LMDBEnvironment(path: path, mapSize: 1 << 20, readOnly: true, maxReaders: 126)
        defer { env.close() }
        return Int(try FormatUpgrade.formatVersion(env))
    }
}

extension CollectionSchema {
    var summary: String {
        fields.map { "\($0.name): \($0.kind.rawValue)[\($0.dimensions)]" }.joined(separator: ", ")
    }
}

/// What every `Database` on one directory in this process shares: the LMDB environment and the
/// query engine (posting cache, codecs).
final class OpenStore: Sendable {
    let env: LMDBEnvironment
    let engine: QueryEngine
    let configuration: Database.Configuration
    let key: String

    init(env: LMDBEnvironment, engine: QueryEngine, configuration: Database.Configuration, key: String) {
        self.env = env
        self.engine = engine
        self.configuration = configuration
        self.key = key
    }
}

/// One open LMDB environment per directory per process (LMDB's rule).
final class EnvironmentRegistry: Sendable {
    static let shared = EnvironmentRegistry()

    private struct Weak { weak var store: OpenStore? }
    private let open = Locked<[String: Weak]>([:])

    private static func key(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    func isOpen(path: String) -> Bool {
        open.withLock { $0[Self.key(path)]?.store != nil }
    }

    func open(path: String, configuration: Database.Configuration) throws -> OpenStore {
        let key = Self.key(path)
        return try open.withLock { open in
            if let store = open[key]?.store {
                if store.env.isReadOnly && !configuration.readOnly {
                    throw SparseDBError(.invalidInput, "\(path) is already open read-only in this process; close it before opening it for writing")
                }
                return store
            }
            try Self.prepareDirectory(path, configuration: configuration)
            let env = try LMDBEnvironment(
                path: path, mapSize: configuration.initialMapSize, readOnly: configuration.readOnly, maxReaders: configuration.maxReaders)
            do {
                try Catalog.open(env, create: configuration.createIfMissing && !configuration.readOnly)
            } catch {
                env.close()
                throw error
            }
            let store = OpenStore(
                env: env, engine: QueryEngine(
                    cacheBytes: configuration.postingCacheBytes, flatCacheBytes: configuration.flatCacheBytes,
                    forwardCacheBytes: configuration.forwardCacheBytes),
                configuration: configuration, key: key)
            open[key] = Weak(store: store)
            return store
        }
    }

    func close(_ store: OpenStore) {
        open.withLock { open in
            if open[store.key]?.store === store { open[store.key] = nil }
        }
        store.env.close()
    }

    /// Checks the directory before LMDB touches it: a file is not a database; a new database is
    /// made only in a new or empty directory, never among someone else's files.
    private static func prepareDirectory(_ path: String, configuration: Database.Configuration) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SparseDBError(.foreignFormat, "\(path) is a file, not a database directory") }
            if !fm.fileExists(atPath: path + "/data.mdb") {
                guard configuration.createIfMissing && !configuration.readOnly else { throw SparseDBError(.notFound, "no database at \(path)") }
                let others = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != "lock.mdb" }
                guard others.isEmpty else {
                    throw SparseDBError(
                        .foreignFormat, "\(path) holds other files (\(others.prefix(3).joined(separator: ", "))); a new database is made only in a new or empty directory")
                }
            }
        } else {
            guard configuration.createIfMissing && !configuration.readOnly else { throw SparseDBError(.notFound, "no database at \(path)") }
            do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw SparseDBError(.io, "cannot create database directory \(path): \(error.localizedDescription)")
            }
        }
    }
}
