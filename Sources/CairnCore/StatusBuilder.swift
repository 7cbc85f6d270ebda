import Foundation
import CairnManifests
public import CairnStore

/// Summarises one evaluation into the three conditions, keeping each condition's last
/// transition time when its status did not change (as Kubernetes does).
struct StatusBuilder {
    let ref: ObjectRef
    let previous: ObjectStatus?
    let commit: String
    let time: Date
    var manifestPath = ""
    var generation = ""

    init(ref: ObjectRef, previous: ObjectStatus?, commit: String, time: Date) {
        self.ref = ref
        self.previous = previous
        self.commit = commit
        self.time = time
        self.manifestPath = previous?.manifestPath ?? ""
    }

    func ready(reason: String, message: String) -> ObjectStatus {
        make(ready: true, reconciling: false, stalled: false, reason: reason, message: message)
    }

    func notReady(reason: String, message: String, reconciling: Bool) -> ObjectStatus {
        make(ready: false, reconciling: reconciling, stalled: false, reason: reason, message: message)
    }

    func stalled(reason: String, message: String) -> ObjectStatus {
        make(ready: false, reconciling: false, stalled: true, reason: reason, message: message)
    }

    func retrying(reason: String, message: String, failures: Int, after seconds: Double) -> ObjectStatus {
        var status = make(ready: false, reconciling: true, stalled: false, reason: reason, message: message)
        status.failures = failures
        status.nextAttempt = time.addingTimeInterval(seconds)
        return status
    }

    private func make(ready: Bool, reconciling: Bool, stalled: Bool, reason: String, message: String) -> ObjectStatus {
        let conditions = [
            condition("Ready", ready, ready ? reason : reason, message),
            condition("Reconciling", reconciling, reconciling ? reason : "Idle", reconciling ? message : ""),
            condition("Stalled", stalled, stalled ? reason : "None", stalled ? message : ""),
        ]
        // The observed commit moves only when something about the object changed.
        let substanceChanged = previous.map { old in
            old.generation != generation || zip(old.conditions, conditions).contains { !$0.sameSubstance(as: $1) }
        } ?? true
        return ObjectStatus(ref: ref, manifestPath: manifestPath, generation: generation,
                            observedCommit: substanceChanged ? commit : previous?.observedCommit ?? commit,
                            conditions: conditions)
    }

    private func condition(_ type: String, _ status: Bool, _ reason: String, _ message: String) -> Condition {
        let old = previous?.condition(type)
        let since = old.map { $0.status == status ? $0.lastTransitionTime : time } ?? time
        return Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: since)
    }
}

extension Condition {
    func sameSubstance(as other: Condition) -> Bool {
        type == other.type && status == other.status && reason == other.reason && message == other.message
    }
}

extension ObjectStatus {
    /// Whether this status says something different from `other`: what is worth a status commit.
    func differsInSubstance(from other: ObjectStatus?) -> Bool {
        guard let other else { return true }
        return generation != other.generation || manifestPath != other.manifestPath || conditions.count != other.conditions.count
            || zip(conditions, other.conditions).contains { !$0.sameSubstance(as: $1) }
    }

    /// The message of the condition that explains the status.
    public var primaryMessage: String {
        for type in ["Stalled", "Reconciling", "Ready"] {
            if let condition = condition(type), condition.status { return condition.message }
        }
        return condition("Ready")?.message ?? ""
    }
}
