/// The one error type the library throws.
///
/// Every failure — a bad input line, a corrupt block, an LMDB or zstd error, a broken model
/// folder — arrives as a `SparseDBError` whose ``code`` says what kind of failure it is and whose
/// ``message`` says what and where, in words a user can act on.
///
/// ```swift
/// do {
///     try collection.upsert(batch)
/// } catch let error as SparseDBError where error.code == .invalidInput {
///     print("rejected:", error.message)   // nothing of the batch was written
/// }
/// ```
public struct SparseDBError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is. New codes may be added; match the ones you handle.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalidInput, notFound, alreadyExists, corrupt, foreignFormat, newerFormat, olderFormat
            case storage, compression, model, io, modelMismatch, closed, diskFull
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The input (a vector, a document, a JSON line, an argument) is not acceptable.
        public static let invalidInput = Code(.invalidInput)
        /// A collection, document or file that was asked for does not exist.
        public static let notFound = Code(.notFound)
        /// Something that must be new already exists.
        public static let alreadyExists = Code(.alreadyExists)
        /// Stored bytes failed a check (checksum, length, structure).
        public static let corrupt = Code(.corrupt)
        /// The directory holds something that is not a SparseDB database.
        public static let foreignFormat = Code(.foreignFormat)
        /// The database was written by a newer SparseDB with a format this one cannot read.
        public static let newerFormat = Code(.newerFormat)
        /// The database was written by an older format; `sparsedb upgrade --db DIR` (or
        /// ``Database/upgrade(path:)``) converts it in place.
        public static let olderFormat = Code(.olderFormat)
        /// LMDB reported an error (see ``SparseDBError/lmdbCode``).
        public static let storage = Code(.storage)
        /// zstd reported an error.
        public static let compression = Code(.compression)
        /// A model folder or weight file is missing, malformed or unsupported.
        public static let model = Code(.model)
        /// A file could not be read or written.
        public static let io = Code(.io)
        /// A collection was built with a different encoder than the one asked for.
        public static let modelMismatch = Code(.modelMismatch)
        /// The database was closed with ``Database/close()``.
        public static let closed = Code(.closed)
        /// The file system is full (or over quota); committed data is intact, the failed write
        /// left nothing behind, and the same write succeeds once there is room.
        public static let diskFull = Code(.diskFull)

        /// A short name of the code, e.g. "corrupt data".
        public var description: String {
            switch wrapped {
            case .invalidInput: "invalid input"
            case .notFound: "not found"
            case .alreadyExists: "already exists"
            case .corrupt: "corrupt data"
            case .foreignFormat: "not a SparseDB database"
            case .newerFormat: "newer database format"
            case .olderFormat: "older database format"
            case .storage: "storage error"
            case .compression: "compression error"
            case .model: "model error"
            case .io: "I/O error"
            case .modelMismatch: "model mismatch"
            case .closed: "database closed"
            case .diskFull: "disk full"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and where, e.g. `corpus.jsonl:17: weight for dimension 2054 is NaN`.
    public var message: String
    /// The LMDB return code, when LMDB reported the failure (e.g. `MDB_MAP_FULL` = -30792).
    public var lmdbCode: Int32?

    package static func invalidInput(_ message: String) -> SparseDBError { SparseDBError(.invalidInput, message) }
    package static func notFound(_ message: String) -> SparseDBError { SparseDBError(.notFound, message) }

    package init(_ code: Code, _ message: String, lmdbCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.lmdbCode = lmdbCode
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }

    /// The same error with `context` put in front of its message (a file and line, a tensor name).
    package func prefixed(_ context: String) -> SparseDBError {
        SparseDBError(code, "\(context): \(message)", lmdbCode: lmdbCode)
    }
}
