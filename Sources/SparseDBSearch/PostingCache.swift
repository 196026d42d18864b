import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// Where one term's blocks are, from their (checked) headers: what the traversals need to skip
/// blocks without decoding them. Immutable once made; a longer one replaces it when ingest
/// appends blocks.
///
/// `@unchecked Sendable`: the three buffers are allocated and filled in `init`, never written
/// again, and freed in `deinit`; cursors read them through raw pointers while holding the
/// directory, which keeps bounds checks and reference counting out of their skipping loops.
package final class TermDirectory: @unchecked Sendable {
    package let count: Int
    let firstDocs: UnsafeMutablePointer<UInt32>
    let lastDocs: UnsafeMutablePointer<UInt32>
    let blockMaxes: UnsafeMutablePointer<Float>

    static let empty = TermDirectory(prefix: nil, appending: [], [], [])

    /// `prefix`'s entries followed by the given ones.
    init(prefix: TermDirectory?, appending firsts: [UInt32], _ lasts: [UInt32], _ maxes: [Float]) {
        let old = prefix?.count ?? 0
        count = old + firsts.count
        firstDocs = .allocate(capacity: max(count, 1))
        lastDocs = .allocate(capacity: max(count, 1))
        blockMaxes = .allocate(capacity: max(count, 1))
        if let prefix {
            firstDocs.initialize(from: prefix.firstDocs, count: old)
            lastDocs.initialize(from: prefix.lastDocs, count: old)
            blockMaxes.initialize(from: prefix.blockMaxes, count: old)
        }
        (firstDocs + old).initialize(from: firsts, count: firsts.count)
        (lastDocs + old).initialize(from: lasts, count: lasts.count)
        (blockMaxes + old).initialize(from: maxes, count: maxes.count)
    }

    deinit {
        firstDocs.deallocate()
        lastDocs.deallocate()
        blockMaxes.deallocate()
    }

    var bytes: Int { count * 12 + 64 }
}

/// One decoded block: documents and impact codes. Immutable and shared by concurrent queries.
///
/// Both arrays live in one allocation (documents, then codes), so that a cursor moving to the
/// next block touches one object whose postings follow each other in memory, and the block's
/// last document is kept beside its count: checking it (see `TermCursor.load`) then reads the
/// line the count is on, not the far end of the postings.
///
/// `@unchecked Sendable`: the buffer is allocated and filled in `init`, never written again, and
/// freed in `deinit`; cursors read it through raw pointers while holding the block.
package final class DecodedBlock: @unchecked Sendable {
    let count: Int
    /// The last posting's document (`UInt32.max` when the block is empty, which no cursor accepts).
    let lastDocument: UInt32
    let documentsPointer: UnsafePointer<UInt32>
    let codesPointer: UnsafePointer<UInt8>

    init(documents: UnsafeMutablePointer<UInt32>, codes: UnsafeMutablePointer<UInt8>, count: Int) {
        self.count = count
        lastDocument = count > 0 ? documents[count - 1] : UInt32.max
        let storage = UnsafeMutableRawPointer.allocate(
            byteCount: max(count * 5, 1), alignment: MemoryLayout<UInt32>.alignment)
        let d = storage.bindMemory(to: UInt32.self, capacity: count)
        d.initialize(from: documents, count: count)
        let c = (storage + count * 4).bindMemory(to: UInt8.self, capacity: count)
        c.initialize(from: codes, count: count)
        documentsPointer = UnsafePointer(d)
        codesPointer = UnsafePointer(c)
    }

    deinit {
        UnsafeMutableRawPointer(mutating: documentsPointer).deallocate()
    }

    var bytes: Int { count * 5 + 64 }
}

