import Foundation
import SparseDBCore
import SparseDBIndex
import SparseDBSearch

/// A document's value of a payload attribute.
public enum AttributeValue: Sendable, Equatable, Hashable {
    /// A `keyword` attribute: one string.
    case keyword(String)
    /// A `keyword` attribute: a list of strings (a filter's equality tests membership).
    case keywords([String])
    /// An `integer` attribute.
    case integer(Int64)
    /// A `float` attribute (finite).
    case float(Double)
    /// A `bool` attribute.
    case bool(Bool)

    var stored: SparseDBIndex.AttributeValue {
        switch self {
        case .keyword(let s): .keyword([s])
        case .keywords(let l): .keywordList(l)
        case .integer(let v): .integer(v)
        case .float(let v): .float(v)
        case .bool(let v): .bool(v)
        }
    }

    init(_ stored: SparseDBIndex.AttributeValue) {
        switch stored {
        case .keyword(let l): self = l.count == 1 ? .keyword(l[0]) : .keywords(l)
        case .keywordList(let l): self = .keywords(l)
        case .integer(let v): self = .integer(v)
        case .float(let v): self = .float(v)
        case .bool(let v): self = .bool(v)
        }
    }
}

/// A filter on payload attributes: searches return the exact top-k among the documents it admits.
///
/// Build one in Swift, or parse the JSON the command line takes (`search --filter`):
///
/// ```swift
/// let f = try Filter(json: #"{"lang": {"in": ["en", "de"]}, "year": {"gte": 2000, "lt": 2010}}"#)
/// let g: Filter = .and([.equals("lang", .string("en")), .not(.equals("draft", .bool(true)))])
/// ```
///
/// JSON: `{"attr": value}` (equality; for a keyword list, membership), `{"attr": {"in": [...]}}`,
/// `{"attr": {"gt"|"gte"|"lt"|"lte": number, ...}}`, `{"$and": [...]}`, `{"$or": [...]}`,
/// `{"$not": {...}}`; several keys in one object mean AND. A document without a value for the
/// attribute does not match (so `$not` matches it).
public indirect enum Filter: Sendable, Equatable {
    /// The attribute equals the value (a keyword list contains it).
    case equals(String, FilterValue)
    /// The attribute equals one of the values.
    case isIn(String, [FilterValue])
    /// A number within bounds; nil bounds are open.
    case range(String, greaterThan: FilterValue? = nil, atLeast: FilterValue? = nil, lessThan: FilterValue? = nil, atMost: FilterValue? = nil)
    /// All of them.
    case and([Filter])
    /// Any of them.
    case or([Filter])
    /// Not it.
    case not(Filter)

    /// Parses a JSON filter.
    ///
    /// - Throws: `.invalidInput` naming what is wrong (malformed JSON, an unknown operator, a
    ///   value of the wrong shape). Unknown attributes and type mismatches are found when the
    ///   filter is used on a collection.
    public init(json: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) else {
            throw SparseDBError(.invalidInput, "filter is not valid JSON: \(json.prefix(80))")
        }
        self = try Self.parse(object, path: "filter")
    }

    private static func parse(_ any: Any, path: String) throws -> Filter {
        guard let object = any as? [String: Any] else { throw SparseDBError(.invalidInput, "\(path) must be a JSON object") }
        guard !object.isEmpty else { throw SparseDBError(.invalidInput, "\(path) is an empty object") }
        var parts: [Filter] = []
        for key in object.keys.sorted() {
            let value = object[key]!
            switch key {
            case "$and", "$or":
                guard let list = value as? [Any], !list.isEmpty else { throw SparseDBError(.invalidInput, "\(path).\(key) must be a non-empty array") }
                let subs = try list.enumerated().map { try parse($1, path: "\(path).\(key)[\($0)]") }
                parts.append(key == "$and" ? .and(subs) : .or(subs))
            case "$not":
                parts.append(.not(try parse(value, path: "\(path).$not")))
            default:
                if key.hasPrefix("$") { throw SparseDBError(.invalidInput, "\(path): unknown operator '\(key)' ($and, $or, $not)") }
                if let ops = value as? [String: Any] {
                    var bounds: [String: FilterValue] = [:]
                    for (op, operand) in ops {
                        switch op {
                        case "in":
                            guard let list = operand as? [Any] else { throw SparseDBError(.invalidInput, "\(path).\(key).in must be an array") }
                            parts.append(.isIn(key, try list.map { try FilterValue(json: $0, path: "\(path).\(key).in") }))
                        case "eq":
                            parts.append(.equals(key, try FilterValue(json: operand, path: "\(path).\(key).eq")))
                        case "gt", "gte", "lt", "lte":
                            let bound = try FilterValue(json: operand, path: "\(path).\(key).\(op)")
                            switch bound {
                            case .integer, .float: bounds[op] = bound
                            case .string, .bool: throw SparseDBError(.invalidInput, "\(path).\(key).\(op): a range bound must be a number")
                            }
                        default:
                            throw SparseDBError(.invalidInput, "\(path).\(key): unknown operator '\(op)' (in, eq, gt, gte, lt, lte)")
                        }
                    }
                    if !bounds.isEmpty {
                        parts.append(.range(key, greaterThan: bounds["gt"], atLeast: bounds["gte"], lessThan: bounds["lt"], atMost: bounds["lte"]))
                    }
                } else {
                    parts.append(.equals(key, try FilterValue(json: value, path: "\(path).\(key)")))
                }
            }
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    /// Resolves names against `record`'s attributes and checks value types.
    func resolve(in record: CollectionRecord) throws -> FilterExpression {
        func attribute(_ name: String) throws -> (UInt32, AttributeType) {
            guard let a = record.attributes.first(where: { $0.name == name }), let t = AttributeType(rawValue: a.type) else {
                let known = record.attributes.map(\.name).joined(separator: ", ")
                throw SparseDBError(.invalidInput, "filter names attribute '\(name)', which collection '\(record.name)' does not declare (attributes: \(known.isEmpty ? "none" : known))")
            }
            return (a.id, t)
        }
        switch self {
        case .and(let parts): return .and(try parts.map { try $0.resolve(in: record) })
        case .or(let parts): return .or(try parts.map { try $0.resolve(in: record) })
        case .not(let inner): return .not(try inner.resolve(in: record))
        case .equals(let name, let value):
            let (id, type) = try attribute(name)
            return .match(attribute: id, type: type, values: [try value.stored(for: type, attribute: name)])
        case .isIn(let name, let values):
            let (id, type) = try attribute(name)
            if values.isEmpty { return .none }
            return .match(attribute: id, type: type, values: try values.map { try $0.stored(for: type, attribute: name) })
        case .range(let name, let gt, let gte, let lt, let lte):
            let (id, type) = try attribute(name)
            guard type == .integer || type == .float else {
                throw SparseDBError(.invalidInput, "filter: attribute '\(name)' is \(type.rawValue); ranges (gt, gte, lt, lte) need a number attribute")
            }
            if type == .integer {
                // Bounds become inclusive integer bounds, so that a fractional or out-of-range
                // bound means what it says ({"gt": 2000.5} is gte 2001; gte 1e30 admits nothing).
                guard let (low, high) = try Self.integerBounds(gt: gt, gte: gte, lt: lt, lte: lte, attribute: name), low <= high else { return .none }
                return .range(
                    attribute: id, lower: Attributes.orderedBits(.integer(low)), upper: Attributes.orderedBits(.integer(high)))
            }
            var lower: UInt64 = 0
            var upper: UInt64 = .max
            if let v = gte { lower = max(lower, Attributes.orderedBits(try v.stored(for: type, attribute: name))) }
            if let v = gt {
                let bits = Attributes.orderedBits(try v.stored(for: type, attribute: name))
                if bits == .max { return .none }
                lower = max(lower, bits + 1)
            }
            if let v = lte { upper = min(upper, Attributes.orderedBits(try v.stored(for: type, attribute: name))) }
            if let v = lt {
                let bits = Attributes.orderedBits(try v.stored(for: type, attribute: name))
                if bits == 0 { return .none }
                upper = min(upper, bits - 1)
            }
            return lower <= upper ? .range(attribute: id, lower: lower, upper: upper) : .none
        }
    }
}

extension Filter {
    /// The inclusive integer range a range filter's bounds admit, or nil when it admits nothing.
    static func integerBounds(gt: FilterValue?, gte: FilterValue?, lt: FilterValue?, lte: FilterValue?, attribute: String) throws -> (Int64, Int64)? {
        let limit = 9_223_372_036_854_775_808.0  // 2^63
        var low = Int64.min
        var high = Int64.max
        func number(_ v: FilterValue) throws -> Double? {
            switch v {
            case .integer: return nil
            case .float(let x): return x
            default: throw SparseDBError(.invalidInput, "filter: attribute '\(attribute)' is integer, and \(v) is not a number")
            }
        }
        // Each bound of a double x: the inclusive Int64 bound it means, `.unbounded` when every
        // Int64 satisfies it, `.empty` when none does. Doubles at ±2^63 and beyond are compared
        // as doubles, never converted, so rounding at the extremes cannot admit a value.
        enum Bound { case value(Int64), unbounded, empty }
        func atLeast(_ x: Double) -> Bound {  // n ≥ x
            let c = x.rounded(.up)
            return c >= limit ? .empty : c <= -limit ? .unbounded : .value(Int64(c))
        }
        func greater(_ x: Double) -> Bound {  // n > x
            if x >= limit { return .empty }
            if x < -limit { return .unbounded }
            let f = x.rounded(.down)
            if f + 1 >= limit { return .empty }
            return f < -limit ? .unbounded : .value(Int64(f) + 1)
        }
        func atMost(_ x: Double) -> Bound {  // n ≤ x
            let f = x.rounded(.down)
            return f < -limit ? .empty : f >= limit ? .unbounded : .value(Int64(f))
        }
        func less(_ x: Double) -> Bound {  // n < x
            if x <= -limit { return .empty }
            if x > limit { return .unbounded }
            let c = x.rounded(.up)
            if c >= limit { return .unbounded }
            return .value(Int64(c) - 1)
        }
        func apply(_ bound: Bound, lower: Bool) -> Bool {
            switch bound {
            case .empty: return false
            case .unbounded: return true
            case .value(let n):
                if lower { low = max(low, n) } else { high = min(high, n) }
                return true
            }
        }
        if let v = gte {
            if case .integer(let n) = v { low = max(low, n) } else if let x = try number(v), !apply(atLeast(x), lower: true) { return nil }
        }
        if let v = gt {
            if case .integer(let n) = v {
                if n == .max { return nil }
                low = max(low, n + 1)
            } else if let x = try number(v), !apply(greater(x), lower: true) { return nil }
        }
        if let v = lte {
            if case .integer(let n) = v { high = min(high, n) } else if let x = try number(v), !apply(atMost(x), lower: false) { return nil }
        }
        if let v = lt {
            if case .integer(let n) = v {
                if n == .min { return nil }
                high = min(high, n - 1)
            } else if let x = try number(v), !apply(less(x), lower: false) { return nil }
        }
        return (low, high)
    }
}

/// A value in a filter.
///
/// A value is compared with an attribute of the matching type: a string with a `keyword`, an
/// integer with an `integer` (or a `float`), a float with a `float` (or an `integer` when it is
/// whole), a bool with a `bool`; any other pairing is refused when the filter is used.
public enum FilterValue: Sendable, Equatable, CustomStringConvertible {
    /// A keyword.
    case string(String)
    /// A whole number.
    case integer(Int64)
    /// A finite number.
    case float(Double)
    /// `true` or `false`.
    case bool(Bool)

    /// The value as JSON writes it.
    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let v): "\(v)"
        case .float(let v): "\(v)"
        case .bool(let v): "\(v)"
        }
    }

    init(json: Any, path: String) throws {
        if let s = json as? String {
            self = .string(s)
        } else if let n = json as? NSNumber {
            // JSONSerialization marks booleans with objCType "c" and numbers with a fraction or
            // exponent "d"; the rest are integers.
            switch String(cString: n.objCType) {
            case "c": self = .bool(n.boolValue)
            case "d", "f":
                guard n.doubleValue.isFinite else { throw SparseDBError(.invalidInput, "\(path): \(n) is not a finite number") }
                self = .float(n.doubleValue)
            case "Q" where n.uint64Value > UInt64(Int64.max):
                // Beyond Int64: kept as a number (a range bound then admits everything or nothing).
                self = .float(n.doubleValue)
            default: self = .integer(n.int64Value)
            }
        } else {
            throw SparseDBError(.invalidInput, "\(path): expected a string, number or boolean")
        }
    }

    func stored(for type: AttributeType, attribute: String) throws -> SparseDBIndex.AttributeValue {
        switch (type, self) {
        case (.keyword, .string(let s)): return .keyword([s])
        case (.integer, .integer(let v)): return .integer(v)
        case (.float, .float(let v)): return .float(v)
        case (.float, .integer(let v)): return .float(Double(v))
        case (.integer, .float(let v)) where v.rounded() == v && abs(v) < 9.0e18: return .integer(Int64(v))
        case (.bool, .bool(let v)): return .bool(v)
        default:
            throw SparseDBError(.invalidInput, "filter: attribute '\(attribute)' is \(type.rawValue), and \(self) is not a value of that type")
        }
    }
}
