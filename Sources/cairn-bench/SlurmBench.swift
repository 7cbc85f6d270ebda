import ArgumentParser
import CairnCore
import CairnManifests
import CairnRun
import CairnStore
import Dispatch
import Foundation
import Glibc
import Synchronization

/// Issue 16's figures: what Cairn adds to each Slurm job beyond Slurm's own submit and start,
/// and what watching many queued jobs costs when one `squeue` answers for all of them. Runs on
/// the cluster `SLURM_CONF` names (Scripts/slurm-cluster's single node), through a real
/// `SlurmExecutor` whose ledger is a real `Store`.
struct SlurmBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Time what Cairn adds per Slurm job, and track queued runs with one squeue per pass.",
        discussion: """
        Drives a real SlurmExecutor (a SQLite Store as its ledger, a fresh artifact store, runs in a \
        temporary directory, which the single node shares with this machine) on the cluster \
        SLURM_CONF names. This process makes the executor's passes itself (pollOnce, every --poll-ms, \
        as its poller does), so each is timed and its squeue calls counted. Measures:
          per job   after one warm-up, --trivial runs of `sh trivial.sh` one after another: the wall \
        time of submit(), the time in sbatch, the one tool it runs (SlurmCommands times each), \
        and Cairn's part, the rest (target < 50 ms with the own work of the pass that records the run); \
        from the supervisor's finishedAt (result.json) until the record is final, and that pass's \
        own work, squeue left out. On this machine, `cairn _supervise` running the script against \
        the script alone.
          queued    takes the node down (scontrol update state=down; resumed however the benchmark \
        ends, an error or an interrupt included), submits --jobs runs, makes --passes passes over \
        them, checking that each ran exactly one squeue; times one `squeue --jobs=ID` for the one-call-\
        per-job alternative; then resumes the node and makes passes until every run is recorded, \
        checking that sbatch ran --jobs times.
        Other jobs on the cluster are left alone: the benchmark's are named cairn-bench-<nonce>-….

        Example:
          cairn-bench slurm --jobs 200 --trivial 20 --format json
        """)

    @Option(help: "Runs queued while the node is down, then tracked to their end.")
    var jobs: Int = 200

    @Option(help: "Runs submitted one after another for the per-job figures.")
    var trivial: Int = 20

    @Option(help: "Passes timed while the queued runs wait.")
    var passes: Int = 20

    @Option(help: "Milliseconds between passes (a daemon's --slurm-poll, 1s by default).")
    var pollMs: Int = 200

    @Option(help: "The cairn binary the jobs run as their supervisor (default: the one beside cairn-bench).")
    var cairn: String?

    @Option(help: "text or json.")
    var format: String = "text"

    func validate() throws {
        if jobs < 1 || trivial < 1 { throw ValidationError("--jobs and --trivial must be at least 1") }
        // The first pass records every run's wait and is reported apart from the others.
        if passes < 2 { throw ValidationError("--passes must be at least 2") }
        if pollMs < 10 { throw ValidationError("--poll-ms must be at least 10") }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
    }

    func run() async throws {
        let cairnPath = try Sampling.cairnBinary(cairn)
        let cluster = try await SlurmNode.find()
        let cleanup = SlurmCleanup(node: cluster.node)
        let signals = cleanup.undoOnInterrupt()
        defer { signals.forEach { $0.cancel() } }
        let fixture = try SlurmFixture(cairn: cairnPath, poll: .milliseconds(pollMs))
        progress("slurm: node \(cluster.node) (\(cluster.cpus) CPUs, \(cluster.version)); runs in \(fixture.root.path), job names cairn-\(fixture.prefix)…")
        var report = SlurmReport(node: cluster.node, cpus: cluster.cpus, version: cluster.version, pollSeconds: Double(pollMs) / 1000)
        do {
            report.perJob = try await perJob(fixture, cleanup: cleanup)
            report.supervisor = try supervisor(fixture)
            report.queued = try await queued(fixture, cleanup: cleanup)
        } catch {
            cleanup.undo()
            progress("slurm: stopped by an error; its runs are left in \(fixture.root.path)")
            throw error
        }
        try? FileManager.default.removeItem(at: fixture.root)
        try report.emit(format: format)
    }

    // MARK: Per job

    func perJob(_ fixture: SlurmFixture, cleanup: SlurmCleanup) async throws -> PerJobFigures {
        let executor = try fixture.executor()
        progress("slurm: one warm-up run, then \(trivial) runs of `sh trivial.sh` one after another, a pass every \(pollMs) ms until each is recorded")
        var figures = PerJobFigures()
        for index in 0...trivial {
            let job = try await fixture.runToItsEnd(fixture.spec(index == 0 ? "warm" : "t\(index)"), on: executor, cleanup: cleanup)
            guard index > 0 else { continue }
            figures.samples.append(job)
            progress("slurm:   run \(index)/\(trivial): submit \(milliseconds(job.submit)) (sbatch "
                     + "\(milliseconds(job.sbatch)), Cairn \(milliseconds(job.cairn))); recorded \(milliseconds(job.toFinal)) after its end")
        }
        figures.summarise()
        return figures
    }

    /// `cairn _supervise` against the command alone, as processes on this machine: what the
    /// supervisor adds to a job on the node (its start, and result.json at the end), which
    /// neither submit nor the passes see.
    func supervisor(_ fixture: SlurmFixture) throws -> SupervisorFigures {
        let directory = fixture.root.appendingPathComponent("supervise")
        let work = directory.appendingPathComponent(RunFiles.work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try ScriptCheckout().checkout(commit: SlurmFixture.commit, into: work)
        let job = SupervisedJob(argv: ["/bin/sh", ScriptCheckout.script], environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": directory.path],
                                workingDirectory: work.path, timeoutSeconds: nil, graceSeconds: 10, logCap: 1 << 20, secretNames: [])
        try JSONEncoder().encode(job).write(to: directory.appendingPathComponent(RunFiles.job))
        progress("slurm: on this machine, `cairn _supervise` running `sh trivial.sh` and the script alone, \(trivial) times each after a warm-up")
        let direct = { try Sampling.process("/bin/sh", [ScriptCheckout.script], in: work).expect().seconds }
        let supervised = {
            let run = try Sampling.process(fixture.cairn, ["_supervise", directory.path]).expect()
            let result = try fixture.result(in: directory)
            guard result.exitStatus == 0 else { throw ValidationError("the supervised script ended with \(String(describing: result.exitStatus))") }
            return run.seconds
        }
        _ = try (direct(), supervised())
        var figures = SupervisorFigures()
        var directs: [Double] = [], supervisedRuns: [Double] = []
        for _ in 0..<trivial {
            directs.append(try direct())
            supervisedRuns.append(try supervised())
        }
        figures.direct = Percentiles(directs)
        figures.supervised = Percentiles(supervisedRuns)
        progress("slurm:   supervised p50 \(milliseconds(figures.supervised.p50)), alone p50 \(milliseconds(figures.direct.p50))")
        return figures
    }

    // MARK: Queued

    func queued(_ fixture: SlurmFixture, cleanup: SlurmCleanup) async throws -> QueuedFigures {
        let executor = try fixture.executor()
        var figures = QueuedFigures(jobs: jobs)
        try await cleanup.takeDown()
        progress("slurm: node \(cleanup.node) is down (reason=cairn-bench), so runs stay PENDING; submitting \(jobs)")
        let width = String(jobs - 1).count
        var submits: [SubmitSample] = []
        var jobIDs: [String] = []
        let specs = (0..<jobs).map { fixture.spec("q" + String(repeating: "0", count: width - String($0).count) + String($0)) }
        for (index, spec) in specs.enumerated() {
            let submitted = try await fixture.submit(spec, on: executor, cleanup: cleanup)
            submits.append(submitted.sample)
            jobIDs.append(submitted.jobID)
            if (index + 1).isMultiple(of: 25) || index + 1 == jobs {
                progress("slurm:   submitted \(index + 1)/\(jobs); the last took \(milliseconds(submitted.sample.submit)) "
                         + "(sbatch \(milliseconds(submitted.sample.sbatch)), Cairn \(milliseconds(submitted.sample.cairn)))")
            }
        }
        figures.submit = SubmitFigures(submits)
        let listed = try await SlurmNode.queue()
        figures.listedBySqueue = listed.count
        let pending = listed.filter { $0.name.hasPrefix("cairn-\(fixture.prefix)q") && $0.state == "PENDING" }.count
        guard pending == jobs else { throw ValidationError("Slurm holds \(pending) of the \(jobs) runs PENDING; expected all") }

        progress("slurm: \(passes) passes over the \(jobs) pending runs (squeue lists \(listed.count) jobs of this user)")
        var samples: [PassSample] = []
        for _ in 0..<passes {
            try await Task.sleep(for: fixture.poll)
            let sample = await fixture.pass(executor)
            guard sample.tools.calls == ["squeue": 1] else {
                throw ValidationError("a pass over \(jobs) runs ran \(sample.tools.calls); expected exactly one squeue")
            }
            samples.append(sample)
        }
        figures.firstPass = samples[0].seconds
        figures.passes = PassFigures(Array(samples.dropFirst()))
        figures.squeueCallsInPasses = samples.reduce(0) { $0 + ($1.tools.calls["squeue"] ?? 0) }
        figures.waitingRecorded = try specs.filter { try fixture.store.run(id: $0.runID)?.message?.hasPrefix("waiting in Slurm's queue") == true }.count
        progress("slurm:   a pass p50 \(milliseconds(figures.passes.wall.p50)), its squeue p50 \(milliseconds(figures.passes.squeue.p50)); "
                 + "the first one, which records each run's wait, \(milliseconds(figures.firstPass))")

        progress("slurm: one `squeue --jobs=ID` at a time, \(passes) times, for the one-call-per-job alternative")
        var single: [Double] = []
        for _ in 0..<passes {
            let started = ContinuousClock.now
            _ = try await SlurmNode.run("squeue", ["--jobs=\(jobIDs[0])", "--noheader", "--states=all", "--format=%i|%j|%T|%r"])
            single.append((ContinuousClock.now - started).seconds)
        }
        figures.singleSqueue = Percentiles(single)

        try await cleanup.resume()
        let resumedAt = Date()
        progress("slurm: node \(cleanup.node) resumed; a pass every \(pollMs) ms until the \(jobs) runs are recorded")
        let before = ToolTally(executor.commands)
        let started = ContinuousClock.now
        var lastSaid = started
        var tracking: [PassSample] = []
        var inFlight = Set(await executor.inFlight())
        /// When the pass that recorded each run ended.
        var recordedAt: [String: Date] = [:]
        while !inFlight.isEmpty {
            if ContinuousClock.now - lastSaid >= .seconds(3) {
                lastSaid = ContinuousClock.now
                progress("slurm:   \(jobs - inFlight.count)/\(jobs) recorded after \(String(format: "%.1f", (lastSaid - started).seconds)) s")
            }
            guard ContinuousClock.now - started < .seconds(1800) else {
                throw ValidationError("\(inFlight.count) of the \(jobs) runs were not recorded within 30 minutes of the node's return")
            }
            try await Task.sleep(for: fixture.poll)
            tracking.append(await fixture.pass(executor))
            let ended = Date()
            let still = Set(await executor.inFlight())
            for runID in inFlight.subtracting(still) { recordedAt[runID] = ended }
            inFlight = still
        }
        figures.trackingSeconds = (ContinuousClock.now - started).seconds
        let spent = ToolTally(executor.commands) - before
        figures.trackingPasses = tracking.count
        figures.trackingCalls = spent.calls
        figures.tracking = PassFigures(tracking)
        figures.ownPerRun = tracking.reduce(0) { $0 + $1.seconds - $1.tools.seconds } / Double(jobs)
        figures.sbatchCalls = executor.commands.calls["sbatch"] ?? 0
        let records = try specs.map { try fixture.store.run(id: $0.runID) }
        figures.states = Dictionary(records.map { ($0?.state.rawValue ?? "missing", 1) }, uniquingKeysWith: +)
        let ends = records.compactMap { $0 }.compactMap { record in record.finishedAt.map { (record.id, $0) } }
        figures.toFinal = Percentiles(ends.compactMap { id, end in recordedAt[id]?.timeIntervalSince(end) })
        if let last = ends.map(\.1).max() {
            figures.lastEndAfterResume = last.timeIntervalSince(resumedAt)
            figures.lastRecordAfterResume = (recordedAt.values.max() ?? last).timeIntervalSince(resumedAt)
        }
        jobIDs.forEach(cleanup.forget)
        progress("slurm:   recorded in \(String(format: "%.1f", figures.trackingSeconds)) s, \(tracking.count) passes, \(spent.calls) run; runs \(figures.states)")
        guard figures.states == [RunRecord.State.succeeded.rawValue: jobs] else {
            throw ValidationError("the \(jobs) runs ended \(figures.states); expected every one to succeed")
        }
        guard figures.sbatchCalls == jobs, spent.calls["squeue"] == tracking.count else {
            throw ValidationError("sbatch ran \(figures.sbatchCalls) times for \(jobs) runs, squeue \(spent.calls["squeue"] ?? 0) times in \(tracking.count) passes")
        }
        return figures
    }
}