/// The cached state of one term of one field: its term statistics (valid for one collection
/// generation), its block directory and the blocks decoded so far. Shared by every snapshot of
/// the same field epoch, because between two compactions a term's blocks only ever get appended
/// (format-spec.md §11): an older snapshot sees a prefix of the directory a newer one sees, and a
/// block, once decoded, is valid for both.
package final class TermEntry: Sendable {
    private struct State {
        var statistics: (generation: UInt64, stats: Records.TermStats?)? = nil
        var directory = TermDirectory.empty
        var blocks: [DecodedBlock?] = []
        var bytes = 0
        /// Set when the cache drops the entry: queries holding it still use it, but its bytes no
        /// longer count against the budget.
        var evicted = false
        /// The pruned-lists search's last pruned list (blocks are never rewritten within an
        /// epoch, so it stays right for snapshots with that many blocks).
        var pruned: PrunedList? = nil
    }

    private let state = Locked(State())

    /// Set when a query looks the entry up, cleared when eviction passes over it (the CLOCK
    /// policy's reference bit). Only read and written under the cache's lock.
    nonisolated(unsafe) var referenced = false

    /// The term's statistics as of collection generation `generation`, if known (the inner
    /// optional is nil when the term has no postings then).
    func statistics(generation: UInt64) -> Records.TermStats?? {
        state.withLock { s in
            guard let known = s.statistics, known.generation == generation else { return nil }
            return .some(known.stats)
        }
    }

    func setStatistics(_ stats: Records.TermStats?, generation: UInt64) {
        state.withLock { s in
            if (s.statistics?.generation ?? 0) <= generation { s.statistics = (generation, stats) }
        }
    }

    /// The list's `n` largest postings among its first `blocks` blocks, when known.
    func prunedList(_ n: Int, blocks: Int) -> PrunedList? {
        state.withLock { s in s.pruned.flatMap { $0.n == n && $0.blocks == blocks ? $0 : nil } }
    }

    /// Keeps `list` (replacing the one kept); returns the change in bytes.
    func setPrunedList(_ list: PrunedList) -> Int {
        state.withLock { s in
            let delta = list.bytes - (s.pruned?.bytes ?? 0)
            s.pruned = list
            s.bytes += delta
            return s.evicted ? 0 : delta
        }
    }

    /// The directory as far as it is known, and the blocks decoded so far.
    func snapshot() -> (directory: TermDirectory, blocks: [DecodedBlock?]) {
        state.withLock { s in (s.directory, s.blocks) }
    }

    /// Replaces the directory with `longer` (which extends it), when it is longer; returns the
    /// change in bytes.
    func extend(to longer: TermDirectory) -> Int {
        state.withLock { s in
            guard longer.count > s.directory.count else { return 0 }
            let added = longer.bytes - s.directory.bytes
            s.directory = longer
            s.blocks.append(contentsOf: repeatElement(nil, count: longer.count - s.blocks.count))
            s.bytes += added
            return s.evicted ? 0 : added
        }
    }

    /// Publishes a decoded block; returns the change in bytes.
    func publish(_ block: DecodedBlock, at index: Int) -> Int {
        state.withLock { s in
            guard index < s.blocks.count, s.blocks[index] == nil else { return 0 }
            s.blocks[index] = block
            s.bytes += block.bytes
            return s.evicted ? 0 : block.bytes
        }
    }

    /// Marks the entry dropped from the cache; returns the bytes it held.
    func evict() -> Int {
        state.withLock { s in
            s.evicted = true
            return s.bytes
        }
    }
}

/// A term's `n` postings of largest weight estimate (code · block-max / 255) among its first
/// `blocks` blocks, in document order, with those estimates (the pruned-lists search's input).
final class PrunedList: Sendable {
    let n: Int
    let blocks: Int
    let documents: [UInt32]
    let estimates: [Float]
    var bytes: Int { documents.count * 8 + 96 }

    init(n: Int, blocks: Int, documents: [UInt32], estimates: [Float]) {
        self.n = n
        self.blocks = blocks
        self.documents = documents
        self.estimates = estimates
    }
}

