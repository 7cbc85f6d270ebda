import Foundation
import CairnCore
import CairnManifests

/// Summarises one evaluation into the three conditions, keeping each condition's last
/// transition time when its status did not change (as Kubernetes does).
struct StatusBuilder {
    let ref: ObjectRef
    let previous: ObjectStatus?
    let commit: String
    let time: Date
    var manifestPath = ""
    var generation = ""
    /// The runs a status the engine makes on its own (a broken manifest, a dependency not
    /// accepted, a backoff) keeps reporting: the last ones the controller reported, whose
    /// outputs are still the object's.
    var keptRuns: [String]?
    /// A Model's stage map is what Cairn accepted, whatever stops it now: kept likewise.
    var keptStages: StageMap?

    init(ref: ObjectRef, previous: ObjectStatus?, commit: String, time: Date) {
        self.ref = ref
        self.previous = previous
        self.commit = commit
        self.time = time
        self.manifestPath = previous?.manifestPath ?? ""
        self.keptRuns = previous?.runs
        self.keptStages = previous?.stages
    }

    /// The status a controller's outcome describes.
    func status(for outcome: Outcome) -> ObjectStatus {
        var status: ObjectStatus
        switch outcome.state {
        case .ready: status = make(ready: .true, reconciling: false, stalled: false, reason: outcome.reason, message: outcome.message)
        case .reconciling: status = notReady(reason: outcome.reason, message: outcome.message, reconciling: true)
        case .stalled: status = stalled(reason: outcome.reason, message: outcome.message)
        case .notReady: status = notReady(reason: outcome.reason, message: outcome.message, reconciling: false)
        case .notImplemented:
            status = make(ready: .unknown, reconciling: false, stalled: false, reason: outcome.reason, message: outcome.message)
        }
        status.nextAttempt = outcome.requeueAfter.map { time.addingTimeInterval($0.seconds) }
        status.runs = outcome.runs.isEmpty ? nil : outcome.runs
        status.stages = outcome.stages ?? keptStages
        status.serving = outcome.serving
        status.observedCommit = status.differsInSubstance(from: previous) ? commit : previous?.observedCommit ?? commit
        return status
    }

    func notReady(reason: String, message: String, reconciling: Bool) -> ObjectStatus {
        make(ready: .false, reconciling: reconciling, stalled: false, reason: reason, message: message)
    }

    func stalled(reason: String, message: String) -> ObjectStatus {
        make(ready: .false, reconciling: false, stalled: true, reason: reason, message: message)
    }

    func retrying(reason: String, message: String, failures: Int, after seconds: Double) -> ObjectStatus {
        var status = make(ready: .false, reconciling: true, stalled: false, reason: reason, message: message)
        status.failures = failures
        status.nextAttempt = time.addingTimeInterval(seconds)
        return status
    }

    private func make(ready: ConditionStatus, reconciling: Bool, stalled: Bool, reason: String, message: String) -> ObjectStatus {
        let conditions = [
            condition("Ready", ready, reason, message),
            condition("Reconciling", reconciling ? .true : .false, reconciling ? reason : "Idle", reconciling ? message : ""),
            condition("Stalled", stalled ? .true : .false, stalled ? reason : "None", stalled ? message : ""),
        ]
        var status = ObjectStatus(ref: ref, manifestPath: manifestPath, generation: generation, observedCommit: commit,
                                  conditions: conditions)
        status.runs = keptRuns
        status.stages = keptStages
        status.serving = previous?.serving
        // The observed commit moves only when something about the object changed.
        if let previous, !status.differsInSubstance(from: previous) { status.observedCommit = previous.observedCommit }
        return status
    }

    private func condition(_ type: String, _ status: ConditionStatus, _ reason: String, _ message: String) -> Condition {
        let old = previous?.condition(type)
        let since = old.map { $0.status == status ? $0.lastTransitionTime : time } ?? time
        return Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: since)
    }
}
