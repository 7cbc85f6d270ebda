public import CairnCore
public import CairnManifests

/// TrainingSchedule: retrains when the run key's inputs change or the schedule fires, and
/// registers each trained model as a version. Neither exists yet, so it says so.
public struct TrainingScheduleController: Controller {
    public static let kind = Kind.trainingSchedule

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .trainingSchedule(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        return .notImplemented("training is not built yet: Model/\(spec.model) was not trained "
                               + "(\(spec.command.joined(separator: " "))) and no version was registered")
    }
}
