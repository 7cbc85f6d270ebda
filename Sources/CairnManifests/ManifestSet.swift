/// All manifests of one revision, checked as a whole: duplicates, references between objects,
/// stage names, and cycles. Each finding is attributed to the object it belongs to, so the
/// reconciler can stall that object alone.
public struct ManifestSet: Sendable {
    /// Every valid object, by `Kind/name`.
    public private(set) var manifests: [ObjectRef: Manifest] = [:]
    /// Every finding, in file and line order.
    public private(set) var diagnostics: [Diagnostic] = []
    /// Objects whose manifest or references are broken, with what is wrong with each.
    public private(set) var broken: [ObjectRef: [Diagnostic]] = [:]
    public private(set) var graph = DependencyGraph()
    /// How many manifest files were read.
    public private(set) var fileCount = 0

    public init(files: [ParsedFile]) {
        fileCount = files.count
        var firstSeen: [ObjectRef: SourceLocation] = [:]
        for file in files {
            for failure in file.failures {
                diagnostics += failure.diagnostics
                if let ref = failure.ref {
                    broken[ref, default: []] += failure.diagnostics
                    firstSeen[ref] = firstSeen[ref] ?? failure.location
                }
            }
            for manifest in file.manifests {
                if let first = firstSeen[manifest.ref] {
                    report(manifest.ref, at: manifest.location, field: "metadata.name",
                           "\(manifest.ref) is defined twice; the other definition is at \(first)",
                           hint: "rename one of them or delete the duplicate")
                    continue
                }
                firstSeen[manifest.ref] = manifest.location
                manifests[manifest.ref] = manifest
            }
        }
        checkObjects()
        buildGraph()
        for cycle in graph.cycles(among: [.featurePipeline]) {
            let path = (cycle + [cycle[0]]).map(\.description).joined(separator: " → ")
            for ref in cycle {
                report(ref, at: manifests[ref]?.location ?? SourceLocation(file: "?", line: 1, column: 1),
                       "\(ref) is part of a dependency cycle: \(path)", hint: "break the cycle: outputs may not feed back into their own inputs")
            }
        }
        // An object whose own manifest is fine but that stands on a broken one is not broken
        // itself: the reconciler makes it wait. Only what is wrong with the object counts here.
        diagnostics.sort { ($0.location, $0.message) < ($1.location, $1.message) }
    }

    /// Whether any finding is an error.
    public var isValid: Bool { !diagnostics.hasErrors }

    /// Valid objects in dependency order.
    public var ordered: [Manifest] {
        graph.topologicalOrder().compactMap { manifests[$0] }
    }

    private mutating func report(_ ref: ObjectRef, at location: SourceLocation, field: String? = nil, _ message: String, hint: String? = nil) {
        let diagnostic = Diagnostic(at: location, field: field, object: ref.description, message, hint: hint)
        diagnostics.append(diagnostic)
        broken[ref, default: []].append(diagnostic)
    }

    private func exists(_ kind: Kind, _ name: String) -> Bool {
        manifests[ObjectRef(kind, name)] != nil || broken[ObjectRef(kind, name)] != nil
    }

    private mutating func requireReference(from manifest: Manifest, field: String, to kind: Kind, named name: String) {
        guard !exists(kind, name) else { return }
        let candidates = manifests.keys.filter { $0.kind == kind }.map(\.name)
        let hint = nearest(to: name, in: candidates).map { "did you mean \"\($0)\"?" }
            ?? (candidates.isEmpty ? "add a \(kind) manifest named \(name)" : "known: \(candidates.sorted().prefix(5).joined(separator: ", "))")
        report(manifest.ref, at: manifest.location(of: field), field: field,
               "\(field) refers to \(kind)/\(name), which does not exist", hint: hint)
    }

