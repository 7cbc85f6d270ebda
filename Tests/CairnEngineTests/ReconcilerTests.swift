import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import Testing

@Suite struct ReconcilerTests {
    @Test func theFirstPassWritesOneStatusFilePerObjectAndANote() async throws {
        let setup = try Setup()
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.ran && outcome.healthy && outcome.objects == 5 && outcome.notImplemented == 4 && outcome.ready == 1)
        #expect(try setup.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n") == [
            "FeaturePipeline/churn-features.yaml", "Model/churn.yaml", "ModelDeployment/churn-prod.yaml",
            "Monitor/churn-quality.yaml", "README.md", "TrainingSchedule/churn-weekly.yaml",
        ])
        // Dependency order: a pipeline before the schedule that reads it, the model after it.
        #expect(try setup.statusSubjects() == [
            "FeaturePipeline/churn-features: NoExecutor", "TrainingSchedule/churn-weekly: NoExecutor", "Model/churn: NoStageAssigned",
            "ModelDeployment/churn-prod: NotImplemented", "Monitor/churn-quality: NotEvaluated",
        ])
        let head = try setup.git(["rev-parse", "main"])
        #expect(try setup.git(["log", "-1", "--format=%(trailers:key=Cairn-Source-Commit,valueonly)", "cairn/status"]) == head)
        #expect(try setup.git(["log", "-1", "--format=%(trailers:key=Cairn-Object,valueonly)", "cairn/status"]) == "Monitor/churn-quality")
        #expect(try setup.git(["notes", "--ref=cairn", "show", head]).contains("5 objects, 1 Ready, 2 NoExecutor, 1 NotEvaluated, 1 NotImplemented."))
        #expect(try setup.git(["show", "cairn/status:Model/churn.yaml"]).contains("observedCommit: \(head)"))
        // The tracked branch is untouched.
        #expect(try setup.git(["rev-list", "--count", "main"]) == "1")
    }

    @Test func anUnchangedTipWritesNothing() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let before = try setup.git(["rev-parse", "cairn/status", "refs/notes/cairn"])
        let second = try await setup.engine.reconcileOnce()
        #expect(!second.ran)
        try setup.restart()
        #expect(!(try await setup.engine.reconcileOnce()).ran)
        #expect(try setup.git(["rev-parse", "cairn/status", "refs/notes/cairn"]) == before)
    }

    @Test func aBrokenManifestStallsOnlyItsObjectAndDependentsWait() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let deployment = try #require(try exampleManifests()["deployment.yaml"] ?? nil)
        try setup.repository.commit(["deployment.yaml": deployment.replacingOccurrences(of: "  model: churn", with: "  modle: churn")])
        let broken = try await setup.engine.reconcileOnce()
        #expect(broken.stalled == [ObjectRef(.modelDeployment, "churn-prod")] && !broken.healthy)
        #expect(broken.waiting == [ObjectRef(.monitor, "churn-quality")])
        #expect(try setup.statusSubjects().suffix(2) == ["ModelDeployment/churn-prod: InvalidManifest", "Monitor/churn-quality: DependencyNotAccepted"])
        let status = try setup.git(["show", "cairn/status:ModelDeployment/churn-prod.yaml"])
        #expect(status.contains("deployment.yaml:10:3: unknown field \\\"modle\\\" in spec"), "\(status)")
        #expect(try setup.engine.store.object(ObjectRef(.model, "churn"))?.reason == "NoStageAssigned")

        try setup.repository.commit(["deployment.yaml": deployment])
        let fixed = try await setup.engine.reconcileOnce()
        #expect(fixed.healthy && fixed.waiting.isEmpty)
        #expect(try setup.statusSubjects().suffix(2) == ["ModelDeployment/churn-prod: NotImplemented", "Monitor/churn-quality: NotEvaluated"])
    }

    @Test func deletingAManifestDeletesItsObjectAndSuspendPauses() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let model = try #require(try exampleManifests()["model.yaml"] ?? nil)
        try setup.repository.commit(["monitor.yaml": nil, "model.yaml": model + "  suspend: true\n"])
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.objects == 4)
        let subjects = try setup.statusSubjects()
        #expect(subjects.contains("Monitor/churn-quality: Deleted"))
        #expect(subjects.contains("Model/churn: Suspended"))
        #expect(try setup.git(["ls-tree", "--name-only", "cairn/status"]).contains("Monitor") == false)
        #expect(try setup.engine.store.object(ObjectRef(.monitor, "churn-quality")) == nil)
        #expect(try setup.engine.store.history(ObjectRef(.monitor, "churn-quality")).first?.reason == "Deleted")
        // A suspended model is still accepted (valid, not stalled): its deployment is not held back by it.
        #expect(try setup.engine.store.object(ObjectRef(.modelDeployment, "churn-prod"))?.reason == "NotImplemented")
    }

    @Test func aForcePushedBranchIsReconciledAtItsNewTipAndSaidSo() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let training = try #require(try exampleManifests()["training.yaml"] ?? nil)
        try setup.repository.commit(["training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 2.0")])
        try await setup.engine.reconcileOnce()
        // Rewrite history: drop that commit and make another in its place.
        try setup.git(["reset", "-q", "--hard", "HEAD~1"])
        let rewritten = try setup.repository.commit(["training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 3.0")])
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.commit.hex == rewritten)
        #expect(try setup.git(["notes", "--ref=cairn", "show", rewritten]).contains("History was rewritten"))
        #expect(try setup.git(["show", "cairn/status:TrainingSchedule/churn-weekly.yaml"]).contains("observedCommit: \(rewritten)"))
    }

    /// The generation is the spec's content key: reordering fields (and respelling 10m as
    /// 600s) changes nothing, so no status commit; a changed value is a new generation.
    @Test func reorderingAManifestKeepsItsGenerationAndAValueChangeDoesNot() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let schedule = ObjectRef(.trainingSchedule, "churn-weekly")
        let before = try #require(try setup.engine.store.object(schedule)).generation
        #expect(before.hasPrefix("sha256:") && before.count == 71)
        let training = try #require(try exampleManifests()["training.yaml"] ?? nil)
        let reordered = training.replacingOccurrences(of: "  params: {C: 1.0, max_iter: 200}\n", with: "")
            .replacingOccurrences(of: "  timeout: 10m\n", with: "  timeout: 600s\n  params: {max_iter: 200, C: 1}\n")
        #expect(reordered != training)
        try setup.repository.commit(["training.yaml": reordered])
        let same = try await setup.engine.reconcileOnce()
        #expect(same.ran && same.changed.isEmpty, "\(same.changed)")
        #expect(try setup.engine.store.object(schedule)?.generation == before)
        try setup.repository.commit(["training.yaml": reordered.replacingOccurrences(of: "max_iter: 200", with: "max_iter: 201")])
        let changed = try await setup.engine.reconcileOnce()
        #expect(changed.changed == [schedule])
        #expect(try setup.engine.store.object(schedule)?.generation != before)
    }

    @Test func aManualRequestReconcilesAheadOfChanges() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        try setup.engine.store.request(ObjectRef(.model, "churn"))
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.ran)
        #expect(outcome.changed.isEmpty) // nothing changed, so nothing is committed
    }

    @Test func backoffGrowsExponentiallyWithBoundedJitter() {
        let backoff = Backoff(base: 1, factor: 2, maximum: 60, jitter: 0.2)
        #expect(backoff.delay(afterFailures: 1, random: 0.5) == 1)
        #expect(backoff.delay(afterFailures: 4, random: 0.5) == 8)
        #expect(backoff.delay(afterFailures: 30, random: 0.5) == 60)
        #expect(backoff.delay(afterFailures: 3, random: 0) == 3.6)
        #expect(backoff.delay(afterFailures: 3, random: 0.999_999) < 4.4)
    }
}

