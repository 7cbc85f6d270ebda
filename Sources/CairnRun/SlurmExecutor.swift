public import CairnCore
public import Foundation
import Glibc
public import Logging

/// How the daemon reaches its Slurm cluster (`cairn run --slurm-*`).
public struct SlurmConfiguration: Sendable {
    /// A directory this machine and every node see at the same path: runs live in `runs/`
    /// under it, the start probe writes in `probes/`.
    public var sharedDirectory: URL
    public var partition: String?
    public var account: String?
    /// More `sbatch` options from the daemon's configuration, passed as they are (never
    /// from a manifest).
    public var extraArguments: [String]
    /// How often one `squeue` call looks at every job in flight.
    public var pollInterval: Duration
    /// How long a job Slurm says is over may take to show its result file here (a shared
    /// file system's attribute cache) before it is recorded from Slurm's word alone.
    public var resultGrace: Duration

    public init(sharedDirectory: URL, partition: String? = nil, account: String? = nil, extraArguments: [String] = [],
                pollInterval: Duration = .seconds(1), resultGrace: Duration = .seconds(10)) {
        self.sharedDirectory = sharedDirectory
        self.partition = partition
        self.account = account
        self.extraArguments = extraArguments
        self.pollInterval = pollInterval
        self.resultGrace = resultGrace
    }
}

