/// The checks of one object against the others: references to missing objects, stages, a
/// pipeline's own stage graph, and whether a retrain has anything to run.
struct ObjectChecker {
    let manifests: [ObjectRef: Manifest]
    let index: ReferenceIndex
    /// Whether any definition (valid or broken) of an object exists.
    let exists: (ObjectRef) -> Bool
    let anyBrokenSchedule: Bool
    private(set) var problems: [Diagnostic] = []

    init(manifests: [ObjectRef: Manifest], index: ReferenceIndex, exists: @escaping (ObjectRef) -> Bool, anyBrokenSchedule: Bool) {
        self.manifests = manifests
        self.index = index
        self.exists = exists
        self.anyBrokenSchedule = anyBrokenSchedule
    }

    mutating func check(_ manifest: Manifest) {
        switch manifest.spec {
        case .featurePipeline(let spec):
            checkPipeline(manifest, spec)
        case .trainingSchedule(let spec):
            requireReference(from: manifest, field: "spec.model", to: .model, named: spec.model)
            if let features = spec.features {
                requireReference(from: manifest, field: "spec.features", to: .featurePipeline, named: features)
            }
        case .model(let spec):
            var seen: Set<String> = []
            for (index, stage) in spec.stages.enumerated() where !seen.insert(stage).inserted {
                report(manifest, field: "spec.stages[\(index)]", "stage \(quote(stage)) is listed twice in spec.stages")
            }
            for (stage, _) in spec.assignments.sorted(by: { $0.key < $1.key }) where !spec.stages.contains(stage) {
                let hint = nearest(to: stage, in: spec.stages).map { "did you mean \(quote($0))?" }
                    ?? "declare it in spec.stages (\(spec.stages.joined(separator: ", ")))"
                report(manifest, field: "spec.assignments.\(stage)", "stage \(quote(stage)) is assigned but not declared in spec.stages", hint: hint)
            }
        case .modelDeployment(let spec):
            requireReference(from: manifest, field: "spec.model", to: .model, named: spec.model)
            if case .stage(let stage) = spec.selector, case .model(let model)? = manifests[ObjectRef(.model, spec.model)]?.spec,
               !model.stages.contains(stage) {
                let hint = nearest(to: stage, in: model.stages).map { "did you mean \(quote($0))?" }
                    ?? "Model/\(spec.model) has the stages \(model.stages.joined(separator: ", "))"
                report(manifest, field: "spec.stage", "Model/\(spec.model) has no stage \(quote(stage))", hint: hint)
            }
        case .monitor(let spec):
            requireReference(from: manifest, field: "spec.deployment", to: .modelDeployment, named: spec.deployment)
            checkRetrainTarget(manifest, spec)
        }
    }

    private mutating func report(_ manifest: Manifest, field: String, _ message: String, hint: String? = nil) {
        problems.append(Diagnostic(at: manifest.location(of: field), field: field, object: manifest.ref.description, message, hint: hint))
    }

    private mutating func requireReference(from manifest: Manifest, field: String, to kind: Kind, named name: String) {
        guard !exists(ObjectRef(kind, name)) else { return }
        // Suggestions only on this (rare) error path, so the scan over names costs nothing otherwise.
        let candidates = manifests.keys.filter { $0.kind == kind }.map(\.name)
        let hint = nearest(to: name, in: candidates).map { "did you mean \(quote($0))?" }
            ?? (candidates.isEmpty ? "add a \(kind) manifest named \(name)" : "known: \(candidates.sorted().prefix(5).joined(separator: ", "))")
        report(manifest, field: field, "\(field) refers to \(kind)/\(name), which does not exist", hint: hint)
    }

    private mutating func checkPipeline(_ manifest: Manifest, _ spec: FeaturePipelineSpec) {
        var names: Set<String> = []
        var producer: [RepositoryPath: String] = [:]
        for (index, stage) in spec.stages.enumerated() {
            if !names.insert(stage.name).inserted {
                report(manifest, field: "spec.stages[\(index)].name", "stage \(quote(stage.name)) appears twice in this pipeline")
            }
            if stage.shell, stage.command.count != 1 {
                problems.append(Diagnostic(at: manifest.location(of: "spec.stages[\(index)]"), field: "spec.stages[\(index)].command",
                                           object: manifest.ref.description, "with shell: true, command must be a single script string",
                                           hint: "write command: [\"...\"] with the whole script, or drop shell: true and list the arguments"))
            }
            for (outIndex, out) in stage.outs.enumerated() {
                if let other = producer[out] {
                    report(manifest, field: "spec.stages[\(index)].outs[\(outIndex)]", "\(out) is already an output of stage \(quote(other))",
                           hint: "each file has one producing stage")
                }
                producer[out] = stage.name
            }
        }
        // Stage order: a stage that reads another's output runs after it; a loop can never run.
        var stageGraph: [String: Set<String>] = [:]
        for stage in spec.stages {
            stageGraph[stage.name] = Set(stage.deps.flatMap { dep in
                producer.filter { $0.key.contains(dep) || dep.contains($0.key) }.map(\.value)
            })
        }
        if let cycle = firstCycle(in: stageGraph) {
            report(manifest, field: "spec.stages", "the stages form a cycle: \((cycle + [cycle[0]]).joined(separator: " → "))",
                   hint: "a stage may not read, directly or through other stages, what it writes itself")
        }
    }

    /// A retrain needs a TrainingSchedule for the deployment's model. A broken schedule may be
    /// the one meant; its own error says what to fix, so then this check stays quiet.
    private mutating func checkRetrainTarget(_ manifest: Manifest, _ spec: MonitorSpec) {
        guard !anyBrokenSchedule, let index = spec.thresholds.firstIndex(where: { $0.action == .retrain }),
              case .modelDeployment(let deployment)? = manifests[ObjectRef(.modelDeployment, spec.deployment)]?.spec,
              !self.index.isTrained(deployment.model) else { return }
        report(manifest, field: "spec.thresholds[\(index)].action",
               "action retrain needs a TrainingSchedule for Model/\(deployment.model), and there is none",
               hint: "add a TrainingSchedule with model: \(deployment.model), or use action: alert")
    }
}

/// The first cycle in a small graph of names, if any.
func firstCycle(in graph: [String: Set<String>]) -> [String]? {
    var state: [String: Int] = [:] // 1: on the path, 2: done
    var path: [String] = []
    func visit(_ node: String) -> [String]? {
        state[node] = 1
        path.append(node)
        for next in (graph[node] ?? []).sorted() {
            if state[next] == 1, let start = path.firstIndex(of: next) { return Array(path[start...]) }
            if state[next] == nil, let cycle = visit(next) { return cycle }
        }
        path.removeLast()
        state[node] = 2
        return nil
    }
    for node in graph.keys.sorted() where state[node] == nil {
        if let cycle = visit(node) { return cycle }
    }
    return nil
}