@Suite struct IncrementalSymlinkTests {
    @Test func aSymlinkAddedLaterIsReportedNotParsed() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        try FileManager.default.createSymbolicLink(atPath: setup.repository.url.appendingPathComponent("evil.yaml").path,
                                                   withDestinationPath: "/etc/passwd")
        try setup.repository.commit([:], message: "link")
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.stalled.isEmpty, "an unattributed finding stalls no object")
        #expect(!outcome.healthy && outcome.unreadableFiles == ["evil.yaml:1:1: this is a symlink to /etc/passwd, which is outside the repository"])
        let findings = try #require(await setup.engine.manifestSet).diagnostics
        #expect(findings.contains { $0.location.file == "evil.yaml" && $0.message.contains("symlink to /etc/passwd") }, "\(findings)")
    }
}

@Suite struct StateResetTests {
    /// A new state directory over an existing status branch writes every status again, on top
    /// of the branch: the old store's outbox marks are not taken for the new store's.
    @Test func aFreshStoreRewritesStatusOnTopOfTheExistingBranch() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let newState = try TemporaryDirectory("cairn-state")
        let engine = try Setup.engine(setup.repository.url, newState.url)
        try await engine.reconcileOnce()
        #expect(try setup.statusSubjects().count == 10)
        #expect(try setup.git(["rev-list", "--count", "cairn/status"]) == "10")
    }
}