/// Runs jobs on a Slurm cluster. Each run is a batch job named after its run key and attempt
/// (`cairn-<key>-<attempt>`), whose script runs the same supervisor as the local executor
/// (`cairn _supervise RUN_DIR`) on the node and then writes its own exit status: the run's
/// end is read from files in the shared run directory, so it is known after Slurm forgets
/// the job, and the record is the same whichever executor ran it.
///
/// One `squeue` call per poll looks at every job in flight. Timeouts are Cairn's: Slurm's
/// `--time` counts whole minutes, so a run past its `timeout` is ended with `scancel` (and
/// `--time` is only the backstop while no daemon watches). After a restart, `recover` finds
/// the jobs still queued or running by name and watches them again; nothing is submitted
/// twice: `submit` looks a job of that name up before it calls `sbatch`.
public actor SlurmExecutor: JobExecutor {
    public nonisolated let name = "slurm"
    public nonisolated let completions: AsyncStream<JobHandle>
    let completed: AsyncStream<JobHandle>.Continuation

    let configuration: SlurmConfiguration
    public nonisolated let commands: SlurmCommands
    let ledger: any RunLedger
    let workspace: RunWorkspace
    let policy: ExecutionPolicy
    let supervisor: [String]
    let runsDirectory: URL
    let logger: Logger
    /// When now is; a test clock can stand in.
    let now: @Sendable () -> Date

    /// A run this executor watches, from submit (or adoption) until its end is recorded.
    struct Tracked {
        var record: RunRecord
        var jobName: String
        /// Slurm's id; nil while `sbatch` is under way.
        var jobID: String?
        var state: SlurmJobState = .pending
        var reason = ""
        var timeout: Duration?
        /// When it was first seen running.
        var runningSince: Date?
        var cancelRequested = false
        /// Cairn ended it with scancel for running past its timeout.
        var timedOut = false
        /// When Slurm first said it was over while its result file was not there yet.
        var overSince: Date?
        /// Its final record, while the ledger would not take it.
        var final: RunRecord?
    }

    var tracked: [String: Tracked] = [:]
    var poller: Task<Void, Never>?
    var detached = false
    /// The last squeue failure logged, so a controller that is down is said once a minute.
    var lastQueueWarning: Date?

    /// - Parameters:
    ///   - supervisor: the argv prefix that runs a supervisor on the node,
    ///     `[pathToCairn, "_supervise"]`; the run's directory is appended. The nodes must
    ///     have cairn at that path.
    public init(configuration: SlurmConfiguration, commands: SlurmCommands = SlurmCommands(), ledger: any RunLedger,
                artifacts: ArtifactStore, source: any SourceCheckout, policy: ExecutionPolicy, supervisor: [String],
                environment: [String: String] = ProcessInfo.processInfo.environment, logCap: Int = LocalExecutor.defaultLogCap,
                grace: Duration = .seconds(10), logger: Logger = Logger(label: "cairn.slurm"),
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.configuration = configuration
        self.commands = commands
        self.ledger = ledger
        self.policy = policy
        self.supervisor = supervisor
        self.logger = logger
        self.now = now
        runsDirectory = configuration.sharedDirectory.appendingPathComponent("runs")
        do {
            try FileManager.default.createDirectory(at: runsDirectory, withIntermediateDirectories: true)
        } catch {
            throw ExecutorError("could not create the runs directory \(runsDirectory.path) in --slurm-shared-dir: \(LocalExecutor.reason(error))")
        }
        workspace = RunWorkspace(artifacts: artifacts, source: source, daemonEnvironment: environment, logCap: logCap, grace: grace)
        (completions, completed) = AsyncStream.makeStream(of: JobHandle.self)
    }

    /// The job name of a run key's attempt: the same for every daemon, so a job can be found
    /// by it after the daemon that submitted it is gone.
    public static func jobName(key: String, attempt: Int) -> String {
        let hex = key.hasPrefix("sha256:") ? key.dropFirst(7) : Substring(key)
        let safe = hex.prefix(24).filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        return "cairn-\(safe)-\(attempt)"
    }

    /// Files of a run directory that only Slurm's runs have.
    enum Files {
        /// The batch script.
        static let script = "job.sh"
        /// Written by the script after the supervisor: its exit status.
        static let exitStatus = "exit-status"
        /// The job's own output and error (the script's and the supervisor's, not the command's).
        static let output = "slurm.out"
        static let error = "slurm.err"
        /// What a restarted daemon needs to watch the job again (its name and timeout).
        static let state = "slurm.json"
        /// Marks that Cairn cancelled the job, or ended it for time, before it ended.
        static let cancelled = "cancel-requested"
        static let timedOut = "timed-out"
    }

    struct JobFile: Codable {
        var jobName: String
        var timeoutSeconds: Double?
    }

    // MARK: - Submitting

    public func submit(_ spec: JobSpec) async throws -> JobHandle {
        if let run = tracked.values.first(where: { $0.record.key == spec.key && $0.final == nil }) { return handle(of: run) }
        let earlier: [RunRecord]
        do {
            earlier = try ledger.runs(withKey: spec.key)
        } catch {
            throw ExecutorError("could not read the runs of key \(spec.key) from the ledger: \(LocalExecutor.reason(error)); nothing was submitted")
        }
        if let unfinished = earlier.first(where: { !$0.state.isFinal }) { return unfinished.handle ?? placeholder(unfinished.id) }
        if let refusal = RunWorkspace.refusal(of: spec, policy: policy) { throw ExecutorRefusal(reason: "RunRefused", message: refusal) }

        let jobName = Self.jobName(key: spec.key, attempt: spec.attempt)
        let directory = runsDirectory.appendingPathComponent(spec.runID)
        var record = spec.submittedRecord(logPath: directory.appendingPathComponent(RunFiles.log).path, at: now())
        // The handle names this executor before Slurm has an id for it, so a restarted
        // daemon knows the run is Slurm's and looks for it by name.
        record.handle = JobHandle(executor: name, id: "", runID: spec.runID)
        do {
            try ledger.record(record)
        } catch {
            throw ExecutorError("could not record run \(spec.runID) in the ledger: \(LocalExecutor.reason(error)); nothing was submitted")
        }
        tracked[spec.runID] = Tracked(record: record, jobName: jobName, timeout: spec.timeout)

        let jobID: String
        do {
            // A job of this name that Slurm holds already (a daemon that died between sbatch
            // and writing the id down) is this run: it is adopted, never submitted again.
            if let existing = try await queue().first(where: { $0.name == jobName && !$0.state.isFinal }) {
                jobID = existing.jobID
                logger.info("found Slurm job \(jobID) for run \(spec.runID) already queued; adopted it, not submitted again",
                            metadata: ["cairn.run": "\(spec.runID)"])
            } else {
                try workspace.prepare(spec, in: directory, timeoutOnNode: false)
                try writeScript(spec, jobName: jobName, in: directory)
                jobID = try await sbatch(spec, jobName: jobName, in: directory)
            }
        } catch {
            var failed = record
            failed.state = .failed
            failed.finishedAt = now()
            failed.message = "could not submit it to Slurm: \(error)"
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(RunFiles.work))
            tracked.removeValue(forKey: spec.runID)
            if write(failed) { completed.yield(failed.handle ?? placeholder(spec.runID)) }
            return failed.handle ?? placeholder(spec.runID)
        }
        guard var run = tracked[spec.runID] else { return placeholder(spec.runID) }
        run.jobID = jobID
        run.record.handle = JobHandle(executor: name, id: jobID, runID: spec.runID)
        run.record.message = "queued as Slurm job \(jobID) (\(jobName))"
        tracked[spec.runID] = run
        write(run.record)
        if run.cancelRequested { try? await scancel(jobID) }
        ensurePolling()
        return handle(of: run)
    }

    /// The batch script: the supervisor, then the exit status into a file. It holds paths
    /// the daemon chose and nothing from a manifest (the command is in job.json).
    func writeScript(_ spec: JobSpec, jobName: String, in directory: URL) throws {
        let argv = (supervisor + [directory.path]).map(Self.shellQuoted).joined(separator: " ")
        let script = """
            #!/bin/sh
            # Cairn run \(spec.runID) (Slurm job name \(jobName)), written by the daemon. The command, its
            # environment and limits are in job.json; the supervisor runs it and writes result.json.
            # A TERM from scancel reaches the supervisor too; this shell waits for it to finish.
            trap 'true' TERM
            \(argv)
            status=$?
            printf '%s\\n' "$status" > \(Self.shellQuoted(directory.appendingPathComponent(Files.exitStatus).path))
            exit "$status"

            """
        do {
            try RunFiles.writeAtomically(Data(script.utf8), to: directory.appendingPathComponent(Files.script), mode: 0o700)
            let file = JobFile(jobName: jobName, timeoutSeconds: spec.timeout.map(LocalExecutor.seconds))
            try RunFiles.writeAtomically(try RunFiles.encoder.encode(file), to: directory.appendingPathComponent(Files.state))
        } catch {
            throw ExecutorError("could not write the job script in \(directory.path): \(LocalExecutor.reason(error))")
        }
    }

    /// `sbatch --parsable` with the run's name, files, limits and resources; Slurm's job id.
    func sbatch(_ spec: JobSpec, jobName: String, in directory: URL) async throws -> String {
        var arguments = ["--parsable", "--job-name=\(jobName)", "--chdir=\(directory.path)",
                         "--output=\(directory.appendingPathComponent(Files.output).path)",
                         "--error=\(directory.appendingPathComponent(Files.error).path)",
                         // Nothing of the daemon's environment goes to the job: job.json holds
                         // the command's whole environment.
                         "--export=NONE", "--no-requeue",
                         "--cpus-per-task=\(max(1, spec.cpus))"]
        if let minutes = Self.timeLimitMinutes(timeout: spec.timeout, wallTime: spec.wallTime, grace: workspace.grace) {
            arguments.append("--time=\(minutes)")
        }
        if let memory = spec.memory { arguments.append("--mem=\(memory.mebibytes)M") }
        if spec.gpus > 0 { arguments.append("--gres=gpu:\(spec.gpus)") }
        if let partition = configuration.partition { arguments.append("--partition=\(partition)") }
        if let account = configuration.account { arguments.append("--account=\(account)") }
        arguments += configuration.extraArguments
        arguments.append(directory.appendingPathComponent(Files.script).path)
        let output = try await commands.run("sbatch", arguments)
        // --parsable prints "ID" or "ID;CLUSTER".
        guard let line = output.split(whereSeparator: \.isNewline).last,
              let id = line.split(separator: ";").first, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SlurmError("sbatch printed no job id but \"\(output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))\"")
        }
        return String(id)
    }

    /// Slurm's `--time` in whole minutes: the wall time asked for, else the timeout plus the
    /// grace, rounded up, and a minute more so Cairn's own `scancel` comes first; nil for
    /// no limit (the partition's).
    static func timeLimitMinutes(timeout: Duration?, wallTime: Duration?, grace: Duration) -> Int? {
        if let wallTime { return max(1, Int((LocalExecutor.seconds(wallTime) / 60).rounded(.up))) }
        guard let timeout else { return nil }
        return Int(((LocalExecutor.seconds(timeout) + LocalExecutor.seconds(grace)) / 60).rounded(.up)) + 1
    }

    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    func handle(of run: Tracked) -> JobHandle {
        JobHandle(executor: name, id: run.jobID ?? "", runID: run.record.id)
    }

    func placeholder(_ runID: String) -> JobHandle {
        JobHandle(executor: name, id: "", runID: runID)
    }

    // MARK: - Watching

    public func observe(runID: String) async throws -> JobState {
        if let run = tracked[runID], run.final == nil {
            switch run.state {
            case .running, .completing, .suspended: return .running
            default: return run.runningSince == nil ? .pending : .running
            }
        }
        return try ledger.run(id: runID).map(JobState.init(recorded:)) ?? .lost
    }

    public func inFlight() async -> [String] {
        tracked.keys.sorted()
    }

    /// Stops watching: jobs go on in Slurm, nothing more is recorded here, and a later
    /// executor's `recover` adopts them. For a daemon that stops without cancelling its runs.
    public func detach() {
        detached = true
        poller?.cancel()
        poller = nil
    }

    func queue() async throws -> [SlurmQueueEntry] { try await commands.queue() }

    func ensurePolling() {
        guard poller == nil, !detached else { return }
        let interval = configuration.pollInterval
        poller = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, await self.pollOnce() else { break }
            }
        }
    }

    /// One look at every job in flight through a single `squeue`; false when nothing is left
    /// to watch (the poller stops until the next submit).
    @discardableResult
    public func pollOnce() async -> Bool {
        guard !detached else { return false }
        let watching = tracked.filter { $0.value.jobID != nil || $0.value.final != nil }
        guard !watching.isEmpty else {
            if tracked.isEmpty { poller = nil; return false }
            return true
        }
        let entries: [String: SlurmQueueEntry]
        do {
            entries = Dictionary(try await queue().map { ($0.jobID, $0) }, uniquingKeysWith: { first, _ in first })
        } catch {
            if lastQueueWarning.map({ now().timeIntervalSince($0) >= 60 }) ?? true {
                lastQueueWarning = now()
                logger.warning("could not ask Slurm about \(watching.count) job(s): \(error); looking again in \(configuration.pollInterval)")
            }
            return true
        }
        for (runID, run) in watching {
            if run.final != nil {
                await record(runID)
                continue
            }
            guard let jobID = run.jobID else { continue }
            await update(runID, entry: entries[jobID])
        }
        if tracked.isEmpty {
            poller = nil
            return false
        }
        return true
    }

    /// What one poll learned of one job: its state, its start, its timeout, its end.
    func update(_ runID: String, entry: SlurmQueueEntry?) async {
        guard var run = tracked[runID], let jobID = run.jobID else { return }
        guard let entry, !entry.state.isFinal else {
            await over(runID, entry: entry)
            return
        }
        run.state = entry.state
        switch entry.state {
        case .running, .completing:
            if run.runningSince == nil {
                run.runningSince = now()
                run.record.state = .running
                run.record.startedAt = run.record.startedAt ?? now()
                run.record.message = "running as Slurm job \(jobID)"
                tracked[runID] = run
                write(run.record)
            }
        case .pending where entry.reason != run.reason:
            run.reason = entry.reason
            run.record.message = "waiting in Slurm's queue as job \(jobID): \(entry.reason)"
            tracked[runID] = run
            write(run.record)
        default:
            break
        }
        tracked[runID] = run
        if let timeout = run.timeout, let since = run.runningSince, !run.timedOut, !run.cancelRequested,
           now().timeIntervalSince(since) > LocalExecutor.seconds(timeout) {
            run.timedOut = true
            tracked[runID] = run
            try? RunFiles.writeAtomically(Data(), to: runsDirectory.appendingPathComponent(runID).appendingPathComponent(Files.timedOut))
            logger.info("run \(runID) ran past its timeout of \(timeout); cancelling Slurm job \(jobID)", metadata: ["cairn.run": "\(runID)"])
            do {
                try await scancel(jobID)
            } catch {
                logger.error("could not cancel Slurm job \(jobID) of run \(runID) at its timeout: \(error); trying again next poll",
                             metadata: ["cairn.run": "\(runID)"])
                tracked[runID]?.timedOut = false
            }
        }
    }

    // MARK: - Cancelling

    public func cancel(runID: String) async throws {
        guard var run = tracked[runID] else {
            if let record = try ledger.run(id: runID), record.state.isFinal { return }
            throw ExecutorError("run \(runID) is not in flight here; nothing to cancel")
        }
        if run.final != nil || run.cancelRequested { return }
        run.cancelRequested = true
        tracked[runID] = run
        try? RunFiles.writeAtomically(Data(), to: runsDirectory.appendingPathComponent(runID).appendingPathComponent(Files.cancelled))
        // Without an id yet, submit cancels it as soon as sbatch answers.
        guard let jobID = run.jobID else { return }
        do {
            try await scancel(jobID)
        } catch {
            throw ExecutorError("could not cancel Slurm job \(jobID) of run \(runID): \(error)")
        }
    }

    /// `scancel`: SIGTERM to the job's processes (the supervisor ends its command's group
    /// within its grace), SIGKILL after the cluster's KillWait.
    func scancel(_ jobID: String) async throws {
        _ = try await commands.run("scancel", [jobID])
    }

    /// Records `record`; a failure is logged and leaves the ledger as it was.
    @discardableResult
    func write(_ record: RunRecord) -> Bool { ledger.write(record, logger: logger) }
}
