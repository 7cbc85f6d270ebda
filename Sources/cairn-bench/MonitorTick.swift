import CairnCore
import CairnManifests
import Foundation
import Logging
import MonitorController

/// What one evaluation tick of many Monitors costs in the controller itself: each Monitor's
/// `reconcile` as the engine calls it (its memory loaded and encoded, its windows registered
/// and read, its thresholds evaluated, its report written), over filled windows on one hub.
/// The engine's own part (the store transaction, a status commit) happens only when a status
/// changes, which a steady tick does not do, so it is left out and said so.
struct MonitorTick {
    let monitors: Int
    let samplesPerWindow: Int
    let ticks: Int

    func run() async throws -> Percentiles {
        let hub = MetricHub()
        let controller = MonitorController(services: MonitorServices(hub: hub))
        let start = Date()
        let deployments = (0..<monitors).map { "deployment-\($0)" }
        var objects: [(monitor: Manifest, deployment: Manifest)] = []
        for name in deployments {
            let yaml = """
                apiVersion: cairn/v1
                kind: ModelDeployment
                metadata: {name: \(name)}
                spec:
                  model: churn
                  version: 3
                  target: {directory: {path: /srv/models/\(name)}}
                ---
                apiVersion: cairn/v1
                kind: Monitor
                metadata: {name: quality-\(name)}
                spec:
                  deployment: \(name)
                  interval: 1s
                  thresholds:
                    - {metric: accuracy, below: 0.8, window: 5m, aggregate: mean, for: 10m, action: retrain}
                    - {metric: latency_seconds, above: 0.5, window: 5m, aggregate: p95, action: alert}
                    - {metric: errors, above: 10, window: 1m, aggregate: max, action: rollback}
                  source: {push: {}}
                """
            let parsed = ManifestParser.parse(Data(yaml.utf8), file: "\(name).yaml").manifests
            guard parsed.count == 2, let deployment = parsed.first(where: { $0.ref.kind == .modelDeployment }),
                  let monitor = parsed.first(where: { $0.ref.kind == .monitor }) else {
                throw BenchFailure("the benchmark's manifests do not parse")
            }
            objects.append((monitor, deployment))
        }
        // One untimed tick registers every Monitor; then every window is filled.
        let memory = TickMemory()
        for object in objects { _ = try await controller.reconcile(object.monitor, in: context(object, memory: memory, now: start)) }
        var generator = SeededGenerator(seed: 15)
        for name in deployments {
            var samples: [MetricSample] = []
            for (metric, window) in [("accuracy", 300.0), ("latency_seconds", 300.0), ("errors", 60.0)] {
                for index in 0..<samplesPerWindow {
                    let time = start.addingTimeInterval(-window * Double(samplesPerWindow - index) / Double(samplesPerWindow + 1))
                    samples.append(MetricSample(metric: metric, value: Double.random(in: 0.81..<1, using: &generator) / 100, time: time))
                }
            }
            _ = hub.ingest(deployment: name, samples: samples, receivedAt: start)
        }
        var times: [Double] = []
        for tick in 1...ticks {
            let now = start.addingTimeInterval(Double(tick) / 10)
            let started = ContinuousClock.now
            for object in objects {
                let outcome = try await controller.reconcile(object.monitor, in: context(object, memory: memory, now: now))
                memory.keep(outcome, for: object.monitor.ref)
            }
            times.append((ContinuousClock.now - started).seconds)
        }
        return Percentiles(times)
    }

    private func context(_ object: (monitor: Manifest, deployment: Manifest), memory: TickMemory, now: Date) -> ReconcileContext {
        var serving = ObjectStatus(ref: object.deployment.ref, manifestPath: "\(object.deployment.ref.name).yaml", generation: "sha256:bench",
                                   observedCommit: String(repeating: "0", count: 40), conditions: [])
        serving.serving = 3
        return ReconcileContext(object: object.monitor.ref, sourceCommit: String(repeating: "0", count: 40), files: NoFiles(),
                                dependencies: [object.deployment.ref: serving], previous: nil, runs: NoRuns(), memory: memory,
                                relatedManifests: [object.deployment.ref: object.deployment], execution: nil, now: now,
                                logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}

/// The Monitors' kept state, as the store would hold it between ticks.
private final class TickMemory: ObjectMemory, @unchecked Sendable {
    private var kept: [ObjectRef: Data] = [:]
    func memory(of object: ObjectRef) throws -> Data? { kept[object] }
    func triggers(of object: ObjectRef) throws -> [TriggerRequest] { [] }
    func keep(_ outcome: Outcome, for ref: ObjectRef) {
        for case .remember(let target, let data) in outcome.effects where target == ref { kept[ref] = data }
    }
}

private struct NoFiles: SourceFiles {
    func contents(of path: RepositoryPath) throws -> Data? { nil }
    func contentHash(of path: RepositoryPath) throws -> ContentHash? { nil }
}

private struct NoRuns: RunRecords {
    func runs(withKey key: String) throws -> [RunRecord] { [] }
    func runs(of object: ObjectRef, limit: Int) throws -> [RunRecord] { [] }
    func run(id: String) throws -> RunRecord? { nil }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
