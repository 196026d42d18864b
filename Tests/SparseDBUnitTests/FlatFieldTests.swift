import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// Dense and CSR fields against brute force computed here from the vectors as they are stored
/// (normalized for cosine, rounded for f16), with deletes, upserts, compaction and reopening.
@Suite struct FlatFieldTests {
    static func denseDocs(count: Int, dims: Int, seed: UInt64) -> [(id: String, values: [Float])] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            var v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
            if i % 17 == 0 { v = v.map { ($0 * 4).rounded() / 4 } }  // exact ties between some documents
            if i % 29 == 0 { v = Array(repeating: 0.5, count: dims) }
            return ("d\(i)", v)
        }
    }

    static func stored(_ v: [Float], cosine: Bool, half: Bool) -> [Float] { denseStored(v, cosine: cosine, half: half) }
    static func denseScore(_ q: [Float], _ row: [Float], d: Int, cosine: Bool) -> Double { SparseDBTestSupport.denseScore(q, row, d: d, cosine: cosine) }

    @Test(arguments: [("dot", "f32"), ("cosine", "f32"), ("dot", "f16"), ("cosine", "f16")])
    func denseFieldsMatchBruteForce(metric: String, precision: String) throws {
        try withTemporaryDirectory { dir in
            let dims = 48
            let cosine = metric == "cosine"
            let half = precision == "f16"
            let field = VectorField.dense("e", dimensions: UInt32(dims), metric: cosine ? .cosine : .dot, precision: half ? .float16 : .float32)
            var docs = Self.denseDocs(count: 1300, dims: dims, seed: 7)
            var live: [String: [Float]] = [:]
            let path = dir + "/db"
            func check(_ c: VectorCollection, seed: UInt64) throws {
                var rng = SplitMix64(seed: seed)
                for _ in 0..<15 {
                    let q = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                    for d in [dims, 16, 5] {
                        let k = [1, 10, 40][Int.random(in: 0..<3, using: &rng)]
                        let got = try c.search(.dense(q), options: SearchOptions(k: k, dimensions: d)).hits.map { ($0.id, $0.score) }
                        let scores = live.mapValues { Self.denseScore(q, $0, d: d, cosine: cosine) }
                        let problem = rankingMismatch(got, scores: scores, k: k)
                        #expect(problem == nil, "\(metric)/\(precision) d=\(d) k=\(k): \(problem ?? "")")
                    }
                }
                // The batch path (one matrix product per chunk for all the queries) against brute force too.
                let batch = (0..<9).map { _ in (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) } }
                for d in [dims, 5] {
                    let results = try c.search(batch: batch.map { .dense($0) }, options: SearchOptions(k: 10, dimensions: d))
                    #expect(results.count == batch.count)
                    for (q, result) in zip(batch, results) {
                        let scores = live.mapValues { Self.denseScore(q, $0, d: d, cosine: cosine) }
                        let problem = rankingMismatch(result.hits.map { ($0.id, $0.score) }, scores: scores, k: 10)
                        #expect(problem == nil, "batch \(metric)/\(precision) d=\(d): \(problem ?? "")")
                    }
                }
            }
            do {
                let db = try Database(path: path)
                defer { db.close() }
                let c = try db.createCollection("c", schema: CollectionSchema(fields: [field]))
                for start in stride(from: 0, to: 1000, by: 300) {
                    let batch = docs[start..<min(1000, start + 300)]
                    try c.upsert(batch.map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
                    for d in batch { live[d.id] = Self.stored(d.values, cosine: cosine, half: half) }
                }
                try check(c, seed: 1)
                // Deletes and replacements, then the rest.
                let deleted = stride(from: 0, to: 1000, by: 9).map { "d\($0)" }
                try c.delete(ids: deleted)
                for id in deleted { live[id] = nil }
                var rng = SplitMix64(seed: 3)
                var replaced: [Document] = []
                for i in stride(from: 1, to: 1000, by: 13) where i % 9 != 0 {
                    let v = (0..<dims).map { _ in Float.random(in: -2...2, using: &rng) }
                    replaced.append(Document(id: "d\(i)", vectors: ["e": .dense(v)]))
                    live["d\(i)"] = Self.stored(v, cosine: cosine, half: half)
                }
                try c.upsert(replaced)
                try c.upsert(docs[1000...].map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
                for d in docs[1000...] { live[d.id] = Self.stored(d.values, cosine: cosine, half: half) }
                try check(c, seed: 2)
                #expect(try c.verify().isEmpty)
                try c.compact()
                #expect(try c.verify().isEmpty)
                try check(c, seed: 4)
                #expect(try c.document(id: "d5").map { doc -> Bool in
                    if case .dense(let v)? = doc.vectors["e"] { return v == live["d5"]! }
                    return false
                } == true)
            }
            let db = try Database(path: path, configuration: .readOnlyExisting)
            defer { db.close() }
            try check(try db.collection("c"), seed: 5)
            docs.removeAll()
        }
    }

    /// Dense rows kept in the flat cache's huge-page mappings, in plain allocations (no cache),
    /// and in a cache so small that chunks are evicted and decoded again between queries (256
    /// KiB: f32 rows are then kept as f32, the field's half-precision copies would not fit; 480
    /// KiB: they fit, and are scanned): the same exact results. Rows repeat across chunks, so
    /// whole chunks tie with the k-th score (the scan passes over a chunk with one test when its
    /// best score cannot enter the top-k). f16 fields too: their rows stay f16 in memory and are
    /// scanned by the f16 kernel. 40 dimensions: the kernel's 32-wide loop, its 8-wide loop and
    /// no scalar tail; 45 adds one.
    @Test(arguments: [
        (0, "f32", 40), (256 << 10, "f32", 40), (480 << 10, "f32", 40), (1 << 30, "f32", 45), (0, "f16", 45), (256 << 10, "f16", 40),
        (1 << 30, "f16", 45),
    ])
    func denseScanMatchesBruteForceAtAnyCacheBudget(flatCacheBytes: Int, precision: String, dims: Int) throws {
        try withTemporaryDirectory { dir in
            let half = precision == "f16"
            var docs = Self.denseDocs(count: 4000, dims: dims, seed: 17)
            for i in stride(from: 700, to: 4000, by: 3) { docs[i].values = docs[i % 300].values }  // duplicates in later chunks
            var configuration = Database.Configuration()
            configuration.flatCacheBytes = flatCacheBytes
            let db = try Database(path: dir + "/db", configuration: configuration)
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [
                .dense("e", dimensions: UInt32(dims), metric: .dot, precision: half ? .float16 : .float32)
            ]))
            try c.upsert(docs.map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
            let live = Dictionary(uniqueKeysWithValues: docs.map { ($0.id, Self.stored($0.values, cosine: false, half: half)) })
            var rng = SplitMix64(seed: 23)
            for round in 0..<12 {
                // Some queries are stored rows, whose top scores then come in tied groups.
                let q = round % 3 == 0 ? docs[Int.random(in: 0..<300, using: &rng)].values : (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                let k = [1, 3, 10][round % 3]
                let got = try c.search(.dense(q), options: SearchOptions(k: k)).hits.map { ($0.id, $0.score) }
                let scores = live.mapValues { Self.denseScore(q, $0, d: dims, cosine: false) }
                let problem = rankingMismatch(got, scores: scores, k: k)
                #expect(problem == nil, "budget \(flatCacheBytes) \(precision) k=\(k): \(problem ?? "")")
            }
        }
    }

    /// An f16 field of 17 chunks (the last one partly filled): scans split over several workers
    /// (two or more chunks of eight each, on a machine with two CPUs), each with its own buffer
    /// of widened rows for batches and truncated cosine. The same exact results as brute force.
    @Test func halfFieldScansOnSeveralWorkers() throws {
        try withTemporaryDirectory { dir in
            let dims = 48
            let docs = Self.denseDocs(count: 4_300, dims: dims, seed: 41)
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [
                .dense("e", dimensions: UInt32(dims), metric: .cosine, precision: .float16)
            ]))
            try c.upsert(docs.map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
            let live = Dictionary(uniqueKeysWithValues: docs.map { ($0.id, Self.stored($0.values, cosine: true, half: true)) })
            var rng = SplitMix64(seed: 43)
            let queries = (0..<6).map { _ in (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) } }
            for d in [dims, 24, 7] {
                for q in queries {
                    let got = try c.search(.dense(q), options: SearchOptions(k: 10, dimensions: d)).hits.map { ($0.id, $0.score) }
                    let problem = rankingMismatch(got, scores: live.mapValues { Self.denseScore(q, $0, d: d, cosine: true) }, k: 10)
                    #expect(problem == nil, "d=\(d): \(problem ?? "")")
                }
                let results = try c.search(batch: queries.map { .dense($0) }, options: SearchOptions(k: 10, dimensions: d))
                for (q, result) in zip(queries, results) {
                    let problem = rankingMismatch(
                        result.hits.map { ($0.id, $0.score) }, scores: live.mapValues { Self.denseScore(q, $0, d: d, cosine: true) }, k: 10)
                    #expect(problem == nil, "batch d=\(d): \(problem ?? "")")
                }
            }
        }
    }

    /// f32 fields are scanned through half-precision copies of their cached chunks and rescored
    /// from the stored rows: the results must still be those of brute force over the f32 rows.
    /// Rows that only differ below half precision (identical copies, distinct scores), in the
    /// same chunk and in later ones, queries equal to them (their top scores within the copies'
    /// error of each other); for dot, a chunk holding a value beyond half precision and one of
    /// tiny values (both scanned as f32; a cosine field normalizes them first); rows whose first
    /// values are subnormal halves or underflow in half precision while the rest do not (a
    /// truncated cosine on those first values: the copy has little or no direction there); 17
    /// chunks, so two workers scan; then deletes and upserts (the last chunk rewritten) and the
    /// same checks again.
    @Test(arguments: ["dot", "cosine"])
    func f32FieldsScannedThroughHalfCopiesStayExact(metric: String) throws {
        try withTemporaryDirectory { dir in
            let dims = 40
            let cosine = metric == "cosine"
            var rng = SplitMix64(seed: 61)
            func nearDuplicate(_ v: [Float], _ t: Int) -> [Float] { v.map { $0 * (1 + Float(t) * 0x1p-20 * (Bool.random(using: &rng) ? 1 : -1)) } }
            var docs: [(id: String, values: [Float])] = []
            // Chunks 0–3: 256 base rows, each followed by three near-duplicates (a relative change
            // of 2⁻²⁰ in every value: the same half-precision copy, or next to it).
            var bases: [[Float]] = []
            for i in 0..<256 {
                let v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                bases.append(v)
                docs.append(("b\(i)", v))
                for t in 1...3 { docs.append(("b\(i)n\(t)", nearDuplicate(v, t))) }
            }
            // Chunk 4: one value beyond half precision in one row.
            for i in 0..<256 {
                var v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                if i == 100 { v[7] = 70_000 }
                docs.append(("big\(i)", v))
            }
            // Chunk 5: tiny values (subnormal halves).
            for i in 0..<256 { docs.append(("tiny\(i)", (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) * 1e-6 })) }
            // Chunk 6: first five values subnormal in f16 (1e-6) or below its range (1e-9), the rest ordinary.
            for i in 0..<256 {
                var v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                if i % 3 != 2 { for j in 0..<5 { v[j] = Float.random(in: -1...1, using: &rng) * (i % 3 == 0 ? 1e-9 : 1e-6) } }
                docs.append(("under\(i)", v))
            }
            // Chunks 7–16: more near-duplicates of the base rows, and random rows.
            for i in 0..<2560 {
                docs.append(i % 2 == 0 ? ("far\(i)", nearDuplicate(bases[(i / 2) % 256], 4 + i % 5)) : ("rand\(i)", (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }))
            }
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [
                .dense("e", dimensions: UInt32(dims), metric: cosine ? .cosine : .dot, precision: .float32)
            ]))
            try c.upsert(docs.map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
            var live = Dictionary(uniqueKeysWithValues: docs.map { ($0.id, Self.stored($0.values, cosine: cosine, half: false)) })
            var queries: [[Float]] = (0..<12).map { bases[$0 * 20] }
            queries += (0..<6).map { _ in (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) } }
            for id in ["big100", "tiny7", "under3", "under4"] { queries.append(docs.first { $0.id == id }!.values) }
            func check(_ label: String) throws {
                for d in [dims, 5] {
                    for (n, q) in queries.enumerated() {
                        let k = [1, 4, 10][n % 3]
                        let got = try c.search(.dense(q), options: SearchOptions(k: k, dimensions: d)).hits.map { ($0.id, $0.score) }
                        let problem = rankingMismatch(got, scores: live.mapValues { Self.denseScore(q, $0, d: d, cosine: cosine) }, k: k)
                        #expect(problem == nil, "\(metric) \(label) d=\(d) query \(n) k=\(k): \(problem ?? "")")
                    }
                    let results = try c.search(batch: queries.map { .dense($0) }, options: SearchOptions(k: 10, dimensions: d))
                    for (n, (q, result)) in zip(queries, results).enumerated() {
                        let problem = rankingMismatch(
                            result.hits.map { ($0.id, $0.score) }, scores: live.mapValues { Self.denseScore(q, $0, d: d, cosine: cosine) }, k: 10)
                        #expect(problem == nil, "batch \(metric) \(label) d=\(d) query \(n): \(problem ?? "")")
                    }
                }
            }
            try check("first scan")  // decodes and caches the chunks
            try check("cached")
            // Deletes of top rows, a base row replaced, new near-duplicates appended to the last chunk.
            let deleted = (0..<12).map { "b\($0 * 20)n1" } + ["under3", "far0"]
            try c.delete(ids: deleted)
            for id in deleted { live[id] = nil }
            var added: [(id: String, values: [Float])] = [("b20", nearDuplicate(bases[20], 2))]
            for i in 0..<30 { added.append(("late\(i)", nearDuplicate(bases[(i % 12) * 20], 5))) }
            try c.upsert(added.map { Document(id: $0.id, vectors: ["e": .dense($0.values)]) })
            for a in added { live[a.id] = Self.stored(a.values, cosine: cosine, half: false) }
            try check("after writes")
            try check("after writes, cached")
        }
    }

    /// The test that passes over a whole chunk must widen its best score by the chunk's largest
    /// copy residual too. Chunk 0 holds C = v + one half-precision step in eight values (exact
    /// in f16); chunk 1 holds A = v + 0.49 of a step in every value, whose copy is v itself. For
    /// the query v, A's exact score is the best, its copy's below C's by more than the
    /// collector's slack: the chunk holding A must be scanned and A rescored.
    @Test func aChunkIsPassedOverOnlyWhenItsCopiesCannotReachTheTopK() throws {
        try withTemporaryDirectory { dir in
            let dims = 40
            let step: Float = 0x1p-11  // between halves in [0.5, 1)
            var rng = SplitMix64(seed: 71)
            let v = (0..<dims).map { _ in 0.5 + Float(Int.random(in: 0..<1024, using: &rng)) * step }
            var c = v
            for j in 0..<8 { c[j] += step }
            let a = v.map { $0 + 0.49 * step }
            func filler(_ i: Int) -> (String, [Float]) { ("f\(i)", (0..<dims).map { _ in Float.random(in: -0.1...0.1, using: &rng) }) }
            var docs = (0..<100).map(filler)
            docs.append(("C", c))
            docs += (100..<256).map(filler)
            docs += (256..<300).map(filler)
            docs.append(("A", a))
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let collection = try db.createCollection("c", schema: CollectionSchema(fields: [.dense("e", dimensions: UInt32(dims))]))
            try collection.upsert(docs.map { Document(id: $0.0, vectors: ["e": .dense($0.1)]) })
            let live = Dictionary(uniqueKeysWithValues: docs.map { ($0.0, $0.1) })
            for round in 0..<2 {  // decoded, then from the cache
                let got = try collection.search(.dense(v), options: SearchOptions(k: 1)).hits.map { ($0.id, $0.score) }
                #expect(got.first?.0 == "A", "round \(round): \(got)")
                let problem = rankingMismatch(got, scores: live.mapValues { Self.denseScore(v, $0, d: dims, cosine: false) }, k: 1)
                #expect(problem == nil, "round \(round): \(problem ?? "")")
            }
        }
    }

    /// CSR codes: k active dimensions of 4,096 with power-law usage, flat and inverted.
    static func codes(count: Int, k: Int, seed: UInt64) throws -> [(id: String, vector: SparseVector)] {
        var rng = SplitMix64(seed: seed)
        return try (0..<count).map { i in
            var entries: [UInt32: Float] = [:]
            let n = Int.random(in: max(1, k / 2)...k, using: &rng)
            while entries.count < n {
                let r = Double.random(in: 0..<1, using: &rng)
                entries[UInt32(4095 * r * r * r)] = Bool.random(using: &rng) ? Float(Int.random(in: 1...3, using: &rng)) : Float.random(in: 0.01..<2, using: &rng)
            }
            return ("c\(i)", try SparseVector(entries.map { ($0.key, $0.value) }))
        }
    }

    // k = 36: rows wide enough for the gather path, with a width that is not a multiple of its eight lanes.
    // Flat codes are kept in the flat cache (1 GiB), in plain allocations (no cache) and in a
    // cache that evicts (256 KiB); 4,200 codes are 17 chunks, so two workers scan them.
    @Test(arguments: [
        (16, "flat", "f32", 1 << 30), (16, "inverted", "f32", 1 << 30), (64, "flat", "f16", 0), (256, "flat", "f32", 1 << 30),
        (36, "flat", "f32", 256 << 10),
    ])
    func csrFieldsMatchBruteForce(k: Int, index: String, precision: String, flatCacheBytes: Int) throws {
        try withTemporaryDirectory { dir in
            let half = precision == "f16"
            let field = VectorField.csr("code", dimensions: 4096, activeDimensions: k, precision: half ? .float16 : .float32, index: index == "flat" ? .flat : .inverted)
            let docs = try Self.codes(count: 4200, k: k, seed: UInt64(k))
            var configuration = Database.Configuration()
            configuration.flatCacheBytes = flatCacheBytes
            let db = try Database(path: dir + "/db", configuration: configuration)
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [field]))
            #expect(c.schema.fields[0].index.rawValue == index)
            for start in stride(from: 0, to: docs.count, by: 250) {
                try c.upsert(docs[start..<min(docs.count, start + 250)].map { Document(id: $0.id, vectors: ["code": .sparse($0.vector)]) })
            }
            try c.delete(ids: stride(from: 0, to: 4200, by: 7).map { "c\($0)" })
            func stored(_ v: SparseVector) -> SparseVector {
                half ? try! SparseVector(dimensions: v.dimensions, weights: v.weights.map { Float(Float16($0)) }) : v
            }
            let live = docs.enumerated().filter { $0.offset % 7 != 0 }.map { ($0.element.id, stored($0.element.vector)) }
            let oracle = BruteForce(live)
            func check(seed: UInt64) throws {
                let queries = try Self.codes(count: 12, k: k, seed: seed)
                for (_, q) in queries {
                    for truncate in [nil, 4] as [Int?] {
                        let qq = truncate.map { q.keepingLargest($0) } ?? q
                        for algorithm in SearchAlgorithm.allCases {
                            let got = try c.search(q, options: SearchOptions(k: 10, algorithm: algorithm, maxActiveDims: truncate)).hits.map { ($0.id, $0.score) }
                            let problem = oracle.mismatch(got, query: qq, k: 10)
                            #expect(problem == nil, "k=\(k) \(index) \(precision) truncate=\(String(describing: truncate)) \(algorithm): \(problem ?? "")")
                        }
                    }
                }
            }
            try check(seed: 100)
            #expect(try c.verify().isEmpty)
            try c.compact()
            #expect(try c.verify().isEmpty)
            try check(seed: 101)
            #expect(try c.statistics().fields[0].name == "code")
        }
    }

    @Test func badFlatInputIsRefusedAndWritesNothing() throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [
                .dense("e", dimensions: 4, metric: .cosine), .csr("code", dimensions: 64, activeDimensions: 2, index: .flat),
            ]))
            try c.upsert([Document(id: "ok", vectors: ["e": .dense([1, 0, 0, 0]), "code": .sparse(try SparseVector([(1, 1)]))])])
            let bad: [Document] = [
                Document(id: "short", vectors: ["e": .dense([1, 2, 3])]),
                Document(id: "nan", vectors: ["e": .dense([1, .nan, 0, 0])]),
                Document(id: "inf", vectors: ["e": .dense([1, .infinity, 0, 0])]),
                Document(id: "zero", vectors: ["e": .dense([0, 0, 0, 0])]),
                Document(id: "many", vectors: ["code": .sparse(try SparseVector([(1, 1), (2, 1), (3, 1)]))]),
                Document(id: "range", vectors: ["code": .sparse(try SparseVector([(64, 1)]))]),
                Document(id: "kind", vectors: ["e": .sparse(try SparseVector([(1, 1)]))]),
            ]
            for doc in bad {
                let e = #expect(throws: SparseDBError.self, "\(doc.id)") { try c.upsert([Document(id: "fine", vectors: ["e": .dense([0, 1, 0, 0])]), doc]) }
                #expect(e?.code == .invalidInput, "\(doc.id)")
            }
            #expect(try c.count() == 1)
            #expect(try c.verify().isEmpty)
            #expect(throws: SparseDBError.self) { try db.createCollection("k", schema: CollectionSchema(fields: [.csr("x", activeDimensions: 300)])) }
            #expect(throws: SparseDBError.self) { try c.search(.dense([1, 2]), options: SearchOptions(field: "e")) }
        }
    }
}

