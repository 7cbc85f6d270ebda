public import CairnCore
public import CairnGit
public import CairnManifests
public import Foundation

/// What merging a change would do, for a reviewer and for CI (`cairn plan`): whether every
/// manifest at head is valid, which objects it creates, changes and deletes, which stage
/// promotions it asks for and what the promotion policy says of each, and which runs' keys it
/// changes (so what retrains, and why).
public struct Plan: Encodable, Sendable {
    public var base: String
    public var head: String
    /// The commit compared with head: base, or the merge base when base is not an ancestor.
    public var comparedWith: String
    /// Why the comparison is not with base itself, when it is not.
    public var baseNote: String?
    /// Where promotions were judged from, in words; nil when from nowhere.
    public var registry: String?
    /// Why promotions could not be judged, when they could not.
    public var registryProblem: String?
    /// Every error and warning at head, as `file:line:col: message`.
    public var invalid: [String]
    public var warnings: [String]
    public var objects: [ObjectChange]
    public var promotions: [Promotion]
    public var runs: [RunChange]

    /// Whether the change may merge: every manifest at head valid, every promotion accepted.
    public var acceptable: Bool { invalid.isEmpty && promotions.allSatisfy { $0.decision == .accepted || $0.decision == .unchanged } }

    enum CodingKeys: String, CodingKey {
        case acceptable, base, head, comparedWith, baseNote, registry, registryProblem, invalid, warnings, objects, promotions, runs
    }

    /// The fields, with `acceptable` first: what a script looks at.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(acceptable, forKey: .acceptable)
        try container.encode(base, forKey: .base)
        try container.encode(head, forKey: .head)
        try container.encode(comparedWith, forKey: .comparedWith)
        try container.encodeIfPresent(baseNote, forKey: .baseNote)
        try container.encodeIfPresent(registry, forKey: .registry)
        try container.encodeIfPresent(registryProblem, forKey: .registryProblem)
        try container.encode(invalid, forKey: .invalid)
        try container.encode(warnings, forKey: .warnings)
        try container.encode(objects, forKey: .objects)
        try container.encode(promotions, forKey: .promotions)
        try container.encode(runs, forKey: .runs)
    }

    public struct ObjectChange: Encodable, Sendable {
        public enum Change: String, Encodable, Sendable { case created, changed, deleted, moved }
        public var object: String
        public var change: Change
        public var file: String
        /// The spec fields that differ (`spec.params`), for a change.
        public var fields: [String]
    }

    public struct Promotion: Encodable, Sendable {
        public enum Decision: String, Encodable, Sendable { case accepted, refused, unchanged, unchecked }
        public var model: String
        public var stage: String
        /// What base assigned, what head assigns, and what holds the stage now (as the registry says).
        public var from: Int?
        public var to: Int?
        public var holder: Int?
        public var decision: Decision
        /// `VersionNotFound`, `GateFailed`, `OrderViolated` for a refusal.
        public var rule: String?
        public var message: String
        /// The promoted version, and the one it replaces (champion vs challenger).
        public var challenger: VersionSummary?
        public var champion: VersionSummary?
    }

    public struct VersionSummary: Encodable, Sendable {
        public var version: Int
        public var metrics: [String: Double]
        public var gatePassed: Bool
        public var gate: String
        public var sourceCommit: String
        public var registeredAt: Date

        init(_ version: ModelVersion) {
            self.version = version.version
            metrics = version.metrics
            gatePassed = version.gate.passed
            gate = version.gate.summary
            sourceCommit = version.lineage.sourceCommit
            registeredAt = version.registeredAt
        }
    }

    public struct RunChange: Encodable, Sendable {
        public var object: String
        /// The stage of a pipeline; nil for a training.
        public var stage: String?
        /// What changed in its key: `params: C 1.0 → 0.5`, `train.py changed`, `new`.
        public var reasons: [String]
    }
}

/// Where `cairn plan` judges promotions from.
public enum PlanRegistry {
    /// The daemon's store (its state directory), described for the reader.
    case store(any ModelVersions, String)
    /// The status branch of the repository, as found.
    case statusBranch(StatusBranchRegistry)
    /// Neither: promotions are reported unchecked, with why.
    case none(String)
}

