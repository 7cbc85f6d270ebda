/// All manifests of one revision, checked as a whole: duplicates, references between objects,
/// stage names, and cycles. Each finding is attributed to the object it belongs to, so the
/// reconciler can stall that object alone.
///
/// The set is incremental: `update(_:)` replaces some files and re-checks only the objects
/// those files define and the objects whose checks read them (what names them, what they
/// name, what reads their outputs), so a commit that changes one manifest costs what that
/// manifest touches, not what the repository holds.
public struct ManifestSet: Sendable {
    /// Every valid object, by `Kind/name`.
    public private(set) var manifests: [ObjectRef: Manifest] = [:]
    /// Objects whose manifest or references are broken, with what is wrong with each.
    public private(set) var broken: [ObjectRef: [Diagnostic]] = [:]
    public private(set) var graph = DependencyGraph()

    private var files: [String: ParsedFile] = [:]
    /// Every definition of each object (valid or not), in file and line order; the first wins.
    private var definitions: [ObjectRef: [Definition]] = [:]
    /// Findings that belong to no object (a file that is not YAML, a symlink), by file.
    private var unattributed: [String: [Diagnostic]] = [:]
    private var crossProblems: [ObjectRef: [Diagnostic]] = [:]
    private var cycleProblems: [ObjectRef: [Diagnostic]] = [:]
    private var index = ReferenceIndex()

    /// Where an object is defined. A valid definition points at its manifest in `files` by
    /// index instead of holding a copy: ten thousand objects would otherwise be held twice.
    private struct Definition: Sendable {
        var path: String
        var location: SourceLocation
        var manifestIndex: Int?
        var problems: [Diagnostic]
    }

    private func manifest(of definition: Definition) -> Manifest? {
        definition.manifestIndex.flatMap { files[definition.path]?.manifests[$0] }
    }

    public init(files: [ParsedFile]) {
        update(files.map { ($0.path, $0) })
    }

    /// How many manifest files are in the set.
    public var fileCount: Int { files.count }

    /// Whether part of the commit's tree was refused (a directory too deep, or past the entry
    /// budget): such a refusal stands in the set as a file whose path ends in `/`.
    public var hasRefusedDirectories: Bool { unattributed.keys.contains { $0.hasSuffix("/") } }

    /// Whether the set holds a file at `path`.
    public func contains(file path: String) -> Bool { files[path] != nil }

    /// How many YAML documents were skipped as not Cairn manifests.
    public var skippedDocuments: Int { files.values.reduce(0) { $0 + $1.skippedDocuments } }

    /// Every finding, in file and line order.
    public var diagnostics: [Diagnostic] {
        (unattributed.values.flatMap { $0 } + broken.values.flatMap { $0 })
            .sorted { ($0.location, $0.message) < ($1.location, $1.message) }
    }

    /// Errors that belong to no object, by file: a file that is not YAML at all, a refused
    /// directory. Each file's first error, as `file:line:col: message`.
    public var unreadableFiles: [String] {
        unattributed.compactMap { _, problems in problems.first { $0.severity == .error } }
            .sorted { $0.location < $1.location }
            .map { "\($0.location): \($0.message)" }
    }

    /// Whether any finding is an error.
    public var isValid: Bool { broken.isEmpty && !unattributed.values.contains { $0.hasErrors } }

    /// Valid objects in dependency order.
    public var ordered: [Manifest] {
        graph.topologicalOrder().compactMap { manifests[$0] }
    }

