// swift-tools-version: 6.1
// A separate package, so that `swift build` / `swift test` at the root never compile
// ordo-one/benchmark and its dependencies. Run: cd Benchmarks && swift package benchmark
import Foundation
import PackageDescription

// A path dependency's identity is its folder name, which differs between clones; compute it.
let rootPackage = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "SparseDBBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SparseDBBench",
            dependencies: [
                .product(name: "SparseDB", package: rootPackage),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SparseDBBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
