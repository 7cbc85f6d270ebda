public import Foundation
public import CairnManifests

/// What to run and everything the executor needs to run it on its own: argv (never a shell
/// string unless the daemon allows it), the commit whose files it works in, the artifacts to
/// restore into that checkout, the outputs to collect, and its limits.
public struct JobSpec: Sendable, Hashable {
    /// The run's id; the executor names its job after it.
    public var runID: String
    /// The run key; `submit` is idempotent on it.
    public var key: String
    public var object: ObjectRef
    /// The pipeline stage, for a FeaturePipeline.
    public var stage: String?
    /// What started it: `inputs`, `schedule`, `manual`, `monitor`.
    public var trigger: String
    /// For a forced run: the request it answers (`RunRecord.triggerID`).
    public var triggerID: String?
    /// Why it runs, in words (which inputs changed), for `cairn runs`.
    public var reason: String
    /// The commit whose files the run works in (hex).
    public var sourceCommit: String
    public var command: [String]
    /// `command` is `[script]` for /bin/sh -c; refused unless the policy allows shells.
    public var shell: Bool
    /// Names of the daemon's environment variables the run asks for; each must be on the
    /// policy's pass list, and their values are redacted from log excerpts.
    public var passEnvironment: [String]
    /// The run's params as canonical JSON (`CAIRN_PARAMS`, and the file `CAIRN_PARAMS_FILE`).
    public var params: String
    /// Artifacts restored into the checkout before the run starts, by repository path.
    public var inputs: [String: Artifact]
    /// The run that produced each input, by path, where known (`RunRecord.producers`).
    public var producers: [String: String] = [:]
    /// Recorded with the run as `RunRecord.annotations`.
    public var annotations: [String: String] = [:]
    /// Declared outputs, repository paths inside the checkout, collected when the run succeeds.
    public var outputs: [String]
    /// The parts of the key by name, recorded with the run (see `RunRecord.inputs`).
    public var keyInputs: [String: String]
    /// Slots of `--max-runs` the run takes (its `resources.cpus`).
    public var cpus: Int
    public var timeout: Duration?
    /// 1 for the first try of a key, 2 for its first retry, …
    public var attempt: Int
    /// Where it runs; nil for the daemon's default executor.
    public var executor: RunExecutorName?

    /// Sets where the run goes and what it asks for, from a stage's or training's fields.
    public mutating func place(on executor: RunExecutorName?, _ resources: RunResources) {
        self.executor = executor
        cpus = resources.cpus
        memory = resources.memory
        gpus = resources.gpus
        wallTime = resources.time?.duration
        if timeout == nil { timeout = wallTime }
    }
    /// The rest of its `resources`, for executors that schedule them (Slurm).
    public var memory: MemorySize?
    public var gpus: Int = 0
    /// The wall time to ask a scheduler for (`resources.time`); the timeout when nil.
    public var wallTime: Duration?

    public init(runID: String, key: String, object: ObjectRef, stage: String? = nil, trigger: String = "inputs", reason: String,
                sourceCommit: String, command: [String], shell: Bool = false, passEnvironment: [String] = [], params: String = "{}",
                inputs: [String: Artifact] = [:], outputs: [String] = [], keyInputs: [String: String] = [:], cpus: Int = 1,
                timeout: Duration? = nil, attempt: Int = 1) {
        self.runID = runID
        self.key = key
        self.object = object
        self.stage = stage
        self.trigger = trigger
        self.reason = reason
        self.sourceCommit = sourceCommit
        self.command = command
        self.shell = shell
        self.passEnvironment = passEnvironment
        self.params = params
        self.inputs = inputs
        self.outputs = outputs
        self.keyInputs = keyInputs
        self.cpus = cpus
        self.timeout = timeout
        self.attempt = attempt
    }
}