public enum Planner {
    /// Plans the change from `base` to `head` (revisions), reading manifests under `path`.
    public static func plan(repository: Repository, base: String, head: String, path: String = "", registry: PlanRegistry) throws -> Plan {
        // Keys look up code paths under the same large directories many times over.
        Repository.cacheLargeTrees()
        let headID = try resolve(repository, head, "head")
        let baseID = try resolve(repository, base, "base")
        var compared = baseID
        var baseNote: String?
        if !repository.isAncestor(baseID, of: headID) {
            guard let mergeBase = repository.mergeBase(baseID, headID) else {
                throw PlanError.usage("base \(base) (\(baseID.short)) and head \(head) (\(headID.short)) share no history; "
                                      + "give a base that head was branched from")
            }
            compared = mergeBase
            baseNote = "base \(base) (\(baseID.short)) is not an ancestor of head, so head is compared with their merge base "
                + "\(mergeBase.short), as a pull request is: what base gained since is not part of this change"
        }

        let headFiles = try ManifestLoader.parseAll(from: repository, commit: headID, path: path)
        let headSet = ManifestSet(files: headFiles.map(\.parsed))
        // Base: head's files with the diff undone, so only changed files are parsed again.
        let diff = try repository.boundedDiff(from: compared, to: headID)
        var baseFiles: [String: ParsedFile] = [:]
        for file in headFiles { baseFiles[file.path] = file.parsed }
        let scope = path.split(separator: "/").joined(separator: "/")
        func inScope(_ file: String) -> Bool { scope.isEmpty || file.hasPrefix(scope + "/") }
        // A path both left and arrived at (a rename onto a changed file) keeps what base had:
        // arrivals are removed first, then base's files put back.
        var left: [(path: String, blob: ObjectID, symlink: Bool)] = []
        var otherFilesChanged = false
        // The objects the changed files define, at either end: no other object can differ.
        var touchedRefs: Set<ObjectRef> = []
        for change in diff.changes {
            let manifest = inScope(change.path) && ManifestLoader.isManifestPath(change.path)
            let oldManifest = inScope(change.oldPath) && ManifestLoader.isManifestPath(change.oldPath)
            if !manifest && !oldManifest { otherFilesChanged = true; continue }
            if manifest, change.kind != .deleted, let arrived = baseFiles.removeValue(forKey: change.path) { touchedRefs.formUnion(arrived.refs) }
            if oldManifest, change.kind != .added, let blob = change.oldBlob { left.append((change.oldPath, blob, false)) }
        }
        if !diff.refused.isEmpty { otherFilesChanged = true }
        for parsed in try ManifestLoader.parse(from: repository, left) {
            baseFiles[parsed.path] = parsed
            touchedRefs.formUnion(parsed.refs)
        }
        let baseSet = BaseObjects(files: baseFiles.values)

        var plan = Plan(base: baseID.hex, head: headID.hex, comparedWith: compared.hex, baseNote: baseNote, registry: nil,
                        registryProblem: nil, invalid: [], warnings: [], objects: [], promotions: [], runs: [])
        for diagnostic in headSet.diagnostics {
            let line = "\(diagnostic.location): \(diagnostic.message)" + (diagnostic.hint.map { " (\($0))" } ?? "")
            if diagnostic.severity == .error { plan.invalid.append(line) } else { plan.warnings.append(line) }
        }
        plan.objects = objectChanges(from: baseSet, to: headSet, among: touchedRefs)
        plan.promotions = try promotions(from: baseSet, to: headSet, registry: registry, plan: &plan)
        let touched = Set(plan.objects.filter { $0.change != .deleted && $0.change != .moved }.map(\.object))
        plan.runs = try runChanges(repository: repository, base: compared, head: headID, baseSet: baseSet, headSet: headSet,
                                   only: otherFilesChanged ? nil : touched)
        return plan
    }

    private static func resolve(_ repository: Repository, _ revision: String, _ role: String) throws -> ObjectID {
        do {
            return try repository.resolveCommit(revision)
        } catch {
            throw PlanError.usage("\(role) \(revision) is not a commit of this repository (\(error)); in CI, fetch enough history "
                                  + "to hold both (actions/checkout with fetch-depth: 0, GitLab's GIT_DEPTH: 0)")
        }
    }

    // MARK: Objects

