public import Foundation

/// What to run: argv (never a shell string), where, with which environment, for how long.
public struct JobSpec: Sendable, Hashable {
    /// The run's id; the executor names its job after it.
    public var runID: String
    /// The run key; `submit` is idempotent on it.
    public var key: String
    public var command: [String]
    public var environment: [String: String]
    public var workingDirectory: URL
    public var timeout: Duration?

    public init(runID: String, key: String, command: [String], environment: [String: String], workingDirectory: URL,
                timeout: Duration? = nil) {
        self.runID = runID
        self.key = key
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
    }
}

/// An executor's name for a job it accepted; stored with the run so it can be adopted later.
public struct JobHandle: Codable, Sendable, Hashable {
    /// Which executor holds it: `local`, `slurm`.
    public var executor: String
    /// The executor's own id (a process id, a Slurm job id).
    public var id: String
    public var runID: String

    public init(executor: String, id: String, runID: String) {
        self.executor = executor
        self.id = id
        self.runID = runID
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

/// The seam between controllers and wherever jobs run. Controllers never wait on a job: they
/// submit, report Reconciling, and the job's completion wakes the engine (`completions`).
/// This issue defines the interface; the local executor (and later Slurm) implement it.
public protocol JobExecutor: Sendable {
    /// Starts the job unless one with the same key is already known; returns its handle.
    func submit(_ spec: JobSpec) async throws -> JobHandle
    func observe(_ handle: JobHandle) async throws -> JobState
    func cancel(_ handle: JobHandle) async throws
    /// After a restart: takes back a job a previous daemon started, or nil when it is gone.
    func adopt(runID: String) async throws -> JobHandle?
    /// Yields each handle whose job finished, so the engine can look again.
    var completions: AsyncStream<JobHandle> { get }
}
