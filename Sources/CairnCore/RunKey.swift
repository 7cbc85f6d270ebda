public import CairnManifests
public import Foundation
import Synchronization

/// Why a stage or training cannot be keyed or run as written: it stalls the object until git
/// (or the data) changes.
public struct RunProblem: Error {
    public var reason: String
    public var message: String

    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// The run key of a pipeline stage or a training: the canonical SHA-256 of everything its
/// result depends on, kept part by part so the next run can say which part changed. A
/// TrainingSchedule is keyed as a stage whose outs are its outputs and whose upstream
/// outputs are its feature pipeline's.
///
/// Parts, by name:
/// - `command`, `shell`, `params`, `env` (the names of passed variables), `outs`;
/// - `program`: the file `command[0]` resolves to on the runs' PATH (an interpreter upgrade reruns);
/// - `dep:<path>`: each declared dependency in the repository, `data:<path>` each outside it;
/// - `code:<path>`: each repository file the command names or (for Python) imports;
/// - `input:<path>`: each output of an upstream stage, by its artifact's digest.
public struct RunKey {
    public var key: String
    public var parts: [String: String]
    public var paramsJSON: String

    /// `field` locates the stage in its manifest (`spec.stages[2]`, or `spec` for a training);
    /// `kind` separates the key spaces of kinds (`run/FeaturePipeline`).
    public init(stage: FeaturePipelineSpec.Stage, field: String, kind: String, consumed: [String: Artifact], object: Manifest,
                context: ReconcileContext, execution: Execution, memo: RunKeyMemo? = nil) throws {
        let policy = execution.policy
        func at(_ path: String) -> String { "\(object.location(of: path))" }

        // What the daemon allows.
        if stage.shell, !policy.allowShell {
            throw RunProblem(reason: "ShellNotAllowed", message: "\(at(field)): \(Self.label(stage)) sets shell: true, and this daemon "
                               + "runs no shell (start it with --allow-shell to allow it)")
        }
        let refused = stage.env.filter { !policy.passEnvironment.contains($0) }
        if !refused.isEmpty {
            throw RunProblem(reason: "EnvNotAllowed", message: "\(at(field)): \(Self.label(stage)) asks for "
                               + refused.joined(separator: ", ") + ", which the daemon does not pass to runs (its --pass-env list: "
                               + (policy.passEnvironment.isEmpty ? "empty" : policy.passEnvironment.sorted().joined(separator: ", ")) + ")")
        }
        if let refusal = policy.refusal(executor: stage.executor, resources: stage.resources) {
            throw RunProblem(reason: refusal.reason, message: "\(at(field)): \(Self.label(stage)) \(refusal.message)")
        }

        // What the commit decides: the same for every pass over one commit, so remembered.
        let outputs = Set(consumed.keys)
        let fromCommit = try memo?.repositoryParts(commit: context.sourceCommit, stage: stage, consumed: outputs) {
            try Self.repositoryParts(stage: stage, field: field, consumed: outputs, at: at, files: context.files, commit: context.sourceCommit)
        } ?? Self.repositoryParts(stage: stage, field: field, consumed: outputs, at: at, files: context.files, commit: context.sourceCommit)
        var parts = fromCommit.parts
        paramsJSON = fromCommit.paramsJSON

        // What the host decides, looked at every pass (a stat each, through the stat cache).
        let program = stage.shell ? "/bin/sh" : stage.command[0]
        if stage.shell || !Self.isRepositoryRelative(program) {
            guard let found = try execution.hostFiles.program(program) else {
                throw RunProblem(reason: "ProgramNotFound", message: "\(at(field)): \(Self.label(stage)) runs \(program), which is not "
                                   + "on the runs' PATH (/usr/local/bin:/usr/bin:/bin)")
            }
            parts["program"] = "\(found.path) \(found.hash)"
        }
        for (position, dependency) in stage.deps.enumerated() {
            if case .external(let path) = dependency {
                parts["data:\(path)"] = try Self.data(path, stage: stage, location: at("\(field).deps[\(position)]"), execution: execution)
            }
        }
        for argument in StageGraph.pathArguments(of: stage.command) where argument.hasPrefix("/") {
            if parts["data:\(argument)"] == nil {
                parts["data:\(argument)"] = try Self.data(argument, stage: stage, location: at("\(field)"), execution: execution)
            }
        }

        // What upstream stages produced.
        for (path, artifact) in consumed { parts["input:\(path)"] = artifact.digest.description }

        self.parts = parts
        key = try ContentKey.of(parts, kind: kind).description
    }

