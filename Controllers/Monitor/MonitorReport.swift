import CairnCore
import CairnManifests
import Foundation

/// What one pass over a Monitor found, summarised into its outcome in one place. The message
/// carries values only as they were at a transition, so a pass that changes nothing writes
/// the same message (and no status commit).
struct MonitorReport {
    struct Rule {
        var index: Int
        var threshold: MonitorSpec.Threshold
        var memory: MonitorMemory.RuleMemory
        var insufficient: Bool
    }

    var effects: [StoreEffect] = []
    var wake: [ObjectRef] = []
    var rules: [Rule] = []
    var serving: String?
    var sourceProblem: String?
    var proposal: Proposal?
    var proposedStage: String?
    var loopNote: String?
    /// Seconds until something is due (the end of a `for`, of a cooldown).
    var due: TimeInterval?

    mutating func requeueBy(_ seconds: TimeInterval) {
        due = min(due ?? .infinity, max(seconds, 0.5))
    }

    func outcome(spec: MonitorSpec, memory: MonitorMemory, now: Date) -> Outcome {
        var lines = rules.map(describe)
        let retraining = memory.retrain.map { !$0.settled } ?? false
        if let retrain = memory.retrain {
            lines.append("retrain asked at \(Self.time(retrain.requestedAt)) of TrainingSchedule/\(retrain.schedule): "
                         + (retrain.answer ?? "waiting for it to start"))
        }
        if let candidate = memory.candidate {
            let name = "\(candidate.model)@\(candidate.version)"
            lines.append(candidate.serves ? "\(name) serves on ModelDeployment/\(spec.deployment): the loop is closed"
                         : candidate.proposed.isEmpty ? "\(name) is the candidate"
                         : "\(name) proposed for " + candidate.proposed.joined(separator: ", ") + "; waiting for the merge")
        }
        if let loopNote { lines.append(loopNote) }
        if let sourceProblem { lines.append("source: \(sourceProblem)") }
        let firing = rules.contains { $0.memory.state.isFiring }
        let pending = rules.contains { if case .pending = $0.memory.state.phase { true } else { false } }
        let message = (serving.map { "watching \($0) on ModelDeployment/\(spec.deployment)" }
                       ?? "no version of ModelDeployment/\(spec.deployment) is known to serve; samples wait for one")
            + "; " + lines.joined(separator: "; ")
        var outcome: Outcome
        if proposal != nil {
            outcome = .ready(reason: "PromotionProposed", message: message)
        } else if sourceProblem != nil {
            // Whatever state the thresholds are in, they are not evaluated as the spec says
            // while the source cannot be read: Ready=False, the kept states in the message.
            outcome = Outcome(.notReady, reason: "SourceUnavailable", message: message)
        } else if retraining {
            outcome = .ready(reason: "Retraining", message: message)
        } else if firing {
            outcome = .ready(reason: "Firing", message: message)
        } else if pending {
            outcome = .ready(reason: "Pending", message: message)
        } else if let candidate = memory.candidate, !candidate.serves, !candidate.proposed.isEmpty {
            outcome = .ready(reason: "AwaitingMerge", message: message)
        } else if serving == nil {
            outcome = .ready(reason: "NothingServes", message: message)
        } else if rules.allSatisfy(\.insufficient) {
            outcome = .ready(reason: "InsufficientData", message: message)
        } else {
            outcome = .ready(reason: "Healthy", message: message)
        }
        outcome.effects = effects
        outcome.wake = wake
        outcome.proposal = proposal
        let interval = spec.interval.seconds
        outcome.requeueAfter = .milliseconds(Int64(min(due ?? interval, interval) * 1000))
        return outcome
    }

    /// `accuracy (mean over 5m) below 0.7 → retrain: firing since T (0.62, 40 samples of churn@3); asked … to retrain at T`.
    private func describe(_ rule: Rule) -> String {
        let head = "\(MonitorPass.describe(rule.threshold)) → \(rule.threshold.action.rawValue): "
        let at = rule.memory.value.map { value in
            " (\(MonitorPass.figure(value)) from \(rule.memory.samples ?? 0) sample\(rule.memory.samples == 1 ? "" : "s")"
                + (rule.memory.version.map { " of version \($0)" } ?? "") + ")"
        } ?? ""
        let state: String
        switch rule.memory.state.phase {
        case .inactive:
            state = rule.insufficient && rule.memory.value == nil ? "inactive, too few samples (minSamples \(rule.threshold.minSamples))"
                : "inactive" + (rule.memory.value == nil ? "" : ", last change" + at)
        case .pending(let since):
            state = "pending since \(Self.time(since))\(at)"
                + (rule.threshold.holdFor.map { ", fires at \(Self.time(since.addingTimeInterval($0.seconds)))" } ?? "")
        case .firing(let since):
            state = "firing since \(Self.time(since))\(at)"
        }
        return head + state + (rule.memory.acted.map { "; \($0)" } ?? "")
    }

    /// RFC 3339 in UTC, to the second (a value type: no formatter made per call).
    static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}
