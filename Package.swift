// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "SparseDB",
    products: [
        .library(name: "SparseDB", targets: ["SparseDB"]),
        .executable(name: "sparsedb", targets: ["sparsedb"]),
        .executable(name: "sparsedb-example", targets: ["SparseDBExample"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // C libraries from Debian's packages: a module map and a shim header each, nothing else.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "SparseDB",
            dependencies: ["CLMDB", "CZstd", "COpenBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "sparsedb",
            dependencies: [
                "SparseDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "SparseDBExample", dependencies: ["SparseDB"], path: "Examples/HostProgram"),
        .testTarget(name: "SparseDBTests", dependencies: ["SparseDB"]),
    ]
)