    /// A training, keyed as a stage without a name whose outs are its outputs (and so read
    /// the same way by its controller and by `cairn plan`).
    public static func stage(of spec: TrainingScheduleSpec) -> FeaturePipelineSpec.Stage {
        FeaturePipelineSpec.Stage(name: "", command: spec.command, shell: spec.shell, deps: spec.deps,
                                  outs: [spec.outputs.model] + (spec.outputs.metrics.map { [$0] } ?? []),
                                  params: spec.params, env: spec.env, timeout: spec.timeout, retries: spec.retries,
                                  resources: spec.resources, executor: spec.executor)
    }

    /// The kind a training's key is made in: the model is part of it, so trainings of two
    /// models alike are two trainings, each registering a version of its own model.
    public static func kind(of spec: TrainingScheduleSpec) -> String { "run/TrainingSchedule/" + spec.model }

    /// The parts the commit alone decides: command, shell, env names, outs, params, declared
    /// repository dependencies and the code found by itself.
    public static func repositoryParts(stage: FeaturePipelineSpec.Stage, field: String, consumed outputs: Set<String>, at: (String) -> String,
                                files: any SourceFiles, commit: String) throws -> RunKeyMemo.Parts {
        var parts: [String: String] = [:]
        parts["command"] = try Self.hash(stage.command, "argv")
        if stage.shell { parts["shell"] = "true" }
        if !stage.env.isEmpty { parts["env"] = stage.env.sorted().joined(separator: ",") }
        parts["outs"] = try Self.hash(stage.outs.map(\.value).sorted(), "outs")
        let paramsJSON = String(decoding: try CanonicalJSON.encode(stage.params), as: UTF8.self)
        if !stage.params.isEmpty { parts["params"] = ContentHash.sha256(of: Data(paramsJSON.utf8)).description }

        func consumedOutput(_ path: String) -> String? {
            outputs.first { path == $0 || path.hasPrefix($0 + "/") || $0.hasPrefix(path + "/") }
        }
        for (position, dependency) in stage.deps.enumerated() {
            guard case .repository(let path) = dependency else { continue }
            // An upstream output, or inside one: keyed by that output's digest.
            if outputs.contains(where: { path.value == $0 || path.value.hasPrefix($0 + "/") }) { continue }
            // A directory that holds an upstream output keys what the commit has in it too
            // (when it has anything), besides that output.
            let holdsOutput = consumedOutput(path.value) != nil
            guard let hash = try files.contentHash(of: path) else {
                if holdsOutput { continue }
                throw RunProblem(reason: "MissingDependency", message: "\(at("\(field).deps[\(position)]")): \(Self.label(stage)) depends on "
                                   + "\(path), which is not in commit \(commit.prefix(10)) and which no stage before it writes")
            }
            parts["dep:\(path)"] = hash.description
        }

        // Paths the command names, and what Python scripts among them import.
        let found = try CodeDependencies.find(command: stage.shell ? [] : stage.command, outs: stage.outs, in: files)
        for path in found.paths where parts["dep:\(path)"] == nil && consumedOutput(path.value) == nil {
            guard let hash = try files.contentHash(of: path) else { continue }
            parts["code:\(path)"] = hash.description
        }
        // The scan stopped at its bounds: the key holds what was found, and says it is partial
        // (list the rest under deps to have them keyed).
        if found.limitReached { parts["code-scan"] = "truncated at its limits" }
        return RunKeyMemo.Parts(parts: parts, paramsJSON: paramsJSON)
    }

    private static func hash(_ value: some Encodable, _ kind: String) throws -> String {
        try ContentKey.of(value, kind: kind).description
    }

