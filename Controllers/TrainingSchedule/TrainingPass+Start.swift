import CairnCore
import CairnManifests
import Foundation

/// Steps 4 and 5 of a TrainingSchedule's pass: what to start (a trigger, a due tick, or the
/// key, as retrainOn lets), and starting it within the concurrency policy.
extension TrainingPass {
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

    mutating func decide(key: RunKey, keyRuns: [RunRecord], done: RunRecord?, triggers: [TriggerRequest],
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
        // A monitor asks for a retrain, not for the same inputs again: when the key has its
        // success already, the request is answered with "no new inputs" and consumed.
        // (Not while a run is under way: it may be the one that answers the request.)
        while let trigger = triggers.first, trigger.source == TriggerRequest.monitorSource, let done,
              !recent.contains(where: { !$0.state.isFinal }) {
            report.effects.append(.consumeTrigger(trigger.id))
            report.noNewInputs = (trigger, done)
            triggers.removeFirst()
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
    func explain(_ key: RunKey) throws -> String {
        let recent = try context.runs.runs(of: object.ref, limit: 50)
        guard let previous = recent.first(where: { !$0.inputs.isEmpty && $0.key != key.key }) else { return "first training" }
        return RunKey.changes(from: previous.inputs, to: key.parts)
    }

    mutating func launch(_ start: Start, key: RunKey, features: [String: Artifact], producers: [String: String], inFlight: [RunRecord],
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
        var job = JobSpec(runID: RunKey.runID(key: key.key, attempt: attempt), key: key.key, object: object.ref, trigger: start.trigger,
                          reason: start.reason, sourceCommit: context.sourceCommit, command: spec.command, shell: spec.shell,
                          passEnvironment: spec.env, params: key.paramsJSON, inputs: features,
                          outputs: [spec.outputs.model.value] + (spec.outputs.metrics.map { [$0.value] } ?? []), keyInputs: key.parts,
                          timeout: spec.timeout.map { .milliseconds($0.milliseconds) }, attempt: attempt)
        job.triggerID = start.triggerID
        job.producers = producers
        job.place(on: spec.executor, spec.resources)
        // As the spec says now: a commit that changes it while the run is under way does not
        // change what this run registers as.
        job.annotations = ["model": spec.model, "outputs.model": spec.outputs.model.value, "shell": "\(spec.shell)"]
        if let metrics = spec.outputs.metrics { job.annotations["outputs.metrics"] = metrics.value }
        do {
            let handle = try await execution.executor.submit(job)
            // The executor answered with a run of this key it already has (one being cancelled
            // under Replace): a trigger or tick is not answered by it, so it waits.
            if start.forced || start.consumesTick, handle.runID != job.runID {
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
}
