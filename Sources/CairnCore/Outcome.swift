public import Foundation
public import CairnManifests

/// What a controller concluded about one object: the conditions to report, when to look
/// again, and the store records to write in the same transaction as the status.
public struct Outcome: Sendable {
    public enum State: Sendable, Hashable {
        /// The controller checked that the actual state matches the desired state.
        case ready
        /// Work is under way or waiting for something; the object will get there by itself.
        case reconciling
        /// The spec cannot work as written until it changes (or until git changes).
        case stalled
        /// The actual state does not match and Cairn is not working on it, yet the spec is not
        /// at fault (a deployment rolled back from a failed version): Ready=False, neither
        /// Reconciling nor Stalled, so what depends on it carries on.
        case notReady
        /// The controller cannot do this kind's work yet: Ready=Unknown, never True.
        case notImplemented
    }

    public var state: State
    public var reason: String
    public var message: String
    /// Look again after this long even if nothing else happens.
    public var requeueAfter: Duration?
    /// Store records written in the pass's transaction, with the status and its outbox entry.
    public var effects: [StoreEffect]
    /// Other objects to look at in the next pass, at once (a monitor's retrain or rollback
    /// asks the objects it triggered to act on the request).
    public var wake: [ObjectRef] = []
    /// The runs the status reports (`Cairn-Run:` trailers on its status commit).
    public var runs: [String] = []
    /// For a Model: its stages as accepted after this pass (the status file shows them).
    public var stages: StageMap?
    /// For a ModelDeployment: the version checked to serve now (nil: none).
    public var serving: Int?
    /// A change to propose to the tracked branch (a rollback's reverse assignment, a monitor's
    /// promotion of a retrained version), written
    /// on a proposal branch with the status commit of this pass.
    public var proposal: Proposal?

    public init(_ state: State, reason: String, message: String, requeueAfter: Duration? = nil, effects: [StoreEffect] = []) {
        self.state = state
        self.reason = reason
        self.message = message
        self.requeueAfter = requeueAfter
        self.effects = effects
    }

    public static func ready(reason: String, message: String, effects: [StoreEffect] = []) -> Outcome {
        Outcome(.ready, reason: reason, message: message, effects: effects)
    }

    public static func reconciling(reason: String, message: String, requeueAfter: Duration? = nil,
                                   effects: [StoreEffect] = []) -> Outcome {
        Outcome(.reconciling, reason: reason, message: message, requeueAfter: requeueAfter, effects: effects)
    }

    public static func stalled(reason: String, message: String, effects: [StoreEffect] = []) -> Outcome {
        Outcome(.stalled, reason: reason, message: message, effects: effects)
    }

    /// What a kind whose real work has not been built says: what is missing, plainly.
    public static func notImplemented(_ message: String) -> Outcome {
        Outcome(.notImplemented, reason: ConditionReason.notImplemented, message: message)
    }
}

/// Why a controller could not finish, and what happens next (a thrown error that is not a
/// `ReconcileError` counts as transient).
public struct ReconcileError: Error, Sendable, Hashable {
    public enum Disposition: Sendable, Hashable {
        /// The spec cannot work as written: stall the object until its spec changes.
        case terminal
        /// Something outside may recover: back off and retry.
        case transient
    }

    public var disposition: Disposition
    public var reason: String
    public var message: String

    public init(_ disposition: Disposition, reason: String, message: String) {
        self.disposition = disposition
        self.reason = reason
        self.message = message
    }
}

extension Duration {
    /// The duration in seconds, as a Double (for dates and backoff arithmetic).
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

extension ReconcileError {
    /// The engine handed a controller an object of another kind: a wiring bug, never the user's.
    public static func wrongKind(_ object: Manifest, _ expected: Kind) -> ReconcileError {
        ReconcileError(.terminal, reason: "InternalError",
                       message: "the \(expected) controller was given \(object.ref); this is a bug in Cairn, please report it")
    }
}
