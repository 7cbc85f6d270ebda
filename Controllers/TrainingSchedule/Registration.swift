import CairnCore
import CairnManifests
import Foundation

/// What the controller keeps about a schedule between passes (the store's `memory` table).
struct TrainingMemory: Codable, Hashable {
    /// The cron schedule's handled ticks and those due but not started.
    var schedule = ScheduleState()
    /// The first key computed at a commit: under `retrainOn: commit`, only that key trains at
    /// that commit (a later change, from new feature data alone, waits for a commit or tick).
    var commit: String?
    var commitKey: String?

    init() {}

    init(_ data: Data?) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        guard let data, let decoded = try? decoder.decode(TrainingMemory.self, from: data) else { return }
        self = decoded
    }

    var encoded: Data? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return try? encoder.encode(self)
    }
}

/// Turns a training's successful run into a registered version: reads its metrics from the
/// artifact store, applies the gate, and gathers the lineage from the run's key parts.
struct Registrar {
    let object: Manifest
    let spec: TrainingScheduleSpec
    let context: ReconcileContext
    let execution: Execution

    enum Result {
        case registered(ModelVersion)
        /// The run ended well but its outputs cannot make a version: it counts as failed.
        case refused(String)
    }

    /// The model a run trained, as the spec said when it started (older records: as it says now).
    func model(of run: RunRecord) -> String { run.annotations?["model"] ?? spec.model }

    func register(_ run: RunRecord, number: Int) throws -> Result {
        let modelName = model(of: run)
        let modelPath = run.annotations?["outputs.model"] ?? spec.outputs.model.value
        let metricsPath = run.annotations.map { $0["outputs.metrics"] } ?? spec.outputs.metrics?.value
        guard let model = run.outputs[modelPath] else {
            return .refused("the training wrote no model at \(modelPath) (spec.outputs.model)")
        }
        var metrics: [String: Double] = [:]
        if let metricsPath {
            guard let stored = run.outputs[metricsPath] else {
                return .refused("the training wrote no metrics file at \(metricsPath) (spec.outputs.metrics)")
            }
            let bytes: Data?
            do {
                bytes = try execution.artifacts.contents(of: stored, limit: Metrics.sizeLimit)
            } catch {
                return .refused("the metrics file \(metricsPath) cannot be read: \(error)")
            }
            guard let bytes else { return .refused("the metrics file \(metricsPath) is no longer in the artifact store") }
            do {
                metrics = try Metrics.parse(bytes, path: metricsPath)
            } catch {
                return .refused(error.description)
            }
        }
        // The feature artifacts as the run consumed them, by declared path.
        let consumed = run.consumed ?? [:]
        let champions = try context.versions.stageMap(of: modelName).versions
        let gate = Gate(rules: spec.gate, champions: champions, modelName: modelName, versions: context.versions, features: consumed)
        var lineage = Lineage(
            schedule: object.ref.name, sourceCommit: run.sourceCommit, runID: run.id, runKey: run.key, trigger: run.trigger,
            triggerID: run.triggerID, command: run.command, params: run.params ?? "{}", environment: spec.env.sorted(),
            featurePipeline: spec.features, features: consumed,
            code: RunKey.paths(in: run.inputs, prefixes: ["dep:", "code:"]), data: RunKey.paths(in: run.inputs, prefixes: ["data:"]),
            program: run.inputs["program"], startedAt: run.startedAt, finishedAt: run.finishedAt)
        lineage.metricsPath = metricsPath
        lineage.reason = run.reason
        lineage.featureRuns = run.producers
        lineage.shell = (run.annotations?["shell"]).map { $0 == "true" } ?? spec.shell
        lineage.metricsArtifact = metricsPath.flatMap { run.outputs[$0] }
        lineage.timeout = spec.timeout.map { Double($0.milliseconds) / 1000 }
        let version = ModelVersion(model: modelName, version: number, artifact: model, artifactPath: modelPath, metrics: metrics,
                                   gate: try gate.verdict(for: metrics), lineage: lineage, registeredAt: context.now)
        return .registered(version)
    }

}
