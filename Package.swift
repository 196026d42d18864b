// swift-tools-version: 6.1
import PackageDescription

// Layers, each a target that depends only on the ones below it (ARCHITECTURE.md):
//
//   sparsedb (CLI) ─ SparseDBTools ─┐
//                                   SparseDB (public facade, ingestion pipeline)
//                          ┌────────┴─────────┐
//                    SparseDBSearch     SparseDBEncoders ─ COpenBLAS
//                          │                  │
//                    SparseDBIndex            │
//                          │                  │
//                    SparseDBStorage ─ CLMDB (through CLMDBGuard), CZstd
//                          │                  │
//                    SparseDBCore ────────────┘ ─ CSparseDBKernels
//
// No target uses unsafe flags: release builds keep Swift's bounds checks, and hot loops use
// local unsafe buffer scopes instead.
let package = Package(
    name: "SparseDB",
    products: [
        .library(name: "SparseDB", targets: ["SparseDB"]),
        .executable(name: "sparsedb", targets: ["sparsedb"]),
        .executable(name: "sparsedb-example", targets: ["SparseDBExample"]),
        // The C ABI over the public API (Sources/SparseDBCAPI/include/sparsedb.h), for the
        // Python package in python/ and any other host language.
        .library(name: "SparseDBC", type: .dynamic, targets: ["SparseDBCAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // C libraries from Debian's packages: a module map and a shim header each, nothing else.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // Our own C: the CPU's CRC-32C instruction, which Swift cannot emit.
        .target(name: "CSparseDBKernels"),
        // LMDB calls with a recovery point, so that a damaged page is an error, not a crash.
        .target(name: "CLMDBGuard", dependencies: ["CLMDB"]),

        // Errors, vectors, byte coding, checksums, locks: what every layer shares.
        .target(name: "SparseDBCore", dependencies: ["CSparseDBKernels"]),
        // LMDB environments and transactions, zstd, the table registry.
        .target(name: "SparseDBStorage", dependencies: ["SparseDBCore", "CSparseDBKernels", "CLMDB", "CLMDBGuard", "CZstd"]),
        // Record and block formats, the catalog and schema, writers, verifier, format upgrades.
        .target(name: "SparseDBIndex", dependencies: ["SparseDBStorage", "CSparseDBKernels"]),
        // Posting caches, cursors, top-k algorithms, flat scans, the query executor, fusion.
        .target(name: "SparseDBSearch", dependencies: ["SparseDBIndex", "CSparseDBKernels", "COpenBLAS"]),
        // Tokenizer, safetensors, transformers, encoder routes, BLAS kernels.
        .target(name: "SparseDBEncoders", dependencies: ["SparseDBCore", "COpenBLAS"]),
        // The public API: Database, VectorCollection, TextEncoder, the ingestion pipeline.
        .target(name: "SparseDB", dependencies: ["SparseDBSearch", "SparseDBEncoders"]),
        // File formats of the command line (JSON Lines, BEIR, TREC), metrics, latency summaries.
        .target(name: "SparseDBTools", dependencies: ["SparseDB"]),
        .executableTarget(
            name: "sparsedb",
            dependencies: [
                "SparseDB", "SparseDBTools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `@_cdecl` functions over the public facade only (no engine logic, no `package` symbols).
        .target(name: "SparseDBCAPI", dependencies: ["SparseDB"], exclude: ["include"]),
        .executableTarget(name: "SparseDBExample", dependencies: ["SparseDB"], path: "Examples/HostProgram"),

        // Shared test helpers: brute-force oracles, seeded data, fixtures, running the CLI.
        .target(name: "SparseDBTestSupport", dependencies: ["SparseDB", "SparseDBTools"], path: "Tests/SparseDBTestSupport"),
        // Fast, self-contained: no ../shared, no model.
        .testTarget(name: "SparseDBUnitTests", dependencies: ["SparseDBTestSupport", "SparseDBFuzzing"]),
        // Real data from ../shared, the default model, the CLI and the example program.
        .testTarget(name: "SparseDBIntegrationTests", dependencies: ["SparseDBTestSupport"]),

        // MARK: Fuzzing (tools/fuzz.sh, Fuzz/README.md) ----------------------------------------
        // One libFuzzer target per parser of untrusted bytes. A plain `swift build` makes each a
        // replay tool (`FuzzVectorLine FILE|DIR ...`); tools/fuzz.sh rebuilds them with
        // `-sanitize=fuzzer,address -DFUZZING` in .build-fuzz. The harnesses live in one library
        // so that the unit tests replay the seed corpora through the same code.
        .target(
            name: "SparseDBFuzzing", dependencies: ["SparseDBTools", "SparseDBIndex", "SparseDBEncoders"], path: "Fuzz/Harness"),
        // The prototype of libFuzzer's driver entry point (a header only; -sanitize=fuzzer links it).
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(name: "FuzzVectorLine", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzVectorLine"),
        .executableTarget(name: "FuzzCorpusLine", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzCorpusLine"),
        .executableTarget(name: "FuzzPostingBlock", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzPostingBlock"),
        .executableTarget(name: "FuzzRecords", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzRecords"),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzSafeTensors"),
        .executableTarget(name: "FuzzTokenizerJSON", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzTokenizerJSON"),
        .executableTarget(name: "FuzzTokenizer", dependencies: ["SparseDBFuzzing", "CLibFuzzer"], path: "Fuzz/FuzzTokenizer"),
        // MARK: end of fuzzing ------------------------------------------------------------------
    ]
)