    private mutating func checkObjects() {
        var trainedModels: Set<String> = []
        for manifest in manifests.values {
            if case .trainingSchedule(let schedule) = manifest.spec { trainedModels.insert(schedule.model) }
        }
        // Unordered: the findings are sorted by location at the end.
        for manifest in manifests.values {
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
                    report(manifest.ref, at: manifest.location(of: "spec.stages[\(index)]"), field: "spec.stages[\(index)]",
                           "stage \"\(stage)\" is listed twice in spec.stages")
                }
                for (stage, _) in spec.assignments.sorted(by: { $0.key < $1.key }) where !spec.stages.contains(stage) {
                    let field = "spec.assignments.\(stage)"
                    let hint = nearest(to: stage, in: spec.stages).map { "did you mean \"\($0)\"?" }
                        ?? "declare it in spec.stages (\(spec.stages.joined(separator: ", ")))"
                    report(manifest.ref, at: manifest.location(of: field), field: field,
                           "stage \"\(stage)\" is assigned but not declared in spec.stages", hint: hint)
                }
            case .modelDeployment(let spec):
                requireReference(from: manifest, field: "spec.model", to: .model, named: spec.model)
                if case .stage(let stage) = spec.selector, case .model(let model)? = manifests[ObjectRef(.model, spec.model)]?.spec,
                   !model.stages.contains(stage) {
                    let hint = nearest(to: stage, in: model.stages).map { "did you mean \"\($0)\"?" }
                        ?? "Model/\(spec.model) has the stages \(model.stages.joined(separator: ", "))"
                    report(manifest.ref, at: manifest.location(of: "spec.stage"), field: "spec.stage",
                           "Model/\(spec.model) has no stage \"\(stage)\"", hint: hint)
                }
            case .monitor(let spec):
                requireReference(from: manifest, field: "spec.deployment", to: .modelDeployment, named: spec.deployment)
            }
        }
        // After every other check: a broken TrainingSchedule may be the one a retrain is meant
        // for, and its own error says what to fix.
        guard !broken.keys.contains(where: { $0.kind == .trainingSchedule }) else { return }
        for manifest in manifests.values {
            if case .monitor(let spec) = manifest.spec { checkRetrainTarget(manifest, spec, trainedModels: trainedModels) }
        }
    }

    private mutating func checkPipeline(_ manifest: Manifest, _ spec: FeaturePipelineSpec) {
        var names: Set<String> = []
        var producer: [RepositoryPath: String] = [:]
        for (index, stage) in spec.stages.enumerated() {
            if !names.insert(stage.name).inserted {
                report(manifest.ref, at: manifest.location(of: "spec.stages[\(index)].name"), field: "spec.stages[\(index)].name",
                       "stage \"\(stage.name)\" appears twice in this pipeline")
            }
            if stage.shell, stage.command.count != 1 {
                report(manifest.ref, at: manifest.location(of: "spec.stages[\(index)]"), field: "spec.stages[\(index)].command",
                       "with shell: true, command must be a single script string",
                       hint: "write command: [\"...\"] with the whole script, or drop shell: true and list the arguments")
            }
            for (outIndex, out) in stage.outs.enumerated() {
                if let other = producer[out] {
                    let field = "spec.stages[\(index)].outs[\(outIndex)]"
                    report(manifest.ref, at: manifest.location(of: field), field: field,
                           "\(out) is already an output of stage \"\(other)\"", hint: "each file has one producing stage")
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
            report(manifest.ref, at: manifest.location(of: "spec.stages"), field: "spec.stages",
                   "the stages form a cycle: \((cycle + [cycle[0]]).joined(separator: " → "))",
                   hint: "a stage may not read, directly or through other stages, what it writes itself")
        }
    }

    private mutating func checkRetrainTarget(_ manifest: Manifest, _ spec: MonitorSpec, trainedModels: Set<String>) {
        guard let index = spec.thresholds.firstIndex(where: { $0.action == .retrain }),
              case .modelDeployment(let deployment)? = manifests[ObjectRef(.modelDeployment, spec.deployment)]?.spec,
              !trainedModels.contains(deployment.model) else { return }
        let field = "spec.thresholds[\(index)].action"
        report(manifest.ref, at: manifest.location(of: field), field: field,
               "action retrain needs a TrainingSchedule for Model/\(deployment.model), and there is none",
               hint: "add a TrainingSchedule with model: \(deployment.model), or use action: alert")
    }

    private mutating func buildGraph() {
        // Outputs indexed by their path and by every directory above it, so a dependency finds
        // its producers in a few lookups instead of a scan over every output.
        var producersAt: [String: Set<ObjectRef>] = [:]
        var producersBelow: [String: Set<ObjectRef>] = [:]
        for manifest in manifests.values {
            graph.add(manifest.ref)
            guard case .featurePipeline(let spec) = manifest.spec else { continue }
            for out in spec.stages.flatMap(\.outs) {
                producersAt[out.value, default: []].insert(manifest.ref)
                for ancestor in out.ancestors { producersBelow[ancestor, default: []].insert(manifest.ref) }
            }
        }
        for manifest in manifests.values {
            func link(_ kind: Kind, _ name: String) {
                let target = ObjectRef(kind, name)
                if manifests[target] != nil { graph.add(manifest.ref, dependsOn: target) }
            }
            switch manifest.spec {
            case .featurePipeline(let spec):
                for dep in spec.stages.flatMap(\.deps) {
                    var producers = (producersAt[dep.value] ?? []).union(producersBelow[dep.value] ?? [])
                    for ancestor in dep.ancestors { producers.formUnion(producersAt[ancestor] ?? []) }
                    for producer in producers where producer != manifest.ref { graph.add(manifest.ref, dependsOn: producer) }
                }
            case .trainingSchedule(let spec):
                if let features = spec.features { link(.featurePipeline, features) }
                if manifests[ObjectRef(.model, spec.model)] != nil { graph.add(ObjectRef(.model, spec.model), dependsOn: manifest.ref) }
            case .model:
                break
            case .modelDeployment(let spec):
                link(.model, spec.model)
            case .monitor(let spec):
                link(.modelDeployment, spec.deployment)
            }
        }
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
