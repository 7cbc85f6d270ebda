import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import Synchronization
import Testing
@testable import TrainingScheduleController

/// TrainingSchedules reconciled pass by pass as the engine plays them: the controller reads a
/// real SQLite store, the pass's effects are applied to it, and the next pass reads what they
/// wrote. The test sets the commit's files, the Model's manifest and the feature pipeline's
/// runs and status; a scripted executor records trainings as the local executor does and ends
/// them when the test says; time is a manual clock.
final class TrainingBench {
    static let pipelineRef = ObjectRef(.featurePipeline, "churn-features")
    static let trainPy = "import json\nprint('train')\n"
    static let pipeline = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: churn-features}
    spec:
      stages:
        - name: featurize
          command: [python3, featurize.py, features/churn.csv]
          outs: [features/churn.csv]
    """

    let directory: TemporaryDirectory
    let store: Store
    let artifacts = MemoryArtifacts()
    let clock: ManualClock
    let executor: TrainingExecutor
    /// One controller for every pass, as the engine keeps one (its key memo lives across passes).
    let controller = TrainingScheduleController()

    /// The TrainingSchedule `pass` reconciles unless it is given another.
    var schedule: String
    var files: [String: String] = ["train.py": trainPy, "featurize.py": "print('features')\n"]
    /// Model manifests at the commit (the controller is given the one its schedule trains).
    var models: [String] = [TrainingBench.model()]
    /// The feature pipeline's status as the engine would hand it over; nil: not reconciled yet.
    var pipelineStatus: ObjectStatus?
    /// The features the pipeline's newest run wrote.
    private(set) var features: Artifact?
    private var pipelineRuns = 0

    init(_ schedule: String = TrainingBench.schedule(), at start: String = "2027-01-15T10:30:00Z") throws {
        self.schedule = schedule
        directory = try TemporaryDirectory()
        store = try Store(directory: directory.url)
        clock = ManualClock(try Self.date(start))
        executor = TrainingExecutor(ledger: store, artifacts: artifacts, clock: clock)
        try publishFeatures("id,tenure,label\n1,3,0\n")
    }

    /// A TrainingSchedule of `model`; each of `extra` is one line under `spec:` (`retries: 1`).
    static func schedule(name: String = "churn-weekly", model: String = "churn", params: String = "{C: 1.0, max_iter: 200}",
                         _ extra: String...) -> String {
        """
        apiVersion: cairn/v1
        kind: TrainingSchedule
        metadata: {name: \(name)}
        spec:
          model: \(model)
          features: churn-features
          command: [python3, train.py, --features, features/churn.csv, --model, model.json, --metrics, metrics.json]
          params: \(params)
          outputs: {model: model.json, metrics: metrics.json}

        """ + extra.map { "  \($0)\n" }.joined()
    }

    static func model(_ name: String = "churn", assignments: String = "{}") -> String {
        """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: \(name)}
        spec:
          stages: [staging, production]
          assignments: \(assignments)
        """
    }

    // MARK: The feature pipeline

    /// The pipeline ran again and wrote `csv`: its run is in the store and its status is Ready
    /// with that run, as after a pass of the pipeline's controller.
    func publishFeatures(_ csv: String, commit: String = "c1") throws {
        let artifact = artifacts.put(csv)
        let run = try recordPipelineRun(outputs: ["features/churn.csv": artifact], commit: commit)
        features = artifact
        pipelineStatus = Self.status(Self.pipelineRef, ready: true, reason: "UpToDate", message: "stage featurize is up to date", runs: [run.id])
    }

    @discardableResult
    func recordPipelineRun(outputs: [String: Artifact], commit: String = "c1") throws -> RunRecord {
        pipelineRuns += 1
        var run = RunRecord(id: "features-run-\(pipelineRuns)", key: "sha256:features-\(pipelineRuns)", object: Self.pipelineRef,
                            stage: "featurize", state: .succeeded, trigger: "inputs", sourceCommit: commit, submittedAt: clock.now,
                            finishedAt: clock.now)
        run.startedAt = clock.now
        run.outputs = outputs
        try store.record(run)
        return run
    }

    static func status(_ ref: ObjectRef, ready: Bool, reason: String, message: String, runs: [String]?) -> ObjectStatus {
        let time = Date(timeIntervalSince1970: 0)
        var conditions = [Condition(type: "Ready", status: ready ? .true : .false, reason: reason, message: message, lastTransitionTime: time)]
        if !ready { conditions.append(Condition(type: "Reconciling", status: .true, reason: reason, message: message, lastTransitionTime: time)) }
        var status = ObjectStatus(ref: ref, manifestPath: "features.yaml", generation: "g", observedCommit: "c1", conditions: conditions)
        status.runs = runs
        return status
    }

    /// Records that `version` holds `stage` of churn, as the Model controller would on a promotion.
    func hold(_ stage: String, _ version: Int) throws {
        let count = try store.stageChangeCount(of: "churn", stage: stage)
        try store.recordStageChange(StageChange(model: "churn", stage: stage, version: version, previous: nil, sourceCommit: "c0",
                                                author: "Ada <ada@example.com>", committedAt: clock.now, appliedAt: clock.now,
                                                ordinal: count + 1))
    }

    // MARK: Passes

    /// One pass over `yaml` (the bench's schedule unless given) at `commit` and the clock's
    /// time; its effects are applied to the store unless `apply` is false (a crash before the
    /// pass's transaction).
    @discardableResult
    func pass(_ yaml: String? = nil, commit: String = "c1", apply: Bool = true) async throws -> Outcome {
        let manifest = try Self.manifest(yaml ?? schedule, file: "training.yaml")
        guard case .trainingSchedule(let spec) = manifest.spec else { throw ManifestError(text: "not a TrainingSchedule") }
        var related: [ObjectRef: Manifest] = [Self.pipelineRef: try Self.manifest(Self.pipeline, file: "features.yaml")]
        for yaml in models {
            let model = try Self.manifest(yaml, file: "model.yaml")
            if model.ref.name == spec.model { related[model.ref] = model }
        }
        let execution = Execution(executor: executor, artifacts: artifacts, hostFiles: FixedHostFiles(), policy: ExecutionPolicy(maxRuns: 4))
        let context = ReconcileContext(
            object: manifest.ref, sourceCommit: commit, files: CommitFiles(files),
            dependencies: pipelineStatus.map { [Self.pipelineRef: $0] } ?? [:], previous: nil, runs: store, versions: store,
            memory: store, relatedManifests: related, execution: execution, now: clock.now, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let outcome = try await controller.reconcile(manifest, in: context)
        if apply {
            var changes = PassChanges()
            changes.effects = outcome.effects
            try store.apply(changes)
        }
        return outcome
    }

    struct ManifestError: Error { let text: String }

    static func manifest(_ yaml: String, file: String) throws -> Manifest {
        let parsed = ManifestParser.parse(Data(yaml.utf8), file: file)
        return try #require(parsed.manifests.first, "\(parsed.diagnostics)")
    }

    /// Trains the schedule's current key to a registered version: a pass that submits, the
    /// run's success with `metrics`, and the pass that registers.
    @discardableResult
    func trainToVersion(commit: String = "c1", metrics: String = #"{"auc": 0.8}"#) async throws -> (version: ModelVersion, outcome: Outcome) {
        let before = executor.submitted.count
        let started = try await pass(commit: commit)
        try #require(executor.submitted.count == before + 1, "the pass submitted no training: \(started.reason): \(started.message)")
        try executor.succeed(metrics: metrics)
        let outcome = try await pass(commit: commit)
        return (try #require(outcome.registered.first, "\(outcome.reason): \(outcome.message)"), outcome)
    }

    // MARK: Time

    static func date(_ text: String) throws -> Date {
        try #require(ISO8601DateFormatter().date(from: text), "not ISO 8601: \(text)")
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}

// MARK: The executor

/// An executor whose trainings end when the test says. It records each run in the ledger as
/// the local executor does (trigger id, params and the restored features with it), and like it
/// answers a submit of a key still under way with that run. Cancelling a run under way asks
/// for its end: it is recorded cancelled when its process is gone (`endCancelled()`), as the
/// local executor records it after SIGTERM.
final class TrainingExecutor: JobExecutor, @unchecked Sendable {
    let name = "scripted"
    let ledger: any RunLedger
    let artifacts: MemoryArtifacts
    let clock: ManualClock
    let completions: AsyncStream<JobHandle>
    private let continuation: AsyncStream<JobHandle>.Continuation
    private let state = Mutex<(submitted: [JobSpec], cancelled: [String])>(([], []))

    init(ledger: any RunLedger, artifacts: MemoryArtifacts, clock: ManualClock) {
        self.ledger = ledger
        self.artifacts = artifacts
        self.clock = clock
        (completions, continuation) = AsyncStream.makeStream()
    }

    /// Every job accepted, oldest first (a submit answered with a run under way is not one).
    var submitted: [JobSpec] { state.withLock { $0.submitted } }
    /// Runs whose cancel was asked for, in order.
    var cancelled: [String] { state.withLock { $0.cancelled } }

    func submit(_ spec: JobSpec) async throws -> JobHandle {
        if let running = try ledger.runs(withKey: spec.key).first(where: { !$0.state.isFinal }) {
            return JobHandle(executor: name, id: running.id, runID: running.id)
        }
        state.withLock { $0.submitted.append(spec) }
        var record = RunRecord(id: spec.runID, key: spec.key, object: spec.object, stage: spec.stage, state: .running,
                               trigger: spec.trigger, reason: spec.reason, sourceCommit: spec.sourceCommit, command: spec.command,
                               inputs: spec.keyInputs, attempt: spec.attempt, submittedAt: clock.now)
        record.startedAt = clock.now
        record.triggerID = spec.triggerID
        record.params = spec.params
        if !spec.inputs.isEmpty { record.consumed = spec.inputs }
        try ledger.record(record)
        return JobHandle(executor: name, id: spec.runID, runID: spec.runID)
    }

    /// Ends a run (the newest submitted unless named) well, having written `model` and
    /// `metrics` (nil: that output was not written) into the artifact store.
    @discardableResult
    func succeed(_ runID: String? = nil, model: String? = "weights", metrics: String? = #"{"auc": 0.8}"#) throws -> RunRecord {
        try end(runID) { run, spec in
            run.state = .succeeded
            run.exitStatus = 0
            let (modelPath, metricsPath) = (spec.outputs[0], spec.outputs[1])
            if let model { run.outputs[modelPath] = artifacts.put("\(model) from run \(run.id)") }
            if let metrics { run.outputs[metricsPath] = artifacts.put(metrics) }
        }
    }

    @discardableResult
    func fail(_ runID: String? = nil, message: String, exitStatus: Int32? = 1, signal: Int32? = nil) throws -> RunRecord {
        try end(runID) { run, _ in
            run.state = .failed
            run.exitStatus = exitStatus
            run.signal = signal
            run.message = message
        }
    }

    /// The runs whose cancel was asked for end now, recorded cancelled.
    func endCancelled() throws {
        for id in cancelled {
            guard let run = try ledger.run(id: id), !run.state.isFinal else { continue }
            _ = try end(id) { run, _ in
                run.state = .cancelled
                run.message = "cancelled"
            }
        }
    }

    private func end(_ runID: String?, _ change: (inout RunRecord, JobSpec) -> Void) throws -> RunRecord {
        let spec = try #require(runID.map { id in submitted.last { $0.runID == id } } ?? submitted.last, "no such run submitted")
        var run = try #require(try ledger.run(id: spec.runID))
        try #require(!run.state.isFinal, "run \(run.id) has ended already")
        change(&run, spec)
        run.finishedAt = clock.now
        try ledger.record(run)
        continuation.yield(JobHandle(executor: name, id: run.id, runID: run.id))
        return run
    }

    func observe(runID: String) async throws -> JobState { .pending }
    func cancel(runID: String) async throws { state.withLock { $0.cancelled.append(runID) } }
    func recover() async throws -> RecoveryReport { RecoveryReport() }
    func inFlight() async -> [String] { (try? ledger.unfinishedRuns().map(\.id)) ?? [] }
}

// MARK: Reading outcomes

extension Outcome {
    var registered: [ModelVersion] {
        effects.compactMap { effect -> ModelVersion? in
            if case .registerVersion(let version) = effect { return version }
            return nil
        }
    }

    var recordedRuns: [RunRecord] {
        effects.compactMap { effect -> RunRecord? in
            if case .recordRun(let run) = effect { return run }
            return nil
        }
    }

    var consumedTriggers: [String] {
        effects.compactMap { effect -> String? in
            if case .consumeTrigger(let id) = effect { return id }
            return nil
        }
    }
}
