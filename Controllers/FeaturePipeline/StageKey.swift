import CairnCore
import CairnManifests
import Foundation
import Synchronization

/// Why a stage cannot be keyed or run as written: it stalls the pipeline until git changes.
struct StageProblem: Error {
    var reason: String
    var message: String
}

/// A stage's run key: the canonical SHA-256 of everything its result depends on, kept part
/// by part so the next run can say which part changed.
///
/// Parts, by name:
/// - `command`, `shell`, `params`, `env` (the names of passed variables), `outs`;
/// - `program`: the file `command[0]` resolves to on the runs' PATH (an interpreter upgrade reruns);
/// - `dep:<path>`: each declared dependency in the repository, `data:<path>` each outside it;
/// - `code:<path>`: each repository file the command names or (for Python) imports;
/// - `input:<path>`: each output of an upstream stage, by its artifact's digest.
struct StageKey {
    var key: String
    var parts: [String: String]
    var paramsJSON: String

    init(stage: FeaturePipelineSpec.Stage, index: Int, consumed: [String: Artifact], object: Manifest, context: ReconcileContext,
         execution: Execution, memo: StageKeyMemo? = nil) throws {
        let policy = execution.policy
        let field = "spec.stages[\(index)]"
        func at(_ path: String) -> String { "\(object.location(of: path))" }

        // What the daemon allows.
        if stage.shell, !policy.allowShell {
            throw StageProblem(reason: "ShellNotAllowed", message: "\(at(field)): stage \(stage.name) sets shell: true, and this daemon "
                               + "runs no shell (start it with --allow-shell to allow it)")
        }
        let refused = stage.env.filter { !policy.passEnvironment.contains($0) }
        if !refused.isEmpty {
            throw StageProblem(reason: "EnvNotAllowed", message: "\(at(field)): stage \(stage.name) asks for "
                               + refused.joined(separator: ", ") + ", which the daemon does not pass to runs (its --pass-env list: "
                               + (policy.passEnvironment.isEmpty ? "empty" : policy.passEnvironment.sorted().joined(separator: ", ")) + ")")
        }
        if stage.resources.cpus > policy.maxRuns {
            throw StageProblem(reason: "InsufficientResources", message: "\(at(field)): stage \(stage.name) needs \(stage.resources.cpus) "
                               + "cpus, and this daemon runs at most \(policy.maxRuns) at once (--max-runs)")
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
                throw StageProblem(reason: "ProgramNotFound", message: "\(at(field)): stage \(stage.name) runs \(program), which is not "
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
        key = try ContentKey.of(parts, kind: "run/FeaturePipeline").description
    }

    /// The parts the commit alone decides: command, shell, env names, outs, params, declared
    /// repository dependencies and the code found by itself.
    static func repositoryParts(stage: FeaturePipelineSpec.Stage, field: String, consumed outputs: Set<String>, at: (String) -> String,
                                files: any SourceFiles, commit: String) throws -> StageKeyMemo.Parts {
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
                throw StageProblem(reason: "MissingDependency", message: "\(at("\(field).deps[\(position)]")): stage \(stage.name) depends on "
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
        return StageKeyMemo.Parts(parts: parts, paramsJSON: paramsJSON)
    }

    private static func hash(_ value: some Encodable, _ kind: String) throws -> String {
        try ContentKey.of(value, kind: kind).description
    }

    /// A path outside the repository: only under a data root, hashed through the stat cache.
    private static func data(_ path: String, stage: FeaturePipelineSpec.Stage, location: String, execution: Execution) throws -> String {
        if let refusal = execution.hostFiles.refusal(ofDataPath: path) {
            throw StageProblem(reason: "DataPathRefused", message: "\(location): stage \(stage.name) reads \(path): \(refusal)")
        }
        let found: ContentHash?
        do {
            found = try execution.hostFiles.contentHash(ofDataPath: path)
        } catch {
            // A symlink inside that leaves the data root, a file that cannot be read: the
            // data must change before this can work, so the pipeline stalls (not a backoff loop).
            throw StageProblem(reason: "DataPathRefused", message: "\(location): stage \(stage.name) reads \(path), which cannot be hashed: \(error)")
        }
        guard let hash = found else {
            throw StageProblem(reason: "MissingData", message: "\(location): stage \(stage.name) reads \(path), which does not exist")
        }
        return hash.description
    }

    /// `./run.sh` or `scripts/run.sh`: a program inside the repository, keyed as code.
    static func isRepositoryRelative(_ program: String) -> Bool {
        program.contains("/") && !program.hasPrefix("/")
    }

    /// A key part's name as people read it: `dep:data/raw.csv` → `data/raw.csv`.
    static func describe(_ part: String) -> String {
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
final class StageKeyMemo: Sendable {
    struct Parts: Sendable {
        var parts: [String: String]
        var paramsJSON: String
    }

    private struct Entry: Hashable {
        var commit: String
        var stage: FeaturePipelineSpec.Stage
        var consumed: Set<String>
    }

    private let entries = Mutex<[Entry: Parts]>([:])

    func repositoryParts(commit: String, stage: FeaturePipelineSpec.Stage, consumed: Set<String>,
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
