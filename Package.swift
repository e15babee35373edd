// swift-tools-version:6.0
import PackageDescription

// One core library (RuEmbed) and one single-target executable per tool, each
// depending on swift-argument-parser and the core: the shape that lets
// `swift package generate-manual` write a man page for every tool.
let tools = ["ru-vec", "ru-sim", "ru-knn", "ru-tok", "ru-embed"]

let package = Package(
    name: "ru-embed",
    products: tools.map { .executable(name: $0, targets: [$0]) } + [
        .library(name: "RuEmbed", targets: ["RuEmbed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        // Debian ships no .pc file for oneDNN: the module map links `dnnl` by name.
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        // Vector kernels in C, built for AVX-512, AVX2 and baseline CPUs at once.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-ffast-math"])]
        ),
        .target(
            name: "RuEmbed",
            dependencies: ["CZstd", "CDNNL", "CKernels"]
        ),
        // The fuzz harnesses (docs/FUZZING.md). A plain build makes a driver that replays
        // inputs through them (the tests replay the corpus with it); `make fuzz` builds the
        // same sources with -D FUZZING and -sanitize=fuzzer,address on the command line, so
        // this manifest needs no unsafe flags. Not a product: nothing for dependents.
        .executableTarget(
            name: "ru-fuzz",
            dependencies: ["RuEmbed"],
            path: "Fuzz/ru-fuzz"
        ),
        .testTarget(
            name: "RuEmbedTests",
            dependencies: ["RuEmbed", "ru-fuzz"] + tools.map { .target(name: $0) },
            // Test data read from the source tree by path, not bundled.
            exclude: ["Fixtures"]
        ),
    ] + tools.map {
        .executableTarget(
            name: $0,
            dependencies: [
                "RuEmbed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        )
    }
    ,
    // The tools are synchronous Unix filters with explicit threading (OpenMP through
    // oneDNN); Swift 6's data-race checking of globals and closures buys nothing here.
    swiftLanguageModes: [.v5]
)
