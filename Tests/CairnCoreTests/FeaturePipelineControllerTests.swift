import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
@testable import FeaturePipelineController
import Foundation
import Logging
import Synchronization
import Testing

/// The controller's decisions, pass by pass: what it submits, reuses, waits for and reports.
/// Runs are recorded in a real SQLite store; a scripted executor decides when they end (the
/// real executor has its own tests, and the engine tests run both together).
@Suite struct FeaturePipelineControllerTests {
    static let pipeline = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: features}
    spec:
      stages:
        - name: ingest
          command: [python3, ingest.py, --out, data/raw.csv]
          outs: [data/raw.csv]
        - name: calendar
          command: [python3, calendar.py, out/cal.csv]
          outs: [out/cal.csv]
        - name: featurize
          command: [python3, featurize.py, data/raw.csv, out/features.csv]
          outs: [out/features.csv]
          retries: 1
    """

    let directory: TemporaryDirectory
    let store: Store
    let executor: ScriptedExecutor
    var files: [String: String] = [
        "ingest.py": "print('ingest')\n",
        "calendar.py": "print('calendar')\n",
        "featurize.py": "from lib.scale import min_max\n",
        "lib/__init__.py": "",
        "lib/scale.py": "def min_max(v): return v\n",
    ]

    init() throws {
        directory = try TemporaryDirectory()
        store = try Store(directory: directory.url)
        executor = ScriptedExecutor(ledger: store)
    }

    func reconcile(_ yaml: String = Self.pipeline, commit: String = "c1", now: Date = Date(timeIntervalSince1970: 1_800_000_000),
                   policy: ExecutionPolicy = ExecutionPolicy(maxRuns: 4), reported: [String]? = nil) async throws -> Outcome {
        let parsed = ManifestParser.parse(Data(yaml.utf8), file: "features.yaml")
        let manifest = try #require(parsed.manifests.first, "\(parsed.diagnostics)")
        let execution = Execution(executor: executor, artifacts: AllArtifacts(), hostFiles: FixedHostFiles(), policy: policy)
        let context = ReconcileContext(object: manifest.ref, sourceCommit: commit, files: CommitFiles(files), dependencies: [:],
                                       previous: reported.map { Self.status(reporting: $0, ref: manifest.ref) }, runs: store,
                                       execution: execution, now: now, logger: Logger(label: "test"))
        let outcome = try await FeaturePipelineController().reconcile(manifest, in: context)
        try store.apply({ var changes = PassChanges(); changes.effects = outcome.effects; return changes }())
        return outcome
    }

    @Test func runsIndependentStagesAtOnceThenWhatTheyUnblock() async throws {
        let first = try await reconcile()
        #expect(first.state == .reconciling)
        #expect(executor.submitted.map(\.stage) == ["ingest", "calendar"])
        #expect(first.message.contains("not run yet: featurize"))
        // A second pass while they run submits nothing twice.
        _ = try await reconcile()
        #expect(executor.submitted.count == 2)

        try executor.finish("ingest")
        let second = try await reconcile()
        #expect(executor.submitted.map(\.stage) == ["ingest", "calendar", "featurize"])
        let featurize = try #require(executor.submitted.last)
        // It gets ingest's output restored, and its key covers that output's digest.
        #expect(featurize.inputs.keys.sorted() == ["data/raw.csv"])
        #expect(featurize.keyInputs["input:data/raw.csv"] != nil)
        #expect(featurize.reason == "first run of stage featurize")
        #expect(second.runs.count == 3)

        try executor.finish("calendar")
        try executor.finish("featurize")
        let done = try await reconcile()
        #expect(done.state == .ready, "\(done.message)")
        #expect(done.reason == "UpToDate")
    }

    @Test func codeFoundByItselfIsPartOfTheKey() async throws {
        _ = try await reconcile()
        for stage in ["ingest", "calendar"] { try executor.finish(stage) }
        _ = try await reconcile()
        let featurize = try #require(executor.submitted.last)
        // featurize.py is named on the command line; lib/scale.py is imported by it.
        #expect(featurize.keyInputs["code:featurize.py"] != nil)
        #expect(featurize.keyInputs["code:lib/scale.py"] != nil)
        #expect(featurize.keyInputs["program"] != nil)
        try executor.finish("featurize")
        #expect(try await reconcile().state == .ready)

        // Changing the imported module reruns featurize only, and says why.
        var changed = self
        changed.files["lib/scale.py"] = "def min_max(v): return sorted(v)\n"
        let outcome = try await changed.reconcile(commit: "c2")
        #expect(outcome.state == .reconciling)
        #expect(executor.submitted.count == 4)
        let rerun = try #require(executor.submitted.last)
        #expect(rerun.stage == "featurize")
        #expect(rerun.reason.contains("lib/scale.py changed"), "\(rerun.reason)")
        // The other two were reused, and `cairn runs` can say so.
        let skipped = try store.runs(of: ObjectRef(.featurePipeline, "features"), limit: 50).filter { $0.state == .skipped }
        #expect(Set(skipped.compactMap(\.stage)) == ["ingest", "calendar"])
        #expect(skipped.allSatisfy { $0.reused != nil && $0.sourceCommit == "c2" })
    }

    static func status(reporting runs: [String], ref: ObjectRef) -> ObjectStatus {
        var status = ObjectStatus(ref: ref, manifestPath: "features.yaml", generation: "g", observedCommit: "c1", conditions: [])
        status.runs = runs
        return status
    }

    @Test func anUnchangedStageAtANewCommitRecordsNoSkip() async throws {
        _ = try await reconcile()
        for stage in ["ingest", "calendar"] { try executor.finish(stage) }
        _ = try await reconcile()
        try executor.finish("featurize")
        let done = try await reconcile()
        #expect(done.state == .ready)
        // The next commit changes nothing the stages read, and the status already reports
        // their runs: nothing ran, nothing is recorded.
        let again = try await reconcile(commit: "c2", reported: done.runs)
        #expect(again.state == .ready && again.runs == done.runs)
        #expect(again.effects.isEmpty)
        #expect(executor.submitted.count == 3)
    }

    @Test func aFailedStageIsRetriedThenStopsItsDependants() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try await reconcile(now: start)
        try executor.fail("ingest", exitStatus: 3)
        // ingest has no retries: the pipeline stalls, featurize never runs.
        let outcome = try await reconcile(now: start.addingTimeInterval(1))
        try executor.finish("calendar")
        let settled = try await reconcile(now: start.addingTimeInterval(2))
        #expect(outcome.state == .reconciling)
        #expect(settled.state == .stalled)
        #expect(settled.reason == "StageFailed")
        #expect(settled.message.contains("stage ingest failed (run") && settled.message.contains("boom"), "\(settled.message)")
        #expect(settled.message.contains("not run yet: featurize"))
        #expect(!executor.submitted.contains { $0.stage == "featurize" })
        // The same inputs are not tried again on later passes.
        _ = try await reconcile(now: start.addingTimeInterval(3600))
        #expect(executor.submitted.filter { $0.stage == "ingest" }.count == 1)
    }

    @Test func retriesWaitTheirBackoff() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try await reconcile(now: start)
        try executor.finish("ingest", at: start)
        try executor.finish("calendar", at: start)
        _ = try await reconcile(now: start)
        try executor.fail("featurize", exitStatus: 1, at: start)
        let waiting = try await reconcile(now: start.addingTimeInterval(1))
        #expect(waiting.reason == "RetryScheduled")
        #expect(waiting.requeueAfter != nil)
        #expect(executor.submitted.filter { $0.stage == "featurize" }.count == 1)
        _ = try await reconcile(now: start.addingTimeInterval(60))
        let retry = try #require(executor.submitted.last)
        #expect(retry.stage == "featurize")
        #expect(retry.attempt == 2)
        #expect(retry.reason.contains("retry 1 of 1"))
    }

    @Test func theDaemonsPolicyIsCheckedBeforeAnythingRuns() async throws {
        let shell = Self.pipeline.replacingOccurrences(of: "      outs: [data/raw.csv]", with: "      outs: [data/raw.csv]\n      shell: true")
        let refused = try await reconcile(shell)
        #expect(refused.state == .stalled)
        #expect(refused.reason == "ShellNotAllowed")
        #expect(refused.message.contains("features.yaml:"), "the message names the manifest's place: \(refused.message)")
        let env = Self.pipeline.replacingOccurrences(of: "      outs: [out/cal.csv]", with: "      outs: [out/cal.csv]\n      env: [GIT_TOKEN]")
        let secret = try await reconcile(env)
        #expect(secret.reason == "EnvNotAllowed")
        #expect(secret.message.contains("GIT_TOKEN"))
        // Stages the problem does not touch go on: calendar ran once, for the first pipeline,
        // and the one that asks for GIT_TOKEN was not submitted again.
        #expect(executor.submitted.filter { $0.stage == "calendar" }.count == 1)
        #expect(executor.submitted.allSatisfy { $0.passEnvironment.isEmpty })
    }

    @Test func aMissingDependencyStallsWithItsPlace() async throws {
        let yaml = Self.pipeline.replacingOccurrences(of: "      outs: [out/cal.csv]", with: "      outs: [out/cal.csv]\n      deps: [holidays.csv]")
        let outcome = try await reconcile(yaml)
        #expect(outcome.state == .stalled)
        #expect(outcome.reason == "MissingDependency")
        #expect(outcome.message.contains("holidays.csv"))
        #expect(outcome.message.contains("features.yaml:"))
    }
}

@Suite struct PipelineScheduleTests {
    func next(_ text: String, after iso: String) throws -> String? {
        let schedule = try CronSchedule(parsing: text)
        let formatter = ISO8601DateFormatter()
        let date = try #require(formatter.date(from: iso))
        return schedule.nextMatchUTC(after: date).map { formatter.string(from: $0) }
    }

    @Test func theNextTickIsReadInUTC() throws {
        #expect(try next("@hourly", after: "2026-11-26T10:30:00Z") == "2026-11-26T11:00:00Z")
        #expect(try next("0 3 * * 1", after: "2026-11-24T04:00:00Z") == "2026-11-30T03:00:00Z")   // a Tuesday → Monday
        #expect(try next("*/15 * * * *", after: "2026-12-31T23:59:00Z") == "2027-01-01T00:00:00Z")
        #expect(try next("0 0 1 6 *", after: "2026-11-26T00:00:00Z") == "2027-06-01T00:00:00Z")
        #expect(try next("0 0 30 2 *", after: "2026-11-26T00:00:00Z") == nil)
    }
}

// MARK: Test doubles

/// An executor whose runs end when the test says: it records each run in the ledger as the
/// real one does (submitted, then succeeded or failed), and starts nothing.
final class ScriptedExecutor: JobExecutor, @unchecked Sendable {
    let name = "scripted"
    let ledger: any RunLedger
    private let state = Mutex<[JobSpec]>([])
    let completions: AsyncStream<JobHandle>
    private let continuation: AsyncStream<JobHandle>.Continuation

    init(ledger: any RunLedger) {
        self.ledger = ledger
        (completions, continuation) = AsyncStream.makeStream()
    }

    var submitted: [JobSpec] { state.withLock { $0 } }

    func submit(_ spec: JobSpec) async throws -> JobHandle {
        if let running = try ledger.runs(withKey: spec.key).first(where: { !$0.state.isFinal }) {
            return JobHandle(executor: name, id: running.id, runID: running.id)
        }
        state.withLock { $0.append(spec) }
        try ledger.record(RunRecord(id: spec.runID, key: spec.key, object: spec.object, stage: spec.stage, state: .submitted,
                                    trigger: spec.trigger, reason: spec.reason, sourceCommit: spec.sourceCommit, command: spec.command,
                                    inputs: spec.keyInputs, attempt: spec.attempt, submittedAt: Date()))
        return JobHandle(executor: name, id: spec.runID, runID: spec.runID)
    }

    /// Ends the newest run of `stage` successfully, with one artifact per declared output.
    func finish(_ stage: String, at time: Date = Date(timeIntervalSince1970: 1_800_000_000)) throws {
        try end(stage) { run, spec in
            run.state = .succeeded
            run.finishedAt = time
            for output in spec.outputs {
                run.outputs[output] = Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(output) of \(spec.key)".utf8)), size: 1)
            }
        }
    }

    func fail(_ stage: String, exitStatus: Int32, at time: Date = Date(timeIntervalSince1970: 1_800_000_000)) throws {
        try end(stage) { run, _ in
            run.state = .failed
            run.exitStatus = exitStatus
            run.finishedAt = time
            run.message = "the log ended with: boom"
        }
    }

    private func end(_ stage: String, _ change: (inout RunRecord, JobSpec) -> Void) throws {
        let spec = try #require(submitted.last { $0.stage == stage })
        var run = try #require(try ledger.run(id: spec.runID))
        change(&run, spec)
        try ledger.record(run)
        continuation.yield(JobHandle(executor: name, id: run.id, runID: run.id))
    }

    func observe(runID: String) async throws -> JobState { .pending }
    func cancel(runID: String) async throws {}
    func recover() async throws -> RecoveryReport { RecoveryReport() }
    func inFlight() async -> [String] { (try? ledger.unfinishedRuns().map(\.id)) ?? [] }
}

/// Every artifact is in the store.
struct AllArtifacts: ArtifactIndex {
    func contains(_ artifact: Artifact) -> Bool { true }
    func contents(of artifact: Artifact, limit: Int) throws -> Data? { nil }
}

/// Programs resolve under /usr/bin; data under /data exists with a fixed hash.
struct FixedHostFiles: HostFiles {
    func refusal(ofDataPath path: String) -> String? { path.hasPrefix("/data/") ? nil : "it is not under a data root (/data)" }
    func contentHash(ofDataPath path: String) throws -> ContentHash? { ContentHash.sha256(of: Data(path.utf8)) }
    func program(_ name: String) throws -> (path: String, hash: ContentHash)? {
        name.contains("missing") ? nil : ("/usr/bin/\(name)", ContentHash.sha256(of: Data(name.utf8)))
    }
}

/// A commit's files, in memory.
struct CommitFiles: SourceFiles {
    let files: [String: String]
    init(_ files: [String: String]) { self.files = files }

    func contents(of path: RepositoryPath) throws -> Data? { files[path.value].map { Data($0.utf8) } }

    func contentHash(of path: RepositoryPath) throws -> ContentHash? {
        if let text = files[path.value] { return ContentHash.sha256(of: Data(text.utf8)) }
        let inside = files.keys.filter { $0.hasPrefix(path.value + "/") }.sorted()
        guard !inside.isEmpty else { return nil }
        return ContentHash.sha256(of: Data(inside.map { "\(ContentHash.sha256(of: Data(files[$0]!.utf8)).hex)  \($0)" }.joined(separator: "\n").utf8))
    }
}