// MARK: - The fixture

/// The benchmark's source: every commit is the one script each run executes (the tests'
/// FilesCheckout is in a test target).
struct ScriptCheckout: SourceCheckout {
    static let script = "trivial.sh"

    func checkout(commit: String, into directory: URL) throws {
        try Data("exit 0\n".utf8).write(to: directory.appendingPathComponent(Self.script))
    }
}

/// A temporary directory with the ledger (a real Store), the artifact store and the shared
/// directory the runs live in, and what drives a `SlurmExecutor` over them.
struct SlurmFixture {
    static let commit = String(repeating: "0", count: 40)

    let root: URL
    let store: Store
    let artifacts: ArtifactStore
    let cairn: String
    let poll: Duration
    /// `bench-<nonce>-`: the start of every run key, so of every job name after `cairn-`.
    let prefix: String

    init(cairn: String, poll: Duration) throws {
        let nonce = String(format: "%06x", UInt32.random(in: 0..<(1 << 24)))
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-slurm-\(nonce)")
        store = try Store(directory: root.appendingPathComponent("state"))
        artifacts = try ArtifactStore(root: root.appendingPathComponent("state/artifacts"))
        self.cairn = cairn
        self.poll = poll
        prefix = "bench-\(nonce)-"
    }

    /// A fresh executor with its own counted `SlurmCommands`. Its own poller waits a day: this
    /// process makes the passes, so each is timed and counted alone.
    func executor() throws -> SlurmExecutor {
        let configuration = SlurmConfiguration(sharedDirectory: root.appendingPathComponent("shared"), pollInterval: .seconds(86_400),
                                               resultGrace: .seconds(2))
        return try SlurmExecutor(configuration: configuration, commands: SlurmCommands(), ledger: store, artifacts: artifacts,
                                 source: ScriptCheckout(), policy: ExecutionPolicy(), supervisor: [cairn, "_supervise"])
    }

