import CairnCore
import CairnManifests
import Foundation

/// What one pass over a TrainingSchedule found, summarised into its outcome in one place.
struct TrainingReport {
    var effects: [StoreEffect] = []
    /// Versions registered in this pass, oldest first.
    var registered: [ModelVersion] = []
    /// Runs that ended well whose outputs could not make a version (now failed).
    var refused: [RunRecord] = []
    var inFlight: [RunRecord] = []
    var started: (run: String, start: TrainingPass.Start)?
    var replaced: [String] = []
    /// A start held back by concurrencyPolicy: Forbid.
    var queued: String?
    /// Why nothing trains yet (the features are not there, or retrainOn waits).
    var waiting: String?
    /// The wait is the policy's choice (retrainOn), not something missing.
    var waitingIsPolicy = false
    var problem: RunProblem?
    /// The key's last run, failed beyond its retries.
    var failed: RunRecord?
    var retry: (due: Date, after: RunRecord)?
    /// The key's successful run, and the version it registered.
    var done: RunRecord?
    var version: ModelVersion?
    /// The newest training, forced, failed after the key's success.
    var forcedFailure: RunRecord?
    var nextTick: Date?
    var droppedTicks = 0
    /// A monitor's retrain request found the inputs trained already (by this run).
    var noNewInputs: (request: TriggerRequest, done: RunRecord)?

    func outcome(spec: TrainingScheduleSpec, now: Date) -> Outcome {
        var outcome = decide(spec: spec, now: now)
        outcome.effects = effects
        var runs: [String] = registered.map(\.lineage.runID) + refused.map(\.id)
        if let started { runs.append(started.run) }
        runs += inFlight.map(\.id)
        if let done { runs.append(done.id) }
        if let failed { runs.append(failed.id) }
        if let forcedFailure { runs.append(forcedFailure.id) }
        var seen: Set<String> = []
        outcome.runs = runs.filter { seen.insert($0).inserted }
        var delays: [TimeInterval] = []
        if let nextTick { delays.append(nextTick.timeIntervalSince(now)) }
        if let retry { delays.append(retry.due.timeIntervalSince(now)) }
        if let soonest = delays.min() {
            let wait = max(soonest, 1)
            outcome.requeueAfter = min(outcome.requeueAfter ?? .seconds(wait), .milliseconds(Int64(wait * 1000)))
        }
        return outcome
    }

    private func decide(spec: TrainingScheduleSpec, now: Date) -> Outcome {
        let news = registeredText
        if let problem { return .stalled(reason: problem.reason, message: news + problem.message) }
        if let started {
            let replacing = replaced.isEmpty ? "" : " (cancelled \(replaced.joined(separator: ", ")) under concurrencyPolicy Replace)"
            return .reconciling(reason: "Training", message: news + "started run \(started.run)\(replacing), "
                                + "trigger \(started.start.trigger): \(started.start.reason)")
        }
        if let queued, let running = inFlight.first {
            return .reconciling(reason: "Queued", message: news + "run \(running.id) is under way and concurrencyPolicy is "
                                + "\(spec.concurrencyPolicy.rawValue): the next training (\(queued)) starts when it ends")
        }
        if let running = inFlight.first {
            let state = running.state == .submitted ? "queued" : "running"
            return .reconciling(reason: "Training", message: news + "run \(running.id) is \(state) (trigger \(running.trigger)"
                                + (running.reason.map { ": \($0)" } ?? "") + ")")
        }
        if let waiting, !waitingIsPolicy {
            return .reconciling(reason: "WaitingForFeatures", message: news + "waiting: \(waiting)")
        }
        if let retry {
            return .reconciling(reason: "RetryScheduled", message: news + "run \(retry.after.id) \(retry.after.state.rawValue)"
                                + (retry.after.message.map { " (\($0.prefix(300)))" } ?? "") + "; retrying at \(TrainingPass.time(retry.due))")
        }
        if let failed {
            return .stalled(reason: "TrainingFailed", message: news + "run \(failed.id) \(failed.state.rawValue)"
                            + (failed.message.map { ": \($0.prefix(400))" } ?? "")
                            + " (no retries left; a commit that changes its inputs, or `cairn trigger`, trains again)")
        }
        let latest = registered.last ?? version
        let current = latest.map(Self.describe) ?? done.map { "its run \($0.id) succeeded" } ?? "nothing trained yet"
        if let waiting {
            return .ready(reason: spec.retrainOn == .schedule ? "WaitingForTick" : "WaitingForCommit",
                          message: news + "\(waiting); the latest training: \(current)" + tickText(spec))
        }
        if let fresh = registered.last, fresh.lineage.runID == done?.id {
            return .ready(reason: fresh.gate.passed ? "Registered" : "GateFailed",
                          message: "registered " + Self.describe(fresh) + tickText(spec))
        }
        if let failed = forcedFailure {
            return .ready(reason: "LastTrainingFailed",
                          message: news + "the last training, run \(failed.id) (trigger \(failed.trigger)), failed"
                              + (failed.message.map { ": \($0.prefix(300))" } ?? "") + "; the latest for these inputs is still \(current)"
                              + tickText(spec))
        }
        if let (request, done) = noNewInputs {
            return .ready(reason: "NoNewInputs", message: news + "a retrain was asked for (\(request.reason.prefix(300))), and there are no "
                          + "new inputs: run \(done.id) trained these already, so nothing was trained; the latest training: \(current)"
                          + tickText(spec))
        }
        return .ready(reason: "UpToDate", message: news + "inputs unchanged since \(current)" + tickText(spec))
    }

    /// The versions this pass registered, as a sentence that leads the message.
    private var registeredText: String {
        // A refused run the failure or the retry below names is said there, not twice.
        let named = Set([failed?.id, retry?.after.id, forcedFailure?.id].compactMap { $0 })
        let refusedText = refused.filter { !named.contains($0.id) }.map { "run \($0.id) failed: \($0.message ?? "")" }
        guard !registered.isEmpty || !refusedText.isEmpty else { return "" }
        let registeredText = registered.map { "registered " + Self.describe($0) }
        return (registeredText + refusedText).joined(separator: "; ") + "; "
    }

    private func tickText(_ spec: TrainingScheduleSpec) -> String {
        var text = ""
        if let nextTick { text += "; next tick \(TrainingPass.time(nextTick))" }
        if droppedTicks > 0 { text += " (\(droppedTicks) missed tick\(droppedTicks == 1 ? "" : "s") dropped, catchup: \(spec.catchup.rawValue))" }
        return text
    }

    /// `churn@3 (run ab12…, commit 1a2b3c4d5e): auc 0.83, accuracy 0.8; gate passed (auc 0.83 >= 0.75)`.
    static func describe(_ version: ModelVersion) -> String {
        let metrics = version.metrics.keys.sorted().prefix(6).map { "\($0) \((version.metrics[$0] ?? 0).shortText)" }
        return "\(version.name) (run \(version.lineage.runID), commit \(version.lineage.sourceCommit.prefix(10)))"
            + (metrics.isEmpty ? "" : ": " + metrics.joined(separator: ", ")) + "; gate \(version.gate.summary)"
    }
}
