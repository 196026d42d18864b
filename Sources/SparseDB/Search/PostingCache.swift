import Foundation

/// One term's posting list, fully decoded into plain arrays, with its block metadata.
/// Immutable after construction and shared by concurrent queries.
final class DecodedPostingList: @unchecked Sendable {
    let count: Int
    let documents: UnsafeMutablePointer<UInt32>
    let codes: UnsafeMutablePointer<UInt8>
    /// Per block: offset of its first posting, and (first, last, block-max) from its header.
    let blockStarts: [Int]
    let firstDocs: [UInt32]
    let lastDocs: [UInt32]
    let blockMaxes: [Float]
    let termMaxWeight: Float
    let generation: UInt64

    var bytes: Int { count * 5 + blockStarts.count * 20 + 64 }

    init(documents: [UInt32], codes: [UInt8], blockStarts: [Int], firstDocs: [UInt32], lastDocs: [UInt32], blockMaxes: [Float],
         termMaxWeight: Float, generation: UInt64) {
        count = documents.count
        self.documents = .allocate(capacity: max(count, 1))
        self.documents.initialize(from: documents, count: count)
        self.codes = .allocate(capacity: max(count, 1))
        self.codes.initialize(from: codes, count: count)
        self.blockStarts = blockStarts
        self.firstDocs = firstDocs
        self.lastDocs = lastDocs
        self.blockMaxes = blockMaxes
        self.termMaxWeight = termMaxWeight
        self.generation = generation
    }

    deinit {
        documents.deallocate()
        codes.deallocate()
    }
}

/// Decoded posting lists kept in memory between queries, so that hot terms are decompressed
/// once. Entries are tagged with the collection's write generation: a query only uses an entry
/// decoded from the same generation as its own snapshot, so MVCC readers never see another
/// snapshot's postings. Bounded by a byte budget; the oldest entries go first.
final class PostingCache: @unchecked Sendable {
    private struct Key: Hashable {
        var collection: UInt32
        var term: UInt32
    }

    let budget: Int
    private let lock = NSLock()
    private var entries: [Key: DecodedPostingList] = [:]
    private var order: [Key] = []
    private var orderHead = 0
    private var used = 0

    init(budget: Int) { self.budget = budget }

    var isEnabled: Bool { budget > 0 }

    func list(collection: UInt32, term: UInt32, generation: UInt64) -> DecodedPostingList? {
        lock.withLock {
            guard let e = entries[Key(collection: collection, term: term)], e.generation == generation else { return nil }
            return e
        }
    }

    private var tombstones: [UInt32: (generation: UInt64, set: Set<UInt32>)] = [:]

    /// The deleted documents of a collection at `generation`, loaded by `load` on a miss, so
    /// that queries do not re-read every tombstone.
    func deletedDocuments(collection: UInt32, generation: UInt64, load: () throws -> Set<UInt32>) rethrows -> Set<UInt32> {
        if let hit = lock.withLock({ tombstones[collection] }), hit.generation == generation { return hit.set }
        let set = try load()
        lock.withLock {
            if (tombstones[collection]?.generation ?? 0) <= generation { tombstones[collection] = (generation, set) }
        }
        return set
    }

    func insert(_ list: DecodedPostingList, collection: UInt32, term: UInt32) {
        guard list.bytes <= budget / 4 else { return }
        lock.withLock {
            let key = Key(collection: collection, term: term)
            if let old = entries[key] {
                if old.generation > list.generation { return }
                used -= old.bytes
            } else {
                order.append(key)
            }
            entries[key] = list
            used += list.bytes
            while used > budget && orderHead < order.count {
                let victim = order[orderHead]
                orderHead += 1
                if let e = entries.removeValue(forKey: victim) { used -= e.bytes }
            }
            if orderHead > 4096 && orderHead * 2 > order.count {
                order.removeFirst(orderHead)
                orderHead = 0
            }
        }
    }
}