/// Hybrid search against fusion computed here from each field's brute-force ranking.
@Suite struct HybridSearchTests {
    @Test(arguments: ["rrf", "weighted"])
    func fusionMatchesBruteForceFusion(method: String) throws {
        try withTemporaryDirectory { dir in
            let dims = 16
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.createCollection("c", schema: CollectionSchema(fields: [
                .sparse("s", dimensions: 400), .dense("e", dimensions: UInt32(dims)), .csr("code", dimensions: 4096, activeDimensions: 8, index: .flat),
            ]))
            let sparse = try randomDocuments(count: 900, dims: 400, seed: 61)
            let dense = FlatFieldTests.denseDocs(count: 900, dims: dims, seed: 62)
            let codes = try FlatFieldTests.codes(count: 900, k: 8, seed: 63)
            var docs: [Document] = []
            for i in 0..<900 {
                var v: [String: FieldVector] = ["s": .sparse(sparse[i].vector)]
                if i % 5 != 0 { v["e"] = .dense(dense[i].values) }  // some documents lack a field
                if i % 3 != 0 { v["code"] = .sparse(codes[i].vector) }
                docs.append(Document(id: "x\(String(format: "%04d", i))", vectors: v))
            }
            try c.upsert(docs)
            var rng = SplitMix64(seed: 64)
            for round in 0..<12 {
                let qs = try randomQuery(&rng, dims: 400)
                let qe = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
                let qc = try FlatFieldTests.codes(count: 1, k: 8, seed: UInt64(100 + round))[0].vector
                let depth = [5, 20, 100][round % 3]
                // Each field's exact scores, by brute force.
                var fieldScores: [String: [String: Double]] = ["s": [:], "e": [:], "code": [:]]
                for d in docs {
                    if case .sparse(let v)? = d.vectors["s"] { fieldScores["s"]![d.id] = v.dot(qs) }
                    if case .dense(let v)? = d.vectors["e"] { fieldScores["e"]![d.id] = FlatFieldTests.denseScore(qe, v, d: dims, cosine: false) }
                    if case .sparse(let v)? = d.vectors["code"] { fieldScores["code"]![d.id] = v.dot(qc) }
                }
                func ranking(_ f: String) -> [(String, Double)] {
                    fieldScores[f]!.filter { f == "e" || $0.value > 0 }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                        .prefix(depth).map { ($0.key, $0.value) }
                }
                let rankings = ["s": ranking("s"), "e": ranking("e"), "code": ranking("code")]
                let candidates = Set(rankings.values.flatMap { $0.map(\.0) })
                var fused: [String: Double] = [:]
                let weights = ["s": 0.5, "e": 0.3, "code": 0.2]
                for id in candidates {
                    if method == "rrf" {
                        fused[id] = rankings.values.reduce(0.0) { acc, r in acc + (r.firstIndex { $0.0 == id }.map { 1 / (60 + Double($0 + 1)) } ?? 0) }
                    } else {
                        var total = 0.0
                        for f in ["s", "e", "code"] {
                            let values = candidates.map { fieldScores[f]![$0] ?? 0 }
                            let lo = values.min()!, hi = values.max()!
                            let s = fieldScores[f]![id] ?? 0
                            total += weights[f]! * (hi > lo ? (s - lo) / (hi - lo) : 1)
                        }
                        fused[id] = total
                    }
                }
                let result = try c.search(
                    hybrid: ["s": .sparse(qs), "e": .dense(qe), "code": .sparse(qc)],
                    fusion: FusionOptions(method: method == "rrf" ? .rrf : .weighted, depth: depth, weights: method == "rrf" ? [:] : weights),
                    options: SearchOptions(k: 10))
                // Fused order: score, then the smaller external id — exactly.
                let expected = fused.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(10)
                #expect(result.hits.map(\.id) == expected.map(\.key), "\(method) round \(round)")
                for (h, e) in zip(result.hits, expected) { #expect(abs(h.score - e.value) <= 1e-9 * max(1, abs(e.value))) }
                // And each field's own ranking is exact.
                for f in ["s", "e", "code"] {
                    let problem = rankingMismatch(result.fields[f]!.map { ($0.id, $0.score) }, scores: fieldScores[f]!, k: depth, positiveOnly: f != "e")
                    #expect(problem == nil, "field \(f): \(problem ?? "")")
                }
            }
        }
    }
}