/// Decoded posting data kept in memory between queries, per environment: each term's block
/// directory and its decoded blocks, keyed by (collection, field, field epoch, term).
///
/// Ingest never invalidates an entry: it only appends blocks, which a query finds by extending
/// the directory from where it stopped. Compaction bumps the field's epoch, so queries on newer
/// snapshots use new entries while older snapshots keep theirs until evicted. Blocks are decoded
/// lazily, one at a time, so a block the traversal skips is never decompressed. Bounded by a
/// byte budget; whole entries are evicted in CLOCK order (second chance): an entry looked up
/// since eviction last passed it goes back to the end of the queue once, so the terms most
/// queries share stay while the budget turns over the rare ones — plain insertion order would
/// evict the hottest entries first whenever the working set exceeds the budget.
package final class PostingCache: Sendable {
    package struct Key: Hashable, Sendable {
        var collection: UInt32
        var field: UInt32
        var epoch: UInt64
        var term: UInt32
    }

    private struct State {
        var entries: [Key: TermEntry] = [:]
        var order: [Key] = []
        var orderHead = 0
        var used = 0
    }

    package let budget: Int
    private let state = Locked(State())

    package init(budget: Int) { self.budget = budget }

    package var isEnabled: Bool { budget > 0 }

    /// The entry for `key`, created when absent (a private, uncached one when the cache is off).
    func entry(_ key: Key) -> TermEntry {
        guard isEnabled else { return TermEntry() }
        return state.withLock { s in
            if let e = s.entries[key] {
                e.referenced = true
                return e
            }
            let e = TermEntry()
            s.entries[key] = e
            s.order.append(key)
            return e
        }
    }

    /// Accounts `delta` more bytes, evicting the oldest entries when over budget.
    func account(_ delta: Int) {
        guard isEnabled, delta != 0 else { return }
        state.withLock { s in
            s.used += delta
            // Each pass over the queue clears reference bits, so this ends within two passes.
            while s.used > budget && s.orderHead < s.order.count {
                let victim = s.order[s.orderHead]
                s.orderHead += 1
                guard let e = s.entries[victim] else { continue }
                if e.referenced {
                    e.referenced = false
                    s.order.append(victim)
                    continue
                }
                s.entries[victim] = nil
                s.used -= e.evict()
            }
            if s.orderHead > 4096 && s.orderHead * 2 > s.order.count {
                s.order.removeFirst(s.orderHead)
                s.orderHead = 0
            }
        }
    }

    /// Bytes held (for statistics and tests).
    package var usedBytes: Int { state.withLock { $0.used } }

    /// Number of term entries held.
    package var entryCount: Int { state.withLock { $0.entries.count } }

    /// Drops everything (the benchmark's cold mode): every term entry (marked evicted, so that a
    /// query still holding one does not count its bytes against the budget) and the deleted-
    /// document sets.
    package func removeAll() {
        let dropped = state.withLock { s in
            let entries = Array(s.entries.values)
            s = State()
            return entries
        }
        for e in dropped { _ = e.evict() }
        deleted.withLock { $0 = DeletedSets() }
    }

    // MARK: deleted-document sets

    private struct DeletedSets {
        var byCollection: [UInt32: (generation: UInt64, set: DocumentBitmap)] = [:]
    }

    private let deleted = Locked(DeletedSets())

    /// The deleted documents of a collection at `generation`, loaded by `load` on a miss, so that
    /// queries do not re-read every tombstone.
    package func deletedDocuments(collection: UInt32, generation: UInt64, load: () throws -> DocumentBitmap) rethrows -> DocumentBitmap {
        if let hit = deleted.withLock({ $0.byCollection[collection] }), hit.generation == generation { return hit.set }
        let set = try load()
        deleted.withLock { d in
            if (d.byCollection[collection]?.generation ?? 0) <= generation { d.byCollection[collection] = (generation, set) }
        }
        return set
    }
}
