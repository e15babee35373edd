// swift-tools-version:6.0
import PackageDescription

// Targets are cut along their dependencies, so a program links only what it uses:
//
//   RuCore       errors, JSON, files and pipes, threads                  (Swift only)
//   RuTokenizer  Hugging Face tokenizer.json, prompts, batch encoding    (+ swift-crypto)
//   RuVectors    the vector/token stream format, import and export       (+ libzstd, CKernels)
//   RuCompute    matrix products and the encoder's kernels               (+ oneDNN, CKernels)
//   RuSearch     exact nearest neighbours and cosine matrices            (RuCompute, RuVectors)
//   RuHub        the Hugging Face hub client and cache                   (+ FoundationNetworking)
//   RuEncoder    DeBERTa, pooling, SentenceEncoder: text → vectors       (all of the above)
//   RuEmbed      the product for apps: re-exports all of the above
//   RuCLI        what the tools share (options, messages, exit codes); not a product
//   RuModelCLI   the options of the tools that read text and load models (ru-embed, ru-tok)
//
// A program that only tokenizes depends on the product RuTokenizer, one that only reads or
// writes vector streams on RuVectors: neither needs oneDNN. The tools are cut the same way:
// ru-knn links neither the tokenizer nor the hub client, so it starts without loading
// Foundation, ICU and libcurl (54 shared libraries before, dynamic loading ~35 ms of its
// 40 ms `--version` on the Zen 5 of 2026-12-03; a search of 1,000 queries takes ~110 ms).
let toolDependencies: [String: [Target.Dependency]] = [
    "ru-vec": ["RuCore", "RuVectors", "RuSearch"],
    "ru-sim": ["RuCore", "RuVectors", "RuSearch"],
    "ru-knn": ["RuCore", "RuVectors", "RuSearch"],
    "ru-index": ["RuCore", "RuVectors", "RuSearch"],
    "ru-cluster": ["RuCore", "RuVectors", "RuSearch"],
    "ru-tok": ["RuEmbed", "RuModelCLI"],
    "ru-embed": ["RuEmbed", "RuModelCLI"],
]
let tools = ["ru-vec", "ru-sim", "ru-knn", "ru-tok", "ru-embed", "ru-cluster", "ru-index"]
let libraries = ["RuCore", "RuTokenizer", "RuVectors", "RuCompute", "RuSearch", "RuHub", "RuEncoder", "RuEmbed"]

// The library targets are checked by Swift 6's data-race rules; the tools and tests keep
// Swift 5 mode (synchronous filters whose threads are the library's).
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "ru-embed",
    products: tools.map { .executable(name: $0, targets: [$0]) } + [
        .library(name: "RuEmbed", targets: ["RuEmbed"]),
        .library(name: "RuTokenizer", targets: ["RuTokenizer"]),
        .library(name: "RuVectors", targets: ["RuVectors"]),
        .library(name: "RuHub", targets: ["RuHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
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
        // Vector kernels in C, built for AVX-512, AVX2 and baseline CPUs at once. Their
        // floating-point contract (reassociation, FMA contraction) is set by pragmas in the
        // sources (internal.h), not by flags here: a package with unsafe flags cannot be a
        // dependency.
        .target(name: "CKernels"),
        .target(name: "RuCore", swiftSettings: swift6),
        .target(
            name: "RuTokenizer",
            dependencies: ["RuCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swift6
        ),
        .target(name: "RuVectors", dependencies: ["RuCore", "CZstd", "CKernels"], swiftSettings: swift6),
        .target(name: "RuCompute", dependencies: ["RuCore", "CDNNL", "CKernels"], swiftSettings: swift6),
        .target(name: "RuSearch", dependencies: ["RuCore", "RuVectors", "RuCompute", "CKernels"], swiftSettings: swift6),
        .target(
            name: "RuHub",
            dependencies: ["RuCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swift6
        ),
        .target(
            name: "RuEncoder",
            dependencies: ["RuCore", "RuTokenizer", "RuVectors", "RuHub", "RuCompute", "CDNNL", "CKernels",
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swift6
        ),
        .target(
            name: "RuEmbed",
            dependencies: ["RuCore", "RuTokenizer", "RuVectors", "RuCompute", "RuSearch", "RuHub", "RuEncoder"],
            swiftSettings: swift6
        ),
        .target(
            name: "RuCLI",
            dependencies: ["RuCore", "RuVectors", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(
            name: "RuModelCLI",
            dependencies: ["RuCLI", "RuEmbed", .product(name: "ArgumentParser", package: "swift-argument-parser")]
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
            dependencies: libraries.map { .target(name: $0) } + ["RuCLI", "RuModelCLI", "ru-fuzz"] + tools.map { .target(name: $0) }
                + [.product(name: "Crypto", package: "swift-crypto")],
            // Test data read from the source tree by path, not bundled.
            exclude: ["Fixtures"]
        ),
    ] + tools.map {
        .executableTarget(
            name: $0,
            dependencies: toolDependencies[$0]! + [
                "RuCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        )
    },
    swiftLanguageModes: [.v5]
)
