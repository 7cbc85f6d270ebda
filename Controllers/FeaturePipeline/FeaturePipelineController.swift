public import CairnCore
public import CairnManifests

/// FeaturePipeline: runs the stages whose inputs changed, DVC-style. Running stages needs the
/// local executor and the artifact store, which do not exist yet, so it says so.
public struct FeaturePipelineController: Controller {
    public static let kind = Kind.featurePipeline

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .featurePipeline(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        let stages = spec.stages.map(\.name).joined(separator: ", ")
        return .notImplemented("running pipeline stages is not built yet: its \(spec.stages.count) stage(s) (\(stages)) were not run "
                               + "and their outputs were not checked")
    }
}
