// swift-tools-version:6.1
import PackageDescription

// One settings list for every target: Swift 6 mode, explicit existentials, and imports that
// stay internal unless a module says otherwise, so libgit2 and GRDB types cannot leak into
// public API. Nonisolated async functions run on their caller's actor, so the engine's actor
// can hand its non-Sendable pieces (the repository's reader) to a controller it awaits.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let log = Target.Dependency.product(name: "Logging", package: "swift-log")

/// One target per kind under Controllers/, each depending on CairnCore and CairnManifests only.
let controllerKinds = ["FeaturePipeline", "TrainingSchedule", "Model", "ModelDeployment", "Monitor"]
let controllerTargets: [Target] = controllerKinds.map { kind in
    .target(name: "\(kind)Controller", dependencies: ["CairnCore", "CairnManifests"], path: "Controllers/\(kind)",
            swiftSettings: settings)
}
let controllerDependencies = controllerKinds.map { Target.Dependency(stringLiteral: "\($0)Controller") }

let package = Package(
    name: "Cairn",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cairn", targets: ["cairn"]),
        .executable(name: "cairn-bench", targets: ["cairn-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: controllerTargets + [
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        // The process runner and the content-addressed artifact store (the job executors come here).
        .target(name: "CairnRun", dependencies: ["CairnCore", "CairnManifests", log], swiftSettings: settings),
        .target(name: "CairnGit", dependencies: ["CLibGit2"], swiftSettings: settings),
        // Serving: the deployment targets (supervised processes behind Cairn's own reverse
        // proxy, a TF Serving directory, apply/remove commands) behind CairnCore's `Deployer`.
        .target(
            name: "CairnServe",
            dependencies: [
                "CairnCore", "CairnManifests", "CairnRun", log,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: settings
        ),
        // The parser reads libyaml's events through Yams' `CYaml` module (see YAMLReader.swift);
        // the Yams product is what builds and links that libyaml.
        .target(
            name: "CairnManifests",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: settings
        ),
        // The vocabulary every other module shares: the controller protocol and its context,
        // conditions, content keys, run records, the job executor interface. No git, no SQL.
        .target(
            name: "CairnCore",
            dependencies: ["CairnManifests", log, .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: settings
        ),
        .target(
            name: "CairnStore",
            dependencies: ["CairnCore", "CairnManifests", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: settings
        ),
        // The engine: manifests from git, the reconcile pass, the status writer, the services.
        .target(
            name: "CairnEngine",
            dependencies: [
                "CairnCore", "CairnGit", "CairnManifests", "CairnRun", "CairnStore", log,
                // The status branch's registry files are read back as YAML (StatusBranchRegistry).
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The engine counts through swift-metrics; the daemon gives it a Prometheus factory.
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: settings
        ),
        // The daemon's HTTP face: health, readiness, Prometheus metrics, the status API and
        // verified webhooks, as one Hummingbird service in the daemon's service group.
        .target(
            name: "CairnHTTP",
            dependencies: [
                // MonitorController: the Monitor's seams (PrometheusQuerying, AlertSending) it implements over HTTP.
                "CairnCore", "CairnEngine", "CairnStore", "MonitorController", log,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: settings
        ),
        .target(
            name: "CairnCLI",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnGit", "CairnHTTP", "CairnManifests", "CairnRun", "CairnServe", "CairnStore", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The demo calls the model it serves through Cairn's proxy.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ] + controllerDependencies,
            swiftSettings: settings
        ),
        .executableTarget(name: "cairn", dependencies: ["CairnCLI"], swiftSettings: settings),
        .executableTarget(
            name: "cairn-bench",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnGit", "CairnHTTP", "CairnManifests", "CairnCLI", "CairnRun", "CairnServe", "CairnStore", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // `cairn-bench http`: signs webhooks as GitHub does, and runs the daemon's service group.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `cairn-bench metrics`: pushes into a real MetricHub.
                "MonitorController",
            ],
            swiftSettings: settings
        ),
        .target(
            name: "CairnTestSupport",
            dependencies: ["CairnCore", "CairnManifests", "CairnGit", "CairnRun"],
            path: "Tests/CairnTestSupport",
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnRunTests",
            dependencies: ["CairnRun", "CairnCore", "CairnManifests", "CairnTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnGitTests",
            dependencies: ["CairnGit", "CairnTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnManifestsTests",
            dependencies: ["CairnManifests", "CairnTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnStoreTests",
            dependencies: ["CairnStore", "CairnCore", "CairnManifests", "CairnTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnCoreTests",
            dependencies: ["CairnCore", "CairnManifests", "CairnStore", "CairnTestSupport", log] + controllerDependencies,
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnEngineTests",
            dependencies: [
                "CairnEngine", "CairnCore", "CairnStore", "CairnGit", "CairnManifests", "CairnRun", "CairnTestSupport", "CairnCLI", log,
            ] + controllerDependencies,
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnServeTests",
            dependencies: ["CairnServe", "CairnCore", "CairnManifests", "CairnRun", "CairnTestSupport",
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnHTTPTests",
            // CairnCLI: the controllers and the status JSON (`APIContent.reading`) the daemon serves.
            dependencies: ["CairnHTTP", "CairnCLI", "CairnCore", "CairnEngine", "CairnGit", "CairnStore", "CairnTestSupport", log,
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           // A fake Prometheus and alert receivers the tests serve on 127.0.0.1.
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")] + controllerDependencies,
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnCLITests",
            dependencies: ["CairnCLI", "CairnCore", "CairnEngine", "CairnManifests", "CairnGit", "CairnRun", "CairnStore", "CairnTestSupport",
                           // The HTTP daemon's tests call its API and sign webhooks.
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: settings
        ),
    ]
)
