import CairnCLI
import CairnCore
import CairnEngine
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite struct ControllerRegistryTests {
    @Test func theCompositionRootRegistersOneControllerPerKind() throws {
        let registry = try ControllerRegistry(Controllers.all)
        for kind in Kind.allCases {
            #expect(type(of: registry.controller(for: kind)).kind == kind)
        }
    }

    @Test func aMissingOrDoubledKindFailsAtStart() {
        let withoutMonitor = Controllers.all.filter { type(of: $0).kind != .monitor }
        #expect(throws: RegistryError.self) { try ControllerRegistry(withoutMonitor) }
        do {
            _ = try ControllerRegistry(withoutMonitor)
        } catch {
            #expect(error.description == "no controller is registered for Monitor")
        }
        #expect(throws: RegistryError.self) { try ControllerRegistry(Controllers.all + [Controllers.all[0]]) }
    }
}

@Suite struct NotImplementedTests {
    /// Kinds whose work is not built say Ready=Unknown, NotImplemented; a Model promoting a
    /// version that exists nowhere is refused (Stalled, VersionNotFound), never Ready.
    @Test func aPromotionOfAVersionThatDoesNotExistIsNotReady() async throws {
        var files = try exampleManifests()
        let model = try #require(files["model.yaml"] ?? nil)
        files["model.yaml"] = model.replacingOccurrences(of: "assignments: {}", with: "assignments: {staging: 99}")
        let setup = try Setup(files: files)
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.ready == 0 && outcome.stalled == [ObjectRef(.model, "churn")], "\(outcome.stalled)")
        let status = try #require(try setup.engine.store.object(ObjectRef(.model, "churn")))
        #expect(status.ready == .false && status.isStalled)
        #expect(status.reason == "VersionNotFound")
        #expect(status.primaryMessage.contains("staging → churn@99: no such version is registered"), "\(status.primaryMessage)")
        let file = try setup.git(["show", "cairn/status:Model/churn.yaml"])
        #expect(file.contains("ready: false") && file.contains("stages: {}"), "\(file)")
    }

    /// A store written by a Cairn whose controllers said Ready without doing anything: the
    /// first pass after the upgrade evaluates every object, even at an unchanged tip.
    @Test func statusesFromBeforeTheSeamAreReevaluatedAtOnce() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let model = ObjectRef(.model, "churn")
        var old = try #require(try setup.engine.store.object(model))
        old.generation = String(repeating: "a", count: 40)
        old.conditions[0] = Condition(type: "Ready", status: .true, reason: "Reconciled", message: "the manifest is valid",
                                      lastTransitionTime: Date(timeIntervalSince1970: 1_700_000_000))
        var changes = PassChanges()
        changes.upserts = [old]
        try setup.engine.store.apply(changes)
        try setup.restart()
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.ran, "not the one-ref-read pass")
        #expect(try setup.engine.store.object(model)?.reason == "NoStageAssigned")
        #expect(outcome.ready == 1)
        #expect(try await setup.engine.reconcileOnce().ran == false, "once, not on every pass")
    }

    /// Dependencies are per object: a broken TrainingSchedule holds back the Model it trains
    /// (known from its last good spec), and no other Model.
    @Test func aBrokenTrainingScheduleLeavesAnUnrelatedModelAlone() async throws {
        var files = try exampleManifests()
        files["other-model.yaml"] = """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: fraud}
        spec:
          stages: [staging, production]

        """
        let setup = try Setup(files: files)
        try await setup.engine.reconcileOnce()
        let fraud = ObjectRef(.model, "fraud")
        let before = try #require(try setup.engine.store.object(fraud))
        let training = try #require(files["training.yaml"] ?? nil)
        try setup.repository.commit(["training.yaml": training.replacingOccurrences(of: "timeout: 10m", with: "timout: 10m")])
        let outcome = try await setup.engine.reconcileOnce()
        #expect(outcome.stalled == [ObjectRef(.trainingSchedule, "churn-weekly")])
        #expect(try setup.engine.store.object(fraud) == before, "the unrelated model is untouched")
        #expect(!outcome.changed.contains(fraud))
        let churn = try #require(try setup.engine.store.object(ObjectRef(.model, "churn")))
        #expect(churn.reason == "DependencyNotAccepted")
        #expect(churn.primaryMessage.contains("TrainingSchedule/churn-weekly (InvalidManifest)"), "\(churn.primaryMessage)")
        #expect(!(try setup.statusSubjects().contains { $0.hasPrefix("Model/fraud") && $0 != "Model/fraud: NoStageAssigned" }))
    }
}