/// An executor's name for a job it accepted; stored with the run so it can be adopted later.
public struct JobHandle: Codable, Sendable, Hashable {
    /// Which executor holds it: `local`, `slurm`.
    public var executor: String
    /// The executor's own id (a process id, a Slurm job id).
    public var id: String
    public var runID: String
    /// For a process: its start time in clock ticks since boot (/proc/PID/stat), so a pid
    /// that was reused by another process is never taken for the run's.
    public var startTicks: UInt64?

    public init(executor: String, id: String, runID: String, startTicks: UInt64? = nil) {
        self.executor = executor
        self.id = id
        self.runID = runID
        self.startTicks = startTicks
    }
}

/// Where a job stands, as its executor sees it.
public enum JobState: Sendable, Hashable {
    case pending
    case running
    case succeeded
    case failed(exitStatus: Int32?, signal: Int32?, message: String)
    case cancelled
    /// The executor no longer knows the job (it ended while nobody watched, or its host went away).
    case lost
}

extension JobState {
    /// Where a run stands as its ledger row says: what an executor answers for a run it no
    /// longer watches (ended, or never its own in this process).
    public init(recorded record: RunRecord) {
        switch record.state {
        case .submitted: self = .pending
        case .running: self = .running
        case .succeeded, .skipped: self = .succeeded
        case .cancelled: self = .cancelled
        case .interrupted: self = .lost
        case .failed: self = .failed(exitStatus: record.exitStatus, signal: record.signal, message: record.message ?? "failed")
        }
    }
}

/// What `recover` found of the runs a previous daemon left unfinished.
public struct RecoveryReport: Sendable, Hashable {
    /// Still running: watched again, their result recorded when they end.
    public var adopted: [String] = []
    /// Ended while no daemon watched; their result was read and recorded.
    public var finished: [String] = []
    /// Gone without a result: marked interrupted, retried by the controller's policy.
    public var interrupted: [String] = []

    public init(adopted: [String] = [], finished: [String] = [], interrupted: [String] = []) {
        self.adopted = adopted
        self.finished = finished
        self.interrupted = interrupted
    }
}

/// The seam between controllers and wherever jobs run. Controllers never wait on a job: they
/// submit, report Reconciling, and the job's completion wakes the engine (`completions`).
/// The executor owns the run's row in the ledger from submit to its end: it writes the row
/// before anything starts and records how the run ended, outputs included.
public protocol JobExecutor: Sendable {
    /// `local`, `slurm`: what `JobHandle.executor` says.
    var name: String { get }
    /// Records the run and starts it when a slot is free. A run with the same key that is not
    /// over yet is returned instead: no key ever runs twice at once.
    func submit(_ spec: JobSpec) async throws -> JobHandle
    func observe(runID: String) async throws -> JobState
    /// Ends the run (its whole process group) and records it cancelled.
    func cancel(runID: String) async throws
    /// After a restart: every unfinished run of this executor in the ledger is adopted when
    /// it still runs, recorded as it ended when it left a result, or marked interrupted.
    func recover() async throws -> RecoveryReport
    /// Runs submitted and not over yet (queued or running).
    func inFlight() async -> [String]
    /// Yields each handle whose run ended and was recorded, so the engine can look again.
    var completions: AsyncStream<JobHandle> { get }
}

/// What the daemon's configuration lets runs do, as controllers must check it.
public struct ExecutionPolicy: Sendable, Hashable {
    /// Whether `shell: true` may run (`--allow-shell`).
    public var allowShell: Bool
    /// Names of the daemon's environment variables runs may ask for (`--pass-env`).
    public var passEnvironment: Set<String>
    /// Absolute, normalized directories outside the repository that runs may read (`--data-root`).
    public var dataRoots: [String]
    /// Runs at once (`--max-runs`); a run takes `resources.cpus` of them.
    public var maxRuns: Int
    /// Where runs go that do not say (`--executor`), and the executors this daemon has.
    public var defaultExecutor: RunExecutorName
    public var executors: Set<RunExecutorName>
    /// The machine's memory, for runs that go local; nil when unknown.
    public var hostMemoryBytes: Int64?

