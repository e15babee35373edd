// swift-tools-version:6.0
// An app that uses ru-embed as a library, as any package would: by URL and version.
// CI builds it against a tag of the project in a scratch clone (scripts/check-example).
import PackageDescription

let package = Package(
    name: "embed-app",
    dependencies: [
        .package(url: "https://github.com/ru-embed/ru-embed", from: "0.2.0"),
    ],
    targets: [
        .executableTarget(
            name: "embed-app",
            dependencies: [.product(name: "RuEmbed", package: "ru-embed")]
        ),
    ]
)