    /// A run of `sh trivial.sh` whose key (so job name) starts with the benchmark's prefix.
    func spec(_ name: String) -> JobSpec {
        let id = prefix + name
        return JobSpec(runID: id, key: id, object: ObjectRef(.featurePipeline, "slurm-bench"), stage: "run", reason: "cairn-bench slurm",
                       sourceCommit: Self.commit, command: ["sh", ScriptCheckout.script])
    }

    /// Submits `spec`, timed, and checks that it is queued in Slurm after one sbatch and no other call.
    func submit(_ spec: JobSpec, on executor: SlurmExecutor, cleanup: SlurmCleanup) async throws -> (sample: SubmitSample, jobID: String, at: Date) {
        let before = ToolTally(executor.commands)
        let started = ContinuousClock.now
        let handle = try await executor.submit(spec)
        let seconds = (ContinuousClock.now - started).seconds
        let at = Date()
        let spent = ToolTally(executor.commands) - before
        if !handle.id.isEmpty { cleanup.track(handle.id) }
        let record = try store.run(id: spec.runID)
        guard let record, record.state == .submitted, !handle.id.isEmpty else {
            throw ValidationError("run \(spec.runID) was not queued: \(record.map { "\($0.state.rawValue), \($0.message ?? "")" } ?? "not in the ledger")")
        }
        guard spent.calls == ["sbatch": 1] else {
            throw ValidationError("submit ran \(spent.calls); expected one sbatch and nothing else")
        }
        return (SubmitSample(submit: seconds, sbatch: spent.seconds("sbatch")), handle.id, at)
    }

