import ArgumentParser
import Dispatch
import Foundation
import SparseDB
import SparseDBCore
import SparseDBTools
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure query latency and throughput in this process; JSON on stdout.",
        discussion: """
            Reads the query vectors (JSONL, a big-ann-benchmarks .csr file, or .fbin for a dense field), runs them once as a \
            warm-up (unless --cold or --no-warmup), then --repeat times, timing each search alone \
            (hits are looked up by id; payloads are not loaded unless --payloads); *_ms are wall-clock \
            latencies, cpu_*_ms the searching thread's CPU time (what a busy machine's waiting leaves \
            out). With --threads N, \
            N threads each take the next query until all are done: qps is the throughput, the \
            latencies are per query. --cold empties this process's query caches before every query \
            (Database.dropCaches(); the operating system's page cache is not touched); \
            --drop-os-cache also asks the kernel to drop the data file's pages (best effort: \
            madvise(MADV_DONTNEED) on this process's mappings of data.mdb, then \
            posix_fadvise(POSIX_FADV_DONTNEED); pages other processes map stay).
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Collection name.") var collection: String = "default"
    @Option(help: "Query vectors: JSONL {\"_id\", \"vector\"}, or a .csr file (ids from FILE.csr.ids, else row numbers); dense fields: {\"_id\", \"dense\"} lines or an .fbin file.")
    var queryVectors: String
    @Option(parsing: .unconditional, help: "Hits per query (≥ 1).") var k: Int = 10
    @Option(help: "exhaustive | maxscore | wand | bmw.") var algorithm: SearchAlgorithm = .maxscore
    @Option(help: "The field to search (default: the collection's only field).") var field: String?
    @Option(parsing: .unconditional, help: "Approximate: walk only the lists of this many largest query weights (≥ 1); hits are still scored with the whole query.") var maxQueryTerms: Int?
    @Option(parsing: .unconditional, help: "Approximate: rescore this many of the pruned search's best documents with the whole query (k ... 2^20; default k).") var candidates: Int?
    @Option(parsing: .unconditional, help: "Approximate: prune below this factor × the k-th score (1 = exact).") var heapFactor: Float = 1
    @Option(
        parsing: .unconditional,
        help: "Approximate, no traversal: score every document among each walked list's N largest postings from in-memory rows, rescore the best --candidates exactly (1 ... 2^24).")
    var postingsPerTerm: Int?
    @Option(name: .customLong("forward-cache-mb"), parsing: .unconditional, help: "MiB of in-memory forward rows for --postings-per-term (default 1024; 0 = score from the stored rows).")
    var forwardCacheMB: Int?
    @Option(name: .customLong("dims"), parsing: .unconditional, help: "Dense fields: score on the first D dimensions (Matryoshka).") var dims: Int?
    @Option(name: .customLong("flat-cache-mb"), parsing: .unconditional, help: "MiB of decoded flat rows kept between queries (default 1024; 0 = decode every scan).")
    var flatCacheMB: Int?
    @Option(name: .customLong("cache-mb"), parsing: .unconditional, help: "MiB of decoded posting blocks kept between queries (default 512).")
    var postingCacheMB: Int?
    @Option(parsing: .unconditional, help: "Queries in flight at once (threads taking the next query).") var threads: Int = 1
    @Option(
        parsing: .unconditional,
        help: "Answer the queries N at a time through the batch API (dense fields: one pass over the rows per batch); latencies are per query, the batch's time divided by its size.")
    var batch: Int = 1
    @Option(name: .customLong("repeat"), parsing: .unconditional, help: "Measured passes over the queries.") var repetitions: Int = 1
    @Option(parsing: .unconditional, help: "Use only the first N queries.") var limit: Int?
    @Flag(help: "Empty the process's query caches before every query (implies --no-warmup; one thread).") var cold = false
    @Flag(help: "With --cold: also drop data.mdb's pages from the OS page cache before every query (best effort).")
    var dropOsCache = false
    @Flag(inversion: .prefixedNo, help: "Run every query once before measuring (ignored with --cold).") var warmup = true
    @Flag(help: "Load each hit's payload, as `search` does.") var payloads = false
    @Option(help: "Only documents matching this JSON filter on payload attributes (as `search --filter`).") var filter: String?
    @Option(name: .customLong("run"), help: "Write the hits of the last measured pass to this file, one JSON line per query.")
    var runFile: String?

    func validate() throws {
        if k < 1 { throw ValidationError("--k must be at least 1, got \(k)") }
        if let m = maxQueryTerms, m < 1 { throw ValidationError("--max-query-terms must be at least 1, got \(m)") }
        if let c = candidates, c < k || c > 1 << 20 { throw ValidationError("--candidates must be between --k (\(k)) and 2^20, got \(c)") }
        if !(heapFactor >= 1) || !heapFactor.isFinite { throw ValidationError("--heap-factor must be a number ≥ 1, got \(heapFactor)") }
        if threads < 1 || threads > 1024 { throw ValidationError("--threads must be 1 ... 1024, got \(threads)") }
        if batch < 1 || batch > 65_536 { throw ValidationError("--batch must be 1 ... 65536, got \(batch)") }
        if cold && batch > 1 { throw ValidationError("--cold measures one query at a time: use --batch 1") }
        if repetitions < 1 { throw ValidationError("--repeat must be at least 1, got \(repetitions)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if cold && threads > 1 { throw ValidationError("--cold measures one query at a time: use --threads 1") }
        if dropOsCache && !cold { throw ValidationError("--drop-os-cache goes with --cold") }
        if let filter { _ = try Filter(json: filter) }
        if let d = dims, d < 1 { throw ValidationError("--dims must be at least 1, got \(d)") }
        if let m = flatCacheMB, m < 0 || m > 1 << 30 { throw ValidationError("--flat-cache-mb must be 0 ... 2^30, got \(m)") }
        if let m = postingCacheMB, m < 0 || m > 1 << 30 { throw ValidationError("--cache-mb must be 0 ... 2^30, got \(m)") }
        if let m = forwardCacheMB, m < 0 || m > 1 << 30 { throw ValidationError("--forward-cache-mb must be 0 ... 2^30, got \(m)") }
        if let p = postingsPerTerm, p < 1 || p > 1 << 24 { throw ValidationError("--postings-per-term must be 1 ... 2^24, got \(p)") }
    }

    @Flag(inversion: .prefixedNo, help: "Approximate settings: also run each query exactly (untimed) and report recall@k against it.")
    var recall = true

    var options: SearchOptions {
        SearchOptions(
            k: k, algorithm: algorithm, field: field, maxQueryTerms: maxQueryTerms, heapFactor: heapFactor, dimensions: dims, filter: filter.flatMap { try? Filter(json: $0) },
            includePayloads: payloads, candidates: candidates, postingsPerTerm: postingsPerTerm)
    }

    /// Whether these options may return other hits than an exact search.
    var isExact: Bool { maxQueryTerms == nil && heapFactor == 1 && postingsPerTerm == nil }

    func run() throws {
        try reportingErrors {
            let load0 = loadAverage()
            var configuration = Database.Configuration.readOnlyExisting
            if let flatCacheMB { configuration.flatCacheBytes = flatCacheMB << 20 }
            if let postingCacheMB { configuration.postingCacheBytes = postingCacheMB << 20 }
            if let forwardCacheMB { configuration.forwardCacheBytes = forwardCacheMB << 20 }
            let db = try Database(path: database.db, configuration: configuration)
            let coll = try db.collection(collection)
            let target: VectorField?
            if let field {
                guard let f = coll.schema.fields.first(where: { $0.name == field }) else {
                    throw SparseDBError.invalidInput("collection '\(coll.name)' has no field '\(field)'")
                }
                target = f
            } else {
                target = coll.schema.fields.count == 1 ? coll.schema.fields[0] : nil
            }
            let input = try InputFile(path: queryVectors)
            var queries: [(id: String, vector: FieldVector)] = []
            if target?.kind == .dense {
                queries = try readDenseQueries(input, limit: limit).map { ($0.id, .dense($0.values)) }
            } else {
                let reader = try VectorFileReader(input, dimensions: target?.dimensions ?? coll.dimensions)
                while let r = try reader.next() {
                    queries.append((r.id, .sparse(r.vector)))
                    if let limit, queries.count >= limit { break }
                }
            }
            guard !queries.isEmpty else { throw SparseDBError.invalidInput("\(input.displayName): no queries") }
            let memoryOpen = MemoryStatus.read()
            let opts = options

            var warmupSeconds = 0.0
            if warmup && !cold {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for q in queries { _ = try coll.search(q.vector, options: opts) }
                warmupSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            let memoryWarm = MemoryStatus.read()

            let total = queries.count * repetitions
            let measurements = Measurements(queries: queries.count)
            let dataFile = database.db + "/data.mdb"
            let start = DispatchTime.now().uptimeNanoseconds
            let units = (total + batch - 1) / batch  // measured calls: batches of `batch` queries
            let batch = self.batch
            if threads == 1 {
                for u in 0..<units {
                    if cold {
                        db.dropCaches()
                        if dropOsCache { OSCache.drop(dataFile) }
                    }
                    try measure(coll, queries, u * batch, min(batch, total - u * batch), opts, lastPass: repetitions - 1, into: measurements)
                }
            } else {
                let shared = Workers(queries, total: units)
                let group = DispatchGroup()
                let last = repetitions - 1
                for _ in 0..<threads {
                    group.enter()
                    let thread = Thread {
                        defer { group.leave() }
                        while let i = shared.take() {
                            do { try measure(coll, shared.queries, i * batch, min(batch, total - i * batch), opts, lastPass: last, into: measurements) } catch {
                                shared.fail(error)
                            }
                        }
                    }
                    thread.stackSize = 8 << 20
                    thread.start()
                }
                group.wait()
                if let e = shared.failure { throw e }
            }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let memoryEnd = MemoryStatus.read()
            let load1 = loadAverage()

            let (latencies, cpuTimes, stats, hits) = measurements.collect()
            let s = LatencySummary(latencies)
            let c = LatencySummary(cpuTimes)
            var report: [String: Any] = [
                "engine": "sparsedb",
                "db": database.db,
                "collection": collection,
                "query_file": queryVectors,
                "queries": queries.count,
                "repeat": repetitions,
                "measured_queries": total,
                "threads": threads,
                "batch": batch,
                "k": k,
                "dims": dims.map { $0 as Any } ?? NSNull(),
                "flat_cache_bytes": configuration.flatCacheBytes,
                "algorithm": algorithm.rawValue,
                "max_query_terms": maxQueryTerms.map { $0 as Any } ?? NSNull(),
                "heap_factor": Double(heapFactor),
                "filter": filter ?? NSNull(),
                "exact": isExact,
                "candidates": candidates.map { $0 as Any } ?? NSNull(),
                "postings_per_term": postingsPerTerm.map { $0 as Any } ?? NSNull(),
                "forward_cache_bytes": configuration.forwardCacheBytes,
                "cold": cold,
                "drop_os_cache": dropOsCache,
                "warmup": warmup && !cold,
                "warmup_s": warmupSeconds,
                "payloads": payloads,
                "mean_ms": s.mean, "p50_ms": s.p50, "p90_ms": s.p90, "p99_ms": s.p99, "max_ms": s.max,
                "cpu_mean_ms": c.mean, "cpu_p50_ms": c.p50, "cpu_p90_ms": c.p90, "cpu_p99_ms": c.p99, "cpu_max_ms": c.max,
                "qps": Double(total) / max(wall, 1e-12),
                "wall_s": wall,
                "memory": [
                    "after_open": memoryOpen.dictionary, "after_warmup": memoryWarm.dictionary, "end": memoryEnd.dictionary,
                ],
                "rss_bytes": memoryEnd.rss,
                "peak_rss_bytes": memoryEnd.peak,
                "load_average_1m": ["start": load0, "end": load1],
                "cpus_allowed": cpusAllowed(),
            ]
            report["statistics"] = stats.report(queries: total)
            if !isExact && recall {
                // Recall@k of the last pass against an exact search of the same query (untimed,
                // after the measurement); a hit scoring at least the exact k-th score counts, so
                // a tie at the cut-off is a hit.
                var exactOptions = opts
                exactOptions.maxQueryTerms = nil
                exactOptions.heapFactor = 1
                exactOptions.candidates = nil
                exactOptions.postingsPerTerm = nil
                exactOptions.includePayloads = false
                var found = 0
                var wanted = 0
                for (qi, q) in queries.enumerated() {
                    let exact = try coll.search(q.vector, options: exactOptions).hits
                    guard let kth = exact.last?.score else { continue }
                    wanted += exact.count
                    found += min(exact.count, (hits[qi] ?? []).filter { $0.score >= kth - abs(kth) * 1e-9 }.count)
                }
                report["recall_at_k"] = wanted > 0 ? Double(found) / Double(wanted) : 1.0
            }
            if let run = runFile {
                var out = ""
                for (qi, q) in queries.enumerated() {
                    let h = hits[qi] ?? []
                    out += "{\"query_id\":\(jsonString(q.id)),\"hits\":["
                    out += h.map { "[\(jsonString($0.id)),\($0.score)]" }.joined(separator: ",")
                    out += "]}\n"
                }
                guard FileManager.default.createFile(atPath: run, contents: Data(out.utf8)) else {
                    throw SparseDBError(.io, "cannot write \(run)")
                }
            }
            printLine(try jsonText(report, pretty: true))
        }
    }

}

/// Runs queries `first ..< first + count` (query `i % queries.count` in pass `i / queries.count`),
/// one search each or, for more than one, one batch search; records each query's latency (a
/// batch's time divided by its size), statistics and, on the last pass, its hits.
private func measure(
    _ coll: VectorCollection, _ queries: [(id: String, vector: FieldVector)], _ first: Int, _ count: Int, _ opts: SearchOptions, lastPass: Int,
    into m: Measurements
) throws {
    let indices = (first..<(first + count)).map { $0 % queries.count }
    let c0 = threadCPUNanoseconds()
    let t0 = DispatchTime.now().uptimeNanoseconds
    let results = count == 1 ? [try coll.search(queries[indices[0]].vector, options: opts)] : try coll.search(batch: indices.map { queries[$0].vector }, options: opts)
    let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(count)
    let cpu = Double(threadCPUNanoseconds() - c0) / 1e6 / Double(count)
    for (j, result) in results.enumerated() {
        let i = first + j
        m.record(ms, cpu: cpu, result.statistics, hits: i / queries.count == lastPass ? (indices[j], result.hits.map { ($0.id, $0.score) }) : nil)
    }
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in nanoseconds: unlike wall time,
/// it leaves out the time the thread waited for a core on a busy machine.
private func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// What the worker threads share: the queries (read-only), the next query index, the first
/// error (which stops them all).
private final class Workers: Sendable {
    let queries: [(id: String, vector: FieldVector)]
    let total: Int
    private let next = Atomic<Int>(0)
    private let error = Locked<SparseDBError?>(nil)

    init(_ queries: [(id: String, vector: FieldVector)], total: Int) {
        self.queries = queries
        self.total = total
    }

    /// The next query index, or nil when all are taken or a query failed.
    func take() -> Int? {
        let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return i < total && failure == nil ? i : nil
    }

    func fail(_ e: any Error) {
        let typed = (e as? SparseDBError) ?? SparseDBError(.io, "\(e)")
        error.withLock { $0 = $0 ?? typed }
    }

    var failure: SparseDBError? { error.withLock { $0 } }
}

/// Latencies, statistics and hits of the measured queries, from any thread.
private final class Measurements: Sendable {
    private struct State {
        var latencies: [Double] = []
        var cpu: [Double] = []
        var stats = StatisticsTotals()
        var hits: [Int: [(id: String, score: Double)]] = [:]
    }
    private let state = Locked(State())

    init(queries: Int) {}

    func record(_ ms: Double, cpu: Double, _ s: SearchStatistics, hits: (Int, [(String, Double)])?) {
        state.withLock { st in
            st.latencies.append(ms)
            st.cpu.append(cpu)
            st.stats.add(s)
            if let (qi, h) = hits { st.hits[qi] = h.map { (id: $0.0, score: $0.1) } }
        }
    }

    func collect() -> ([Double], [Double], StatisticsTotals, [Int: [(id: String, score: Double)]]) {
        state.withLock { ($0.latencies, $0.cpu, $0.stats, $0.hits) }
    }
}

/// Sums of the queries' ``SearchStatistics``.
private struct StatisticsTotals {
    var terms = 0
    var postingsDecoded = 0
    var blocksDecoded = 0
    var blocksSkipped = 0
    var blocksDecompressed = 0
    var documentsScored = 0
    var candidatesRescored = 0

    mutating func add(_ s: SearchStatistics) {
        terms += s.terms
        postingsDecoded += s.postingsDecoded
        blocksDecoded += s.blocksDecoded
        blocksSkipped += s.blocksSkipped
        blocksDecompressed += s.blocksDecompressed
        documentsScored += s.documentsScored
        candidatesRescored += s.candidatesRescored
    }

    func report(queries: Int) -> [String: Any] {
        let sums: [String: Int] = [
            "terms": terms, "postings_decoded": postingsDecoded, "blocks_decoded": blocksDecoded, "blocks_skipped": blocksSkipped,
            "blocks_decompressed": blocksDecompressed, "documents_scored": documentsScored, "candidates_rescored": candidatesRescored,
        ]
        let n = Double(max(queries, 1))
        return ["sum": sums, "mean_per_query": sums.mapValues { Double($0) / n }]
    }
}

/// This process's memory, from /proc/self/status (bytes; 0 where unavailable).
private struct MemoryStatus {
    var rss = 0
    var peak = 0
    var anonymous = 0
    var file = 0

    static func read() -> MemoryStatus {
        var m = MemoryStatus()
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return m }
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            switch parts[0] {
            case "VmRSS:": m.rss = kb * 1024
            case "VmHWM:": m.peak = kb * 1024
            case "RssAnon:": m.anonymous = kb * 1024
            case "RssFile:": m.file = kb * 1024
            default: break
            }
        }
        return m
    }

    var dictionary: [String: Int] { ["rss_bytes": rss, "peak_rss_bytes": peak, "rss_anon_bytes": anonymous, "rss_file_bytes": file] }
}

/// Dropping a file's pages from the OS page cache, as far as an unprivileged process can.
enum OSCache {
    /// `madvise(MADV_DONTNEED)` on this process's mappings of `path` (read-only shared file
    /// mappings: the pages are only unmapped, and fault back in from the cache or the disk), then
    /// `posix_fadvise(POSIX_FADV_DONTNEED)`, which evicts the clean pages no process maps.
    static func drop(_ path: String) {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) {
            for line in maps.split(separator: "\n") where line.hasSuffix(real) {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 6, fields[1].hasPrefix("r"), !fields[1].contains("w") else { continue }
                let range = fields[0].split(separator: "-")
                guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16), hi > lo else { continue }
                _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), Int(hi - lo), MADV_DONTNEED)
            }
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        close(fd)
    }
}

private func loadAverage() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8), let first = text.split(separator: " ").first else { return -1 }
    return Double(first) ?? -1
}

/// The CPUs this process may run on (`taskset`), as the kernel lists them.
private func cpusAllowed() -> String {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return "" }
    for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
    }
    return ""
}
