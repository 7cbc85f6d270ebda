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
            checkTraining(manifest, spec)
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
            checkMonitor(manifest, spec)
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
        var declaredOuts: [(stage: Int, path: RepositoryPath)] = []
        for (index, stage) in spec.stages.enumerated() {
            let field = "spec.stages[\(index)]"
            if !names.insert(stage.name).inserted {
                report(manifest, field: "\(field).name", "stage \(quote(stage.name)) appears twice in this pipeline")
            }
            if stage.shell, stage.command.count != 1 {
                problems.append(Diagnostic(at: manifest.location(of: field), field: "\(field).command",
                                           object: manifest.ref.description, "with shell: true, command must be a single script string",
                                           hint: "write command: [\"...\"] with the whole script, or drop shell: true and list the arguments"))
            }
            checkResources(manifest, field: field, stage.resources, timeout: stage.timeout, executor: stage.executor)
            var variables: Set<String> = []
            for (envIndex, name) in stage.env.enumerated() where !variables.insert(name).inserted {
                report(manifest, field: "\(field).env[\(envIndex)]", "\(field).env lists \(name) twice")
            }
            for (outIndex, out) in stage.outs.enumerated() {
                if let earlier = declaredOuts.first(where: { $0.path.contains(out) || out.contains($0.path) }) {
                    let owner = earlier.stage == index ? "this stage" : "stage \(quote(spec.stages[earlier.stage].name))"
                    let message = earlier.path == out
                        ? (earlier.stage == index ? "\(out) is listed twice in the outputs of stage \(quote(stage.name))"
                                                  : "\(out) is already an output of \(owner)")
                        : earlier.path.contains(out) ? "\(out) lies inside \(earlier.path), which is already an output of \(owner)"
                        : "\(out) holds \(earlier.path), which is already an output of \(owner)"
                    report(manifest, field: "\(field).outs[\(outIndex)]", message,
                           hint: "each file has one producing stage: no two outputs may be the same path or one inside the other")
                }
                declaredOuts.append((index, out))
            }
            for (depIndex, dep) in stage.deps.enumerated() {
                guard let path = dep.repositoryPath, let out = stage.outs.first(where: { $0.contains(path) || path.contains($0) }) else { continue }
                report(manifest, field: "\(field).deps[\(depIndex)]",
                       "stage \(quote(stage.name)) reads \(path), which overlaps its own output \(out)",
                       hint: "a stage may not depend on what it writes itself; remove it from deps, or write the output elsewhere")
            }
        }
        // Stage order: a stage that reads another's output runs after it; a loop can never run.
        let graph = StageGraph(spec)
        guard let cycle = graph.cycle, let first = cycle.first, let last = cycle.last else { return }
        let loop = (cycle + [first]).map { spec.stages[$0].name }.joined(separator: " → ")
        let steps = zip(cycle, cycle.dropFirst() + [first]).compactMap { upstream, downstream in
            graph.edges.first { $0.upstream == upstream && $0.downstream == downstream }
        }
        let reasons = steps.map { edge in
            "\(spec.stages[edge.downstream].name) reads \(edge.path), which \(spec.stages[edge.upstream].name) writes (\(edge.out))"
        }
        // Point at the path through which the first stage reads what the last one writes.
        var field = "spec.stages[\(first)]"
        if let edge = graph.edges.first(where: { $0.upstream == last && $0.downstream == first }) {
            switch edge.via {
            case .dep(let index): field += ".deps[\(index)]"
            case .argument(let index): field += ".command[\(index)]"
            }
        }
        report(manifest, field: field, "stages \(loop) form a cycle",
               hint: reasons.joined(separator: "; ") + "; a stage may not read, directly or through other stages, what it writes itself")
    }

    /// What the shapes cannot say about `resources`: a limit shorter than the timeout, and
    /// GPUs asked of the local executor by name. (With no `executor`, the daemon's decides,
    /// and the run is refused then if it goes local.)
    private mutating func checkResources(_ manifest: Manifest, field: String, _ resources: RunResources, timeout: ManifestDuration?,
                                        executor: RunExecutorName?) {
        if let time = resources.time, let timeout, time.milliseconds < timeout.milliseconds {
            report(manifest, field: "\(field).resources.time",
                   "resources.time (\(time)) is shorter than timeout (\(timeout)): the scheduler would end the run before its timeout",
                   hint: "ask for at least the timeout, such as time: \(timeout), or drop one of them")
        }
        if executor == .local, resources.gpus > 0 {
            report(manifest, field: "\(field).resources.gpus",
                   "resources.gpus asks for \(resources.gpus) GPU\(resources.gpus == 1 ? "" : "s"), and executor: local cannot give any",
                   hint: "use executor: slurm, or remove gpus")
        }
    }

    private mutating func checkTraining(_ manifest: Manifest, _ spec: TrainingScheduleSpec) {
        checkResources(manifest, field: "spec", spec.resources, timeout: spec.timeout, executor: spec.executor)
        if spec.schedule == nil, spec.retrainOn == .schedule {
            report(manifest, field: "spec.retrainOn", "retrainOn: schedule needs spec.schedule, and there is none",
                   hint: "add a schedule such as \"0 3 * * 1\", or use retrainOn: inputs")
        }
        if spec.schedule == nil, spec.always {
            report(manifest, field: "spec.always", "always: true trains at every tick of spec.schedule, and there is none",
                   hint: "add a schedule, or remove always")
        }
        if spec.shell, spec.command.count != 1 {
            report(manifest, field: "spec.command", "with shell: true, command must be a single script string",
                   hint: "write command: [\"...\"] with the whole script, or drop shell: true and list the arguments")
        }
        if spec.outputs.metrics == spec.outputs.model {
            report(manifest, field: "spec.outputs.metrics", "the metrics and the model are the same file (\(spec.outputs.model))")
        }
        for (index, rule) in spec.gate.enumerated() {
            let field = "spec.gate[\(index)]"
            if spec.outputs.metrics == nil {
                report(manifest, field: field, "a gate rule reads the metrics, and spec.outputs has no metrics file",
                       hint: "add outputs.metrics, such as metrics.json (a JSON object of metric name to number)")
                break
            }
            if rule.by != nil, rule.beats == nil {
                report(manifest, field: "\(field).by", "by is the margin of a beats rule, and this rule has no beats",
                       hint: "write {metric: \(rule.metric), beats: production, by: ...}")
            }
            if let stage = rule.beats, case .model(let model)? = manifests[ObjectRef(.model, spec.model)]?.spec, !model.stages.contains(stage) {
                let hint = nearest(to: stage, in: model.stages).map { "did you mean \(quote($0))?" }
                    ?? "Model/\(spec.model) has the stages \(model.stages.joined(separator: ", "))"
                report(manifest, field: "\(field).beats", "Model/\(spec.model) has no stage \(quote(stage))", hint: hint)
            }
        }
    }

    /// What the shapes cannot say: windows within the bounds samples are kept for, a query for
    /// every metric a Prometheus source is asked for, and a file source's path is absolute.
    private mutating func checkMonitor(_ manifest: Manifest, _ spec: MonitorSpec) {
        for (index, threshold) in spec.thresholds.enumerated() {
            let field = "spec.thresholds[\(index)]"
            if threshold.window.milliseconds > 86_400_000 || threshold.window.milliseconds < 1000 {
                report(manifest, field: "\(field).window", "window \(threshold.window) is outside 1s to 24h",
                       hint: "samples are kept for at most 24h; use a window such as 5m or 1h")
            }
            if case .prometheus(_, let queries) = spec.source, queries[threshold.metric] == nil {
                report(manifest, field: "spec.source.prometheus.queries",
                       "threshold \(index) watches \(threshold.metric), and source.prometheus.queries has no query for it",
                       hint: "add \(threshold.metric): <a PromQL query whose result is one number>")
            }
        }
        if spec.interval.milliseconds < 1000 {
            report(manifest, field: "spec.interval", "interval \(spec.interval) is shorter than 1s", hint: "use 1s or more, such as 30s")
        }
        if case .file(let path, _) = spec.source, !path.hasPrefix("/") {
            report(manifest, field: "spec.source.file.path", "\(quote(path)) is not an absolute path",
                   hint: "metrics files live outside the repository, under a --data-root of the daemon, such as /srv/metrics/churn.jsonl")
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