    /// How the objects in `refs` (those the changed files define) differ from base to head.
    static func objectChanges(from base: BaseObjects, to head: ManifestSet, among refs: Set<ObjectRef>) -> [Plan.ObjectChange] {
        var changes: [Plan.ObjectChange] = []
        for ref in refs.sorted() {
            let old = base.manifests[ref]
            let new = head.manifests[ref]
            switch (old, new) {
            case (nil, let new?):
                changes.append(.init(object: ref.description, change: .created, file: new.location.file, fields: []))
            case (let old?, nil):
                if head.broken[ref] == nil {
                    changes.append(.init(object: ref.description, change: .deleted, file: old.location.file, fields: []))
                } else {
                    changes.append(.init(object: ref.description, change: .changed, file: head.broken[ref]?.first?.location.file ?? old.location.file,
                                         fields: ["(invalid at head)"]))
                }
            case (let old?, let new?):
                if old.spec != new.spec || old.labels != new.labels {
                    changes.append(.init(object: ref.description, change: .changed, file: new.location.file,
                                         fields: changedFields(old, new)))
                } else if old.location.file != new.location.file {
                    changes.append(.init(object: ref.description, change: .moved, file: new.location.file, fields: ["from \(old.location.file)"]))
                }
            case (nil, nil):
                if let problems = head.broken[ref] {
                    changes.append(.init(object: ref.description, change: base.failed.contains(ref) ? .changed : .created,
                                         file: problems.first?.location.file ?? "", fields: ["(invalid at head)"]))
                }
            }
        }
        return changes
    }

    /// The top-level spec fields that differ, as `spec.params`, compared as canonical JSON
    /// trees (so `10m` and `600s` are one value, as content keys see them).
    private static func changedFields(_ old: Manifest, _ new: Manifest) -> [String] {
        var names: [String] = []
        if old.labels != new.labels { names.append("metadata.labels") }
        if old.spec != new.spec {
            let members = (try? differingMembers(old.spec, new.spec)) ?? nil
            if let members, !members.isEmpty {
                names += members.map { "spec.\($0)" }
            } else {
                names.append(members == nil ? "spec" : "spec (the same values, spelled differently)")
            }
        }
        return names
    }

    /// The members of two specs' JSON forms that differ; nil for specs of two kinds.
    private static func differingMembers(_ old: Spec, _ new: Spec) throws -> [String]? {
        switch (old, new) {
        case (.featurePipeline(let a), .featurePipeline(let b)): try CanonicalJSON.differingMembers(a, b)
        case (.trainingSchedule(let a), .trainingSchedule(let b)): try CanonicalJSON.differingMembers(a, b)
        case (.model(let a), .model(let b)): try CanonicalJSON.differingMembers(a, b)
        case (.modelDeployment(let a), .modelDeployment(let b)): try CanonicalJSON.differingMembers(a, b)
        case (.monitor(let a), .monitor(let b)): try CanonicalJSON.differingMembers(a, b)
        default: nil
        }
    }

    // MARK: Promotions

    private static func promotions(from base: BaseObjects, to head: ManifestSet, registry: PlanRegistry, plan: inout Plan) throws -> [Plan.Promotion] {
        var found: [Plan.Promotion] = []
        let versions: (any ModelVersions)?
        switch registry {
        case .store(let store, let description):
            versions = store
            plan.registry = description
        case .statusBranch(let branch):
            versions = branch
            plan.registry = "the status branch \(branch.branch) at \(branch.commit.prefix(10))"
        case .none(let why):
            versions = nil
            plan.registryProblem = why
        }
        for ref in head.manifests.keys.filter({ $0.kind == .model }).sorted() {
            guard case .model(let spec)? = head.manifests[ref]?.spec else { continue }
            var before: [String: Int] = [:]
            if case .model(let old)? = base.manifests[ref]?.spec { before = old.assignments }
            let moved = Set(before.keys).union(spec.assignments.keys).filter { before[$0] != spec.assignments[$0] }
            guard !moved.isEmpty else { continue }
            let model = ref.name
            guard let versions else {
                for stage in spec.stages where moved.contains(stage) {
                    found.append(Plan.Promotion(model: model, stage: stage, from: before[stage], to: spec.assignments[stage], holder: nil,
                                                decision: .unchecked, rule: nil, message: "could not be checked: \(plan.registryProblem ?? "")",
                                                challenger: nil, champion: nil))
                }
                continue
            }
            let stages = try versions.stageMap(of: model)
            // Each version is read once: the policy, the challenger and the champion ask for the same ones.
            var read: [Int: ModelVersion?] = [:]
            func version(_ number: Int) throws -> ModelVersion? {
                if let known = read[number] { return known }
                let found = try versions.version(model, number)
                read[number] = .some(found)
                return found
            }
            let verdicts = try PromotionPolicy.judge(model: model, spec: spec, stages: stages) { try version($0) }
            for verdict in verdicts where moved.contains(verdict.stage) {
                let decision: Plan.Promotion.Decision = switch verdict.decision {
                case .accepted: .accepted
                case .refused: .refused
                case .unchanged: .unchanged
                }
                let challenger = try verdict.desired.flatMap { try version($0) }.map(Plan.VersionSummary.init)
                let champion = try verdict.current.flatMap { try version($0) }.map(Plan.VersionSummary.init)
                found.append(Plan.Promotion(model: model, stage: verdict.stage, from: before[verdict.stage], to: verdict.desired,
                                            holder: verdict.current, decision: decision, rule: verdict.reason, message: verdict.message,
                                            challenger: challenger, champion: champion))
            }
        }
        return found
    }