    /// Submits `spec` and makes a pass every `poll` until its record is final.
    func runToItsEnd(_ spec: JobSpec, on executor: SlurmExecutor, cleanup: SlurmCleanup) async throws -> JobSample {
        let submitted = try await submit(spec, on: executor, cleanup: cleanup)
        var passStarts: [Date] = []
        var passes: [PassSample] = []
        let deadline = ContinuousClock.now + .seconds(300)
        while true {
            try await Task.sleep(for: poll)
            passStarts.append(Date())
            passes.append(await pass(executor))
            if let record = try store.run(id: spec.runID), record.state.isFinal { break }
            guard ContinuousClock.now < deadline else {
                throw ValidationError("run \(spec.runID) (Slurm job \(submitted.jobID)) was not recorded within 300 s: "
                                      + (try store.run(id: spec.runID)?.message ?? "no record"))
            }
        }
        let recordedAt = Date()
        cleanup.forget(submitted.jobID)
        guard let record = try store.run(id: spec.runID), record.state == .succeeded, let finishedAt = record.finishedAt else {
            let record = try store.run(id: spec.runID)
            throw ValidationError("run \(spec.runID) ended \(record?.state.rawValue ?? "?"): \(record?.message ?? "")")
        }
        let result = try self.result(in: root.appendingPathComponent("shared/runs/\(spec.runID)"))
        let last = passes[passes.count - 1]
        return JobSample(submitted: submitted.sample, toFinal: recordedAt.timeIntervalSince(finishedAt),
                         toRecordingPass: passStarts[passStarts.count - 1].timeIntervalSince(finishedAt),
                         passesAfterItsEnd: passStarts.dropLast().filter { $0 > finishedAt }.count,
                         recordingPass: last.seconds, recordingPassTools: last.tools.seconds, recordingPassCalls: last.tools.calls,
                         toSupervisorStart: result.startedAt.timeIntervalSince(submitted.at))
    }

