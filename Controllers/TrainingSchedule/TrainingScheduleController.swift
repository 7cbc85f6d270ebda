public import CairnCore
public import CairnManifests
import Foundation

/// TrainingSchedule: trains when its run key has no successful run (by `retrainOn`), on its
/// cron schedule, and on `cairn trigger`; registers each successful training as a version of
/// its model, with its metrics, gate verdict and lineage.
///
/// Each pass, in small steps:
/// 1. successful trainings not registered yet are registered (or, with unreadable metrics,
///    recorded as failed): a crash between a run's end and its registration loses nothing;
/// 2. the features pipeline must be Ready with its outputs in the artifact store, or the
///    training waits;
/// 3. the run key is computed as a stage's is, with the features as upstream outputs;
/// 4. the cron schedule is advanced (catch-up policy), and pending triggers read;
/// 5. what to start is decided: a manual trigger, a due tick, or a key without a success
///    (by `retrainOn`), within the concurrency policy;
/// 6. one place (`TrainingReport`) summarises.
public struct TrainingScheduleController: Controller {
    public static let kind = Kind.trainingSchedule
    private let memo = RunKeyMemo()

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .trainingSchedule(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        guard let execution = context.execution else {
            return Outcome(.notImplemented, reason: "NoExecutor",
                           message: "this process runs no trainings (it was started without an executor), so none was run or checked")
        }
        var pass = TrainingPass(object: object, spec: spec, context: context, execution: execution, memo: memo)
        return try await pass.run()
    }
}

/// One pass over one TrainingSchedule.
struct TrainingPass {
    let object: Manifest
    let spec: TrainingScheduleSpec
    let context: ReconcileContext
    let execution: Execution
    let memo: RunKeyMemo
    var report = TrainingReport()
    var memory: TrainingMemory
    let remembered: TrainingMemory
    /// Runs found to have succeeded as processes whose outputs cannot make a version.
    var refusedRuns: [String: RunRecord] = [:]

    init(object: Manifest, spec: TrainingScheduleSpec, context: ReconcileContext, execution: Execution, memo: RunKeyMemo) {
        self.object = object
        self.spec = spec
        self.context = context
        self.execution = execution
        self.memo = memo
        memory = TrainingMemory(try? context.memory.memory(of: object.ref))
        remembered = memory
    }

    mutating func run() async throws -> Outcome {
        let recent = try context.runs.runs(of: object.ref, limit: 200)
        try registerFinished(recent)
        let inFlight = recent.filter { !$0.state.isFinal }
        report.inFlight = inFlight

        // Ticks first: they come due whether or not the inputs are ready.
        if let schedule = spec.schedule {
            let zone = TimeZone(identifier: spec.timeZone) ?? TimeZone(secondsFromGMT: 0) ?? .current
            let advance = ScheduleClock.advance(&memory.schedule, schedule: schedule, timeZone: zone, catchup: spec.catchup, now: context.now)
            report.nextTick = advance.nextTick
            // Moving `through` past no tick changes nothing the next pass would decide: it is
            // not written back, so a pass over a schedule between its ticks writes nothing.
            if remembered.schedule.through != nil, advance.newlyDue.isEmpty, advance.dropped == 0, advance.missed == 0 {
                memory.schedule.through = remembered.schedule.through
            }
            if advance.dropped > 0 {
                context.logger.notice("dropped missed ticks", metadata: ["cairn.dropped": "\(advance.dropped)",
                                                                         "cairn.catchup": "\(spec.catchup.rawValue)"])
                report.droppedTicks = advance.dropped
            }
        }
        let triggers = try context.memory.triggers(of: object.ref)

        // 2. The features.
        var features: [String: Artifact] = [:]
        var producers: [String: String] = [:]
        if let pipeline = spec.features {
            switch try featureOutputs(of: pipeline) {
            case .ready(let outputs, let made):
                features = outputs
                producers = made
            case .waiting(let why):
                report.waiting = why
                return finish()
            }
        }

        // 3. The key.
        let stage = RunKey.stage(of: spec)
        let key: RunKey
        do {
            key = try RunKey(stage: stage, field: "spec", kind: RunKey.kind(of: spec), consumed: features, object: object,
                             context: context, execution: execution, memo: memo)
        } catch let problem as RunProblem {
            report.problem = problem
            return finish()
        }
        if memory.commit != context.sourceCommit {
            memory.commit = context.sourceCommit
            memory.commitKey = key.key
        }
        // Seen as the store will hold them after this pass: refused ones as failed.
        let keyRuns = try context.runs.runs(withKey: key.key).map { refusedRuns[$0.id] ?? $0 }
        // A success counts while its model is in the artifact store (gc keeps those of
        // registered versions; a store that lost one trains the key again).
        let modelPath = spec.outputs.model.value
        let done = keyRuns.first { run in
            run.state == .succeeded && (run.outputs[run.annotations?["outputs.model"] ?? modelPath]).map(execution.artifacts.contains) == true
        }
        report.done = done
        // A forced training (trigger, `always` tick) that failed on a key that succeeded
        // before leaves that success standing, and is said, not hidden behind it.
        if let done, let index = recent.firstIndex(where: { $0.state.isFinal && $0.state != .skipped }),
           recent[index].state == .failed || refusedRuns[recent[index].id] != nil, recent[index].triggerID != nil,
           !recent[...index].contains(where: { $0.id == done.id }) {
            let last = recent[index]
            report.forcedFailure = refusedRuns[last.id] ?? last
        }
        if let done { report.version = try report.registered.first { $0.lineage.runID == done.id } ?? context.versions.version(registeredBy: done.id) }

        // 4 and 5. What to start.
        guard let start = try decide(key: key, keyRuns: keyRuns, done: done, triggers: triggers, recent: recent) else { return finish() }
        try await launch(start, key: key, features: features, producers: producers, inFlight: inFlight, keyRuns: keyRuns)
        return finish()
    }

