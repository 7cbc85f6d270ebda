public import CairnCore
public import CairnManifests

/// Model: the registry's stages. Each pass judges the commit's `assignments` against the
/// stages as accepted so far with the promotion policy (`PromotionPolicy`, the same function
/// `cairn plan` uses), records every accepted change with the commit that made it, and leaves
/// a refused stage where it was.
///
/// Steps: read the accepted stages, judge each declared stage, record the accepted changes,
/// report. Ready when every assignment holds; Stalled, naming the first refused rule, when one
/// does not (until git changes, or a training registers the version it waits for: the Model
/// depends on its TrainingSchedules, so a registration brings it back in the same pass).
public struct ModelController: Controller {
    public static let kind = Kind.model

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .model(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        let name = object.ref.name
        let accepted = try context.versions.stageMap(of: name)
        let verdicts = try PromotionPolicy.judge(model: name, spec: spec, stages: accepted) { try context.versions.version(name, $0) }
        let changes = try record(verdicts, model: name, in: context)
        let stages = accepted.applying(changes)
        return report(verdicts, model: name, spec: spec, stages: stages, changes: changes)
    }

    /// One `StageChange` per accepted verdict, numbered per stage (`StageChange.ordinal`).
    private func record(_ verdicts: [StageVerdict], model: String, in context: ReconcileContext) throws -> [StageChange] {
        try verdicts.filter { $0.decision == .accepted }.map { verdict in
            StageChange(model: model, stage: verdict.stage, version: verdict.desired, previous: verdict.current,
                        sourceCommit: context.sourceCommit, author: context.sourceAuthor?.name ?? "unknown",
                        committedAt: context.sourceAuthor?.time ?? context.now, appliedAt: context.now,
                        ordinal: try context.versions.stageChangeCount(of: model, stage: verdict.stage) + 1)
        }
    }

    /// The message names what holds each stage, which changes only when a stage moves; the
    /// moves themselves are in the status commit's `Cairn-Stage:` trailers.
    private func report(_ verdicts: [StageVerdict], model: String, spec: ModelSpec, stages: StageMap,
                        changes: [StageChange]) -> Outcome {
        let order = spec.stages + stages.holders.keys.filter { !spec.stages.contains($0) }.sorted()
        let held = order.compactMap { stage in stages.holders[stage].map { "\(stage) holds \(model)@\($0.version)" } }
        let holding = held.isEmpty ? "no stage of \(model) is assigned" : held.joined(separator: ", ")
        let effects = changes.map(StoreEffect.changeStage)
        let refused = verdicts.filter { $0.decision == .refused }
        var outcome: Outcome
        if let first = refused.first {
            let others = refused.count > 1 ? " (\(refused.count) stages refused)" : ""
            outcome = .stalled(reason: first.reason ?? "PromotionRefused",
                               message: refused.map(\.message).joined(separator: "; ") + "\(others). The refused stage stays where it was: "
                                   + holding, effects: effects)
        } else {
            outcome = .ready(reason: held.isEmpty ? "NoStageAssigned" : "StagesHeld", message: holding, effects: effects)
        }
        outcome.stages = stages
        return outcome
    }
}