    /// One pass as the executor's poller makes it, timed, with the tools it ran.
    func pass(_ executor: SlurmExecutor) async -> PassSample {
        let before = ToolTally(executor.commands)
        let started = ContinuousClock.now
        await executor.pollOnce()
        let seconds = (ContinuousClock.now - started).seconds
        return PassSample(seconds: seconds, tools: ToolTally(executor.commands) - before)
    }

    /// The supervisor's result.json in a run's directory.
    func result(in directory: URL) throws -> SupervisedResult {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try Date(try decoder.singleValueContainer().decode(String.self), strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return try decoder.decode(SupervisedResult.self, from: Data(contentsOf: directory.appendingPathComponent(RunFiles.result)))
    }
}

/// What an executor's `SlurmCommands` had run by one moment, or between two.
struct ToolTally {
    var calls: [String: Int]
    var time: [String: Duration]

    init(_ commands: SlurmCommands) {
        calls = commands.calls
        time = commands.time
    }

    init(calls: [String: Int], time: [String: Duration]) {
        self.calls = calls
        self.time = time
    }

    /// What ran between `before` and `after`: the tools that ran, and only those.
    static func - (after: ToolTally, before: ToolTally) -> ToolTally {
        var calls: [String: Int] = [:]
        for (tool, count) in after.calls where count != before.calls[tool] ?? 0 { calls[tool] = count - (before.calls[tool] ?? 0) }
        var time: [String: Duration] = [:]
        for (tool, spent) in after.time where spent != before.time[tool] ?? .zero { time[tool] = spent - (before.time[tool] ?? .zero) }
        return ToolTally(calls: calls, time: time)
    }

    func seconds(_ tool: String) -> Double { time[tool]?.seconds ?? 0 }

    /// In every tool.
    var seconds: Double { time.values.reduce(0) { $0 + $1.seconds } }
}

// MARK: - The cluster

/// The cluster through its own tools, for what the executor does not ask (its node, its queue).
enum SlurmNode {
    struct Cluster {
        var node: String
        var cpus: Int
        var version: String
    }

    static func run(_ tool: String, _ arguments: [String]) async throws -> String {
        let outcome = try await Command(tool, arguments, timeout: .seconds(60)).run()
        guard outcome.succeeded else {
            let said = outcome.standardError.text.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ValidationError("\(Command(tool, arguments)) \(outcome.termination)\(outcome.timedOut ? " (timed out)" : ""): \(said)")
        }
        return outcome.standardOutput.text
    }

