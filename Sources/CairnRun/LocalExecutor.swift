public import CairnCore
import CairnManifests
public import Foundation
import Glibc
public import Logging

/// Writes a commit's files into a directory: the checkout a run works in.
public protocol SourceCheckout: Sendable {
    /// Writes the files of `commit` (hex) into `directory`, which exists and is empty.
    func checkout(commit: String, into directory: URL) throws
}

/// Runs jobs as processes on this machine, each under a supervisor (`cairn _supervise`) in
/// its own process group, so a run survives the daemon and its end is always written down.
///
/// Runs live in `<state>/runs/<runID>/`: `work/` is the checkout the command runs in (removed
/// once its outputs are stored), `log`, `job.json`, `result.json`. The run's row goes into
/// the ledger before anything starts; a run waits in a FIFO queue until `cpus` of the
/// policy's `maxRuns` slots are free.
public actor LocalExecutor: JobExecutor {
    public nonisolated let name = "local"
    public nonisolated let completions: AsyncStream<JobHandle>
    let completed: AsyncStream<JobHandle>.Continuation

    let runsDirectory: URL
    let ledger: any RunLedger
    let policy: ExecutionPolicy
    let supervisor: [String]
    /// How long a cancelled run's supervisor has before its group is killed.
    let grace: Duration
    let logger: Logger
    /// Makes run directories and reads how runs ended (shared with the Slurm executor): the
    /// artifact store, the commit's files, the daemon's environment and the log cap are its.
    let workspace: RunWorkspace

    /// The PATH a run gets, and where its command is looked up.
    public static let runPath = "/usr/local/bin:/usr/bin:/bin"
    public static let defaultLogCap = 64 << 20

    struct Queued {
        var spec: JobSpec
        var record: RunRecord
    }

    /// A run whose supervisor is running (started here or adopted).
    struct Active {
        var record: RunRecord
        var handle: JobHandle
        var slots: Int
        var cancelRequested = false
        /// Its final record, once its supervisor has ended, while the ledger would not take it.
        var final: RunRecord?
        /// Failed attempts at writing `final`.
        var failedWrites = 0
    }

    var queue: [Queued] = []
    /// Queued runs whose directory is made already (the head of the queue, prepared while the
    /// runs before it run), so starting one is only starting its supervisor.
    var prepared: Set<String> = []
    var active: [String: Active] = [:]
    var usedSlots = 0
    /// Set by `detach`: ends are no longer watched or recorded (a daemon that stops without
    /// cancelling its runs, which a later `recover` adopts).
    var detached = false

    /// - Parameters:
    ///   - stateDirectory: the daemon's state; runs go in `runs/` under it.
    ///   - supervisor: the argv prefix that runs a supervisor, `[pathToCairn, "_supervise"]`;
    ///     the run's directory is appended.
    ///   - environment: the daemon's environment, where passed variables' values come from.
    public init(stateDirectory: URL, ledger: any RunLedger, artifacts: ArtifactStore, source: any SourceCheckout,
                policy: ExecutionPolicy, supervisor: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                logCap: Int = LocalExecutor.defaultLogCap, grace: Duration = .seconds(10),
                logger: Logger = Logger(label: "cairn.run")) throws {
        runsDirectory = stateDirectory.appendingPathComponent("runs")
        do {
            try FileManager.default.createDirectory(at: runsDirectory, withIntermediateDirectories: true)
        } catch {
            throw ExecutorError("could not create the runs directory \(runsDirectory.path): \(Self.reason(error))")
        }
        self.ledger = ledger
        self.policy = policy
        self.supervisor = supervisor
        self.grace = grace
        self.logger = logger
        workspace = RunWorkspace(artifacts: artifacts, source: source, daemonEnvironment: environment, logCap: logCap, grace: grace)
        (completions, completed) = AsyncStream.makeStream(of: JobHandle.self)
    }

    // MARK: - Submitting

    public func submit(_ spec: JobSpec) async throws -> JobHandle {
        if let queued = queue.first(where: { $0.spec.key == spec.key }) { return placeholder(queued.record.id) }
        if let running = active.values.first(where: { $0.record.key == spec.key }) { return running.handle }
        let earlier: [RunRecord]
        do {
            earlier = try ledger.runs(withKey: spec.key)
        } catch {
            throw ExecutorError("could not read the runs of key \(spec.key) from the ledger: \(Self.reason(error)); nothing was started")
        }
        if let unfinished = earlier.first(where: { !$0.state.isFinal }) { return unfinished.handle ?? placeholder(unfinished.id) }
        if let refusal = refusal(of: spec) { throw ExecutorRefusal(reason: "RunRefused", message: refusal) }

        let record = spec.submittedRecord(logPath: runsDirectory.appendingPathComponent(spec.runID).appendingPathComponent(RunFiles.log).path,
                                          at: Date())
        do {
            try ledger.record(record)
        } catch {
            throw ExecutorError("could not record run \(spec.runID) in the ledger: \(Self.reason(error)); nothing was started")
        }
        queue.append(Queued(spec: spec, record: record))
        pump()
        return active[spec.runID]?.handle ?? placeholder(spec.runID)
    }

    /// Why `spec` may not run here, in a sentence; nil when it may: the policy's rules, then
    /// what this machine can give (slots of `--max-runs`, no GPUs, its memory).
    func refusal(of spec: JobSpec) -> String? {
        if let refusal = RunWorkspace.refusal(of: spec, policy: policy) { return refusal }
        let resources = RunResources(cpus: spec.cpus, memory: spec.memory, gpus: spec.gpus)
        return policy.refusal(executor: .local, resources: resources).map { "run \(spec.runID) \($0.message)" }
    }

    /// The handle of a run that has not started yet.
    func placeholder(_ runID: String) -> JobHandle {
        JobHandle(executor: name, id: "", runID: runID)
    }

    /// Starts queued runs, first come first served, while the first fits in the free slots.
    func pump() {
        while !detached, let head = queue.first, slots(of: head.spec) <= policy.maxRuns - usedSlots {
            queue.removeFirst()
            start(head)
        }
        // The next run's checkout is made while the ones before it run (the actor would be
        // idle meanwhile): its start then costs a spawn, not a checkout. A failure here is
        // left for `start`, which prepares again and records it.
        if !detached, let head = queue.first, !prepared.contains(head.spec.runID) {
            let directory = runsDirectory.appendingPathComponent(head.spec.runID)
            if (try? workspace.prepare(head.spec, in: directory)) != nil { prepared.insert(head.spec.runID) }
        }
    }

    func slots(of spec: JobSpec) -> Int { max(1, spec.cpus) }

    // MARK: - Watching

    public func observe(runID: String) async throws -> JobState {
        if queue.contains(where: { $0.record.id == runID }) { return .pending }
        if active[runID] != nil { return .running }
        return try ledger.run(id: runID).map(JobState.init(recorded:)) ?? .lost
    }

    public func inFlight() async -> [String] {
        queue.map(\.record.id) + active.keys.sorted()
    }

    /// Stops watching: runs go on under their supervisors, nothing more is started or
    /// recorded here, and a later executor's `recover` adopts them. For a daemon that stops
    /// without cancelling its runs.
    public func detach() {
        detached = true
    }

    /// Records `record`; a failure is logged and leaves the ledger as it was.
    @discardableResult
    func write(_ record: RunRecord) -> Bool { ledger.write(record, logger: logger) }

    /// A file error in words: the path and strerror's text for a Foundation error, else the error.
    public static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return "\(error.filePath.map { "\($0): " } ?? "")\(String(cString: strerror(Int32(underlying.code))))"
        }
        return "\(error)"
    }
}