    /// Replaces files (nil removes one) and re-checks what they touch. Returns every object
    /// whose definition, findings or dependencies may have changed.
    @discardableResult
    public mutating func update(_ changes: [(path: String, file: ParsedFile?)]) -> Set<ObjectRef> {
        var defined: Set<ObjectRef> = []
        for (path, file) in changes {
            if let old = files[path] {
                for ref in old.refs {
                    definitions[ref]?.removeAll { $0.path == path }
                    defined.insert(ref)
                }
                unattributed[path] = nil
            }
            files[path] = file
            guard let file else { continue }
            for failure in file.failures {
                if let ref = failure.ref {
                    definitions[ref, default: []].append(Definition(path: path, location: failure.location, manifestIndex: nil,
                                                                    problems: failure.diagnostics))
                    defined.insert(ref)
                } else {
                    unattributed[path, default: []] += failure.diagnostics
                }
            }
            for (position, manifest) in file.manifests.enumerated() {
                definitions[manifest.ref, default: []].append(Definition(path: path, location: manifest.location, manifestIndex: position,
                                                                         problems: []))
                defined.insert(manifest.ref)
            }
        }
        let hadBrokenSchedule = broken.keys.contains { $0.kind == .trainingSchedule }

        // Whoever names or reads these objects before the change is affected by it.
        var affected = defined
        for ref in defined {
            affected.formUnion(index.referrers(of: ref))
            affected.formUnion(graph.dependents[ref] ?? [])
            affected.formUnion(graph.dependencies[ref] ?? [])
        }
        // Whether a Model is trained decides the retrain check of the Monitors watching it.
        var monitorsToRecheck: Set<ObjectRef> = []
        for ref in defined {
            if let old = manifests[ref] {
                if case .trainingSchedule(let spec) = old.spec { monitorsToRecheck.formUnion(index.monitors(ofModel: spec.model)) }
                index.remove(old)
            }
            var list = definitions[ref] ?? []
            list.sort { $0.location < $1.location }
            definitions[ref] = list.isEmpty ? nil : list
            if let first = list.first, let winner = manifest(of: first) {
                manifests[ref] = winner
                index.add(winner)
                if case .trainingSchedule(let spec) = winner.spec { monitorsToRecheck.formUnion(index.monitors(ofModel: spec.model)) }
            } else {
                manifests[ref] = nil
            }
        }
        // ... and so is whoever names or reads them after it.
        for ref in defined {
            affected.formUnion(index.referrers(of: ref))
            if let manifest = manifests[ref] { affected.formUnion(index.related(to: manifest)) }
        }
        var recheck = affected.union(monitorsToRecheck)

        for ref in recheck {
            graph.removeEdges(from: ref)
            if let manifest = manifests[ref] {
                graph.add(ref)
                for dependency in index.dependencies(of: manifest, among: manifests) { graph.add(ref, dependsOn: dependency) }
            } else {
                graph.remove(ref)
            }
        }
        // Monitors last: their retrain check reads whether any TrainingSchedule is broken.
        for ref in recheck where ref.kind != .monitor { refreshProblems(of: ref, anyBrokenSchedule: false) }
        let hasBrokenSchedule = broken.keys.contains { $0.kind == .trainingSchedule }
        if hasBrokenSchedule != hadBrokenSchedule {
            recheck.formUnion(manifests.keys.filter { $0.kind == .monitor })
        }
        for ref in recheck where ref.kind == .monitor { refreshProblems(of: ref, anyBrokenSchedule: hasBrokenSchedule) }
        if recheck.contains(where: { $0.kind == .featurePipeline }) {
            let before = Set(cycleProblems.keys)
            cycleProblems = [:]
            for cycle in graph.cycles(among: [.featurePipeline]) {
                let path = (cycle + [cycle[0]]).map(\.description).joined(separator: " → ")
                for ref in cycle {
                    cycleProblems[ref, default: []].append(Diagnostic(
                        at: manifests[ref]?.location ?? SourceLocation(file: "?", line: 1, column: 1), object: ref.description,
                        "\(ref) is part of a dependency cycle: \(path)", hint: "break the cycle: outputs may not feed back into their own inputs"))
                }
            }
            for ref in before.union(cycleProblems.keys) {
                recheck.insert(ref)
                assembleBroken(ref)
            }
        }
        return recheck
    }

    private mutating func refreshProblems(of ref: ObjectRef, anyBrokenSchedule: Bool) {
        let definitions = self.definitions
        var checker = ObjectChecker(manifests: manifests, index: index, exists: { definitions[$0] != nil },
                                    anyBrokenSchedule: anyBrokenSchedule)
        if let manifest = manifests[ref] { checker.check(manifest) }
        crossProblems[ref] = checker.problems.isEmpty ? nil : checker.problems
        assembleBroken(ref)
    }

    /// What is wrong with one object: its own parse errors, duplicate definitions, and the
    /// cross-object and cycle findings.
    private mutating func assembleBroken(_ ref: ObjectRef) {
        var problems: [Diagnostic] = []
        let list = definitions[ref] ?? []
        for definition in list { problems += definition.problems }
        if let first = list.first {
            for duplicate in list.dropFirst() where duplicate.manifestIndex != nil {
                problems.append(Diagnostic(at: duplicate.location, field: "metadata.name", object: ref.description,
                                           "\(ref) is defined twice; the other definition is at \(first.location)",
                                           hint: "rename one of them or delete the duplicate"))
            }
        }
        problems += crossProblems[ref] ?? []
        problems += cycleProblems[ref] ?? []
        broken[ref] = problems.isEmpty ? nil : problems.map { diagnostic in
            var diagnostic = diagnostic
            diagnostic.object = ref.description
            return diagnostic
        }
    }
}

extension ParsedFile {
    /// The objects this file defines, valid or not.
    public var refs: Set<ObjectRef> { Set(manifests.map(\.ref) + failures.compactMap(\.ref)) }
}
