public import CairnCore
public import CairnManifests

/// Model: the registry's stages. Whether each assigned version exists and may hold its stage
/// needs the model registry, which does not exist yet; until then no assignment is claimed
/// to hold, so a promotion of a version that does not exist is never Ready.
public struct ModelController: Controller {
    public static let kind = Kind.model

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .model(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        let assignments = spec.stages.compactMap { stage in spec.assignments[stage].map { "\(stage): \($0)" } }
        if assignments.isEmpty {
            return .notImplemented("the model registry is not built yet: no version of Model/\(object.ref.name) is registered, and no stage is assigned")
        }
        return .notImplemented("the model registry is not built yet: the assignments (\(assignments.joined(separator: ", "))) "
                               + "were not checked against registered versions")
    }
}
