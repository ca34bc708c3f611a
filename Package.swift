// swift-tools-version:6.0
import PackageDescription

// Modules follow the architecture: config parsing (no NIO) → core (compiled routing table,
// handler/middleware protocols; no NIO) → engine (SwiftNIO) → feature modules built on the engine
// → `PagiBuiltins` (registers every built-in handler) → the `pagi-serve` executable.
// The modules on every request's path (and the proxy's) skip Swift's run-time exclusivity checks in release
// builds: they cost ~2,300 instructions per request (callgrind) on class properties. scripts/build-release
// turns them off in SwiftNIO too (a further ~3,000). Debug builds, and so every test run, keep the checks.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "pagi-serve",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pagi-serve", targets: ["pagi-serve"]),
        .library(name: "PagiEngine", targets: ["PagiEngine"]),
        // For the libFuzzer package in fuzz/.
        .library(name: "PagiConfig", targets: ["PagiConfig"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "PagiConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "PagiCore",
            dependencies: ["PagiConfig"],
            swiftSettings: hotPath
        ),
        .target(
            name: "PagiEngine",
            dependencies: [
                "PagiCore",
                "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPath
        ),
        // System C libraries (Debian -dev packages): zlib for `compress`, libxcrypt for `basic_auth`.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        // glibc's posix_spawn_file_actions_addclosefrom_np, hidden from Swift's Glibc module.
        .systemLibrary(name: "CSpawn", path: "Sources/CSpawn"),
        // glibc's malloc_trim (<malloc.h>), for MemoryTrim.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .target(
            name: "PagiMiddleware",
            dependencies: ["PagiCore", "CZlib", "CCrypt", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The ACME client (docs/tls.md): obtains and renews certificates into a storage the engine reads.
        .target(
            name: "PagiACME",
            dependencies: [
                "PagiConfig",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `proxy` (docs/proxy.md): upstream pools per event loop and balancing, on SwiftNIO's HTTP/1 codec.
        .target(
            name: "PagiProxy",
            dependencies: [
                "PagiCore",
                "PagiEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPath
        ),
        .target(
            name: "PagiRealtime",
            dependencies: [
                "PagiCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .target(
            name: "PagiRespond",
            dependencies: ["PagiCore", .product(name: "Mustache", package: "swift-mustache")]
        ),
        .target(
            name: "PagiMetrics",
            dependencies: [
                "PagiCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "PagiOpenAPI",
            dependencies: ["PagiCore", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "PagiWebSocket",
            dependencies: [
                "PagiCore",
                "PagiEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "PagiBuiltins",
            dependencies: [
                "PagiCore", "PagiEngine", "PagiMiddleware", "PagiRealtime", "PagiRespond", "PagiMetrics", "PagiOpenAPI", "PagiWebSocket", "PagiProxy",
            ]
        ),
        .executableTarget(
            name: "pagi-serve",
            dependencies: [
                "CSpawn",
                "PagiACME",
                "PagiProxy",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                "PagiEngine",
                "PagiBuiltins",
                "PagiMiddleware",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Shared by the test targets below: a real server built from YAML (`TestServer`), raw
        // socket clients (HTTP/1.1, SSE, WebSocket), a throw-away redis-server, fixtures. A regular
        // target, so no `@testable import` here.
        .target(
            name: "PagiTestSupport",
            dependencies: [
                "PagiBuiltins",
                "PagiEngine",
                "PagiConfig",
                "PagiCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            path: "Tests/PagiTestSupport"
        ),
        .testTarget(name: "PagiConfigTests", dependencies: ["PagiConfig"]),
        .testTarget(name: "PagiCoreTests", dependencies: ["PagiCore"]),
        .testTarget(
            name: "PagiEngineTests",
            dependencies: [
                "PagiEngine",
                "PagiBuiltins",
                "PagiConfig",
                "PagiCore",
                "PagiTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "PagiMiddlewareTests",
            dependencies: [
                "PagiMiddleware",
                "PagiConfig",
                "PagiCore",
                "PagiTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .testTarget(name: "PagiRealtimeTests", dependencies: ["PagiRealtime", "PagiTestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "PagiRespondTests", dependencies: ["PagiRespond", "PagiBuiltins", "PagiConfig", "PagiCore", "PagiTestSupport"]),
        .testTarget(name: "PagiMetricsTests", dependencies: ["PagiMetrics", "PagiCore", "PagiTestSupport"]),
        .testTarget(name: "PagiOpenAPITests", dependencies: ["PagiOpenAPI", "PagiBuiltins", "PagiConfig", "PagiTestSupport"]),
        .testTarget(
            name: "PagiWebSocketTests",
            dependencies: [
                "PagiTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // Runs the `pagi-serve` binary (found next to the test bundle, so `swift build --build-tests`
        // must have built it; the tests skip when it is missing).
        .testTarget(name: "PagiServeCLITests", dependencies: ["PagiTestSupport", .product(name: "NIOSSL", package: "swift-nio-ssl")]),
    ],
    swiftLanguageModes: [.v6]
)