    /// The single node, which must be up: the benchmark takes it down and resumes it, so one
    /// that another test (or an operator) holds down is left alone.
    static func find() async throws -> Cluster {
        let lines: [Substring]
        do {
            lines = try await run("sinfo", ["--noheader", "--Node", "--format=%N %c %t"]).split(whereSeparator: \.isNewline)
        } catch {
            throw ValidationError("Slurm does not answer (\(error)); start the single-node cluster with `eval \"export $(Scripts/slurm-cluster start)\"`")
        }
        guard let fields = lines.first?.split(separator: " "), fields.count == 3 else {
            throw ValidationError("sinfo lists no node")
        }
        let state = String(fields[2])
        guard ["idle", "mix", "mixed", "alloc", "allocated"].contains(state) else {
            throw ValidationError("node \(fields[0]) is \(state); the benchmark takes it down and resumes it, so it runs only on a node that is up (Scripts/slurm-cluster status)")
        }
        let version = (try? await run("sinfo", ["--version"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "slurm"
        return Cluster(node: String(fields[0]), cpus: Int(fields[1]) ?? 0, version: version)
    }

    /// This user's jobs as squeue lists them, finished ones it remembers included.
    static func queue() async throws -> [(id: String, name: String, state: String)] {
        try await run("squeue", ["--me", "--noheader", "--states=all", "--format=%i|%j|%T"]).split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
            return fields.count == 3 ? (String(fields[0]), String(fields[1]), String(fields[2])) : nil
        }
    }
}

/// What the benchmark must undo however it ends: the node it took down and its jobs still in
/// Slurm. `run` undoes them after an error; SIGINT and SIGTERM undo them, then exit.
final class SlurmCleanup: Sendable {
    let node: String
    private let state = Mutex<(down: Bool, jobs: Set<String>)>((false, []))

    init(node: String) {
        self.node = node
    }

    func track(_ jobID: String) { state.withLock { _ = $0.jobs.insert(jobID) } }

    func forget(_ jobID: String) { state.withLock { _ = $0.jobs.remove(jobID) } }

    func takeDown() async throws {
        // Marked first: an interrupt during the call resumes it.
        state.withLock { $0.down = true }
        _ = try await SlurmNode.run("scontrol", ["update", "nodename=\(node)", "state=down", "reason=cairn-bench"])
    }

    func resume() async throws {
        _ = try await SlurmNode.run("scontrol", ["update", "nodename=\(node)", "state=resume"])
        state.withLock { $0.down = false }
    }

    /// Resumes the node if the benchmark took it down, and cancels the jobs it left in Slurm.
    func undo() {
        let (down, jobs) = state.withLock { state in
            defer { state = (false, []) }
            return (state.down, state.jobs)
        }
        if down {
            let outcome = try? Command("scontrol", ["update", "nodename=\(node)", "state=resume"], timeout: .seconds(30)).runSynchronously()
            progress(outcome?.succeeded == true ? "slurm: node \(node) resumed"
                     : "slurm: could not resume node \(node); run: scontrol update nodename=\(node) state=resume")
        }
        if !jobs.isEmpty {
            let outcome = try? Command("scancel", jobs.sorted(), timeout: .seconds(60)).runSynchronously()
            progress("slurm: \(outcome?.succeeded == true ? "cancelled" : "could not cancel all of") the benchmark's \(jobs.count) job(s) left in Slurm")
        }
    }

    /// Signal sources that undo and exit; the caller keeps them until the benchmark ends.
    func undoOnInterrupt() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue(label: "cairn-bench.slurm.signal"))
            source.setEventHandler { [self] in
                progress("slurm: interrupted; undoing")
                undo()
                exit(128 + number)
            }
            source.resume()
            return source
        }
    }
}

// MARK: - Figures

struct SubmitSample: Encodable {
    /// submit()'s wall time, and the time in sbatch, the one tool it runs.
    var submit: Double
    var sbatch: Double
    /// Cairn's part: the rest.
    var cairn: Double { submit - sbatch }
}

struct JobSample: Encodable {
    var submit: Double
    var sbatch: Double
    var cairn: Double
    /// From the supervisor's finishedAt to the final record in the ledger.
    var toFinal: Double
    /// From the supervisor's finishedAt to the start of the pass that recorded the run.
    var toRecordingPass: Double
    /// Passes that started after the supervisor's finishedAt and found Slurm not done with the job.
    var passesAfterItsEnd: Int
    var recordingPass: Double
    var recordingPassTools: Double
    var recordingPassCalls: [String: Int]
    /// Slurm's start, for reference: from submit's return until the supervisor started the command.
    var toSupervisorStart: Double
    /// The recording pass's own work: reading result.json, the ledger write, work/ removed.
    var recordingPassOwn: Double { recordingPass - recordingPassTools }
    /// Cairn's part of the submit and of the pass that records the run.
    var cairnInAll: Double { cairn + recordingPassOwn }

