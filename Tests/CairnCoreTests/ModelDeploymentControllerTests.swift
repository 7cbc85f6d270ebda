import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import ModelDeploymentController
import Testing

/// The ModelDeployment controller pass by pass over a real SQLite store, with a deployer
/// double standing in for the targets: which version it asks for, when it rolls back, what
/// it holds, and what it proposes.
@Suite struct ModelDeploymentControllerTests {
    final class Bench {
        let directory: TemporaryDirectory
        let store: Store
        let deployer = DeployerDouble()
        let clock = ManualClock(Date(timeIntervalSince1970: 1_790_000_000))
        var commit = 0

        init(versions: Int) throws {
            directory = try TemporaryDirectory("cairn-deployment")
            store = try Store(directory: directory.url)
            for number in 1...versions { try store.register(Self.version(number)) }
        }

        static func version(_ number: Int) -> ModelVersion {
            let lineage = Lineage(schedule: "churn-weekly", sourceCommit: "c\(number)", runID: "run-\(number)", runKey: "sha256:k\(number)",
                                  trigger: "inputs", triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [],
                                  featurePipeline: nil, features: [:], code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
            return ModelVersion(model: "churn", version: number,
                                artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(number)".utf8)), size: 1),
                                artifactPath: "model.json", metrics: ["auc": 0.8], gate: GateVerdict(rules: []), lineage: lineage,
                                registeredAt: Date(timeIntervalSince1970: 1_780_000_000))
        }

        /// Production moves to `version` (as the Model controller records an accepted change).
        func assign(_ version: Int?) throws {
            var changes = PassChanges()
            changes.effects = [.changeStage(StageChange(model: "churn", stage: "production", version: version, previous: nil,
                                                        sourceCommit: "m\(commit)", author: "Ada", committedAt: clock.now,
                                                        appliedAt: clock.now, ordinal: 1))]
            try store.apply(changes)
        }

        func trigger() throws {
            let ref = ObjectRef(.modelDeployment, "churn-prod")
            try store.addTrigger(TriggerRequest(id: "manual-\(commit)", object: ref, source: "manual", reason: "test", requestedAt: clock.now))
        }

        /// One pass over the deployment (`selector` is `stage: production` or `version: N`).
        @discardableResult
        func pass(_ selector: String = "stage: production", rollback: Bool = true, port: Int = 8601) async throws -> Outcome {
            commit += 1
            let deployment = """
            apiVersion: cairn/v1
            kind: ModelDeployment
            metadata: {name: churn-prod}
            spec:
              model: churn
              \(selector)
              target:
                process: {command: [python3, serve.py], port: \(port), health: {path: /healthz}}
              rollback: {onFailedHealth: \(rollback)}
            """
            let model = """
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: churn}
            spec:
              stages: [staging, production]
              assignments: {production: 2}
            """
            let manifest = try #require(ManifestParser.parse(Data(deployment.utf8), file: "deployment.yaml").manifests.first)
            let modelManifest = try #require(ManifestParser.parse(Data(model.utf8), file: "model.yaml").manifests.first)
            var context = ReconcileContext(object: manifest.ref, sourceCommit: String(repeating: "\(commit % 10)", count: 40), files: NoFiles(),
                                           dependencies: [:], previous: nil, runs: store, versions: store, memory: store,
                                           relatedManifests: [modelManifest.ref: modelManifest], execution: nil, now: clock.now,
                                           logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            context.deployer = deployer
            let outcome: Outcome
            do {
                outcome = try await ModelDeploymentController().reconcile(manifest, in: context)
            } catch let error as ReconcileError {
                return Outcome(error.disposition == .terminal ? .stalled : .reconciling, reason: error.reason, message: error.message)
            }
            var changes = PassChanges()
            changes.effects = outcome.effects
            try store.apply(changes)
            clock.advance(by: 60)
            return outcome
        }
    }

    struct NoFiles: SourceFiles {
        func contents(of path: RepositoryPath) throws -> Data? { nil }
        func contentHash(of path: RepositoryPath) throws -> ContentHash? { nil }
    }

    @Test func servesWhatTheStageHoldsAndIsReadyOnlyWhenTheTargetSaysItServes() async throws {
        let bench = try Bench(versions: 2)
        let nothing = try await bench.pass()
        #expect(nothing.state == .ready && nothing.reason == "NothingToServe", "\(nothing.message)")
        #expect(bench.deployer.removed == ["churn-prod"] && bench.deployer.calls.isEmpty)

        try bench.assign(1)
        bench.deployer.answer(1, with: .progressing)
        let starting = try await bench.pass()
        #expect(starting.state == .reconciling && starting.reason == "WaitingForHealth")
        bench.deployer.answer(1, with: .serving)
        let serving = try await bench.pass()
        #expect(serving.state == .ready && serving.reason == "Serving", "\(serving.message)")
        // The first request of a version is a fresh attempt; asking again is not.
        #expect(bench.deployer.calls == [.init(version: 1, retry: true), .init(version: 1, retry: false)])
    }

    @Test func aFailedVersionIsRolledBackHeldAndProposedOnceUntilGitChanges() async throws {
        let bench = try Bench(versions: 3)
        try bench.assign(1)
        try await bench.pass()
        try bench.assign(2)
        bench.deployer.answer(2, with: .failed)
        let rolledBack = try await bench.pass()
        #expect(rolledBack.state == .notReady && rolledBack.reason == "RolledBack", "\(rolledBack.message)")
        #expect(rolledBack.message.contains("churn@2 failed") && rolledBack.message.contains("rolled back to churn@1"))
        let proposal = try #require(rolledBack.proposal)
        #expect(proposal.slug == "churn-rollback" && proposal.subject == "Roll back churn production to churn@1")
        #expect(proposal.edits == [ManifestEdit(file: "model.yaml", object: ObjectRef(.model, "churn"),
                                                field: ["spec", "assignments", "production"], expected: "2", value: "1")])
        // The rollback asked for version 1 again, as a fresh attempt.
        #expect(bench.deployer.calls.suffix(2) == [.init(version: 2, retry: true), .init(version: 1, retry: true)])

