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

    /// The options every job gets from the daemon: partition, account, then the extra ones.
    var sbatchOptions: [String] {
        (partition.map { ["--partition=\($0)"] } ?? []) + (account.map { ["--account=\($0)"] } ?? []) + extraArguments
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
        /// When Cairn's last `scancel` of it succeeded; one is sent again while it runs on.
        var lastScancel: Date?
        /// When `sbatch` gave no answer in time: the job may exist, and is looked for by name.
        var unanswered: Date?
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
                grace: Duration = .seconds(10), logger: Logger = Logger(label: "cairn.slurm")) throws {
        self.configuration = configuration
        self.commands = commands
        self.ledger = ledger
        self.policy = policy
        self.supervisor = supervisor
        self.logger = logger
        runsDirectory = configuration.sharedDirectory.appendingPathComponent("runs")
        do {
            try FileManager.default.createDirectory(at: runsDirectory, withIntermediateDirectories: true)
        } catch {
            throw ExecutorError("could not create the runs directory \(runsDirectory.path) in --slurm-shared-dir: \(LocalExecutor.reason(error))")
        }
        workspace = RunWorkspace(artifacts: artifacts, source: source, daemonEnvironment: environment, logCap: logCap, grace: grace)
        (completions, completed) = AsyncStream.makeStream(of: JobHandle.self)
    }

    /// The job name of a run: `cairn-<run id>`, the run id being the run key's first hex
    /// digits, the attempt and a random suffix. Unique to the run, so a job found by this name
    /// after a restart is this run's and no other's.
    public static func jobName(runID: String) -> String {
        "cairn-" + runID.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
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

        let jobName = Self.jobName(runID: spec.runID)
        let directory = runsDirectory.appendingPathComponent(spec.runID)
        var record = spec.submittedRecord(logPath: directory.appendingPathComponent(RunFiles.log).path, at: Date())
        // The handle names this executor before Slurm has an id for it, so a restarted
        // daemon knows the run is Slurm's and looks for it by name.
        record.handle = JobHandle(executor: name, id: "", runID: spec.runID)
        do {
            try ledger.record(record)
        } catch {
            throw ExecutorError("could not record run \(spec.runID) in the ledger: \(LocalExecutor.reason(error)); nothing was submitted")
        }
        tracked[spec.runID] = Tracked(record: record, jobName: jobName, timeout: spec.timeout)

        // What the daemon makes before Slurm sees the run; a failure here is the run's own
        // (its commit, its inputs), recorded as the local executor records one.
        do {
            try workspace.prepare(spec, in: directory, timeoutOnNode: false)
            try writeScript(spec, jobName: jobName, in: directory)
        } catch {
            end(spec.runID, .failed, message: "could not start: \(error is ExecutorError ? "\(error)" : LocalExecutor.reason(error))")
            return placeholder(spec.runID)
        }
        let jobID: String
        do {
            jobID = try await commands.submit(sbatchArguments(spec, jobName: jobName, in: directory),
                                              script: directory.appendingPathComponent(Files.script))
        } catch where error.kind == .refused {
            // The controller answered and refused the job: it fails, saying what Slurm said.
            end(spec.runID, .failed, message: "Slurm refused it: \(error)")
            return placeholder(spec.runID)
        } catch where error.kind == .missing {
            // A daemon whose Slurm tools are not where it looks: nothing will change by itself.
            end(spec.runID, .failed, message: "could not submit it to Slurm: \(error)")
            return placeholder(spec.runID)
        } catch where error.kind == .noAnswer {
            // The job may be queued all the same: polls look for it by its name (this run's
            // alone), and record it never started if Slurm does not have it.
            tracked[spec.runID]?.unanswered = Date()
            logger.warning("sbatch gave no answer for run \(spec.runID); looking for job \(jobName) in Slurm's queue",
                           metadata: ["cairn.run": "\(spec.runID)"])
            ensurePolling()
            return placeholder(spec.runID)
        } catch {
            // Nothing was queued (Slurm could not be reached): the run never started and runs
            // again, not counted against its retries. The controller hears of it as passing
            // trouble, paced by the engine's backoff; announcing an end instead would wake the
            // object at once, to fail again at once.
            end(spec.runID, .interrupted, message: "never started: could not submit it to Slurm: \(error)", announce: false)
            throw ExecutorError("could not submit run \(spec.runID) to Slurm: \(error)")
        }
        queued(spec.runID, as: jobID)
        if tracked[spec.runID]?.cancelRequested == true { await sendScancel(spec.runID) }
        ensurePolling()
        return tracked[spec.runID].map(handle(of:)) ?? JobHandle(executor: name, id: jobID, runID: spec.runID)
    }

    /// Slurm took the run as `jobID`: the id is written down with it.
    func queued(_ runID: String, as jobID: String) {
        guard var run = tracked[runID] else { return }
        run.jobID = jobID
        run.unanswered = nil
        run.record.handle = JobHandle(executor: name, id: jobID, runID: runID)
        run.record.message = "queued as Slurm job \(jobID) (\(run.jobName))"
        tracked[runID] = run
        write(run.record)
    }

    /// Records the run ended before it reached Slurm (or while nobody knew its job), and stops
    /// watching it once the ledger has that; an `interrupted` run keeps no start time.
    func end(_ runID: String, _ state: RunRecord.State, message: String, announce: Bool = true) {
        guard var run = tracked[runID] else { return }
        var record = run.record
        record.state = state
        record.finishedAt = Date()
        if state == .interrupted { record.startedAt = nil }
        record.message = message
        try? FileManager.default.removeItem(at: runsDirectory.appendingPathComponent(runID).appendingPathComponent(RunFiles.work))
        run.final = record
        tracked[runID] = run
        self.record(runID, announce: announce)
        if tracked[runID] != nil { ensurePolling() }
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

    /// The `sbatch` options of a run: its name, files, limits and resources, then the
    /// daemon's partition, account and extra options. Only numbers come from the manifest.
    func sbatchArguments(_ spec: JobSpec, jobName: String, in directory: URL) -> [String] {
        var arguments = ["--job-name=\(jobName)", "--chdir=\(directory.path)",
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
        return arguments + configuration.sbatchOptions
    }

    /// Slurm's `--time` in whole minutes: the wall time asked for, but at least the timeout
    /// plus the grace, rounded up, and a minute more, so Cairn's own `scancel` comes first;
    /// nil for no limit (the partition's).
    static func timeLimitMinutes(timeout: Duration?, wallTime: Duration?, grace: Duration) -> Int? {
        let asked = wallTime.map { max(1, Int((LocalExecutor.seconds($0) / 60).rounded(.up))) }
        // Past Cairn's own limit, so its scancel comes first even when time equals timeout.
        let backstop = timeout.map { Int(((LocalExecutor.seconds($0) + LocalExecutor.seconds(grace)) / 60).rounded(.up)) + 1 }
        switch (asked, backstop) {
        case let (asked?, backstop?): return max(asked, backstop)
        case let (asked, backstop): return asked ?? backstop
        }
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
    /// to watch (the poller stops until the next submit). Public for the benchmark, which
    /// counts the calls.
    @discardableResult
    public func pollOnce() async -> Bool {
        guard !detached else { return false }
        for runID in tracked.filter({ $0.value.final != nil }).map(\.key) { record(runID) }
        let watching = tracked.filter { $0.value.final == nil && ($0.value.jobID != nil || $0.value.unanswered != nil) }.map(\.key)
        guard !watching.isEmpty else {
            if tracked.isEmpty { stopPolling(); return false }
            return true
        }
        let entries: [SlurmQueueEntry]
        do {
            entries = try await queue()
        } catch {
            if lastQueueWarning.map({ Date().timeIntervalSince($0) >= 60 }) ?? true {
                lastQueueWarning = Date()
                logger.warning("could not ask Slurm about \(watching.count) job(s): \(error); looking again in \(configuration.pollInterval)")
            }
            return true
        }
        let byID = Dictionary(entries.map { ($0.jobID, $0) }, uniquingKeysWith: { first, _ in first })
        for runID in watching {
            guard let run = tracked[runID], run.final == nil else { continue }
            if let jobID = run.jobID {
                await update(runID, entry: byID[jobID])
            } else if let since = run.unanswered {
                if let entry = entries.last(where: { $0.name == run.jobName }) {
                    logger.info("found Slurm job \(entry.jobID) for run \(runID), whose sbatch gave no answer", metadata: ["cairn.run": "\(runID)"])
                    queued(runID, as: entry.jobID)
                } else if Date().timeIntervalSince(since) > 30 {
                    end(runID, .interrupted, message: "never started: sbatch gave no answer and Slurm has no job named \(run.jobName)")
                }
            }
        }
        if tracked.isEmpty {
            stopPolling()
            return false
        }
        return true
    }

    /// Nothing left to watch: the poller ends (cancelled, in case this pass was not its own),
    /// and the next submit starts another.
    func stopPolling() {
        poller?.cancel()
        poller = nil
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
                run.runningSince = Date()
                run.record.state = .running
                run.record.startedAt = run.record.startedAt ?? Date()
                run.record.message = "running as Slurm job \(jobID)"
                write(run.record)
            }
        case .pending where entry.reason != run.reason:
            run.reason = entry.reason
            run.record.message = "waiting in Slurm's queue as job \(jobID): \(entry.reason)"
            write(run.record)
        default:
            break
        }
        if let timeout = run.timeout, let since = run.runningSince, !run.timedOut, !run.cancelRequested,
           Date().timeIntervalSince(since) > LocalExecutor.seconds(timeout) {
            run.timedOut = true
            try? RunFiles.writeAtomically(Data(), to: runsDirectory.appendingPathComponent(runID).appendingPathComponent(Files.timedOut))
            logger.info("run \(runID) ran past its timeout of \(timeout); cancelling Slurm job \(jobID)", metadata: ["cairn.run": "\(runID)"])
        }
        tracked[runID] = run
        // Cancelled or timed out and still there: scancel, again every 10 s until it is over
        // (one that failed, or a daemon that restarted in between, is not left to --time).
        if run.cancelRequested || run.timedOut, run.lastScancel.map({ Date().timeIntervalSince($0) >= 10 }) ?? true {
            await sendScancel(runID)
        }
    }

    // MARK: - Cancelling

    public func cancel(runID: String) async throws {
        guard var run = tracked[runID] else {
            if let record = try ledger.run(id: runID), record.state.isFinal { return }
            throw ExecutorError("run \(runID) is not in flight here; nothing to cancel")
        }
        if run.final != nil || run.cancelRequested { return }  // Polls send scancel again until it is over.
        run.cancelRequested = true
        tracked[runID] = run
        try? RunFiles.writeAtomically(Data(), to: runsDirectory.appendingPathComponent(runID).appendingPathComponent(Files.cancelled))
        // Without an id yet, submit (or the poll that finds the job) cancels it.
        guard run.jobID != nil else { return }
        await sendScancel(runID)
    }

    /// `scancel`: SIGTERM to the job's processes (the supervisor ends its command's group
    /// within its grace), SIGKILL after the cluster's KillWait. A failure is logged; the next
    /// poll tries again.
    func sendScancel(_ runID: String) async {
        guard let jobID = tracked[runID]?.jobID else { return }
        do {
            _ = try await commands.run("scancel", [jobID])
            tracked[runID]?.lastScancel = Date()
        } catch {
            logger.error("could not cancel Slurm job \(jobID) of run \(runID): \(error); trying again at the next poll",
                         metadata: ["cairn.run": "\(runID)"])
        }
    }

    /// Records `record`; a failure is logged and leaves the ledger as it was.
    @discardableResult
    func write(_ record: RunRecord) -> Bool { ledger.write(record, logger: logger) }
}
