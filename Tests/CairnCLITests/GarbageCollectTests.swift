import CairnCore
import CairnEngine
import CairnManifests
import CairnRun
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct GarbageCollectTests {
    /// What `cairn gc --format json` says.
    struct Report: Decodable {
        struct Artifacts: Decodable {
            var removedBlobs: Int
            var removedBytes: Int64
            var keptBlobs: Int
            var keptBytes: Int64
            var removedTemporaryFiles: Int
            var missing: [String]
        }
        var dryRun: Bool
        var artifacts: Artifacts
        var removedRunDirectories: Int
        var keptRunDirectories: Int
    }

    /// A store of real blobs and the runs that made them.
    struct Setup {
        var fixture: RunFixture
        let artifacts: ArtifactStore
        let sources: TemporaryDirectory
        /// Each blob's path in the store, by what it holds.
        var blobs: [String: URL] = [:]

        init() throws {
            fixture = try RunFixture()
            artifacts = try ArtifactStore(root: fixture.state.appending("artifacts"))
            sources = try TemporaryDirectory("cairn-outputs")
        }

        /// Stores a file holding `text`.
        mutating func file(_ text: String) throws -> Artifact {
            let artifact = try artifacts.store(try sources.write(UUID().uuidString, text))
            blobs[text] = artifacts.path(of: artifact.digest)
            return artifact
        }

        /// Stores a directory of files holding `texts`; its manifest is `blobs[name]`.
        mutating func directory(_ name: String, _ texts: [String]) throws -> Artifact {
            let folder = sources.appending(name)
            for (index, text) in texts.enumerated() { try sources.write("\(name)/part-\(index)", text) }
            let artifact = try artifacts.store(folder)
            blobs[name] = artifacts.path(of: artifact.digest)
            for text in texts { blobs[text] = artifacts.path(of: ContentHash.sha256(of: Data(text.utf8))) }
            return artifact
        }

        func exists(_ text: String) -> Bool { FileManager.default.fileExists(atPath: blobs[text]!.path) }

        func size(_ texts: [String]) -> Int64 {
            texts.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: blobs[$1]!.path)[.size] as? NSNumber)??.int64Value ?? 0) }
        }
    }

    /// Model/churn: seven runs, the status reports the oldest; a pipeline whose two stages
    /// each have runs with directory outputs that share a file; Model/reuse, whose status
    /// reports a skipped run that reused an old one.
    func populate() throws -> Setup {
        var setup = try Setup()
        for index in 1...7 {
            try setup.fixture.record("churn-\(index)", "Model/churn", state: .succeeded,
                                     outputs: ["model.bin": try setup.file("model \(index)")], log: "log \(index)\n")
        }
        try setup.fixture.record("churn-8", "Model/churn", state: .failed, exitStatus: 1, log: "failed\n")
        try setup.fixture.report("Model/churn", runs: ["churn-1"])
        try setup.fixture.record("clean-1", "FeaturePipeline/features", stage: "clean", state: .succeeded,
                                 outputs: ["clean": try setup.directory("clean-dir-1", ["shared rows", "clean rows 1"])])
        try setup.fixture.record("join-1", "FeaturePipeline/features", stage: "join", state: .succeeded,
                                 outputs: ["joined": try setup.directory("join-dir-1", ["shared rows", "joined rows 1"])])
        for index in 2...3 {
            try setup.fixture.record("join-\(index)", "FeaturePipeline/features", stage: "join", state: .succeeded,
                                     outputs: ["joined": try setup.file("joined \(index)")])
        }
        try setup.fixture.record("reuse-1", "Model/reuse", state: .succeeded, outputs: ["m": try setup.file("reused model")])
        for index in 2...3 {
            try setup.fixture.record("reuse-\(index)", "Model/reuse", state: .succeeded, outputs: ["m": try setup.file("reuse model \(index)")])
        }
        try setup.fixture.record("reuse-4", "Model/reuse", state: .skipped, reused: "reuse-1")
        try setup.fixture.report("Model/reuse", runs: ["reuse-4"])
        return setup
    }

    var removedTexts: [String] {
        ["model 2", "model 3", "model 4", "model 5", "join-dir-1", "joined rows 1"]
    }
    var keptTexts: [String] {
        ["model 1", "model 6", "model 7", "clean-dir-1", "shared rows", "clean rows 1", "joined 2", "joined 3",
         "reused model", "reuse model 2", "reuse model 3"]
    }

    @Test func keepsWhatStatusesAndTheNewestRunsNeedAndRemovesTheRest() throws {
        let setup = try populate()
        let scratch = setup.artifacts.root.appendingPathComponent("tmp")
        let old = scratch.appendingPathComponent("old-partial")
        let fresh = scratch.appendingPathComponent("fresh-partial")
        try Data("half a blob".utf8).write(to: old)
        try Data("a blob being written".utf8).write(to: fresh)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: old.path)

        let dry = try setup.fixture.cairn(["gc", "--keep-runs", "2", "--dry-run", "--format", "json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let preview = try JSONDecoder().decode(Report.self, from: Data(dry.stdout.utf8))
        #expect(preview.dryRun && preview.artifacts.removedBlobs == removedTexts.count)
        #expect(preview.artifacts.removedBytes == setup.size(removedTexts))
        #expect((removedTexts + keptTexts).allSatisfy(setup.exists), "a dry run removes nothing")
        #expect(FileManager.default.fileExists(atPath: old.path))
        #expect(FileManager.default.fileExists(atPath: setup.fixture.state.appending("runs/churn-2").path))

        let freedBytes = setup.size(removedTexts)
        let result = try setup.fixture.cairn(["gc", "--keep-runs", "2", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(!report.dryRun)
        #expect(report.artifacts.removedBlobs == removedTexts.count && report.artifacts.removedBytes == freedBytes)
        #expect(report.artifacts.keptBlobs == keptTexts.count && report.artifacts.keptBytes == setup.size(keptTexts))
        #expect(report.artifacts.removedTemporaryFiles == 1 && report.artifacts.missing.isEmpty)
        for text in removedTexts { #expect(!setup.exists(text), "\(text) should be gone") }
        for text in keptTexts { #expect(setup.exists(text), "\(text) should be kept") }
        #expect(!FileManager.default.fileExists(atPath: old.path) && FileManager.default.fileExists(atPath: fresh.path))

        // Run directories: those of the runs whose outputs are kept, and of the newest two runs
        // whatever their state, stay; the others go.
        let runs = setup.fixture.state.appending("runs")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: runs.path))
        #expect(left == ["churn-1", "churn-6", "churn-7", "churn-8"], "\(left)")
        #expect(report.removedRunDirectories == 4 && report.keptRunDirectories == 4)
        let logs = try setup.fixture.cairn(["logs", "churn-3"])
        #expect(logs.status == 1 && logs.stderr.contains("cairn gc"), "\(logs.stderr)")

        // Nothing more to do the second time; the text says what it did.
        let again = try setup.fixture.cairn(["gc", "--keep-runs", "2"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.hasPrefix("removed 0 blobs, 0 B; kept \(keptTexts.count) blobs, "), "\(again.stdout)")
    }

    /// Slurm runs live in the shared directory: gc prunes those of this state's finished,
    /// unkept runs there too, and leaves what another daemon sharing it made.
    @Test func prunesThisStatesSlurmRunDirectoriesOnly() throws {
        let setup = try populate()
        let shared = try TemporaryDirectory("cairn-shared")
        for name in ["churn-2", "churn-7", "another-daemons-run"] {
            try shared.write("runs/\(name)/log", "a log\n")
        }
        let result = try setup.fixture.cairn(["gc", "--keep-runs", "2", "--slurm-shared-dir", shared.path, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: shared.appending("runs").path))
        #expect(left == ["churn-7", "another-daemons-run"], "\(left)")
        let relative = try setup.fixture.cairn(["gc", "--slurm-shared-dir", "shared"])
        #expect(relative.status == 2 && relative.stderr.contains("must be an absolute path"), "\(relative.stderr)")
    }

    @Test func refusesWhileTheDaemonHoldsTheState() throws {
        let setup = try populate()
        let lock = try DaemonLock(stateDirectory: setup.fixture.state.url)
        let result = try setup.fixture.cairn(["gc", "--keep-runs", "1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("is using the state directory") && result.stderr.contains("stop `cairn run`"), "\(result.stderr)")
        #expect((removedTexts + keptTexts).allSatisfy(setup.exists))
        withExtendedLifetime(lock) {}
        #expect(try CairnTestSupport.cairn(["gc", "--help"]).stdout.contains("Examples:"))
    }
}
