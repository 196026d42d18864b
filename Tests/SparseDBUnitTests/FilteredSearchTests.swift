import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// Filtered search against brute force over the matching documents. The oracle evaluates every
/// filter itself, from the attribute values the test gave each document (its own model, not the
/// engine's index), for every algorithm and every kind of field, through deletes, upserts that
/// change or drop attributes, compaction and reopening.
@Suite struct FilteredSearchTests {
    /// The test's own copy of a document's attributes.
    struct Attributes {
        var lang: [String]?
        var year: Int64?
        var price: Double?
        var open: Bool?
        var tag: String

        var values: [String: AttributeValue] {
            var out: [String: AttributeValue] = ["tag": .keyword(tag)]
            if let lang { out["lang"] = lang.count == 1 ? .keyword(lang[0]) : .keywords(lang) }
            if let year { out["year"] = .integer(year) }
            if let price { out["price"] = .float(price) }
            if let open { out["open"] = .bool(open) }
            return out
        }
    }

    static let languages = ["en", "de", "fr", "es", "it"]

    static func randomAttributes(_ i: Int, _ rng: inout SplitMix64) -> Attributes {
        var a = Attributes(tag: "t\(i)")
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: a.lang = nil
        case 1, 2: a.lang = Array(Set((0..<Int.random(in: 1...3, using: &rng)).map { _ in languages.randomElement(using: &rng)! })).sorted()
        default: a.lang = [languages[Int(Double(languages.count) * pow(Double.random(in: 0..<1, using: &rng), 2))]]  // skewed: "en" common
        }
        if Int.random(in: 0..<8, using: &rng) != 0 { a.year = Int64.random(in: 1990...2030, using: &rng) }
        if Int.random(in: 0..<8, using: &rng) != 0 {
            // Negative, zero (both signs), and duplicates among the prices.
            a.price = [-2.5, -0.0, 0.0, 1.25, 99.99][Int.random(in: 0..<5, using: &rng)] + (Bool.random(using: &rng) ? 0 : Double(Int.random(in: -50...50, using: &rng)))
        }
        if Int.random(in: 0..<4, using: &rng) != 0 { a.open = Bool.random(using: &rng) }
        return a
    }

    /// A filter and its meaning, evaluated by the test.
    struct Case: @unchecked Sendable {  // immutable once built
        var filter: Filter
        var admits: (Attributes) -> Bool
        var label: String
    }

    static func randomCase(_ rng: inout SplitMix64, count: Int, depth: Int = 0) -> Case {
        let pick = Int.random(in: 0..<(depth >= 2 ? 7 : 10), using: &rng)
        switch pick {
        case 0:
            let l = (languages + ["zz"]).randomElement(using: &rng)!
            return Case(filter: .equals("lang", .string(l)), admits: { $0.lang?.contains(l) ?? false }, label: "lang=\(l)")
        case 1:
            let ls = Array(Set((0..<Int.random(in: 0...3, using: &rng)).map { _ in languages.randomElement(using: &rng)! }))
            return Case(filter: .isIn("lang", ls.map { .string($0) }), admits: { a in a.lang.map { !Set($0).isDisjoint(with: ls) } ?? false }, label: "lang in \(ls)")
        case 2:
            let lo = Int64.random(in: 1985...2035, using: &rng)
            let hi = Int64.random(in: 1985...2035, using: &rng)
            let strictLo = Bool.random(using: &rng)
            let strictHi = Bool.random(using: &rng)
            let hasLo = Int.random(in: 0..<4, using: &rng) != 0
            let hasHi = !hasLo || Bool.random(using: &rng)
            let f = Filter.range(
                "year", greaterThan: hasLo && strictLo ? .integer(lo) : nil, atLeast: hasLo && !strictLo ? .integer(lo) : nil,
                lessThan: hasHi && strictHi ? .integer(hi) : nil, atMost: hasHi && !strictHi ? .integer(hi) : nil)
            return Case(filter: f, admits: { a in
                guard let y = a.year else { return false }
                if hasLo, strictLo ? !(y > lo) : !(y >= lo) { return false }
                if hasHi, strictHi ? !(y < hi) : !(y <= hi) { return false }
                return true
            }, label: "year \(hasLo ? (strictLo ? ">" : ">=") + "\(lo)" : "") \(hasHi ? (strictHi ? "<" : "<=") + "\(hi)" : "")")
        case 3:
            let bound = [-2.5, 0.0, -0.0, 1.25, 40.0, -60.0][Int.random(in: 0..<6, using: &rng)]
            let upper = Bool.random(using: &rng)
            let f: Filter = upper ? .range("price", lessThan: .float(bound)) : .range("price", atLeast: .float(bound))
            return Case(filter: f, admits: { a in a.price.map { upper ? $0 < bound : $0 >= bound } ?? false }, label: "price \(upper ? "<" : ">=") \(bound)")
        case 4:
            let p = [-2.5, 0.0, 1.25][Int.random(in: 0..<3, using: &rng)]
            return Case(filter: .equals("price", .float(p)), admits: { $0.price == p }, label: "price=\(p)")
        case 5:
            let b = Bool.random(using: &rng)
            return Case(filter: .equals("open", .bool(b)), admits: { $0.open == b }, label: "open=\(b)")
        case 6:
            // Exactly one document (or none, when it was deleted).
            let t = "t\(Int.random(in: 0..<count, using: &rng))"
            return Case(filter: .equals("tag", .string(t)), admits: { $0.tag == t }, label: "tag=\(t)")
        case 7:
            let parts = (0..<Int.random(in: 1...3, using: &rng)).map { _ in randomCase(&rng, count: count, depth: depth + 1) }
            return Case(filter: .and(parts.map(\.filter)), admits: { a in parts.allSatisfy { $0.admits(a) } }, label: "and(\(parts.map(\.label).joined(separator: ", ")))")
        case 8:
            let parts = (0..<Int.random(in: 1...3, using: &rng)).map { _ in randomCase(&rng, count: count, depth: depth + 1) }
            return Case(filter: .or(parts.map(\.filter)), admits: { a in parts.contains { $0.admits(a) } }, label: "or(\(parts.map(\.label).joined(separator: ", ")))")
        default:
            let inner = randomCase(&rng, count: count, depth: depth + 1)
            return Case(filter: .not(inner.filter), admits: { !inner.admits($0) }, label: "not(\(inner.label))")
        }
    }

    /// Filters that admit nothing and everything, always among the cases.
    static let edgeCases: [Case] = [
        Case(filter: .equals("lang", .string("zz")), admits: { _ in false }, label: "nothing (absent value)"),
        Case(filter: .isIn("lang", []), admits: { _ in false }, label: "nothing (empty in)"),
        Case(filter: .range("year", greaterThan: .integer(5000)), admits: { _ in false }, label: "nothing (empty range)"),
        Case(filter: .not(.equals("lang", .string("zz"))), admits: { _ in true }, label: "everything (not absent)"),
        Case(filter: .or([.not(.equals("open", .bool(true))), .equals("open", .bool(true))]), admits: { _ in true }, label: "everything (or)"),
        Case(filter: .range("year", atLeast: .integer(Int64.min)), admits: { $0.year != nil }, label: "every year"),
    ]

    static let dims = 12

    /// Builds a collection with a sparse field, a dense field and CSR fields (flat and inverted)
    /// plus every attribute type, and checks filtered searches after each phase.
    @Test(arguments: [UInt64(1), 2])
    func filteredSearchMatchesBruteForce(seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            let n = 1400
            var rng = SplitMix64(seed: seed)
            let sparse = try randomDocuments(count: n + 300, dims: 2000, seed: seed &+ 10)
            let dense = FlatFieldTests.denseDocs(count: n + 300, dims: Self.dims, seed: seed &+ 11)
            let codes = try FlatFieldTests.codes(count: n + 300, k: 8, seed: seed &+ 12)
            struct Live {
                var s: SparseVector?
                var e: [Float]?
                var code: SparseVector?
                var attributes: Attributes
            }
            var live: [String: Live] = [:]
            func document(_ i: Int, variant: Int) -> (Document, Live) {
                let a = Self.randomAttributes(i, &rng)
                var v: [String: FieldVector] = [:]
                var l = Live(attributes: a)
                let j = (i + variant * 977) % (n + 300)
                if (i + variant) % 6 != 0 { v["s"] = .sparse(sparse[j].vector); l.s = sparse[j].vector }
                if (i + variant) % 5 != 0 { v["e"] = .dense(dense[j].values); l.e = dense[j].values }
                if (i + variant) % 4 != 0 { v["code"] = .sparse(codes[j].vector); v["icode"] = .sparse(codes[j].vector); l.code = codes[j].vector }
                return (Document(id: "d\(i)", vectors: v, attributes: a.values), l)
            }
            let schema = CollectionSchema(
                fields: [
                    .sparse("s", dimensions: 2000), .dense("e", dimensions: UInt32(Self.dims)),
                    .csr("code", dimensions: 4096, activeDimensions: 8, index: .flat),
                    .csr("icode", dimensions: 4096, activeDimensions: 8, index: .inverted),
                ],
                attributes: [
                    AttributeField(name: "lang", type: .keyword), AttributeField(name: "year", type: .integer),
                    AttributeField(name: "price", type: .float), AttributeField(name: "open", type: .bool),
                    AttributeField(name: "tag", type: .keyword),
                ])

            func check(_ c: VectorCollection, phase: String, rounds: Int) throws {
                var qrng = SplitMix64(seed: seed &* 1000 &+ UInt64(phase.utf8.count))
                var cases = Self.edgeCases
                for _ in 0..<rounds { cases.append(Self.randomCase(&qrng, count: n + 300)) }
                for (ci, fc) in cases.enumerated() {
                    let matching = live.filter { fc.admits($0.value.attributes) }
                    let k = [1, 10, 60][ci % 3]
                    let qs = try randomQuery(&qrng, dims: 2000)
                    let qe = (0..<Self.dims).map { _ in Float.random(in: -1...1, using: &qrng) }
                    let qc = try FlatFieldTests.codes(count: 1, k: 8, seed: qrng.next())[0].vector
                    let sparseScores = matching.compactMapValues { $0.s?.dot(qs) }
                    let codeScores = matching.compactMapValues { $0.code?.dot(qc) }
                    let denseScores = matching.compactMapValues { $0.e.map { FlatFieldTests.denseScore(qe, $0, d: Self.dims, cosine: false) } }
                    // The pruned-lists search with every list whole and every document scored:
                    // the exact filtered top-k (the forward cache across writes, compaction and
                    // reopening, documents without the field, the filter applied to the union).
                    let whole = SearchOptions(k: k, field: "s", filter: fc.filter, candidates: 1 << 20, postingsPerTerm: 1 << 24)
                    let gotWhole = try c.search(qs, options: whole).hits.map { ($0.id, $0.score) }
                    let wholeProblem = rankingMismatch(gotWhole, scores: sparseScores, k: k, positiveOnly: true)
                    #expect(wholeProblem == nil, "\(phase) s pruned lists k=\(k) [\(fc.label)] (\(matching.count) match): \(wholeProblem ?? "")")
                    for algorithm in SearchAlgorithm.allCases {
                        let opts = SearchOptions(k: k, algorithm: algorithm, field: "s", filter: fc.filter)
                        let got = try c.search(qs, options: opts).hits.map { ($0.id, $0.score) }
                        let problem = rankingMismatch(got, scores: sparseScores, k: k, positiveOnly: true)
                        #expect(problem == nil, "\(phase) s \(algorithm) k=\(k) [\(fc.label)] (\(matching.count) match): \(problem ?? "")")
                        for field in ["code", "icode"] {
                            let got = try c.search(.sparse(qc), options: SearchOptions(k: k, algorithm: algorithm, field: field, filter: fc.filter)).hits.map { ($0.id, $0.score) }
                            let problem = rankingMismatch(got, scores: codeScores, k: k, positiveOnly: true)
                            #expect(problem == nil, "\(phase) \(field) \(algorithm) k=\(k) [\(fc.label)]: \(problem ?? "")")
                        }
                    }
                    let got = try c.search(.dense(qe), options: SearchOptions(k: k, field: "e", filter: fc.filter)).hits.map { ($0.id, $0.score) }
                    let problem = rankingMismatch(got, scores: denseScores, k: k)
                    #expect(problem == nil, "\(phase) e k=\(k) [\(fc.label)]: \(problem ?? "")")

                    // Hybrid: every field's list is exact among the matching documents, and
                    // every fused hit matches.
                    let hybrid = try c.search(
                        hybrid: ["s": .sparse(qs), "e": .dense(qe), "code": .sparse(qc)], fusion: FusionOptions(method: .rrf, depth: 30),
                        options: SearchOptions(k: k, filter: fc.filter))
                    for h in hybrid.hits { #expect(matching[h.id] != nil, "\(phase) hybrid [\(fc.label)]: \(h.id) does not match") }
                    for (field, scores, positive) in [("s", sparseScores, true), ("e", denseScores, false), ("code", codeScores, true)] {
                        let problem = rankingMismatch(hybrid.fields[field]!.map { ($0.id, $0.score) }, scores: scores, k: 30, positiveOnly: positive)
                        #expect(problem == nil, "\(phase) hybrid field \(field) [\(fc.label)]: \(problem ?? "")")
                    }
                }
            }

            let path = dir + "/db"
            do {
                let db = try Database(path: path)
                defer { db.close() }
                let c = try db.createCollection("c", schema: schema)
                for start in stride(from: 0, to: n, by: 350) {
                    var batch: [Document] = []
                    for i in start..<min(n, start + 350) {
                        let (d, l) = document(i, variant: 0)
                        batch.append(d)
                        live[d.id] = l
                    }
                    try c.upsert(batch)
                }
                try check(c, phase: "ingested", rounds: 30)

                // Deletes; upserts that change, drop or add attributes and vectors; new documents.
                let deleted = stride(from: 0, to: n, by: 7).map { "d\($0)" }
                _ = try c.delete(ids: deleted)
                for id in deleted { live[id] = nil }
                var batch: [Document] = []
                for i in Array(stride(from: 3, to: n, by: 11)) + Array(n..<(n + 300)) {
                    var (d, l) = document(i, variant: 1)
                    if i % 2 == 0 { d.attributes = ["tag": .keyword("t\(i)")]; l.attributes = Attributes(tag: "t\(i)") }
                    batch.append(d)
                    live[d.id] = l
                }
                try c.upsert(batch)
                try check(c, phase: "updated", rounds: 30)
                #expect(try c.verify().isEmpty)
                try c.compact()
                #expect(try c.verify().isEmpty)
                try check(c, phase: "compacted", rounds: 20)
                // What a document reads back is what was given.
                let d3 = try #require(try c.document(id: "d3"))
                #expect(d3.attributes == live["d3"]!.attributes.values)
            }
            let db = try Database(path: path, configuration: .readOnlyExisting)
            defer { db.close() }
            try check(try db.collection("c"), phase: "reopened", rounds: 10)
        }
    }

    /// Long posting lists (dozens of blocks) under filters that admit contiguous runs of
    /// documents (whole blocks of every list without an admitted document), every other
    /// document, documents far apart, or everything but the best-scoring ones (so the unfiltered
    /// top-k is all rejected). WAND and Block-Max WAND keep their cursors on admitted documents
    /// only; every algorithm is checked against the test's own scores of the matching
    /// documents, before and after deletes and upserts that move documents between runs.
    @Test func filteredTraversalPassesOverRejectedPostingsExactly() throws {
        try withTemporaryDirectory { dir in
            let n = 6000
            let dims: UInt32 = 80
            var rng = SplitMix64(seed: 12)
            struct Doc {
                var vector: SparseVector
                var band: Int
                var even: Bool
                var star: Bool
                var rare: Bool
            }
            var live: [String: Doc] = [:]
            func make(_ i: Int, band: Int) throws -> (Document, Doc) {
                // About 12 terms, skewed to low dimensions: dimension 0 is in most documents
                // (about 35 blocks), the high ones in a few dozen. Every 40th document is a
                // "star" scoring far above the rest.
                let star = i % 40 == 7
                var entries: [UInt32: Float] = [:]
                for _ in 0..<Int.random(in: 4...20, using: &rng) {
                    let r = Double.random(in: 0..<1, using: &rng)
                    entries[UInt32(Double(dims) * r * r)] = Float.random(in: 0.01..<3, using: &rng) * (star ? 20 : 1)
                }
                let d = Doc(vector: try SparseVector(entries.map { ($0.key, $0.value) }), band: band, even: i % 2 == 0, star: star, rare: i % 293 == 5)
                var attributes: [String: AttributeValue] = ["band": .keyword("b\(band)"), "even": .bool(d.even), "star": .bool(star)]
                if d.rare { attributes["rare"] = .keyword("r") }
                return (Document(id: "d\(i)", vector: d.vector, attributes: attributes), d)
            }
            let bands = 8
            let cases: [(label: String, filter: Filter, admits: (Doc) -> Bool)] = [
                ("one run", .equals("band", .string("b3")), { $0.band == 3 }),
                ("first and last runs", .isIn("band", [.string("b0"), .string("b7")]), { $0.band == 0 || $0.band == 7 }),
                ("every other", .equals("even", .bool(true)), { $0.even }),
                ("all but the stars", .not(.equals("star", .bool(true))), { !$0.star }),
                ("the stars", .equals("star", .bool(true)), { $0.star }),
                ("odd in runs 2-5", .and([.equals("even", .bool(false)), .isIn("band", (2...5).map { .string("b\($0)") })]), { !$0.even && (2...5).contains($0.band) }),
                ("rare or run 6", .or([.equals("rare", .string("r")), .equals("band", .string("b6"))]), { $0.rare || $0.band == 6 }),
                ("rare", .equals("rare", .string("r")), { $0.rare }),
                ("run 3 but no stars", .and([.equals("band", .string("b3")), .equals("star", .bool(false))]), { $0.band == 3 && !$0.star }),
                ("all but the first run", .not(.equals("band", .string("b0"))), { $0.band != 0 }),
            ]

            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(
                fields: [.sparse("s", dimensions: dims)],
                attributes: [
                    AttributeField(name: "band", type: .keyword), AttributeField(name: "even", type: .bool),
                    AttributeField(name: "star", type: .bool), AttributeField(name: "rare", type: .keyword),
                ]))
            var batch: [Document] = []
            for i in 0..<n {
                let (d, l) = try make(i, band: i * bands / n)
                batch.append(d)
                live[d.id] = l
            }
            try c.upsert(batch)

            var skippedBlocks = 0
            func check(_ phase: String) throws {
                var qrng = SplitMix64(seed: UInt64(phase.utf8.count))
                for (label, filter, admits) in cases {
                    let matching = live.filter { admits($0.value) }
                    for q in 0..<4 {
                        // Dimensions 0 and 1 (the longest lists) in every query, and a few more.
                        var entries: [UInt32: Float] = [0: Float.random(in: 0.1..<2, using: &qrng), 1: Float.random(in: 0.1..<2, using: &qrng)]
                        for _ in 0..<Int.random(in: 0...8, using: &qrng) {
                            entries[UInt32.random(in: 2..<dims, using: &qrng)] = Float.random(in: 0.05..<3, using: &qrng)
                        }
                        let query = try SparseVector(entries.map { ($0.key, $0.value) })
                        let scores = matching.mapValues { $0.vector.dot(query) }
                        let k = [1, 10, 100, 1000][q]
                        for algorithm in SearchAlgorithm.allCases {
                            let r = try c.search(query, options: SearchOptions(k: k, algorithm: algorithm, filter: filter))
                            let problem = rankingMismatch(r.hits.map { ($0.id, $0.score) }, scores: scores, k: k, positiveOnly: true)
                            #expect(problem == nil, "\(phase) \(algorithm) k=\(k) [\(label)] (\(matching.count) match): \(problem ?? "")")
                            if algorithm == .wand || algorithm == .bmw { skippedBlocks += r.statistics.blocksSkipped }
                        }
                    }
                }
            }
            try check("ingested")
            // Deletes, and upserts that move documents to other runs (and change their vectors).
            let deleted = stride(from: 0, to: n, by: 9).map { "d\($0)" }
            _ = try c.delete(ids: deleted)
            for id in deleted { live[id] = nil }
            batch = []
            for i in stride(from: 4, to: n, by: 13) {
                let (d, l) = try make(i, band: (i * bands / n + 3) % bands)
                batch.append(d)
                live[d.id] = l
            }
            try c.upsert(batch)
            try check("updated")
            try c.compact()
            try check("compacted")
            // The runs' filters leave whole blocks without an admitted document, which the
            // cursors pass over without entering (not a timing: a count of blocks).
            #expect(skippedBlocks > 0)
        }
    }

    /// The JSON form parses to the same filter as the Swift form.
    /// `dropCaches` empties every query cache — decoded blocks, flat rows and evaluated filters
    /// (`sparsedb bench --cold` relies on it) — and the answers after it are the same.
    @Test func dropCachesEmptiesEveryQueryCache() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let schema = CollectionSchema(
                fields: [.sparse("s", dimensions: 100), .dense("e", dimensions: 4)],
                attributes: [AttributeField(name: "lang", type: .keyword)])
            let c = try db.createCollection("c", schema: schema)
            var documents: [Document] = []
            for i in 0..<50 {
                let sparse = try SparseVector([(UInt32(i % 7), Float(i + 1))])
                let dense: [Float] = [Float(i), 1, 0, 0]
                let lang: AttributeValue = .keyword(i % 2 == 0 ? "en" : "de")
                documents.append(Document(id: "d\(i)", vectors: ["s": .sparse(sparse), "e": .dense(dense)], attributes: ["lang": lang]))
            }
            try c.upsert(documents)
            let filter = Filter.equals("lang", .string("en"))
            func answers() throws -> [[String]] {
                [try c.search(.sparse(try SparseVector([(3, 1)])), options: SearchOptions(k: 5, field: "s", filter: filter)).hits.map(\.id),
                 try c.search(.dense([1, 0, 0, 0]), options: SearchOptions(k: 5, field: "e")).hits.map(\.id)]
            }
            let before = try answers()
            #expect(db.engine.filterCache.count == 1 && db.engine.flatCache.cachedChunks > 0 && db.engine.cache.entryCount > 0)
            db.dropCaches()
            #expect(db.engine.filterCache.count == 0 && db.engine.flatCache.cachedChunks == 0 && db.engine.cache.entryCount == 0)
            #expect(try answers() == before)
        }
    }

    @Test func filterParsesFromJSON() throws {
        let f = try Filter(json: #"{"lang": {"in": ["en", "de"]}, "year": {"gte": 2000, "lt": 2010}, "$not": {"open": false}}"#)
        #expect(f == .and([
            .not(.equals("open", .bool(false))),
            .isIn("lang", [.string("en"), .string("de")]),
            .range("year", atLeast: .integer(2000), lessThan: .integer(2010)),
        ]))
        #expect(try Filter(json: #"{"$or": [{"a": 1}, {"b": 2.5}]}"#) == .or([.equals("a", .integer(1)), .equals("b", .float(2.5))]))
        #expect(try Filter(json: #"{"a": {"eq": true}}"#) == .equals("a", .bool(true)))
    }

    /// Range bounds on an integer attribute that are fractional or beyond Int64 mean what they
    /// say, checked against the values the test stored.
    @Test func integerRangesWithFractionalAndHugeBounds() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(
                fields: [.sparse("s", dimensions: 10)], attributes: [AttributeField(name: "year", type: .integer)]))
            let years: [Int64] = [.min, -5, 1999, 2000, 2001, .max]
            let v = try SparseVector([(1, 1)])
            try c.upsert(years.enumerated().map { Document(id: "y\($0.offset)", vector: v, attributes: ["year": .integer($0.element)]) })
            func ids(_ json: String) throws -> [Int64] {
                try c.search(v, options: SearchOptions(k: 100, filter: try Filter(json: json))).hits
                    .map { years[Int($0.id.dropFirst())!] }.sorted()
            }
            typealias Case = (json: String, admits: (Int64) -> Bool)
            var cases: [Case] = []
            cases.append((#"{"year": {"gt": 2000.5}}"#, { Double($0) > 2000.5 }))
            cases.append((#"{"year": {"gte": 2000.5}}"#, { Double($0) >= 2000.5 }))
            cases.append((#"{"year": {"lt": 2000.5}}"#, { Double($0) < 2000.5 }))
            cases.append((#"{"year": {"lte": -4.5}}"#, { $0 <= -5 }))
            cases.append((#"{"year": {"gt": -5.0, "lt": 2000.0}}"#, { $0 > -5 && $0 < 2000 }))
            cases.append((#"{"year": {"gte": 1e30}}"#, { _ in false }))
            cases.append((#"{"year": {"lte": 1e30}}"#, { _ in true }))
            cases.append((#"{"year": {"gte": -1e30}}"#, { _ in true }))
            cases.append((#"{"year": {"lt": -1e30}}"#, { _ in false }))
            cases.append((#"{"year": {"gte": 9223372036854775808}}"#, { _ in false }))
            cases.append((#"{"year": {"lt": 18446744073709551615}}"#, { _ in true }))
            cases.append((#"{"year": {"gt": 9223372036854775807}}"#, { _ in false }))
            cases.append((#"{"year": {"lt": -9223372036854775808}}"#, { _ in false }))
            cases.append((#"{"year": {"lte": 9223372036854775807}}"#, { _ in true }))
            for (json, admits) in cases {
                #expect(try ids(json) == years.filter(admits).sorted(), "\(json)")
            }
        }
    }

    @Test func badFiltersAndAttributeValuesAreRefusedAndWriteNothing() throws {
        for bad in [
            "", "[1]", "{}", #"{"a": null}"#, #"{"a": [1, 2]}"#, #"{"a": {"near": 3}}"#, #"{"$xor": []}"#, #"{"$and": []}"#,
            #"{"$and": {}}"#, #"{"a": {"in": 3}}"#, #"{"a": {"gte": "x"}}"#, #"{"a": 1e999}"#,
        ] {
            #expect(throws: SparseDBError.self, "filter \(bad)") { _ = try Filter(json: bad) }
        }
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(
                fields: [.sparse("s", dimensions: 100)],
                attributes: [AttributeField(name: "lang", type: .keyword), AttributeField(name: "year", type: .integer), AttributeField(name: "open", type: .bool)]))
            let v = try SparseVector([(1, 1)])
            try c.upsert([Document(id: "a", vector: v, attributes: ["lang": .keyword("en"), "year": .integer(2001)])])
            // Filters that do not fit the collection.
            for (filter, needle) in [
                (Filter.equals("nope", .string("x")), "nope"),
                (.equals("year", .string("2001")), "year"),
                (.equals("year", .float(2001.5)), "year"),
                (.range("lang", atLeast: .integer(1)), "lang"),
                (.equals("open", .integer(1)), "open"),
                (.and([.equals("lang", .string("en")), .not(.equals("lang", .bool(true)))]), "lang"),
            ] {
                do {
                    _ = try c.search(v, options: SearchOptions(filter: filter))
                    Issue.record("filter \(filter) was accepted")
                } catch let e as SparseDBError {
                    #expect(e.code == .invalidInput && "\(e)".contains(needle), "\(e)")
                }
            }
            // Values of the wrong type or undeclared attributes: the whole batch is refused.
            for attrs in [
                ["year": AttributeValue.keyword("2001")], ["lang": .integer(1)], ["open": .float(1)], ["other": .bool(true)],
                ["year": .float(.nan)],
            ] as [[String: AttributeValue]] {
                #expect(throws: SparseDBError.self, "\(attrs)") {
                    try c.upsert([Document(id: "b", vector: v), Document(id: "c", vector: v, attributes: attrs)])
                }
            }
            #expect(try c.count() == 1)
            #expect(try c.document(id: "b") == nil)
            #expect(try c.verify().isEmpty)
            let hits = try c.search(v, options: SearchOptions(filter: .equals("lang", .string("en")))).hits
            #expect(hits.map(\.id) == ["a"])
        }
    }
}
