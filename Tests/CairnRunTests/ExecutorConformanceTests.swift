import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// One suite, two executors: what a controller may count on from any `JobExecutor`, run
/// against the local one and against a real single-node Slurm cluster. Serialized, with the
/// Slurm faults below, because the Slurm half shares one node (and one test takes it down).
@Suite(.serialized) struct ExecutorConformanceTests {
    @Test(arguments: ExecutorKind.tested)
    func aRunThatSucceedsStoresItsOutputsAndItsLog(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let executor = try await fixture.executor(kind, files: ["train.sh": """
            #!/bin/sh
            mkdir -p model
            printf 'weights for %s\\n' "$CAIRN_PARAMS" > model/weights.txt
            echo "trained as run $CAIRN_RUN_ID"
            echo "a warning" >&2
            """])
        var completions = executor.completions.makeAsyncIterator()
        let spec = job(["sh", "train.sh"], outputs: ["model"])
        let handle = try await executor.submit(spec)
        #expect(handle.runID == spec.runID && handle.executor == kind.rawValue)
        let record = try await fixture.final(spec.runID)

        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(record.exitStatus == 0 && record.startedAt != nil && record.finishedAt != nil)
        #expect(record.handle?.executor == kind.rawValue && record.handle?.id.isEmpty == false)
        let restored = fixture.directory.appending("model")
        try fixture.artifacts.restore(try #require(record.outputs["model"]), to: restored)
        #expect(try String(contentsOf: restored.appendingPathComponent("weights.txt"), encoding: .utf8) == "weights for {\"lr\":0.1}\n")
        // The command's output, both streams, is the run's log, in its directory.
        let directory = fixture.runDirectory(spec.runID, kind)
        #expect(record.logPath == directory.appendingPathComponent("log").path)
        let log = try String(contentsOfFile: try #require(record.logPath), encoding: .utf8)
        #expect(log.contains("trained as run \(spec.runID)\n") && log.contains("a warning\n"), "\(log)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("work").path), "the checkout is removed")
        #expect(await completions.next()?.runID == spec.runID, "the end is announced")
        #expect(await executor.inFlight().isEmpty)
        #expect(try await executor.observe(runID: spec.runID) == .succeeded)
    }

    @Test(arguments: ExecutorKind.tested)
    func aRunThatFailsSaysHowWithTheEndOfItsLog(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let executor = try await fixture.executor(kind, files: ["fail.sh": "echo 'loading data'\necho 'no such column: label' >&2\nexit 3\n"])
        let spec = job(["sh", "fail.sh"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.exitStatus == 3)
        let message = record.message ?? ""
        #expect(message.hasPrefix("it exited with status 3; the last lines of its log:"), "\(message)")
        #expect(message.contains("no such column: label"), "\(message)")
        guard case .failed(let status, _, _) = try await executor.observe(runID: spec.runID) else {
            Issue.record("observe does not say failed")
            return
        }
        #expect(status == 3)
    }

    /// Second-scale: Slurm's `--time` counts minutes, so Cairn ends the job itself.
    @Test(arguments: ExecutorKind.tested)
    func aRunPastItsTimeoutIsEndedAndFailsAsTimedOut(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let executor = try await fixture.executor(kind, files: ["slow.sh": "echo started\nsleep 120\n"])
        let spec = job(["sh", "slow.sh"], timeout: .seconds(2))
        let submitted = Date()
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed, "\(record.message ?? "")")
        #expect(record.message?.hasPrefix("timed out: it ran past its timeout of 2 s and was killed by SIGTERM") == true, "\(record.message ?? "")")
        #expect(record.message?.contains("started") == true, "the log's end is in the message")
        #expect(Date().timeIntervalSince(submitted) < 60, "ended well before the sleep would have")
    }

    @Test(arguments: ExecutorKind.tested)
    func aCancelledRunEndsCancelled(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let executor = try await fixture.executor(kind, files: ["long.sh": "echo working\nsleep 120\n"])
        let spec = job(["sh", "long.sh"])
        _ = try await executor.submit(spec)
        _ = try await fixture.until(spec.runID) { $0.state == .running }
        try await fixture.waitForFile(fixture.runDirectory(spec.runID, kind).appendingPathComponent("command.pid"))
        try await executor.cancel(runID: spec.runID)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .cancelled, "\(record.message ?? "")")
        #expect(record.message?.hasPrefix("cancelled") == true, "\(record.message ?? "")")
        #expect(try await executor.observe(runID: spec.runID) == .cancelled)
        try await executor.cancel(runID: spec.runID)  // Cancelling what has ended is no error.
    }

    @Test(arguments: ExecutorKind.tested)
    func submittingTheSameKeyTwiceRunsItOnce(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let executor = try await fixture.executor(kind, files: ["once.sh": "echo ran\nsleep 2\n"])
        let key = "key-once-\(UUID().uuidString.prefix(8).lowercased())"
        let first = job(["sh", "once.sh"], key: key)
        let again = job(["sh", "once.sh"], key: key)
        // At once: whichever the executor takes first is the run, and the other gets it back.
        async let one = executor.submit(first)
        async let two = executor.submit(again)
        let (handle, second) = try await (one, two)
        #expect(second.runID == handle.runID, "the run under way is returned, not a second one")
        let winner = handle.runID
        #expect([first.runID, again.runID].contains(winner))
        #expect(try await executor.submit(first).runID == winner)
        let record = try await fixture.final(winner)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(try fixture.ledger.runs(withKey: key).map(\.id) == [winner])
        if kind == .slurm {
            #expect(try await SlurmCluster.jobs(named: SlurmExecutor.jobName(runID: winner)).count == 1, "one Slurm job")
            #expect(try await SlurmCluster.jobs(named: SlurmExecutor.jobName(runID: winner == first.runID ? again.runID : first.runID)).isEmpty)
        }
    }

    /// A daemon killed while its run goes on: the next one adopts it, never starts it again,
    /// and records its end with its outputs.
    @Test(arguments: ExecutorKind.tested)
    func aRestartedDaemonAdoptsTheRunStillGoing(_ kind: ExecutorKind) async throws {
        let fixture = try ExecutorFixture()
        let files = ["slow.sh": "echo begun\nsleep 3\necho done > out.txt\n"]
        let first = try await fixture.executor(kind, files: files)
        let spec = job(["sh", "slow.sh"], outputs: ["out.txt"])
        _ = try await first.submit(spec)
        let running = try await fixture.until(spec.runID) { $0.state == .running }
        await detach(first)

        let second = try await ExecutorFixture(sharing: fixture).executor(kind, files: files)
        let report = try await second.recover()
        #expect(report.adopted == [spec.runID] && report.finished.isEmpty && report.interrupted.isEmpty, "\(report)")
        #expect(await second.inFlight() == [spec.runID])
        #expect(try await second.recover().adopted.isEmpty, "recovering again adopts nothing twice")
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(record.handle == running.handle, "the same job, not a second one")
        #expect(record.outputs["out.txt"] != nil)
        if kind == .slurm {
            #expect(try await SlurmCluster.jobs(named: SlurmExecutor.jobName(runID: spec.runID)).count == 1)
        }
    }
}