/// A Model controller that fails transiently a given number of times, then finds the model Ready.
final class FlakyController: Controller, @unchecked Sendable {
    static let kind = Kind.model
    private let lock = NSLock()
    private var failuresLeft: Int
    private var count = 0

    init(failures: Int) {
        self.failuresLeft = failures
    }

    var calls: Int { lock.withLock { count } }

    func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        let fail = lock.withLock {
            count += 1
            failuresLeft -= 1
            return failuresLeft >= 0
        }
        if fail { throw ReconcileError(.transient, reason: "RegistryUnavailable", message: "the registry did not answer") }
        return .ready(reason: "Registered", message: "ok")
    }
}

@Suite struct TransientErrorTests {
    /// A transient error backs the object off (Reconciling, with a retry time that grows), the
    /// object is retried when due without any new commit, and becomes Ready; nothing sleeps.
    @Test func transientErrorsBackOffAndRetryWhenDue() async throws {
        let setup = try Setup()
        let flaky = FlakyController(failures: 2)
        let clock = ManualClock()
        let engine = try Setup.engine(setup.repository.url, setup.state.url,
                                      controllers: Controllers.all.filter { type(of: $0).kind != .model } + [flaky],
                                      now: { clock.now })
        let model = ObjectRef(.model, "churn")

        _ = try await engine.reconcileOnce()
        let first = try #require(try engine.store.object(model))
        #expect(first.reason == "RegistryUnavailable" && !first.isReady && first.failures == 1)
        #expect(first.condition("Reconciling")?.status == .true)
        let firstDelay = try #require(first.nextAttempt).timeIntervalSince(clock.now)
        #expect(firstDelay > 0.8 && firstDelay < 1.2)
        // A model in backoff is still accepted: its deployment is reconciled, not held back.
        #expect(try engine.store.object(ObjectRef(.modelDeployment, "churn-prod"))?.reason == "NotImplemented")

        // Not yet due: the pass is the cheap one.
        #expect(try await engine.reconcileOnce().ran == false)
        clock.advance(by: 5)
        _ = try await engine.reconcileOnce()
        let second = try #require(try engine.store.object(model))
        #expect(second.failures == 2)
        let secondDelay = try #require(second.nextAttempt).timeIntervalSince(clock.now)
        #expect(secondDelay > 1.6 && secondDelay < 2.4, "the delay doubles")

        clock.advance(by: 5)
        let recovered = try await engine.reconcileOnce()
        #expect(recovered.ran)
        let third = try #require(try engine.store.object(model))
        #expect(third.isReady && third.reason == "Registered" && third.failures == 0 && third.nextAttempt == nil)
        #expect(flaky.calls == 3)
        #expect(recovered.nextDue == nil, "nothing is due any more")
    }
}

@Suite struct FailedPassTests {
    /// A pass that fails half-way through loading a commit (one changed file's blob cannot be
    /// read) leaves nothing half-loaded: once the object is back, the next pass sees the whole
    /// commit and writes the right status.
    @Test func aFailedPassIsRedoneInFull() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let files = try exampleManifests()
        let deployment = try #require(files["deployment.yaml"] ?? nil), training = try #require(files["training.yaml"] ?? nil)
        try setup.repository.commit(["deployment.yaml": deployment.replacingOccurrences(of: "stage: production", with: "stage: prod"),
                                     "training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 9.0")])
        // Hide the new training.yaml blob (a loose object): the pass reads deployment.yaml, then fails.
        let blob = try setup.git(["rev-parse", "HEAD:training.yaml"])
        let object = setup.repository.url.appendingPathComponent(".git/objects/\(blob.prefix(2))/\(blob.dropFirst(2))")
        let hidden = setup.state.appending("hidden-object")
        try FileManager.default.moveItem(at: object, to: hidden)
        await #expect(throws: (any Error).self) { try await setup.engine.reconcileOnce() }
        try FileManager.default.moveItem(at: hidden, to: object)

        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.stalled == [ObjectRef(.modelDeployment, "churn-prod")] && outcome.waiting == [ObjectRef(.monitor, "churn-quality")])
        let status = try setup.git(["show", "cairn/status:ModelDeployment/churn-prod.yaml"])
        #expect(status.contains("Model/churn has no stage \\\"prod\\\""), "\(status)")
    }
}