    // MARK: Runs

    /// The pipeline stages and trainings whose keys, as far as the commits decide them (command,
    /// params, declared and found code), differ; `only` limits it to these objects when no file
    /// but manifests changed (no other object's key can then have moved).
    private static func runChanges(repository: Repository, base: ObjectID, head: ObjectID, baseSet: BaseObjects, headSet: ManifestSet,
                                   only: Set<String>?) throws -> [Plan.RunChange] {
        let hashes = BlobHashes()
        let baseFiles = GitSourceFiles(repository: repository, commit: base, hashes: hashes)
        let headFiles = GitSourceFiles(repository: repository, commit: head, hashes: hashes)
        var changes: [Plan.RunChange] = []
        // Pipelines whose stages change: a training that reads them may retrain, if their outputs change.
        var pipelinesChanging: [String: [String]] = [:]
        for manifest in headSet.ordered {
            if let only, !only.contains(manifest.ref.description) && !dependsOnChanged(manifest, pipelinesChanging) { continue }
            switch manifest.spec {
            case .featurePipeline(let spec):
                var old: FeaturePipelineSpec?
                if case .featurePipeline(let found)? = baseSet.manifests[manifest.ref]?.spec { old = found }
                let graph = StageGraph(spec)
                for (index, stage) in spec.stages.enumerated() {
                    let consumed = Set(graph.upstream(of: index).flatMap { spec.stages[$0].outs.map(\.value) })
                    let oldStage = old?.stages.first { $0.name == stage.name }
                    var oldConsumed: Set<String> = []
                    if let old, let oldIndex = old.stages.firstIndex(where: { $0.name == stage.name }) {
                        oldConsumed = Set(StageGraph(old).upstream(of: oldIndex).flatMap { old.stages[$0].outs.map(\.value) })
                    }
                    // With no file but manifests changed, a stage written and fed as before keys as before.
                    if only != nil, oldStage == stage, oldConsumed == consumed { continue }
                    let reasons = try keyChanges(old: oldStage, oldConsumed: oldConsumed, new: stage, consumed: consumed,
                                                 baseFiles: baseFiles, headFiles: headFiles, baseCommit: base.hex, headCommit: head.hex)
                    if !reasons.isEmpty {
                        changes.append(Plan.RunChange(object: manifest.ref.description, stage: stage.name, reasons: reasons))
                        pipelinesChanging[manifest.ref.name, default: []].append(stage.name)
                    }
                }
            case .trainingSchedule(let spec):
                var old: TrainingScheduleSpec?
                if case .trainingSchedule(let found)? = baseSet.manifests[manifest.ref]?.spec { old = found }
                let consumed = featureOutputs(spec.features, in: headSet.manifests)
                let oldConsumed = featureOutputs(old?.features, in: baseSet.manifests)
                let unchanged = only != nil && old.map(RunKey.stage(of:)) == RunKey.stage(of: spec) && oldConsumed == consumed
                var reasons = unchanged ? [] : try keyChanges(old: old.map(RunKey.stage(of:)), oldConsumed: oldConsumed,
                                                              new: RunKey.stage(of: spec), consumed: consumed, baseFiles: baseFiles,
                                                              headFiles: headFiles, baseCommit: base.hex, headCommit: head.hex)
                if let old, old.model != spec.model { reasons.insert("trains another model (\(old.model) → \(spec.model))", at: 0) }
                if let pipeline = spec.features, let stages = pipelinesChanging[pipeline] {
                    reasons.append("its features may change: FeaturePipeline/\(pipeline) reruns " + stages.joined(separator: ", ")
                                   + " (it retrains only if their outputs differ)")
                }
                if !reasons.isEmpty { changes.append(Plan.RunChange(object: manifest.ref.description, stage: nil, reasons: reasons)) }
            default:
                continue
            }
        }
        return changes
    }

