public import CairnCore
public import CairnManifests

/// Model: the registry's stages. Versions are registered (by TrainingSchedules) and listed by
/// `cairn models`; whether an assignment may hold its stage (the promotion policy) is not
/// checked yet, so no assignment is claimed to hold and the Model stays Ready=Unknown.
public struct ModelController: Controller {
    public static let kind = Kind.model

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .model(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        // Whether any version exists, not how many: a count would write a status commit for
        // the Model at every training, which the training's own status already records.
        let registered = try context.versions.latestVersionNumber(of: object.ref.name) == 0
            ? "no version of \(object.ref.name) is registered yet"
            : "versions of \(object.ref.name) are registered (`cairn models \(object.ref.name)` lists them)"
        let assignments = spec.stages.compactMap { stage in spec.assignments[stage].map { "\(stage): \($0)" } }
        if assignments.isEmpty {
            return .notImplemented("\(registered); no stage is assigned, and stage promotion (its policy) is not built yet")
        }
        return .notImplemented("\(registered); the assignments (\(assignments.joined(separator: ", "))) are not checked against "
                               + "the promotion policy yet, so none is claimed to hold")
    }
}
