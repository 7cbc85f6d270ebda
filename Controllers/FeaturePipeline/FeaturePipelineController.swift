public import CairnCore
public import CairnManifests
import Foundation

/// FeaturePipeline: runs the stages whose inputs changed, in dependency order, independent
/// ones at once, and never the same inputs twice.
///
/// Each pass walks the stages in the graph's order, in small steps:
/// 1. a stage whose upstream stages have not all produced their outputs waits;
/// 2. its run key is computed from everything its result depends on (`RunKey`); a key that
///    cannot be computed (a missing dependency, a refused path) stalls the pipeline;
/// 3. a key that succeeded before is reused: its outputs are in the artifact store;
/// 4. a key with a run under way is waited for;
/// 5. a key whose runs failed is retried by the stage's policy, or reported as failed;
/// 6. otherwise the stage is submitted.
/// Then one place (`PipelineReport`) turns what the stages found into the object's outcome.
public struct FeaturePipelineController: Controller {
    public static let kind = Kind.featurePipeline
    /// What each commit decides of each stage's key, kept for the passes that follow.
    private let memo = RunKeyMemo()

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .featurePipeline(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        guard let execution = context.execution else {
            // Ready=Unknown: nothing was checked, and nothing will happen by itself in this process.
            return Outcome(.notImplemented, reason: "NoExecutor",
                           message: "this process runs no stages (it was started without an executor), so none was run or checked")
        }
        var walk = PipelineWalk(object: object, spec: spec, context: context, execution: execution, memo: memo)
        try await walk.run()
        return walk.report.outcome(schedule: spec.schedule, now: context.now)
    }
}

/// One pass over a pipeline's stages.
struct PipelineWalk {
    let object: Manifest
    let spec: FeaturePipelineSpec
    let context: ReconcileContext
    let execution: Execution
    let graph: StageGraph
    let memo: RunKeyMemo?
    var report = PipelineReport()
    /// The outputs of each stage that has them, by stage index.
    private var produced: [Int: [String: Artifact]] = [:]
    /// The object's recent runs, read once.
    private var recent: [RunRecord]?

    init(object: Manifest, spec: FeaturePipelineSpec, context: ReconcileContext, execution: Execution, memo: RunKeyMemo? = nil) {
        self.object = object
        self.memo = memo
        self.spec = spec
        self.context = context
        self.execution = execution
        graph = StageGraph(spec)
    }

    mutating func run() async throws {
        for index in graph.order {
            let stage = spec.stages[index]
            let upstream = graph.upstream(of: index)
            let missing = upstream.filter { produced[$0] == nil }.map { spec.stages[$0].name }
            guard missing.isEmpty else {
                report.add(stage.name, .blocked(by: missing))
                continue
            }
            var consumed: [String: Artifact] = [:]
            for source in upstream { consumed.merge(produced[source] ?? [:]) { first, _ in first } }
            let key: RunKey
            do {
                key = try RunKey(stage: stage, field: "spec.stages[\(index)]", kind: "run/FeaturePipeline", consumed: consumed, object: object, context: context,
                                   execution: execution, memo: memo)
            } catch let problem as RunProblem {
                report.add(stage.name, .problem(problem))
                continue
            }
            try await settle(stage, key: key, consumed: consumed, index: index)
        }
    }

