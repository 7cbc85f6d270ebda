// swift-tools-version:6.1
import PackageDescription

// One settings list for every target: Swift 6 mode, explicit existentials, and imports that
// stay internal unless a module says otherwise, so libgit2 and Yams types cannot leak into
// public API.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

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
    ],
    targets: [
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .target(name: "CairnRun", swiftSettings: settings),
        .target(name: "CairnGit", dependencies: ["CLibGit2"], swiftSettings: settings),
        .target(
            name: "CairnManifests",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: settings
        ),
        .target(
            name: "CairnStore",
            dependencies: ["CairnManifests", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: settings
        ),
        .target(
            name: "CairnCore",
            dependencies: ["CairnGit", "CairnManifests", "CairnStore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        .target(
            name: "CairnCLI",
            dependencies: [
                "CairnCore", "CairnGit", "CairnManifests", "CairnRun", "CairnStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(name: "cairn", dependencies: ["CairnCLI"], swiftSettings: settings),
        .executableTarget(
            name: "cairn-bench",
            dependencies: [
                "CairnCore", "CairnGit", "CairnManifests", "CairnRun",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .target(
            name: "CairnTestSupport",
            dependencies: ["CairnGit", "CairnRun"],
            path: "Tests/CairnTestSupport",
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnRunTests",
            dependencies: ["CairnRun", "CairnTestSupport"],
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
            dependencies: ["CairnStore", "CairnManifests", "CairnTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnCoreTests",
            dependencies: [
                "CairnCore", "CairnStore", "CairnGit", "CairnManifests", "CairnTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "CairnCLITests",
            dependencies: ["CairnCLI", "CairnCore", "CairnManifests", "CairnGit", "CairnRun", "CairnTestSupport"],
            swiftSettings: settings
        ),
    ]
)