    private static func dependsOnChanged(_ manifest: Manifest, _ pipelines: [String: [String]]) -> Bool {
        if case .trainingSchedule(let spec) = manifest.spec, let features = spec.features { return pipelines[features] != nil }
        return false
    }

    private static func featureOutputs(_ pipeline: String?, in manifests: [ObjectRef: Manifest]) -> Set<String> {
        guard let pipeline, case .featurePipeline(let spec)? = manifests[ObjectRef(.featurePipeline, pipeline)]?.spec else { return [] }
        return Set(spec.stages.flatMap(\.outs).map(\.value))
    }

    /// What changed between two stages' commit-decided key parts, in words; empty when nothing did.
    private static func keyChanges(old: FeaturePipelineSpec.Stage?, oldConsumed: Set<String>, new: FeaturePipelineSpec.Stage,
                                   consumed: Set<String>, baseFiles: any SourceFiles, headFiles: any SourceFiles,
                                   baseCommit: String, headCommit: String) throws -> [String] {
        let after: [String: String]
        do {
            after = try RunKey.repositoryParts(stage: new, field: "spec", consumed: consumed, at: { $0 }, files: headFiles, commit: headCommit).parts
        } catch let problem as RunProblem {
            return ["cannot be keyed at head: \(problem.message)"]
        }
        guard let old else { return ["new: runs for the first time"] }
        let before = (try? RunKey.repositoryParts(stage: old, field: "spec", consumed: oldConsumed, at: { $0 }, files: baseFiles,
                                                  commit: baseCommit).parts) ?? [:]
        let names = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
        return names.map { name in
            if name == "params" { return paramChanges(old.params, new.params) }
            let what = RunKey.describe(name)
            if before[name] == nil { return "\(what) added" }
            if after[name] == nil { return "\(what) removed" }
            return "\(what) changed"
        }
    }

    /// `params: C 1.0 → 0.5, max_iter added (200)`.
    static func paramChanges(_ old: [String: ParameterValue], _ new: [String: ParameterValue]) -> String {
        let names = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
        return "params: " + names.map { name in
            switch (old[name], new[name]) {
            case (nil, let value?): "\(name) added (\(value))"
            case (let value?, nil): "\(name) removed (was \(value))"
            case (let before?, let after?): "\(name) \(before) → \(after)"
            case (nil, nil): name
            }
        }.joined(separator: ", ")
    }
}

/// Base's objects as a plan needs them: the definition of each that wins (the first in file
/// and line order, as in a `ManifestSet`; nil when that one failed to parse) and which were
/// defined but failed. Base is not what the plan validates, so no cross-object checks are run:
/// they would cost as much as head's.
struct BaseObjects {
    private(set) var manifests: [ObjectRef: Manifest] = [:]
    private(set) var failed: Set<ObjectRef> = []

    init(files: some Sequence<ParsedFile>) {
        var first: [ObjectRef: SourceLocation] = [:]
        func offer(_ ref: ObjectRef, _ location: SourceLocation, _ manifest: Manifest?) {
            if let seen = first[ref], seen < location { return }
            first[ref] = location
            manifests[ref] = manifest
        }
        for file in files {
            for failure in file.failures {
                guard let ref = failure.ref else { continue }
                failed.insert(ref)
                offer(ref, failure.location, nil)
            }
            for manifest in file.manifests { offer(manifest.ref, manifest.location, manifest) }
        }
    }
}

/// `cairn plan` cannot compare what it was given.
public enum PlanError: Error, CustomStringConvertible, Sendable {
    case usage(String)

    public var description: String {
        switch self {
        case .usage(let text): text
        }
    }
}
