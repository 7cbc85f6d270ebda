import ArgumentParser
import CairnCore
import CairnEngine
import CairnRun
import CairnServe
import CairnStore
import Foundation
import Logging

/// What runs started by this process may do: `cairn run` and `cairn reconcile --once`.
struct RunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Runs at once at most; a stage with resources.cpus N takes N of them. Default: the number of cores.",
                               valueName: "n"))
    var maxRuns: Int?

    @Flag(help: "Allow stages with shell: true (Cairn hands their command to /bin/sh -c). Off by default; see Docs/runs.md for what a stage can do anyway.")
    var allowShell = false

    @Option(help: ArgumentHelp("A variable of this process's environment that runs may ask for (stage env: [NAME]); repeatable. Nothing else passes.",
                               valueName: "name"))
    var passEnv: [String] = []

    @Option(help: ArgumentHelp("A directory outside the repository whose files stages may name as inputs (absolute deps and command paths), hashed into their keys; repeatable.",
                               valueName: "dir"))
    var dataRoot: [String] = []

    @Option(help: ArgumentHelp("The most a run's log keeps, such as 64MiB; the tail is kept, with a note that the start was cut.",
                               valueName: "size"))
    var logLimit: String = "64MiB"

    func validate() throws {
        if let maxRuns, maxRuns < 1 { throw ValidationError("--max-runs must be at least 1") }
        for name in passEnv where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) || name.first!.isNumber {
            throw ValidationError("--pass-env \(name) is not a variable name (letters, digits and _, not starting with a digit)")
        }
        for root in dataRoot {
            guard root.hasPrefix("/") else { throw ValidationError("--data-root \(root) must be an absolute path") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--data-root \(root) is not a directory")
            }
        }
        _ = try logLimitBytes()
    }

    /// `--log-limit` in bytes.
    func logLimitBytes() throws -> Int {
        guard let bytes = byteSize(logLimit) else { throw ValidationError("--log-limit \(logLimit) is not a size such as 64MiB or 512KiB") }
        return bytes
    }

    var policy: ExecutionPolicy {
        ExecutionPolicy(allowShell: allowShell, passEnvironment: Set(passEnv),
                        dataRoots: dataRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                        maxRuns: maxRuns ?? ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// A size as options give it: a positive number with an optional KiB, MiB or GiB (or k, M, G, B).
func byteSize(_ text: String) -> Int? {
    let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10),
                                  ("K", 1 << 10), ("B", 1)]
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        if let value = Int(text.dropLast(suffix.count)), value > 0, value <= Int.max / factor { return value * factor }
    }
    if let value = Int(text), value > 0 { return value }
    return nil
}

extension RunOptions {
    /// The local executor and what controllers need beside it, under `stateDirectory`.
    /// `store` is the engine's: one metadata store (and one pool of connections) per process.
    func makeExecution(stateDirectory: URL, repository: URL, store: Store, logger: Logger) throws -> Execution {
        let artifacts = try ArtifactStore(root: stateDirectory.appendingPathComponent("artifacts"))
        let policy = self.policy
        let executor = try LocalExecutor(stateDirectory: stateDirectory, ledger: store, artifacts: artifacts,
                                         source: GitCheckout(repository: repository), policy: policy,
                                         supervisor: [Self.cairnPath, "_supervise"], environment: ProcessInfo.processInfo.environment,
                                         logCap: try logLimitBytes(), logger: logger)
        return Execution(executor: executor, artifacts: artifacts, hostFiles: LocalHostFiles(policy: policy, cache: store), policy: policy)
    }

    /// Where ModelDeployments serve, under `<state>/serving`. `processes`: whether process
    /// targets may run (only in a process that stays, such as `cairn run`); `workingTree` is
    /// the local repository's, which a relative directory target lies under.
    func makeDeployer(stateDirectory: URL, repository: URL, workingTree: URL?, processes: Bool, logger: Logger) throws -> ServingDeployer {
        let environment = ServingEnvironment(
            directory: stateDirectory.appendingPathComponent("serving"),
            artifacts: try ArtifactStore(root: stateDirectory.appendingPathComponent("artifacts")),
            source: GitCheckout(repository: repository), repositoryRoot: workingTree, dataRoots: policy.dataRoots,
            processes: processes, logger: logger)
        do {
            return try ServingDeployer(environment: environment)
        } catch {
            throw CairnExit.unreadable("could not prepare serving in \(environment.directory.path): \(error)")
        }
    }

    /// This binary, which runs each job's supervisor (`cairn _supervise`).
    static var cairnPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
