import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// The controllers on Slurm, unchanged: `cairn reconcile --once --executor slurm` trains on the
/// single-node cluster (Scripts/slurm-cluster, started by Scripts/test) while a stage that says
/// `executor: local` runs here, and the version registers as it does locally.
@Suite(.serialized) struct SlurmRunTests {
    let repository: GitFixture
    let state: TemporaryDirectory
    let shared: TemporaryDirectory

    init() throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-state")
        shared = try TemporaryDirectory("cairn-shared")
    }

    static let pipeline = TrainingRunTests.pipeline.replacingOccurrences(of: "outs: [features.csv]", with: "outs: [features.csv]\n      executor: local")

    static func training(executor: String = "") -> String {
        TrainingRunTests.training(extra: "  resources: {cpus: 1, memory: 256MiB, time: 10m}\n  timeout: 5m\n" + executor)
    }

    func cairn(_ arguments: [String]) throws -> ProcessResult {
        try CairnTestSupport.cairn(arguments + ["--state-dir", state.path])
    }

    @Test(.enabled(if: SlurmCluster.wanted, "CAIRN_SLURM=off leaves the Slurm half out"))
    func aTrainingOnSlurmRegistersItsVersionBesideALocalStage() async throws {
        try await SlurmCluster.require()
        try await SlurmCluster.exclusively { try trainOnSlurm() }
    }

    func trainOnSlurm() throws {
        try repository.commit(TrainingRunTests.files.merging(["features.yaml": Self.pipeline, "training.yaml": Self.training()]) { $1 })
        let result = try cairn(["reconcile", "--once", "--repo", repository.path, "--executor", "slurm", "--slurm-shared-dir", shared.path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("registered scorer@1"), "\(result.stdout)")

        let store = try Store(readingFrom: state.url)
        let training = try #require(try store.runs(of: ObjectRef(.trainingSchedule, "nightly"), limit: 5).first)
        #expect(training.state == .succeeded && training.handle?.executor == "slurm", "\(training)")
        #expect(training.logPath?.hasPrefix(shared.url.standardizedFileURL.path + "/runs/") == true, "\(training.logPath ?? "")")
        let stage = try #require(try store.runs(of: ObjectRef(.featurePipeline, "features"), limit: 5).first)
        #expect(stage.state == .succeeded && stage.handle?.executor == "local", "\(stage)")
        let version = try #require(try store.versions(of: "scorer").first)
        #expect(version.metrics == ["score": 12] && version.lineage.trigger == "inputs")

        // The same inputs on the same daemon train nothing, wherever they would run.
        let again = try cairn(["reconcile", "--once", "--repo", repository.path, "--executor", "slurm", "--slurm-shared-dir", shared.path])
        #expect(again.status == 0 && !again.stdout.contains("registered"), "\(again.stdout)")
        #expect(try store.versions(of: "scorer").count == 1)
    }

    /// A manifest that asks for Slurm on a daemon without it stalls, saying how to add it.
    @Test func slurmAskedOfADaemonWithoutItStallsTheObject() throws {
        try repository.commit(TrainingRunTests.files.merging(["features.yaml": Self.pipeline,
                                                              "training.yaml": Self.training(executor: "  executor: slurm\n")]) { $1 })
        let result = try cairn(["reconcile", "--once", "--repo", repository.path])
        #expect(!result.stdout.contains("registered"), "\(result.stdout)")
        let status = try cairn(["status", "--repo", repository.path, "TrainingSchedule/nightly"])
        #expect(status.stdout.contains("ExecutorUnavailable"), "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("asks for executor: slurm, which this daemon does not have; start it with --slurm-shared-dir"),
                "\(status.stdout)")
    }

    @Test func badSlurmOptionsStopAtOnce() throws {
        let noDirectory = try cairn(["reconcile", "--once", "--repo", repository.path, "--executor", "slurm"])
        #expect(noDirectory.status == 64 || noDirectory.status == 2, "\(noDirectory.status)")
        #expect(noDirectory.stderr.contains("--executor slurm needs --slurm-shared-dir"), "\(noDirectory.stderr)")
        let typo = try cairn(["reconcile", "--once", "--repo", repository.path, "--executor", "slrum"])
        #expect(typo.stderr.contains("--executor slrum is not an executor: use local or slurm"), "\(typo.stderr)")
        let stray = try cairn(["reconcile", "--once", "--repo", repository.path, "--slurm-partition", "gpu"])
        #expect(stray.stderr.contains("need --slurm-shared-dir"), "\(stray.stderr)")
    }
}