/// A FeaturePipeline controller that reports what its context gave it, and asks for a run
/// record and a requeue: the seam as later controllers will use it.
struct ProbeController: Controller {
    static let kind = Kind.featurePipeline

    func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        let script = try RepositoryPath("pipelines/ingest.py")
        let bytes = try context.files.contents(of: script)?.count ?? -1
        let fileHash = try context.files.contentHash(of: script)?.description ?? "none"
        let directoryHash = try context.files.contentHash(of: RepositoryPath("pipelines"))?.description ?? "none"
        let missing = try context.files.contentHash(of: RepositoryPath("nowhere/at-all.py"))
        let run = RunRecord(id: "run-\(context.sourceCommit.prefix(8))", key: "sha256:probe", object: context.object, state: .submitted,
                            trigger: "inputs", sourceCommit: context.sourceCommit, submittedAt: context.now)
        return .reconciling(reason: "Probed",
                            message: "bytes=\(bytes) file=\(fileHash) dir=\(directoryHash) missing=\(missing == nil)",
                            requeueAfter: .seconds(90), effects: [.recordRun(run)])
    }
}

@Suite struct ReconcileContextTests {
    @Test func aControllerReadsTheCommitsFilesAndItsEffectsLandWithItsStatus() async throws {
        var files = try exampleManifests()
        for name in ["ingest.py", "featurize.py"] {
            files["pipelines/\(name)"] = try String(contentsOf: packageRoot.appendingPathComponent("Manifests/pipelines/\(name)"), encoding: .utf8)
        }
        let setup = try Setup(files: files)
        let clock = ManualClock()
        let engine = try Setup.engine(setup.repository.url, setup.state.url,
                                      controllers: Controllers.all.filter { type(of: $0).kind != .featurePipeline } + [ProbeController()],
                                      now: { clock.now })
        let outcome = try await engine.reconcileOnce()
        let head = try setup.git(["rev-parse", "main"])
        let pipeline = ObjectRef(.featurePipeline, "churn-features")
        let status = try #require(try engine.store.object(pipeline))
        #expect(status.reason == "Probed" && status.condition("Reconciling")?.status == .true)

        // Independent witnesses: the bytes on disk, hashed by Python's hashlib.
        let script = setup.repository.url.appendingPathComponent("pipelines/ingest.py")
        let size = try Data(contentsOf: script).count
        let python = """
        import hashlib, os, sys
        root = sys.argv[1]
        def h(p): return hashlib.sha256(open(p, 'rb').read()).hexdigest()
        print(h(os.path.join(root, 'ingest.py')))
        names = sorted(n for n in os.listdir(root))
        print(hashlib.sha256(''.join(h(os.path.join(root, n)) + '  ' + n + '\\n' for n in names).encode()).hexdigest())
        """
        let hashes = try run("python3", ["-c", python, setup.repository.url.appendingPathComponent("pipelines").path]).stdout
            .split(separator: "\n").map(String.init)
        #expect(status.primaryMessage == "bytes=\(size) file=sha256:\(hashes[0]) dir=sha256:\(hashes[1]) missing=true", "\(status.primaryMessage)")

        // The run record was written with the status, and the requeue is the engine's next wake-up.
        #expect(try engine.store.runs(of: pipeline, limit: 5).map(\.id) == ["run-\(head.prefix(8))"])
        #expect(status.nextAttempt == clock.now.addingTimeInterval(90))
        #expect(outcome.nextDue == clock.now.addingTimeInterval(90))
        #expect(outcome.waiting.contains(pipeline))
        // Not due yet: nothing runs; when due, the controller is asked again without a commit.
        #expect(try await engine.reconcileOnce().ran == false)
        clock.advance(by: 91)
        #expect(try await engine.reconcileOnce().ran)
    }
}
