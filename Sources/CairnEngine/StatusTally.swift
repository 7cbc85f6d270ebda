import CairnCore
import CairnManifests

/// Counts of the statuses the reconciler holds, kept in step with every change, so that a
/// pass's summary and outcome cost what changed, not what the repository holds.
struct StatusTally: Sendable {
    private(set) var total = 0
    private(set) var ready = 0
    /// Objects that are not Ready, by the reason their status gives.
    private(set) var notReadyByReason: [String: Int] = [:]
    private(set) var stalled: Set<ObjectRef> = []
    /// Not Ready, not stalled, and not waiting for work Cairn cannot do yet: on their way.
    private(set) var waiting: Set<ObjectRef> = []
    private(set) var notImplemented = 0

    init(_ statuses: some Sequence<ObjectStatus>) {
        for status in statuses { add(status, +1) }
    }

    /// Replaces what `old` counted with what `new` counts (nil for an object that appears or goes).
    mutating func replace(_ old: ObjectStatus?, with new: ObjectStatus?) {
        if let old { add(old, -1) }
        if let new { add(new, +1) }
    }

    private mutating func add(_ status: ObjectStatus, _ sign: Int) {
        total += sign
        let ref = status.ref
        if status.isReady {
            ready += sign
            return
        }
        notReadyByReason[status.reason, default: 0] += sign
        if notReadyByReason[status.reason] == 0 { notReadyByReason[status.reason] = nil }
        // Ready=Unknown: Cairn did not check, because it cannot do that work (yet, or in this
        // process): not stalled, and not on its way either.
        if status.ready == .unknown {
            notImplemented += sign
        } else if status.isStalled {
            if sign > 0 { stalled.insert(ref) } else { stalled.remove(ref) }
        } else {
            if sign > 0 { waiting.insert(ref) } else { waiting.remove(ref) }
        }
    }
}