        // Nothing changed in git: version 2 is not tried again, and no second proposal is made.
        let callsBefore = bench.deployer.calls.count
        let again = try await bench.pass()
        #expect(again.reason == "RolledBack" && again.proposal == nil)
        #expect(!bench.deployer.calls.dropFirst(callsBefore).contains { $0.version == 2 })

        // The proposal is merged: production holds 1 again, the hold is gone, 1 is Ready.
        try bench.assign(1)
        let merged = try await bench.pass()
        #expect(merged.state == .ready && merged.reason == "Serving")
        // A later version is tried as usual, and 2 again once git assigns it again.
        bench.deployer.answer(2, with: .serving)
        try bench.assign(2)
        let retried = try await bench.pass()
        #expect(retried.state == .ready && bench.deployer.calls.last == .init(version: 2, retry: true))
    }

    @Test func aPersonCanAskForTheHeldVersionAgainWithATrigger() async throws {
        let bench = try Bench(versions: 2)
        try bench.assign(1)
        try await bench.pass()
        try bench.assign(2)
        bench.deployer.answer(2, with: .failed)
        try await bench.pass()
        bench.deployer.answer(2, with: .serving)
        try bench.trigger()
        let retried = try await bench.pass()
        #expect(retried.state == .ready && bench.deployer.calls.last == .init(version: 2, retry: true), "\(retried.message)")
        #expect(try bench.store.triggers(of: ObjectRef(.modelDeployment, "churn-prod")).isEmpty)
    }

    @Test func withoutRollbackOrAnEarlierHealthyVersionTheFailureIsReportedAndNothingIsProposed() async throws {
        let first = try Bench(versions: 2)
        try first.assign(1)
        try await first.pass(rollback: false)
        try first.assign(2)
        first.deployer.answer(2, with: .failed)
        let off = try await first.pass(rollback: false)
        #expect(off.state == .notReady && off.reason == "HealthCheckFailed" && off.proposal == nil)
        #expect(off.message.contains("rollback.onFailedHealth is off"))

        let second = try Bench(versions: 1)
        try second.assign(1)
        second.deployer.answer(1, with: .failed)
        let none = try await second.pass()
        #expect(none.state == .notReady && none.proposal == nil && none.message.contains("no earlier healthy version"))
    }

    @Test func aPinnedVersionIsRolledBackByProposingTheDeploymentsOwnVersion() async throws {
        let bench = try Bench(versions: 2)
        try await bench.pass("version: 1")
        bench.deployer.answer(2, with: .failed)
        let rolledBack = try await bench.pass("version: 2")
        let edit = try #require(rolledBack.proposal?.edits.first)
        #expect(edit == ManifestEdit(file: "deployment.yaml", object: ObjectRef(.modelDeployment, "churn-prod"), field: ["spec", "version"],
                                     expected: "2", value: "1"))
    }

    @Test func anUnregisteredVersionStallsAndARefusedTargetStalls() async throws {
        let bench = try Bench(versions: 1)
        let missing = try await bench.pass("version: 7")
        #expect(missing.state == .stalled && missing.reason == "VersionNotFound")
        bench.deployer.answer(1, with: .refused)
        let refused = try await bench.pass("version: 1")
        #expect(refused.state == .stalled && refused.reason == "PathNotAllowed")
    }

    @Test func aRollbackIsProposedOnlyOnceItServesAndOneThatFailsIsNotRetriedInALoop() async throws {
        let bench = try Bench(versions: 2)
        try bench.assign(1)
        try await bench.pass()
        try bench.assign(2)
        bench.deployer.answer(2, with: .failed)
        bench.deployer.answer(1, with: .progressing)
        let rolling = try await bench.pass()
        #expect(rolling.reason == "RollingBack" && rolling.proposal == nil, "\(rolling.message)")
        bench.deployer.answer(1, with: .serving)
        let served = try await bench.pass()
        #expect(served.reason == "RolledBack" && served.proposal != nil)
        // Only the first request of the fallback was a fresh attempt.
        #expect(bench.deployer.calls.filter { $0.version == 1 }.suffix(2).map(\.retry) == [true, false])

        let second = try Bench(versions: 2)
        try second.assign(1)
        try await second.pass()
        try second.assign(2)
        second.deployer.answer(2, with: .failed)
        second.deployer.answer(1, with: .failed)
        let failedToo = try await second.pass()
        #expect(failedToo.reason == "RollbackFailed" && failedToo.proposal == nil, "\(failedToo.message)")
        let again = try await second.pass()
        #expect(again.reason == "RollbackFailed")
        #expect(second.deployer.calls.suffix(2) == [.init(version: 1, retry: true), .init(version: 1, retry: false)])
    }

    @Test func aChangeToTheTargetLiftsTheHoldOnTheSameVersion() async throws {
        let bench = try Bench(versions: 2)
        try bench.assign(1)
        try await bench.pass()
        try bench.assign(2)
        bench.deployer.answer(2, with: .failed)
        try await bench.pass()
        try await bench.pass()
        #expect(bench.deployer.calls.filter { $0.version == 2 }.count == 1)
        // Git changes the deployment (another port): version 2 is a new attempt.
        bench.deployer.answer(2, with: .serving)
        let fixed = try await bench.pass(port: 8602)
        #expect(fixed.state == .ready && bench.deployer.calls.last == .init(version: 2, retry: true), "\(fixed.message)")
    }
}
