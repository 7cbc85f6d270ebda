/// Who names whom and who reads whose files, kept up to date as manifests come and go, so a
/// change finds the objects it touches without a scan over all of them.
struct ReferenceIndex: Sendable {
    /// Target → the objects that name it in their spec (whether or not the target exists).
    private var namedBy: [ObjectRef: Set<ObjectRef>] = [:]
    private var producersAt: [String: Set<ObjectRef>] = [:]
    private var producersBelow: [String: Set<ObjectRef>] = [:]
    private var consumersAt: [String: Set<ObjectRef>] = [:]
    private var consumersBelow: [String: Set<ObjectRef>] = [:]
    private var schedulesByModel: [String: Set<ObjectRef>] = [:]
    private var deploymentsByModel: [String: Set<ObjectRef>] = [:]
    private var monitorsByDeployment: [String: Set<ObjectRef>] = [:]

    mutating func add(_ manifest: Manifest) { apply(manifest, adding: true) }
    mutating func remove(_ manifest: Manifest) { apply(manifest, adding: false) }

    private mutating func apply(_ manifest: Manifest, adding: Bool) {
        let ref = manifest.ref
        func edit(_ table: inout [String: Set<ObjectRef>], _ key: String) {
            if adding { table[key, default: []].insert(ref) } else {
                table[key]?.remove(ref)
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
        func name(_ target: ObjectRef) {
            if adding { namedBy[target, default: []].insert(ref) } else {
                namedBy[target]?.remove(ref)
                if namedBy[target]?.isEmpty == true { namedBy[target] = nil }
            }
        }
        switch manifest.spec {
        case .featurePipeline(let spec):
            for out in spec.stages.flatMap(\.outs) {
                edit(&producersAt, out.value)
                for ancestor in out.ancestors { edit(&producersBelow, ancestor) }
            }
            for dep in spec.stages.flatMap(\.deps).repositoryPaths {
                edit(&consumersAt, dep.value)
                for ancestor in dep.ancestors { edit(&consumersBelow, ancestor) }
            }
        case .trainingSchedule(let spec):
            name(ObjectRef(.model, spec.model))
            if let features = spec.features { name(ObjectRef(.featurePipeline, features)) }
            edit(&schedulesByModel, spec.model)
        case .model:
            break
        case .modelDeployment(let spec):
            name(ObjectRef(.model, spec.model))
            edit(&deploymentsByModel, spec.model)
        case .monitor(let spec):
            name(ObjectRef(.modelDeployment, spec.deployment))
            edit(&monitorsByDeployment, spec.deployment)
        }
    }

    func referrers(of ref: ObjectRef) -> Set<ObjectRef> { namedBy[ref] ?? [] }

    /// Pipelines writing `path`, something under it, or a directory holding it.
    func producers(of path: RepositoryPath) -> Set<ObjectRef> {
        var result = (producersAt[path.value] ?? []).union(producersBelow[path.value] ?? [])
        for ancestor in path.ancestors { result.formUnion(producersAt[ancestor] ?? []) }
        return result
    }

    /// Pipelines reading `path`, something under it, or a directory holding it.
    func consumers(of path: RepositoryPath) -> Set<ObjectRef> {
        var result = (consumersAt[path.value] ?? []).union(consumersBelow[path.value] ?? [])
        for ancestor in path.ancestors { result.formUnion(consumersAt[ancestor] ?? []) }
        return result
    }

    func isTrained(_ model: String) -> Bool { schedulesByModel[model]?.isEmpty == false }

    func monitors(ofModel model: String) -> Set<ObjectRef> {
        var result: Set<ObjectRef> = []
        for deployment in deploymentsByModel[model] ?? [] { result.formUnion(monitorsByDeployment[deployment.name] ?? []) }
        return result
    }

    /// The objects whose checks or edges read `manifest`: what it names, and the pipelines
    /// that read what it writes or write what it reads.
    func related(to manifest: Manifest) -> Set<ObjectRef> {
        switch manifest.spec {
        case .featurePipeline(let spec):
            var result: Set<ObjectRef> = []
            for out in spec.stages.flatMap(\.outs) { result.formUnion(consumers(of: out)) }
            for dep in spec.stages.flatMap(\.deps).repositoryPaths { result.formUnion(producers(of: dep)) }
            result.remove(manifest.ref)
            return result
        case .trainingSchedule(let spec):
            return Set([ObjectRef(.model, spec.model)] + (spec.features.map { [ObjectRef(.featurePipeline, $0)] } ?? []))
                .union(monitors(ofModel: spec.model))
        case .model:
            return []
        case .modelDeployment(let spec):
            return [ObjectRef(.model, spec.model)]
        case .monitor(let spec):
            return [ObjectRef(.modelDeployment, spec.deployment)]
        }
    }

    /// The graph edges out of `manifest`: the valid objects it depends on.
    func dependencies(of manifest: Manifest, among manifests: [ObjectRef: Manifest]) -> [ObjectRef] {
        func existing(_ ref: ObjectRef) -> [ObjectRef] { manifests[ref] != nil ? [ref] : [] }
        switch manifest.spec {
        case .featurePipeline(let spec):
            var result: Set<ObjectRef> = []
            for dep in spec.stages.flatMap(\.deps).repositoryPaths { result.formUnion(producers(of: dep)) }
            result.remove(manifest.ref)
            return result.filter { manifests[$0] != nil }.sorted()
        case .trainingSchedule(let spec):
            return spec.features.map { existing(ObjectRef(.featurePipeline, $0)) } ?? []
        case .model:
            return (schedulesByModel[manifest.ref.name] ?? []).filter { manifests[$0] != nil }.sorted()
        case .modelDeployment(let spec):
            return existing(ObjectRef(.model, spec.model))
        case .monitor(let spec):
            return existing(ObjectRef(.modelDeployment, spec.deployment))
        }
    }
}