    /// Steps 3 to 6 for one keyed stage.
    private mutating func settle(_ stage: FeaturePipelineSpec.Stage, key: RunKey, consumed: [String: Artifact], index: Int) async throws {
        let runs = try context.runs.runs(withKey: key.key).filter { $0.state != .skipped }
        // 3. Done before, and its outputs are still in the store.
        if let done = runs.first(where: { $0.state == .succeeded && $0.outputs.count == stage.outs.count
                                            && $0.outputs.values.allSatisfy(execution.artifacts.contains) }) {
            produced[index] = done.outputs
            // A skip is worth a record when the stage's outputs come from another run than
            // the status reported last (its inputs changed, back to a key that ran before, or
            // the pipeline is new): an unchanged stage at a new commit records nothing, so the
            // table grows with what happened, not with commits times stages.
            let reportedBefore = context.previous?.runs?.contains(done.id) ?? false
            if !reportedBefore, done.sourceCommit != context.sourceCommit,
               !runs.contains(where: { $0.sourceCommit == context.sourceCommit }) {
                report.effects.append(.recordRun(skip(stage, key: key, reusing: done)))
            }
            report.add(stage.name, .upToDate(run: done.id))
            return
        }
        // 4. Under way.
        if let active = runs.first(where: { !$0.state.isFinal }) {
            report.add(stage.name, .running(run: active.id, queued: active.state == .submitted))
            return
        }
        // 5. Failed before: retry by policy, or report.
        let failures = runs.filter { $0.state == .failed || $0.state == .cancelled }
        // A run that never started (queued when its process stopped) was no try at all.
        let interruptions = runs.filter { $0.state == .interrupted && $0.startedAt != nil }
        if let last = runs.first, last.state != .succeeded {
            if failures.count > stage.retries || interruptions.count > PipelineWalk.maximumInterruptions {
                report.add(stage.name, .failed(run: last))
                return
            }
            if last.state != .interrupted, let ended = last.finishedAt {
                let due = ended.addingTimeInterval(PipelineWalk.retryBackoff.delay(afterFailures: failures.count, random: 0.5))
                if due > context.now {
                    report.add(stage.name, .retrying(after: due, failed: last))
                    return
                }
            }
        }
        // 6. Run it.
        let attempt = runs.count + 1
        let reason = runs.isEmpty ? try explain(stage, key: key) : retryReason(stage, last: runs[0], failures: failures.count)
        var spec = JobSpec(runID: RunKey.runID(key: key.key, attempt: attempt), key: key.key, object: object.ref, stage: stage.name,
                           trigger: "inputs", reason: reason, sourceCommit: context.sourceCommit, command: stage.command,
                           shell: stage.shell, passEnvironment: stage.env, params: key.paramsJSON, inputs: consumed,
                           outputs: stage.outs.map(\.value), keyInputs: key.parts,
                           timeout: stage.timeout.map { .milliseconds($0.milliseconds) }, attempt: attempt)
        spec.place(on: stage.executor, stage.resources)
        do {
            let handle = try await execution.executor.submit(spec)
            context.logger.info("submitted", metadata: ["cairn.stage": "\(stage.name)", "cairn.run": "\(handle.runID)",
                                                        "cairn.reason": "\(reason)"])
            report.add(stage.name, .running(run: handle.runID, queued: true))
        } catch let error as ExecutorRefusal {
            report.add(stage.name, .problem(RunProblem(reason: error.reason, message: "stage \(stage.name): \(error.message)")))
        }
    }

    /// Why a stage runs for the first time under this key: what changed since its last run.
    private mutating func explain(_ stage: FeaturePipelineSpec.Stage, key: RunKey) throws -> String {
        if recent == nil { recent = try context.runs.runs(of: object.ref, limit: 500) }
        guard let previous = recent?.first(where: { $0.stage == stage.name && !$0.inputs.isEmpty }) else {
            return "first run of stage \(stage.name)"
        }
        return RunKey.changes(from: previous.inputs, to: key.parts)
    }

    private func retryReason(_ stage: FeaturePipelineSpec.Stage, last: RunRecord, failures: Int) -> String {
        if last.state == .interrupted, last.startedAt == nil {
            return "run \(last.id) never started; starting it now"
        }
        if last.state == .interrupted { return "run \(last.id) was interrupted before it ended; running it again" }
        return "retry \(failures) of \(stage.retries) after run \(last.id) \(last.state.rawValue)"
    }

    /// The record of a stage not run because its key had succeeded: `cairn runs` shows it
    /// with the run it reused. One per stage, key and source commit (its id says so).
    private func skip(_ stage: FeaturePipelineSpec.Stage, key: RunKey, reusing done: RunRecord) -> RunRecord {
        var record = RunRecord(id: "skip-\(context.sourceCommit.prefix(10))-\(key.key.dropFirst(7).prefix(10))", key: key.key,
                               object: object.ref, stage: stage.name, state: .skipped, trigger: "inputs",
                               reason: "no input changed: key \(key.key.dropFirst(7).prefix(12)) matched run \(done.id) "
                                   + "(commit \(done.sourceCommit.prefix(10))), whose outputs it reused",
                               sourceCommit: context.sourceCommit, command: stage.command, inputs: key.parts, attempt: 0,
                               submittedAt: context.now, finishedAt: context.now)
        record.reused = done.id
        record.outputs = done.outputs
        return record
    }

    /// Interrupted runs (the daemon died under them) are retried whatever `retries` says,
    /// up to this many times, so a stage that kills its host does not loop for ever.
    static let maximumInterruptions = 3
    static let retryBackoff = Backoff.runRetries

}
