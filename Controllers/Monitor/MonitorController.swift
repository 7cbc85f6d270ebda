public import CairnCore
public import CairnManifests

/// Monitor: evaluates thresholds over the serving version's metrics and acts on them.
/// Monitoring does not exist yet, so it says so.
public struct MonitorController: Controller {
    public static let kind = Kind.monitor

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .monitor(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        return .notImplemented("monitoring is not built yet: the \(spec.thresholds.count) threshold(s) on "
                               + "ModelDeployment/\(spec.deployment) are not evaluated and trigger nothing")
    }
}
