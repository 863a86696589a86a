// swift-tools-version:6.0
import PackageDescription

// Layout: see docs/architecture.md. Core names no backend; each backend is its own target; only
// EmbedStarBuiltInPlugins imports every plugin and builds the registry the executables use.
let package = Package(
    name: "embed-star",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "embed-star", targets: ["EmbedStarRunner"]),
        .executable(name: "embed-star-bench", targets: ["EmbedStarBench"]),
        .library(name: "EmbedStarConfig", targets: ["EmbedStarConfig"]),
        .library(name: "EmbedStarCore", targets: ["EmbedStarCore"]),
        .library(name: "EmbedStarApp", targets: ["EmbedStarApp"]),
        .library(name: "EmbedStarMockProvider", targets: ["EmbedStarMockProvider"]),
        .library(name: "EmbedStarMockStore", targets: ["EmbedStarMockStore"]),
        .library(name: "SurrealClient", targets: ["SurrealClient"]),
        .library(name: "EmbedStarSurrealStore", targets: ["EmbedStarSurrealStore"]),
        .library(name: "EmbedStarSQLiteStore", targets: ["EmbedStarSQLiteStore"]),
        .library(name: "EmbedStarTesting", targets: ["EmbedStarTesting"]),
        .library(name: "EmbedStarHTTPTesting", targets: ["EmbedStarHTTPTesting"]),
        .library(name: "EmbedStarOllama", targets: ["EmbedStarOllama"]),
        .library(name: "EmbedStarLocal", targets: ["EmbedStarLocal"]),
        .library(name: "EmbedStarOpenAI", targets: ["EmbedStarOpenAI"]),
        .library(name: "EmbedStarTogether", targets: ["EmbedStarTogether"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // The configuration framework: YAML with locations, ${VAR} and .env, a decoder whose
        // errors say file, line and key, declared keys with did-you-mean, paths, secrets.
        .target(
            name: "EmbedStarConfig",
            dependencies: [.product(name: "Yams", package: "Yams")],
            path: "Sources/Config"
        ),
        .target(
            name: "EmbedStarCore",
            dependencies: [
                "EmbedStarConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Core"
        ),
        // The composition root (Runtime: configuration and a registry in, the protected provider,
        // store and cache out) and repo records in and out: GitHub's starred format, synthetic repos.
        .target(
            name: "EmbedStarApp",
            dependencies: ["EmbedStarCore", "EmbedStarConfig", .product(name: "Logging", package: "swift-log")],
            path: "Sources/App"
        ),
        // The one module that names every built-in backend: the executables' registry.
        .target(
            name: "EmbedStarBuiltInPlugins",
            dependencies: [
                "EmbedStarCore", "EmbedStarMockProvider", "EmbedStarMockStore", "EmbedStarOllama", "EmbedStarOpenAI", "EmbedStarTogether",
                "EmbedStarLocal", "EmbedStarSurrealStore", "EmbedStarSQLiteStore",
            ],
            path: "Sources/BuiltInPlugins"
        ),
        // What the HTTP providers share: error classification, rate-limit headers, and the
        // OpenAI-compatible wire format (OpenAI, Together, and any compatible server).
        .target(
            name: "EmbedStarHTTPProvider",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Sources/Providers/HTTP"
        ),
        // A SurrealDB client usable on its own: CBOR with SurrealDB's tags, RPC over HTTP and
        // WebSocket, a connection pool.
        .target(
            name: "SurrealClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/Stores/Surreal/Client"
        ),
        .target(
            name: "EmbedStarSurrealStore",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "SurrealClient"],
            path: "Sources/Stores/Surreal/Store"
        ),
        // One SQLite file: the embedded default (needs Debian's libsqlite3-dev to build).
        .target(
            name: "EmbedStarSQLiteStore",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            path: "Sources/Stores/SQLite"
        ),
        // What plugin authors test with: the conformance suites every provider and store must pass.
        .target(
            name: "EmbedStarTesting",
            dependencies: ["EmbedStarCore"],
            path: "Sources/Testing"
        ),
        // What an HTTP provider's unit tests answer requests with (ClosureTransport).
        .target(
            name: "EmbedStarHTTPTesting",
            dependencies: ["EmbedStarHTTPProvider"],
            path: "Sources/HTTPTesting"
        ),
        // The plugin docs/writing-a-plugin.md builds, kept here so CI builds and tests it.
        .target(
            name: "ExampleCompatProvider",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "EmbedStarHTTPProvider"],
            path: "Examples/CompatProvider/Sources"
        ),
        .testTarget(
            name: "ExampleCompatProviderTests",
            dependencies: ["EmbedStarConfig", "ExampleCompatProvider", "EmbedStarCore", "EmbedStarHTTPProvider", "EmbedStarTesting", "EmbedStarHTTPTesting"],
            path: "Examples/CompatProvider/Tests"
        ),
        .target(
            name: "EmbedStarLocal",
            dependencies: ["EmbedStarConfig", "EmbedStarCore"],
            path: "Sources/Providers/Local"
        ),
        .target(
            name: "EmbedStarOllama",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "EmbedStarHTTPProvider"],
            path: "Sources/Providers/Ollama"
        ),
        .target(
            name: "EmbedStarOpenAI",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "EmbedStarHTTPProvider"],
            path: "Sources/Providers/OpenAI"
        ),
        .target(
            name: "EmbedStarTogether",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "EmbedStarHTTPProvider"],
            path: "Sources/Providers/Together"
        ),
        .target(
            name: "EmbedStarMockProvider",
            dependencies: ["EmbedStarConfig", "EmbedStarCore"],
            path: "Sources/Providers/Mock"
        ),
        .target(
            name: "EmbedStarMockStore",
            dependencies: ["EmbedStarConfig", "EmbedStarCore"],
            path: "Sources/Stores/Mock"
        ),
        // `embed-star report`: what the store holds, measured (backlog, failures, quality, a map).
        .target(
            name: "EmbedStarReport",
            dependencies: ["EmbedStarCore", .product(name: "Mustache", package: "swift-mustache")],
            path: "Sources/Report"
        ),
        // The monitoring HTTP server: /livez, /readyz, /health, /metrics.
        .target(
            name: "EmbedStarMonitoring",
            dependencies: [
                "EmbedStarConfig",
                "EmbedStarCore",
                "EmbedStarBuildInfo",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Monitoring"
        ),
        // The build's version (`--version`, embed_star_build_info), written by the plugin below.
        .target(
            name: "EmbedStarBuildInfo",
            path: "Sources/BuildInfo",
            plugins: ["BuildVersion"]
        ),
        // `--version` and `embed_star_build_info` from the build: git describe, or the image's tag.
        .plugin(name: "BuildVersion", capability: .buildTool(), path: "Plugins/BuildVersion"),
        .executableTarget(
            name: "EmbedStarRunner",
            dependencies: [
                "EmbedStarCore",
                "EmbedStarConfig",
                "EmbedStarApp",
                "EmbedStarBuildInfo",
                "EmbedStarBuiltInPlugins",
                "EmbedStarMonitoring",
                "EmbedStarReport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Runner"
        ),
        // What bench/ scripts time inside the process (claims, searches, CBOR): backend-specific
        // measurements kept out of the production command line.
        .executableTarget(
            name: "EmbedStarBench",
            dependencies: [
                "EmbedStarCore", "EmbedStarConfig", "EmbedStarApp", "EmbedStarBuiltInPlugins", "EmbedStarSQLiteStore", "SurrealClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Bench"
        ),
        .testTarget(
            name: "CoreTests",
            dependencies: [
                "EmbedStarConfig", "EmbedStarApp", "EmbedStarCore",
                "EmbedStarMockProvider",
                "EmbedStarMockStore",
                "EmbedStarTesting",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            path: "Tests/CoreTests"
        ),
        .testTarget(
            name: "MockProviderTests",
            dependencies: ["EmbedStarConfig", "EmbedStarCore", "EmbedStarMockProvider", "EmbedStarTesting"],
            path: "Tests/MockProviderTests"
        ),
        .testTarget(
            name: "MockStoreTests",
            dependencies: ["EmbedStarApp", "EmbedStarCore", "EmbedStarMockStore", "EmbedStarTesting"],
            path: "Tests/MockStoreTests"
        ),
        .testTarget(
            name: "SQLiteStoreTests",
            dependencies: ["EmbedStarApp", "EmbedStarCore", "EmbedStarSQLiteStore", "EmbedStarTesting", "EmbedStarMockStore", "EmbedStarMockProvider", "EmbedStarLocal", .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/SQLiteStoreTests"
        ),
        // Unit tests of the HTTP providers: wire formats, errors, configuration (no server).
        .testTarget(
            name: "ProviderTests",
            dependencies: [
                "EmbedStarConfig", "EmbedStarCore", "EmbedStarHTTPProvider", "EmbedStarOllama", "EmbedStarOpenAI", "EmbedStarTogether", "EmbedStarMockStore",
                "EmbedStarMockProvider", "EmbedStarHTTPTesting", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/ProviderTests"
        ),
        // The providers against the real model and its test front (scripts/services starts them).
        .testTarget(
            name: "ProviderIntegrationTests",
            dependencies: [
                "EmbedStarConfig", "EmbedStarApp", "EmbedStarCore", "EmbedStarHTTPProvider", "EmbedStarOllama", "EmbedStarOpenAI", "EmbedStarTogether", "EmbedStarMockStore", "EmbedStarLocal", "EmbedStarTesting",
                "EmbedStarMockProvider", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/ProviderIntegrationTests"
        ),
        // The SurrealDB client and store against the real engine (the dev server, on 3.x and 2.x),
        // and their unit tests (CBOR, configuration, dialects, the pool), which share its fixtures.
        .testTarget(
            name: "SurrealTests",
            dependencies: [
                "EmbedStarConfig", "EmbedStarApp", "EmbedStarCore", "SurrealClient", "EmbedStarSurrealStore", "EmbedStarMockProvider", "EmbedStarMockStore", "EmbedStarTesting",
                "EmbedStarReport", "EmbedStarSQLiteStore",
            ],
            path: "Tests/SurrealTests"
        ),
        .testTarget(
            name: "ReportTests",
            dependencies: [
                "EmbedStarApp", "EmbedStarCore", "EmbedStarReport", "EmbedStarMockProvider", "EmbedStarMockStore", "EmbedStarSQLiteStore", "EmbedStarLocal",
                "EmbedStarTesting", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ReportTests"
        ),
        .testTarget(
            name: "MonitoringTests",
            dependencies: [
                "EmbedStarApp", "EmbedStarCore", "EmbedStarMonitoring", "EmbedStarBuildInfo", "EmbedStarMockProvider", "EmbedStarMockStore", "EmbedStarTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Tests/MonitoringTests"
        ),
        .testTarget(
            name: "RunnerTests",
            dependencies: [
                "EmbedStarConfig", "EmbedStarApp", "EmbedStarCore", "EmbedStarRunner", "SurrealClient", "EmbedStarTesting", "EmbedStarSQLiteStore", "EmbedStarSurrealStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/RunnerTests"
        ),
    ]
)