    public init(allowShell: Bool = false, passEnvironment: Set<String> = [], dataRoots: [String] = [], maxRuns: Int = 1,
                defaultExecutor: RunExecutorName = .local, executors: Set<RunExecutorName> = [.local], hostMemoryBytes: Int64? = nil) {
        self.allowShell = allowShell
        self.passEnvironment = passEnvironment
        self.dataRoots = dataRoots
        self.maxRuns = maxRuns
        self.defaultExecutor = defaultExecutor
        self.executors = executors
        self.hostMemoryBytes = hostMemoryBytes
    }

    /// Why a run asking for `executor` (nil: the default) and `resources` cannot run here, in
    /// a sentence after its subject; nil when it can. Local runs get slots of `--max-runs`,
    /// no GPUs, and at most the machine's memory; Slurm decides for itself what it can give.
    public func refusal(executor asked: RunExecutorName?, resources: RunResources) -> (reason: String, message: String)? {
        let executor = asked ?? defaultExecutor
        guard executors.contains(executor) else {
            // Only Slurm can be missing: every daemon runs local jobs.
            return ("ExecutorUnavailable", "asks for executor: \(executor.rawValue), which this daemon does not have; start it with "
                    + "--slurm-shared-dir (see \"Running on Slurm\" in Docs/operations.md)")
        }
        guard executor == .local else { return nil }
        let origin = asked == nil ? " (the daemon's --executor is local)" : ""
        if resources.cpus > maxRuns {
            return ("InsufficientResources", "needs \(resources.cpus) cpus, and this daemon runs at most \(maxRuns) at once (--max-runs)\(origin)")
        }
        if resources.gpus > 0 {
            return ("InsufficientResources", "asks for \(resources.gpus) GPU\(resources.gpus == 1 ? "" : "s"), and the local executor "
                    + "cannot give any\(origin); use executor: slurm")
        }
        if let memory = resources.memory, let host = hostMemoryBytes, memory.bytes > host {
            return ("InsufficientResources", "asks for \(memory) of memory, and this machine has \(host >> 20)MiB\(origin)")
        }
        return nil
    }
}

/// Files outside the repository, as a run's key needs them: data under the data roots and
/// the program a command runs. Hashes are cached by size, mtime and inode (as git's index
/// does), so unchanged gigabytes cost a `stat`.
public protocol HostFiles: Sendable {
    /// Nil when `path` (absolute) lies under a data root after resolving symlinks; otherwise
    /// why it may not be read.
    func refusal(ofDataPath path: String) -> String?
    /// SHA-256 of the file, or of a directory's listing; nil when nothing is there.
    /// Only for paths `refusal(ofDataPath:)` accepted.
    func contentHash(ofDataPath path: String) throws -> ContentHash?
    /// The program `name` runs (looked up on the runs' PATH unless it holds a slash) with the
    /// hash of the file it resolves to; nil when there is none.
    func program(_ name: String) throws -> (path: String, hash: ContentHash)?
}

/// Everything a controller needs to run jobs: where they run, what the store holds, the
/// host's files and what the daemon allows.
public struct Execution: Sendable {
    public let executor: any JobExecutor
    public let artifacts: any ArtifactIndex
    public let hostFiles: any HostFiles
    public let policy: ExecutionPolicy

    public init(executor: any JobExecutor, artifacts: any ArtifactIndex, hostFiles: any HostFiles, policy: ExecutionPolicy) {
        self.executor = executor
        self.artifacts = artifacts
        self.hostFiles = hostFiles
        self.policy = policy
    }
}

/// The executor will not run a job as specified, whatever happens outside (a shell the
/// daemon does not allow, a variable it does not pass, more cpus than it has): the object
/// stalls until its spec changes. Any other error from `submit` is transient.
public struct ExecutorRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// A condition reason, such as `ShellNotAllowed`.
    public var reason: String
    public var message: String

    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}