    init(submitted: SubmitSample, toFinal: Double, toRecordingPass: Double, passesAfterItsEnd: Int, recordingPass: Double,
         recordingPassTools: Double, recordingPassCalls: [String: Int], toSupervisorStart: Double) {
        submit = submitted.submit
        sbatch = submitted.sbatch
        cairn = submitted.cairn
        self.toFinal = toFinal
        self.toRecordingPass = toRecordingPass
        self.passesAfterItsEnd = passesAfterItsEnd
        self.recordingPass = recordingPass
        self.recordingPassTools = recordingPassTools
        self.recordingPassCalls = recordingPassCalls
        self.toSupervisorStart = toSupervisorStart
    }
}

struct SubmitFigures: Encodable {
    var wall = Percentiles()
    var sbatch = Percentiles()
    var cairn = Percentiles()

    init() {}

    init(_ samples: [SubmitSample]) {
        wall = Percentiles(samples.map(\.submit))
        sbatch = Percentiles(samples.map(\.sbatch))
        cairn = Percentiles(samples.map(\.cairn))
    }
}

struct PerJobFigures: Encodable {
    var samples: [JobSample] = []
    var submit = SubmitFigures()
    var toFinal = Percentiles()
    var toRecordingPass = Percentiles()
    var recordingPass = Percentiles()
    var recordingPassSqueue = Percentiles()
    var recordingPassOwn = Percentiles()
    var cairnInAll = Percentiles()
    var toSupervisorStart = Percentiles()
    /// Runs whose end a pass found Slurm not done with yet (still RUNNING or COMPLETING).
    var endedLateInSlurm = 0

    mutating func summarise() {
        submit = SubmitFigures(samples.map { SubmitSample(submit: $0.submit, sbatch: $0.sbatch) })
        toFinal = Percentiles(samples.map(\.toFinal))
        toRecordingPass = Percentiles(samples.map(\.toRecordingPass))
        recordingPass = Percentiles(samples.map(\.recordingPass))
        recordingPassSqueue = Percentiles(samples.map(\.recordingPassTools))
        recordingPassOwn = Percentiles(samples.map(\.recordingPassOwn))
        cairnInAll = Percentiles(samples.map(\.cairnInAll))
        toSupervisorStart = Percentiles(samples.map(\.toSupervisorStart))
        endedLateInSlurm = samples.filter { $0.passesAfterItsEnd > 0 }.count
    }
}

struct SupervisorFigures: Encodable {
    var direct = Percentiles()
    var supervised = Percentiles()
}

struct PassSample {
    var seconds: Double
    var tools: ToolTally
}

struct PassFigures: Encodable {
    var wall = Percentiles()
    var squeue = Percentiles()
    /// The pass less the time in Slurm's tools.
    var own = Percentiles()

    init() {}

    init(_ samples: [PassSample]) {
        wall = Percentiles(samples.map(\.seconds))
        squeue = Percentiles(samples.map { $0.tools.seconds("squeue") })
        own = Percentiles(samples.map { $0.seconds - $0.tools.seconds })
    }
}

struct QueuedFigures: Encodable {
    var jobs: Int
    var submit = SubmitFigures()
    /// How many of this user's jobs squeue listed, finished ones it remembers included.
    var listedBySqueue = 0
    /// The first pass, which records every run's wait (a ledger write each).
    var firstPass = 0.0
    /// The passes after it.
    var passes = PassFigures()
    var squeueCallsInPasses = 0
    var waitingRecorded = 0
    /// One `squeue --jobs=ID`.
    var singleSqueue = Percentiles()
    var trackingSeconds = 0.0
    var trackingPasses = 0
    var trackingCalls: [String: Int] = [:]
    var tracking = PassFigures()
    /// The passes' own work over the runs they recorded.
    var ownPerRun = 0.0
    /// From each run's end (the supervisor's finishedAt) until the pass that recorded it ended.
    var toFinal = Percentiles()
    /// From the node's return until the last run's supervisor finished, and until it was recorded.
    var lastEndAfterResume = 0.0
    var lastRecordAfterResume = 0.0
    var sbatchCalls = 0
    var states: [String: Int] = [:]
}

struct SlurmReport: TextReport {
    var machine = Machine.current
    var node: String
    var cpus: Int
    var version: String
    var pollSeconds: Double
    var perJob = PerJobFigures()
    var supervisor = SupervisorFigures()
    var queued = QueuedFigures(jobs: 0)

