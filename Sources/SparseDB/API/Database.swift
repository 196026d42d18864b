import Foundation

/// An embedded SparseDB database: a directory holding one LMDB environment with any number of
/// collections.
///
/// ```swift
/// let db = try Database(path: "vectors.sdb")
/// let docs = try db.collection("docs", creatingWithDimensions: 30_522)
/// try docs.upsert([Document(id: "d1", vector: try SparseVector([(2054, 1.2), (7592, 0.5)]))])
/// let hits = try docs.search(try SparseVector([(2054, 1.0)]), k: 10).hits
/// ```
///
/// A `Database` is safe to share between threads: reads run concurrently on MVCC snapshots,
/// writes are serialized. Open each directory once per process and share the instance (LMDB
/// forbids two environments on one directory in one process; opening the same path again
/// returns the already open environment).
public final class Database: @unchecked Sendable {
    /// Settings fixed when a database is opened.
    public struct Configuration: Sendable {
        /// Initial size of the memory map in bytes. The map doubles by itself whenever a write
        /// needs more room, so this only matters for the first writes. Default 1 GiB.
        public var initialMapSize: Int = 1 << 30
        /// Open without write access; writes then fail.
        public var readOnly: Bool = false
        /// Create the directory and the database when absent (ignored when `readOnly`).
        public var createIfMissing: Bool = true
        /// Maximum concurrent read transactions (LMDB reader slots).
        public var maxReaders: UInt32 = 126
        /// zstd level for posting blocks written by ingest.
        public var compressionLevel: Int32 = 3
        /// zstd level for posting blocks rewritten by compaction (offline, so it may be slower).
        public var compactionCompressionLevel: Int32 = 19
        /// Bytes of decoded posting lists kept in memory between queries (0 disables the cache;
        /// every query then decodes the blocks it touches from the memory map).
        public var postingCacheBytes: Int = 512 << 20

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
    let env: LMDBEnvironment
    let configuration: Configuration

    /// Opens (and, unless told otherwise, creates) the database in directory `path`.
    ///
    /// - Throws: ``SparseDBError`` with code `.foreignFormat` when the directory holds something
    ///   that is not a SparseDB database, `.newerFormat` when it was written by a newer format,
    ///   `.notFound` when it does not exist and `createIfMissing` is false.
    public init(path: String, configuration: Configuration = Configuration()) throws {
        self.path = path
        self.configuration = configuration
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw SparseDBError(.foreignFormat, "\(path) is a file, not a database directory")
            }
        } else {
            guard configuration.createIfMissing && !configuration.readOnly else {
                throw SparseDBError(.notFound, "no database at \(path)")
            }
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw SparseDBError(.io, "cannot create database directory \(path): \(error.localizedDescription)")
            }
        }
        env = try EnvironmentRegistry.shared.open(path: path) {
            let env = try LMDBEnvironment(
                path: path, mapSize: configuration.initialMapSize, readOnly: configuration.readOnly,
                maxReaders: configuration.maxReaders)
            try env.prepareSparseDB(create: configuration.createIfMissing && !configuration.readOnly)
            env.postingCache = PostingCache(budget: configuration.postingCacheBytes)
            return env
        }
        if env.isReadOnly && !configuration.readOnly {
            throw SparseDBError(.invalidInput, "\(path) is already open read-only in this process; close it before opening it for writing")
        }
    }

    /// The names of the collections, sorted.
    public func collectionNames() throws -> [String] {
        try env.read { txn in try Catalog.collectionNames(txn) }.sorted()
    }

    /// The existing collection `name`.
    ///
    /// - Throws: `.notFound` when there is no such collection.
    public func collection(_ name: String) throws -> Collection {
        guard let info = try env.read({ txn in try Catalog.loadInfo(txn, name: name) }) else {
            throw SparseDBError(.notFound, "no collection '\(name)' in \(path)")
        }
        return Collection(database: self, info: info)
    }

    /// The collection `name`, created with `dimensions` valid dimension indices (0..<dimensions,
    /// at most 2^24 … 2^32−1) when it does not exist yet.
    public func collection(_ name: String, creatingWithDimensions dimensions: UInt32) throws -> Collection {
        guard !name.isEmpty, name.utf8.count <= 200 else {
            throw SparseDBError(.invalidInput, "collection name must be 1…200 bytes")
        }
        guard dimensions > 0 else { throw SparseDBError(.invalidInput, "a collection needs at least one dimension") }
        let info = try env.write { txn -> CollectionInfo in
            if let existing = try Catalog.loadInfo(txn, name: name) { return existing }
            let info = CollectionInfo(id: try Catalog.nextCollectionId(txn), name: name, dimensions: dimensions)
            try Catalog.saveInfo(txn, info)
            return info
        }
        return Collection(database: self, info: info)
    }

    /// Sizes and counts of the whole database.
    public func statistics() throws -> DatabaseStatistics {
        let names = try collectionNames()
        var stats = DatabaseStatistics(path: path, formatVersion: Int(Schema.formatVersion))
        for name in names { stats.collections.append(try collection(name).statistics()) }
        stats.bytesOnDisk = Self.fileSize(path + "/data.mdb")
        stats.bytesUsed = env.usedBytes()
        return stats
    }

    /// Checks every stored structure; returns the problems found (empty when the database is sound).
    public func verify() throws -> [String] {
        var problems: [String] = []
        try env.read { txn in
            do { try Catalog.checkFormat(txn, path: path) } catch { problems.append("\(error)") }
        }
        for name in try collectionNames() {
            problems += try collection(name).verify()
        }
        return problems
    }

    static func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}

/// Counts and sizes of a database (`sparsedb stats`).
public struct DatabaseStatistics: Sendable, Codable {
    /// The database directory.
    public var path: String
    /// The on-disk format version (format-spec.md).
    public var formatVersion: Int
    /// Size of `data.mdb`.
    public var bytesOnDisk: Int = 0
    /// Pages in use × page size.
    public var bytesUsed: Int = 0
    /// One entry per collection, by name.
    public var collections: [CollectionStatistics] = []
}

/// Counts and sizes of one collection.
public struct CollectionStatistics: Sendable, Codable {
    /// The collection's name.
    public var name: String
    /// Valid dimension indices are 0..<dimensions.
    public var dimensions: UInt32
    /// Live documents.
    public var documents: UInt64
    /// Deleted documents not yet removed by compaction.
    public var deletedDocuments: UInt64
    /// Postings stored (deleted documents' included until compaction).
    public var postings: UInt64
    /// Terms (dimensions) with postings.
    public var terms: Int
    /// Posting blocks stored.
    public var postingBlocks: Int
    /// Bytes of the stored posting blocks (values only, headers included).
    public var postingBytes: Int
    /// `postingBytes / postings`.
    public var bytesPerPosting: Double
    /// Bytes of the forward rows (float weights for exact rescoring).
    public var forwardBytes: Int
    /// Name of the model the collection was built with, if built from text.
    public var encoder: String?
}

/// One open LMDB environment per directory per process (LMDB's rule).
final class EnvironmentRegistry: @unchecked Sendable {
    static let shared = EnvironmentRegistry()
    private let lock = NSLock()
    private var open: [String: WeakEnvironment] = [:]

    private struct WeakEnvironment { weak var env: LMDBEnvironment? }

    func open(path: String, _ make: () throws -> LMDBEnvironment) throws -> LMDBEnvironment {
        let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        lock.lock()
        defer { lock.unlock() }
        if let env = open[key]?.env { return env }
        let env = try make()
        open[key] = WeakEnvironment(env: env)
        return env
    }
}