    /// A path outside the repository: only under a data root, hashed through the stat cache.
    private static func data(_ path: String, stage: FeaturePipelineSpec.Stage, location: String, execution: Execution) throws -> String {
        if let refusal = execution.hostFiles.refusal(ofDataPath: path) {
            throw RunProblem(reason: "DataPathRefused", message: "\(location): \(Self.label(stage)) reads \(path): \(refusal)")
        }
        let found: ContentHash?
        do {
            found = try execution.hostFiles.contentHash(ofDataPath: path)
        } catch {
            // A symlink inside that leaves the data root, a file that cannot be read: the
            // data must change before this can work, so the pipeline stalls (not a backoff loop).
            throw RunProblem(reason: "DataPathRefused", message: "\(location): \(Self.label(stage)) reads \(path), which cannot be hashed: \(error)")
        }
        guard let hash = found else {
            throw RunProblem(reason: "MissingData", message: "\(location): \(Self.label(stage)) reads \(path), which does not exist")
        }
        return hash.description
    }

    /// `./run.sh` or `scripts/run.sh`: a program inside the repository, keyed as code.
    /// What changed from an earlier run's key parts to these, in words: `pipelines/featurize.py
    /// changed, params changed`; at most eight named.
    public static func changes(from previous: [String: String], to current: [String: String]) -> String {
        let names = Set(previous.keys).union(current.keys).sorted()
        let changed = names.filter { previous[$0] != current[$0] }.map { name -> String in
            if previous[name] == nil { return "\(describe(name)) added" }
            if current[name] == nil { return "\(describe(name)) removed" }
            return "\(describe(name)) changed"
        }
        return changed.isEmpty ? "its key changed" : changed.prefix(8).joined(separator: ", ")
            + (changed.count > 8 ? " and \(changed.count - 8) more" : "")
    }

    /// `<first 10 hex digits of the key>-<attempt>-<4 random hex digits>`: sortable by key,
    /// unique even if two daemons raced (the lock keeps them from it).
    public static func runID(key: String, attempt: Int) -> String {
        let hex = key.hasPrefix("sha256:") ? key.dropFirst(7) : Substring(key)
        let random = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return "\(hex.prefix(10))-\(attempt)-" + String(repeating: "0", count: 4 - random.count) + random
    }

    /// The paths of the key parts with these prefixes, with their hashes: `dep:train.py` →
    /// `train.py` (what lineage calls code, with `dep:` and `code:`, or data, with `data:`).
    public static func paths(in parts: [String: String], prefixes: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for (part, hash) in parts {
            guard let prefix = prefixes.first(where: { part.hasPrefix($0) }) else { continue }
            found[String(part.dropFirst(prefix.count))] = hash
        }
        return found
    }

    /// How messages name what is keyed: `stage featurize`, or `the training` for a
    /// TrainingSchedule (keyed as a stage without a name).
    static func label(_ stage: FeaturePipelineSpec.Stage) -> String {
        stage.name.isEmpty ? "the training" : "stage \(stage.name)"
    }

    public static func isRepositoryRelative(_ program: String) -> Bool {
        program.contains("/") && !program.hasPrefix("/")
    }

    /// A key part's name as people read it: `dep:data/raw.csv` → `data/raw.csv`.
    public static func describe(_ part: String) -> String {
        for prefix in ["dep:", "data:", "code:", "input:"] where part.hasPrefix(prefix) { return String(part.dropFirst(prefix.count)) }
        switch part {
        case "program": return "the program"
        case "params": return "params"
        case "command": return "the command"
        case "env": return "the passed environment"
        case "outs": return "the declared outputs"
        default: return part
        }
    }
}

/// The key parts a commit alone decides, remembered per commit, stage and the upstream
/// outputs it consumes, so a pass that a finished run set off does not scan code and hash
/// files again for every stage of a large pipeline. Bounded: it starts over past 10,000.
public final class RunKeyMemo: Sendable {
    public struct Parts: Sendable {
        public var parts: [String: String]
        public var paramsJSON: String
    }

    private struct Entry: Hashable {
        var commit: String
        var stage: FeaturePipelineSpec.Stage
        var consumed: Set<String>
    }

    private let entries = Mutex<[Entry: Parts]>([:])

    public init() {}

    public func repositoryParts(commit: String, stage: FeaturePipelineSpec.Stage, consumed: Set<String>,
                         compute: () throws -> Parts) throws -> Parts {
        let entry = Entry(commit: commit, stage: stage, consumed: consumed)
        if let known = entries.withLock({ $0[entry] }) { return known }
        let parts = try compute()
        entries.withLock { entries in
            if entries.count >= 10_000 { entries.removeAll(keepingCapacity: true) }
            entries[entry] = parts
        }
        return parts
    }
}
