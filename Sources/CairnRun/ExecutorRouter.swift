public import CairnCore
public import CairnManifests

/// The executor controllers see when the daemon has several (`--slurm-shared-dir` adds
/// Slurm beside the local one): each run goes where its spec says (`executor:`) or to the
/// daemon's default; watching and cancelling go to the executor that holds the run, and
/// recovery and completions cover them all. Controllers do not know there is more than one.
public actor ExecutorRouter: JobExecutor {
    public nonisolated let name: String
    public nonisolated let completions: AsyncStream<JobHandle>
    let executors: [RunExecutorName: any JobExecutor]
    let defaultExecutor: RunExecutorName
    let ledger: any RunLedger
    /// Which executor holds each run submitted or recovered through this router.
    var owners: [String: RunExecutorName] = [:]

    public init(default defaultExecutor: RunExecutorName, executors: [RunExecutorName: any JobExecutor], ledger: any RunLedger) {
        precondition(executors[defaultExecutor] != nil, "the default executor must be one of the executors")
        self.defaultExecutor = defaultExecutor
        self.executors = executors
        self.ledger = ledger
        name = defaultExecutor.rawValue
        let (stream, continuation) = AsyncStream.makeStream(of: JobHandle.self)
        completions = stream
        // Each executor's stream has one consumer: this forwarding task.
        let group = Task {
            await withTaskGroup(of: Void.self) { tasks in
                for executor in executors.values {
                    tasks.addTask {
                        for await handle in executor.completions { continuation.yield(handle) }
                    }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in group.cancel() }
    }

    /// The executor a spec asks for; a refusal (which stalls the object) when the daemon has none such.
    func target(of spec: JobSpec) throws -> (RunExecutorName, any JobExecutor) {
        let wanted = spec.executor ?? defaultExecutor
        guard let executor = executors[wanted] else {
            throw ExecutorRefusal(reason: "ExecutorUnavailable",
                                  message: "run \(spec.runID) asks for executor: \(wanted.rawValue), which this daemon does not have; "
                                      + "start it with --slurm-shared-dir (see \"Running on Slurm\" in Docs/operations.md)")
        }
        return (wanted, executor)
    }

    /// The executor that holds `runID`: the one it was submitted to here, else the one its
    /// record's handle names, else the default.
    func holder(of runID: String) throws -> any JobExecutor {
        if let owner = owners[runID], let executor = executors[owner] { return executor }
        if let named = try ledger.run(id: runID)?.handle?.executor, let owner = RunExecutorName(rawValue: named),
           let executor = executors[owner] {
            return executor
        }
        return executors[defaultExecutor]!
    }

    public func submit(_ spec: JobSpec) async throws -> JobHandle {
        let (wanted, executor) = try target(of: spec)
        owners[spec.runID] = wanted
        let handle = try await executor.submit(spec)
        // A run of the key under way elsewhere may be what came back (a stage moved from one
        // executor to the other while it ran): the handle says whose it is.
        owners[handle.runID] = RunExecutorName(rawValue: handle.executor) ?? wanted
        return handle
    }

    public func observe(runID: String) async throws -> JobState {
        try await holder(of: runID).observe(runID: runID)
    }

    public func cancel(runID: String) async throws {
        try await holder(of: runID).cancel(runID: runID)
    }

    /// Each executor's recovery, in turn; the first failure is thrown after all have run.
    public func recover() async throws -> RecoveryReport {
        var report = RecoveryReport()
        var failure: (any Error)?
        for (name, executor) in executors.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            do {
                let found = try await executor.recover()
                for id in found.adopted + found.finished + found.interrupted { owners[id] = name }
                report.adopted += found.adopted
                report.finished += found.finished
                report.interrupted += found.interrupted
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return report
    }

    public func inFlight() async -> [String] {
        var runs: [String] = []
        for executor in executors.values { runs += await executor.inFlight() }
        return runs.sorted()
    }
}
