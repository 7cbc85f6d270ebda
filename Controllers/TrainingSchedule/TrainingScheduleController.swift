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
    private let remembered: TrainingMemory
    /// Runs found to have succeeded as processes whose outputs cannot make a version.
    private var refusedRuns: [String: RunRecord] = [:]

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
        let stage = FeaturePipelineSpec.Stage(name: "", command: spec.command, shell: spec.shell, deps: spec.deps,
                                              outs: [spec.outputs.model] + (spec.outputs.metrics.map { [$0] } ?? []),
                                              params: spec.params, env: spec.env, timeout: spec.timeout, retries: spec.retries)
        let key: RunKey
        do {
            // The model is part of the key's kind: trainings of two models alike are two
            // trainings, each registering a version of its own model.
            key = try RunKey(stage: stage, field: "spec", kind: "run/TrainingSchedule/" + spec.model, consumed: features, object: object,
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

    // MARK: Steps 4 and 5: what to start

    struct Start {
        var trigger: String
        var triggerID: String?
        var reason: String
        /// A forced training runs even when its key succeeded before.
        var forced: Bool { triggerID != nil }
        /// What to consume once it is submitted.
        var consumesTrigger: String?
        var consumesTick: Bool = false
    }

    private mutating func decide(key: RunKey, keyRuns: [RunRecord], done: RunRecord?, triggers: [TriggerRequest],
                                 recent: [RunRecord]) throws -> Start? {
        // A request a run already answers (the process died between submitting it and the
        // pass that would have consumed the request) is consumed, not answered twice.
        let answered = Set(recent.compactMap(\.triggerID))
        var triggers = triggers
        while let trigger = triggers.first, answered.contains(trigger.id) {
            report.effects.append(.consumeTrigger(trigger.id))
            triggers.removeFirst()
        }
        while let tick = memory.schedule.pending.first, answered.contains("tick-\(Self.time(tick))") {
            _ = ScheduleClock.take(&memory.schedule)
        }
        if let trigger = triggers.first {
            return Start(trigger: trigger.source, triggerID: trigger.id, reason: "triggered: \(trigger.reason)", consumesTrigger: trigger.id)
        }
        if let tick = memory.schedule.pending.first {
            let when = Self.time(tick)
            if spec.always {
                return Start(trigger: "schedule", triggerID: "tick-\(when)", reason: "the schedule's tick at \(when) (always: true)",
                             consumesTick: true)
            }
            if done == nil {
                return Start(trigger: "schedule", reason: "the schedule's tick at \(when); " + (try explain(key)), consumesTick: true)
            }
            // Nothing changed since the last success: the tick is handled by doing nothing.
            _ = ScheduleClock.take(&memory.schedule)
        }
        guard done == nil else { return nil }
        // A key without a success: whether it trains now is retrainOn's call.
        switch spec.retrainOn {
        case .inputs:
            break
        case .commit:
            guard memory.commitKey == key.key else {
                report.waiting = "the feature data changed since commit \(context.sourceCommit.prefix(10)) and retrainOn is commit: "
                    + "it trains at the next commit" + (spec.schedule == nil ? "" : " or tick")
                report.waitingIsPolicy = true
                return nil
            }
        case .schedule where keyRuns.isEmpty:
            report.waiting = "the inputs changed since the last training and retrainOn is schedule: it trains at the next tick"
            report.waitingIsPolicy = true
            return nil
        case .schedule:
            // A tick (or a trigger) started this key already: its failures are retried, or
            // reported, as any key's are.
            break
        }
        // Failed before: retry by policy, or report. A run that concurrencyPolicy Replace
        // cancelled did not fail: like an interrupted one, it runs again without backoff.
        // Under retrainOn: schedule every run of a key is forced or a tick's, and all count.
        let failures = keyRuns.filter { $0.state == .failed && ($0.triggerID == nil || spec.retrainOn == .schedule) }
        let interruptions = keyRuns.filter { $0.state == .interrupted && $0.startedAt != nil }
        if keyRuns.contains(where: { !$0.state.isFinal }) { return nil }
        if let last = keyRuns.first, last.state != .succeeded {
            if failures.count > spec.retries || interruptions.count > 3 {
                report.failed = last
                return nil
            }
            if last.state == .failed, let ended = last.finishedAt {
                let due = ended.addingTimeInterval(Self.retryBackoff.delay(afterFailures: failures.count, random: 0.5))
                if due > context.now {
                    report.retry = (due, last)
                    return nil
                }
            }
            return Start(trigger: keyTrigger,
                         reason: last.state == .interrupted ? "run \(last.id) was interrupted; running it again"
                             : last.state == .cancelled ? "run \(last.id) was cancelled for a newer training; its inputs are wanted again"
                             : "retry \(failures.count) of \(spec.retries) after run \(last.id) \(last.state.rawValue)")
        }
        return Start(trigger: keyTrigger, reason: try explain(key))
    }

    /// Why the key trains for the first time: what changed since the schedule's last training.
    private func explain(_ key: RunKey) throws -> String {
        let recent = try context.runs.runs(of: object.ref, limit: 50)
        guard let previous = recent.first(where: { !$0.inputs.isEmpty && $0.key != key.key }) else { return "first training" }
        return RunKey.changes(from: previous.inputs, to: key.parts)
    }

    private mutating func launch(_ start: Start, key: RunKey, features: [String: Artifact], producers: [String: String], inFlight: [RunRecord],
                                 keyRuns: [RunRecord]) async throws {
        if !inFlight.isEmpty {
            // The same inputs under way already: that run answers a non-forced start.
            if !start.forced, inFlight.contains(where: { $0.key == key.key }) { return }
            switch spec.concurrencyPolicy {
            case .Forbid:
                report.queued = start.reason
                return
            case .Allow where !inFlight.contains(where: { $0.key == key.key }):
                break
            case .Allow:
                // An executor runs one key once at a time: a forced run of the key under way waits for it.
                report.queued = start.reason
                return
            case .Replace:
                for run in inFlight {
                    try await execution.executor.cancel(runID: run.id)
                    report.replaced.append(run.id)
                    context.logger.info("cancelled for a newer training", metadata: ["cairn.run": "\(run.id)"])
                }
            }
        }
        let attempt = keyRuns.count + 1
        let job = JobSpec(runID: RunKey.runID(key: key.key, attempt: attempt), key: key.key, object: object.ref, trigger: start.trigger,
                          reason: start.reason, sourceCommit: context.sourceCommit, command: spec.command, shell: spec.shell,
                          passEnvironment: spec.env, params: key.paramsJSON, inputs: features,
                          outputs: [spec.outputs.model.value] + (spec.outputs.metrics.map { [$0.value] } ?? []), keyInputs: key.parts,
                          timeout: spec.timeout.map { .milliseconds($0.milliseconds) }, attempt: attempt)
        var withTrigger = job
        withTrigger.triggerID = start.triggerID
        withTrigger.producers = producers
        // As the spec says now: a commit that changes it while the run is under way does not
        // change what this run registers as.
        withTrigger.annotations = ["model": spec.model, "outputs.model": spec.outputs.model.value, "shell": "\(spec.shell)"]
        if let metrics = spec.outputs.metrics { withTrigger.annotations["outputs.metrics"] = metrics.value }
        do {
            let handle = try await execution.executor.submit(withTrigger)
            // The executor answered with a run of this key it already has (one being cancelled
            // under Replace): a trigger or tick is not answered by it, so it waits.
            if start.forced || start.consumesTick, handle.runID != withTrigger.runID {
                report.queued = start.reason
                return
            }
            context.logger.info("submitted", metadata: ["cairn.run": "\(handle.runID)", "cairn.trigger": "\(start.trigger)",
                                                        "cairn.reason": "\(start.reason)"])
            report.started = (handle.runID, start)
            if let id = start.consumesTrigger { report.effects.append(.consumeTrigger(id)) }
            if start.consumesTick { _ = ScheduleClock.take(&memory.schedule) }
        } catch let refusal as ExecutorRefusal {
            report.problem = RunProblem(reason: refusal.reason, message: refusal.message)
        }
    }

    // MARK: Step 6

    private mutating func finish() -> Outcome {
        if memory != remembered { report.effects.append(.remember(object.ref, memory.encoded)) }
        return report.outcome(spec: spec, now: context.now)
    }

    static let retryBackoff = Backoff.runRetries

    /// What a start for the key's sake is recorded as: what retrainOn lets start it.
    private var keyTrigger: String { spec.retrainOn.rawValue }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
