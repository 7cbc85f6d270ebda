public import CairnManifests

/// What a controller says about one object it reconciled.
public struct ReconcileResult: Sendable, Hashable {
    public var reason: String
    public var message: String

    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// Why a controller could not make an object Ready, and what happens next.
public struct ReconcileError: Error, Sendable, Hashable {
    public enum Disposition: Sendable, Hashable {
        /// The spec cannot work as written: stall the object until its spec changes.
        case terminal
        /// Something outside may recover: back off and retry.
        case transient
        /// Not an error: look again after this many seconds.
        case waiting(seconds: Double)
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

/// One controller per kind. The engine calls it only for an object whose manifest is valid,
/// that is not suspended, and whose dependencies are Ready; validation, suspension, waiting,
/// conditions, backoff and the status commit are the engine's job.
public protocol Controller: Sendable {
    var kind: Kind { get }
    func reconcile(_ manifest: Manifest) throws(ReconcileError) -> ReconcileResult
}

/// The controller every kind has until its real work exists: the manifest is valid and what
/// it refers to is there and Ready, which is all there is to do before jobs run.
public struct ReferencesController: Controller {
    public let kind: Kind

    public init(kind: Kind) {
        self.kind = kind
    }

    public func reconcile(_ manifest: Manifest) throws(ReconcileError) -> ReconcileResult {
        ReconcileResult(reason: "Reconciled", message: "the manifest is valid and everything it refers to is Ready")
    }
}
