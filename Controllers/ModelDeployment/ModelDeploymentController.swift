public import CairnCore
public import CairnManifests

/// ModelDeployment: serves the version a stage holds. Serving does not exist yet, so it says so.
public struct ModelDeploymentController: Controller {
    public static let kind = Kind.modelDeployment

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .modelDeployment(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        let which: String
        switch spec.selector {
        case .stage(let stage): which = "the version in stage \(stage) of Model/\(spec.model)"
        case .version(let version): which = "version \(version) of Model/\(spec.model)"
        }
        return .notImplemented("serving is not built yet: nothing was deployed, and \(which) is not served by Cairn")
    }
}