    // MARK: Step 1: registration

    private mutating func registerFinished(_ recent: [RunRecord]) throws {
        let registrar = Registrar(object: object, spec: spec, context: context, execution: execution)
        // Newest first, until ten registered ones in a row: what is older was registered by
        // earlier passes (runs end out of order only among the few under way at once), so a
        // pass costs a few lookups however long the history.
        var unregistered: [RunRecord] = []
        var registeredInARow = 0
        for run in recent where run.state == .succeeded && run.stage == nil {
            if try context.versions.version(registeredBy: run.id) != nil {
                registeredInARow += 1
                if registeredInARow == 10 { break }
                continue
            }
            registeredInARow = 0
            unregistered.append(run)
        }
        var numbers: [String: Int] = [:]
        for run in unregistered.reversed() {
            let model = registrar.model(of: run)
            let number = try numbers[model] ?? context.versions.latestVersionNumber(of: model)
            switch try registrar.register(run, number: number + 1) {
            case .registered(let version):
                numbers[model] = number + 1
                report.registered.append(version)
                report.effects.append(.registerVersion(version))
                context.logger.info("registered", metadata: ["cairn.version": "\(version.name)", "cairn.run": "\(run.id)",
                                                             "cairn.gate": "\(version.gate.summary)"])
            case .refused(let why):
                var failed = run
                failed.state = .failed
                failed.message = why
                refusedRuns[run.id] = failed
                report.effects.append(.recordRun(failed))
                report.refused.append(failed)
            }
        }
    }

    // MARK: Step 2: features

    enum Features {
        /// The outputs by path, and the run that produced each.
        case ready([String: Artifact], producers: [String: String])
        case waiting(String)
    }

    /// The outputs of every stage of the pipeline, from the runs its status reports, when it
    /// is Ready and they are all in the artifact store.
    private func featureOutputs(of pipeline: String) throws -> Features {
        let ref = ObjectRef(.featurePipeline, pipeline)
        guard let status = context.dependencies[ref] else { return .waiting("\(ref) has not been reconciled yet") }
        guard status.ready == .true else {
            return .waiting("\(ref) is not Ready (\(status.reason): \(status.primaryMessage.prefix(200)))")
        }
        guard case .featurePipeline(let pipelineSpec)? = context.relatedManifests[ref]?.spec else {
            return .waiting("\(ref) has no readable manifest")
        }
        var outputs: [String: Artifact] = [:]
        var producers: [String: String] = [:]
        for id in status.runs ?? [] {
            guard let run = try context.runs.run(id: id) else { continue }
            for (path, artifact) in run.outputs where outputs[path] == nil {
                outputs[path] = artifact
                producers[path] = run.id
            }
        }
        let declared = pipelineSpec.stages.flatMap(\.outs).map(\.value)
        let missing = declared.filter { outputs[$0].map(execution.artifacts.contains) != true }
        guard missing.isEmpty else {
            return .waiting("\(ref) has not produced " + missing.prefix(5).joined(separator: ", ") + " yet")
        }
        return .ready(outputs.filter { declared.contains($0.key) }, producers: producers.filter { declared.contains($0.key) })
    }

    // MARK: Step 6

    private mutating func finish() -> Outcome {
        if memory != remembered { report.effects.append(.remember(object.ref, memory.encoded)) }
        return report.outcome(spec: spec, now: context.now)
    }

    static let retryBackoff = Backoff.runRetries

    /// What a start for the key's sake is recorded as: what retrainOn lets start it.
    var keyTrigger: String { spec.retrainOn.rawValue }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
