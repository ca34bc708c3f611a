// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets (docs/testing.md): a package of their own so the main package's builds never
// see `-sanitize=fuzzer`. Build and run with fuzz/run (it passes -sanitize=fuzzer,address,
// -parse-as-library and -enable-testing); `@testable import` reaches the parser, which is internal
// to PagiEngine.
let package = Package(
    name: "pagi-serve-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "pagi-serve", path: "..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(name: "FuzzRequestParser", dependencies: ["CFuzzerDriver", .product(name: "PagiEngine", package: "pagi-serve")]),
        .executableTarget(name: "FuzzConfigLoader", dependencies: ["CFuzzerDriver", .product(name: "PagiConfig", package: "pagi-serve")]),
    ],
    swiftLanguageModes: [.v6]
)
