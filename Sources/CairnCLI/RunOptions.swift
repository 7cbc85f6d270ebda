import ArgumentParser
import CairnCore
import CairnEngine
import CairnManifests
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

    @Option(help: ArgumentHelp("Where runs go when their manifest does not say (executor:): local (processes on this machine) or slurm (needs --slurm-shared-dir).",
                               valueName: "name"))
    var executor: String = "local"

    @Option(help: ArgumentHelp("A directory this machine and every Slurm node see at the same path: runs live in it. Adds the Slurm executor; checked at start by a probe job.",
                               valueName: "dir"))
    var slurmSharedDir: String?

    @Option(help: ArgumentHelp("The Slurm partition jobs go to (sbatch --partition); default: the cluster's.", valueName: "name"))
    var slurmPartition: String?

    @Option(help: ArgumentHelp("The Slurm account jobs are charged to (sbatch --account).", valueName: "name"))
    var slurmAccount: String?

    @Option(parsing: .unconditionalSingleValue,
            help: ArgumentHelp("One more sbatch option for every job, such as --qos=high (written --sbatch-option=--qos=high); repeatable.",
                               valueName: "option"))
    var sbatchOption: [String] = []

    @Option(help: ArgumentHelp("The directory of sbatch, squeue, scontrol and scancel; default: found on PATH.", valueName: "dir"))
    var slurmBin: String?

    @Option(help: ArgumentHelp("How often one squeue call looks at every Slurm job in flight, such as 2s.", valueName: "duration"))
    var slurmPoll: String = "1s"

    @Option(help: ArgumentHelp("How long the start probe job may take to write its nonce before the daemon gives up, such as 2m.",
                               valueName: "duration"))
    var slurmProbeTimeout: String = "2m"

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
        guard let wanted = RunExecutorName(rawValue: executor) else {
            throw ValidationError("--executor \(executor) is not an executor: use local or slurm")
        }
        if let directory = slurmSharedDir {
            guard directory.hasPrefix("/") else { throw ValidationError("--slurm-shared-dir \(directory) must be an absolute path") }
            // sbatch reads % in --output and --error as a pattern (%j, %u).
            guard !directory.contains("%") else { throw ValidationError("--slurm-shared-dir \(directory) must not contain %, which sbatch reads as a pattern") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--slurm-shared-dir \(directory) is not a directory")
            }
        } else if wanted == .slurm {
            throw ValidationError("--executor slurm needs --slurm-shared-dir: a directory this machine and the nodes share, where runs live")
        } else if slurmPartition != nil || slurmAccount != nil || !sbatchOption.isEmpty || slurmBin != nil {
            throw ValidationError("the --slurm-* and --sbatch-option options need --slurm-shared-dir, which adds the Slurm executor")
        }
        for (name, text) in [("--slurm-poll", slurmPoll), ("--slurm-probe-timeout", slurmProbeTimeout)] {
            guard (try? ManifestDuration(parsing: text))?.milliseconds ?? 0 > 0 else {
                throw ValidationError("\(name) \(text) is not a duration such as 1s or 2m")
            }
        }
    }

    /// The Slurm executor's configuration, when `--slurm-shared-dir` adds it.
    var slurm: SlurmConfiguration? {
        guard let slurmSharedDir else { return nil }
        return SlurmConfiguration(sharedDirectory: URL(fileURLWithPath: slurmSharedDir).standardizedFileURL, partition: slurmPartition,
                                  account: slurmAccount, extraArguments: sbatchOption,
                                  pollInterval: (try? ManifestDuration(parsing: slurmPoll))?.duration ?? .seconds(1))
    }

    /// Before the first pass: a probe job shows that the nodes see `--slurm-shared-dir`.
    /// Without Slurm this does nothing; a probe that fails stops the daemon, saying why.
    func probeSlurm(logger: Logger) async throws {
        guard let slurm else { return }
        let limit = (try? ManifestDuration(parsing: slurmProbeTimeout))?.duration ?? .seconds(120)
        logger.info("checking that Slurm's nodes share \(slurm.sharedDirectory.path): a probe job writes a nonce there (up to \(slurmProbeTimeout))")
        do {
            let found = try await SlurmProbe.run(slurm, commands: SlurmCommands(directory: slurmBin), within: limit)
            logger.info("Slurm is ready: probe job \(found.jobID) wrote its nonce in \(found.elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
        } catch {
            throw CairnExit.unreadable("the Slurm executor cannot start: \(error)")
        }
    }

    /// `--log-limit` in bytes.
    func logLimitBytes() throws -> Int {
        guard let bytes = byteSize(logLimit) else { throw ValidationError("--log-limit \(logLimit) is not a size such as 64MiB or 512KiB") }
        return bytes
    }

    var policy: ExecutionPolicy {
        ExecutionPolicy(allowShell: allowShell, passEnvironment: Set(passEnv),
                        dataRoots: dataRoot.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                        maxRuns: maxRuns ?? ProcessInfo.processInfo.activeProcessorCount,
                        defaultExecutor: RunExecutorName(rawValue: executor) ?? .local,
                        executors: slurmSharedDir == nil ? [.local] : [.local, .slurm],
                        hostMemoryBytes: Int64(ProcessInfo.processInfo.physicalMemory))
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
        let hostFiles = LocalHostFiles(policy: policy, cache: store)
        guard let slurm else {
            // Runs a daemon with Slurm left would otherwise sit unwatched, saying nothing.
            let stranded = (try? store.unfinishedRuns().filter { $0.handle?.executor == RunExecutorName.slurm.rawValue }) ?? []
            if !stranded.isEmpty {
                logger.warning("\(stranded.count) run(s) on Slurm were left unfinished by the last daemon (\(stranded.prefix(3).map(\.id).joined(separator: ", "))\(stranded.count > 3 ? ", …" : "")); start with the same --slurm-shared-dir to watch them again")
            }
            return Execution(executor: executor, artifacts: artifacts, hostFiles: hostFiles, policy: policy)
        }
        let onSlurm = try SlurmExecutor(configuration: slurm, commands: SlurmCommands(directory: slurmBin), ledger: store, artifacts: artifacts,
                                        source: GitCheckout(repository: repository), policy: policy, supervisor: [Self.cairnPath, "_supervise"],
                                        environment: ProcessInfo.processInfo.environment, logCap: try logLimitBytes(), logger: logger)
        let router = ExecutorRouter(default: policy.defaultExecutor, executors: [.local: executor, .slurm: onSlurm], ledger: store)
        return Execution(executor: router, artifacts: artifacts, hostFiles: hostFiles, policy: policy)
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
