public import CairnManifests

/// One controller per kind, in its own target under Controllers/. It reads like Flux's: an
/// ordered list of small steps with early exit, then one place that turns what it found into
/// an `Outcome`. It never waits for a job: it submits one (idempotent on the run key), says
/// `Reconciling`, and the job's completion brings it back.
///
/// The engine calls it only for an object whose manifest is valid, that is not suspended, and
/// whose dependencies are accepted (valid and not stalled; not necessarily Ready). Validation,
/// suspension, conditions, backoff and the status commit are the engine's job.
public protocol Controller: Sendable {
    static var kind: Kind { get }
    func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome
}

/// The controllers a daemon runs, one for each kind. Built once at start: a kind without a
/// controller (or with two) is an error there, never a silent default.
public struct ControllerRegistry: Sendable {
    private let controllers: [Kind: any Controller]

    public init(_ controllers: [any Controller]) throws(RegistryError) {
        var byKind: [Kind: any Controller] = [:]
        for controller in controllers {
            let kind = type(of: controller).kind
            guard byKind[kind] == nil else { throw RegistryError("two controllers are registered for \(kind)") }
            byKind[kind] = controller
        }
        let missing = Kind.allCases.filter { byKind[$0] == nil }
        guard missing.isEmpty else {
            throw RegistryError("no controller is registered for " + missing.map(\.rawValue).joined(separator: ", "))
        }
        self.controllers = byKind
    }

    public func controller(for kind: Kind) -> any Controller {
        // Total by construction: init checked that every kind has one.
        controllers[kind]!
    }
}

public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