    var text: String {
        let poll = milliseconds(pollSeconds)
        func row(_ label: String, _ figures: Percentiles, indent: Int = 2) -> String {
            String(repeating: " ", count: indent) + label.padding(toLength: 66 - indent, withPad: " ", startingAt: 0)
                + "p50 " + pad(milliseconds(figures.p50)) + "  p99 " + pad(milliseconds(figures.p99))
        }
        func pad(_ text: String) -> String { String(repeating: " ", count: max(0, 9 - text.count)) + text }
        let job = perJob
        let verdict = job.cairnInAll.p99 < 0.05 ? "met" : "MISSED"
        let lines = [
            "Slurm executor (issue 16), node \(node) (\(cpus) CPUs, \(version)); \(machine.build); \(machine.cpu), \(machine.cores) cores",
            "per job: \(job.samples.count) runs of `sh trivial.sh` one after another, a pass every \(poll)",
            row("submit(), wall", job.submit.wall),
            row("in sbatch", job.submit.sbatch, indent: 4),
            row("Cairn's part (the rest)", job.submit.cairn, indent: 4),
            row("end: from the supervisor's finishedAt to the final record", job.toFinal),
            row("to the start of the pass that recorded it", job.toRecordingPass, indent: 4),
            "    (\(job.endedLateInSlurm) of \(job.samples.count) runs: a pass after finishedAt still found Slurm not done with the job)",
            row("the recording pass, wall", job.recordingPass, indent: 4),
            row("its squeue", job.recordingPassSqueue, indent: 6),
            row("its own work (result.json, ledger, work/ removed)", job.recordingPassOwn, indent: 6),
            row("Cairn per job: submit's part + the recording pass's own work", job.cairnInAll)
                + String(format: "   target < 50 ms: %@ (p99 %.0f%% of it)", verdict, job.cairnInAll.p99 / 0.05 * 100),
            row("Slurm's start (reference): submit returns → supervisor starts", job.toSupervisorStart),
            "on this machine, \(supervisor.direct.count) runs each, as processes:",
            row("cairn _supervise running `sh trivial.sh`", supervisor.supervised),
            row("`sh trivial.sh` alone", supervisor.direct),
            "  the supervisor adds \(milliseconds(supervisor.supervised.p50 - supervisor.direct.p50)) at the median, on the node; with Cairn's "
                + "part above, \(milliseconds(job.cairnInAll.p50 + supervisor.supervised.p50 - supervisor.direct.p50)) a job (medians added)",
            "\(queued.jobs) runs queued while the node was down:",
            row("submit(), wall", queued.submit.wall),
            row("sbatch", queued.submit.sbatch, indent: 4),
            row("Cairn's part", queued.submit.cairn, indent: 4),
            "  \(queued.squeueCallsInPasses) passes over them made \(queued.squeueCallsInPasses) squeue calls, one each, checked "
                + "(squeue listed \(queued.listedBySqueue) jobs of this user; \(queued.waitingRecorded) runs recorded as waiting)",
            "  the first pass, which records each run's wait (a ledger write each): \(milliseconds(queued.firstPass))",
            row("the passes after it, wall", queued.passes.wall),
            row("their squeue", queued.passes.squeue, indent: 4),
            row("their own work", queued.passes.own, indent: 4),
            row("one `squeue --jobs=ID`", queued.singleSqueue),
            "  one squeue per job instead: \(queued.jobs) × \(milliseconds(queued.singleSqueue.p50)) = \(milliseconds(Double(queued.jobs) * queued.singleSqueue.p50)) a pass, "
                + String(format: "%.0f× the one call's %@", Double(queued.jobs) * queued.singleSqueue.p50 / max(queued.passes.squeue.p50, 1e-9),
                         milliseconds(queued.passes.squeue.p50)),
            "  after the node resumed: all \(queued.jobs) recorded in \(String(format: "%.1f", queued.trackingSeconds)) s over \(queued.trackingPasses) passes "
                + "(tools: \(queued.trackingCalls.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))); "
                + "sbatch ran \(queued.sbatchCalls) times in all; \(queued.states.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))",
            "    Slurm ran them \(cpus) at a time (one CPU each): the last one's supervisor finished "
                + String(format: "%.1f s after the node's return, and it was recorded at %.1f s", queued.lastEndAfterResume, queued.lastRecordAfterResume),
            row("a pass while they ran, wall", queued.tracking.wall),
            row("its own work", queued.tracking.own, indent: 4),
            "    own work per run recorded, all passes' added up over the \(queued.jobs) runs: \(milliseconds(queued.ownPerRun))",
            row("a run's end (finishedAt) to the end of the pass recording it", queued.toFinal),
        ]
        return lines.joined(separator: "\n")
    }
}
