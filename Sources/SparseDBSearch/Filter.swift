import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBStorage

/// A filter resolved against a collection's schema: attribute names turned into attributes,
/// values checked against their types.
package indirect enum FilterExpression: Sendable, Hashable {
    /// Documents whose value equals one of `values` (for a keyword list: contains one of them).
    case match(attribute: UInt32, type: AttributeType, values: [AttributeValue])
    /// Documents whose number lies in the range (bounds as ordered bits, inclusive).
    case range(attribute: UInt32, lower: UInt64, upper: UInt64)
    case and([FilterExpression])
    case or([FilterExpression])
    case not(FilterExpression)
    /// Matches nothing (an empty range, an empty `in`).
    case none

    /// A stable text for cache keys.
    var canonical: String { "\(self)" }
}

/// Evaluated filters, per collection generation (a filter's documents change only with writes).
package final class FilterCache: Sendable {
    private struct Key: Hashable {
        var collection: UInt32
        var generation: UInt64
        var filter: FilterExpression
    }

    private let state = Locked<(entries: [Key: DocumentBitmap], order: [Key])>(([:], []))

    package init() {}

    func get(_ collection: UInt32, _ generation: UInt64, _ filter: FilterExpression) -> DocumentBitmap? {
        state.withLock { $0.entries[Key(collection: collection, generation: generation, filter: filter)] }
    }

    func put(_ collection: UInt32, _ generation: UInt64, _ filter: FilterExpression, _ set: DocumentBitmap) {
        state.withLock { s in
            let key = Key(collection: collection, generation: generation, filter: filter)
            guard s.entries[key] == nil else { return }
            s.entries[key] = set
            s.order.append(key)
            if s.order.count > 64 { s.entries[s.order.removeFirst()] = nil }
        }
    }

    /// How many evaluated filters are kept.
    package var count: Int { state.withLock { $0.entries.count } }

    package func removeAll() { state.withLock { $0 = ([:], []) } }
}

extension QueryEngine {
    /// The live documents `filter` admits in `txn`'s snapshot (deleted documents excluded),
    /// evaluated from the attribute index and cached per collection generation.
    package func evaluate(_ filter: FilterExpression, _ txn: borrowing Transaction, record: CollectionRecord, deleted: DocumentBitmap) throws -> DocumentBitmap {
        if let hit = filterCache.get(record.id, record.generation, filter) { return hit }
        var set = try evaluateUncached(filter, txn, record: record)
        if !deleted.isEmpty { set.formIntersection(deleted.complement(below: record.nextDocument)) }
        filterCache.put(record.id, record.generation, filter, set)
        return set
    }

    private func evaluateUncached(_ filter: FilterExpression, _ txn: borrowing Transaction, record: CollectionRecord) throws -> DocumentBitmap {
        let c = record.id
        switch filter {
        case .none:
            return DocumentBitmap()
        case .and(let parts):
            guard var first = try parts.first.map({ try evaluateUncached($0, txn, record: record) }) else {
                return DocumentBitmap().complement(below: record.nextDocument)
            }
            for part in parts.dropFirst() {
                if first.isEmpty { break }
                first.formIntersection(try evaluateUncached(part, txn, record: record))
            }
            return first
        case .or(let parts):
            var out = DocumentBitmap(capacity: record.nextDocument)
            for part in parts { out.formUnion(try evaluateUncached(part, txn, record: record)) }
            return out
        case .not(let inner):
            return try evaluateUncached(inner, txn, record: record).complement(below: record.nextDocument)
        case .match(let a, let type, let values):
            var out = DocumentBitmap(capacity: record.nextDocument)
            for value in values {
                switch (type, value) {
                case (.keyword, .keyword(let list)):
                    for s in list { try addSet(Attributes.setPrefix(c, a, Array(s.utf8)), txn, into: &out) }
                case (.bool, .bool(let v)):
                    try addSet(Attributes.setPrefix(c, a, Attributes.boolBytes(v)), txn, into: &out)
                case (.integer, _), (.float, _):
                    let bits = Attributes.orderedBits(value)
                    try addRange(c, a, bits, bits, txn, into: &out)
                default:
                    throw SparseDBError(.invalidInput, "filter value \(value) does not fit attribute #\(a) (\(type.rawValue))")
                }
            }
            return out
        case .range(let a, let lower, let upper):
            var out = DocumentBitmap(capacity: record.nextDocument)
            if lower <= upper { try addRange(c, a, lower, upper, txn, into: &out) }
            return out
        }
    }

    /// ORs the documents of one keyword or bool value (its bitmap chunks) into `out`.
    private func addSet(_ prefix: [UInt8], _ txn: borrowing Transaction, into out: inout DocumentBitmap) throws {
        try txn.scan(prefix: prefix, in: txn.table(.attribute)) { k, v in
            guard k.count == prefix.count + 4 else { return true }  // a longer value sharing the prefix bytes cannot: the length is in the prefix
            let chunk = UInt32(bigEndian: k.loadUnaligned(fromByteOffset: prefix.count, as: UInt32.self))
            for o in try Attributes.decodeChunk(key: k, v) { out.insert(chunk << 16 | UInt32(o)) }
            return true
        }
    }

    /// ORs the documents whose number lies in [lower, upper] (ordered bits) into `out`.
    private func addRange(_ c: UInt32, _ a: UInt32, _ lower: UInt64, _ upper: UInt64, _ txn: borrowing Transaction, into out: inout DocumentBitmap) throws {
        let prefix = Attributes.numberPrefix(c, a)
        let start = Attributes.numberKey(c, a, lower, doc: 0)
        try txn.scan(prefix: prefix, from: start, in: txn.table(.attribute)) { k, _ in
            guard k.count == 20, let doc = Keys.part(k, 4) else { throw SparseDBError(.corrupt, "attribute index number key is malformed") }
            let bits = UInt64(bigEndian: k.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if bits > upper { return false }
            out.insert(doc)
            return true
        }
    }
}
