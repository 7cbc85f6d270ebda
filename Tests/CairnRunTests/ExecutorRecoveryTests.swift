import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// A daemon that dies leaves its runs to its supervisors; the next daemon finds each of them.
@Suite struct ExecutorRecoveryTests {
    @Test func aRunStillGoingIsAdoptedAndCompletesWithItsOutputs() async throws {
        let fixture = try ExecutorFixture()
        let files = ["slow.sh": "sleep 2\necho done > out.txt\necho finished\n"]
        var first: LocalExecutor? = try fixture.executor(files: files)
        let spec = job(["sh", "slow.sh"], outputs: ["out.txt"])
        _ = try await first?.submit(spec)
        let running = try await fixture.until(spec.runID) { $0.state == .running }
        // The daemon dies: nothing more is recorded by it, and its supervisor lives on.
        await first?.detach()
        first = nil
        let supervisor = try #require(running.handle.flatMap { pid_t($0.id) })
        #expect(kill(supervisor, 0) == 0)

        let second = try ExecutorFixture(sharing: fixture).executor(files: files)
        let report = try await second.recover()
        #expect(report.adopted == [spec.runID] && report.finished.isEmpty && report.interrupted.isEmpty)
        #expect(await second.inFlight() == [spec.runID])
        #expect(try await second.recover().adopted.isEmpty, "recovering again adopts nothing twice")
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(record.handle == running.handle)
        let output = try #require(record.outputs["out.txt"])
        let restored = fixture.directory.appending("out.txt")
        try fixture.artifacts.restore(output, to: restored)
        #expect(try String(contentsOf: restored, encoding: .utf8) == "done\n")
    }

    @Test func aSupervisorKilledWithoutAResultIsInterruptedAndItsCommandEnded() async throws {
        let fixture = try ExecutorFixture()
        let first = try fixture.executor()
        let spec = job(["sleep", "1000"])
        _ = try await first.submit(spec)
        let running = try await fixture.until(spec.runID) { $0.state == .running }
        try await fixture.waitForFile(fixture.runDirectory(spec.runID).appendingPathComponent("command.pid"))
        let command = try #require(commandPID(in: fixture.runDirectory(spec.runID)))
        await first.detach()
        let supervisor = try #require(running.handle.flatMap { pid_t($0.id) })
        kill(-supervisor, SIGKILL)
        #expect(exits(supervisor, within: .seconds(10)))

        let second = try ExecutorFixture(sharing: fixture).executor()
        let report = try await second.recover()
        #expect(report.interrupted == [spec.runID] && report.adopted.isEmpty)
        let record = try #require(try fixture.ledger.run(id: spec.runID))
        #expect(record.state == .interrupted)
        #expect(record.message?.hasPrefix("interrupted: its supervisor (pid \(supervisor)) is gone and left no result") == true, "\(record.message ?? "")")
        #expect(exits(command, within: .seconds(10)), "the orphaned sleep \(command) is ended")
        #expect(try await second.observe(runID: spec.runID) == .lost)
    }

    @Test func aRunThatEndedWhileNobodyWatchedIsRecordedFromItsResult() async throws {
        let fixture = try ExecutorFixture()
        let files = ["quick.sh": "echo 42 > answer.txt\n"]
        let first = try fixture.executor(files: files)
        let spec = job(["sh", "quick.sh"], outputs: ["answer.txt"])
        _ = try await first.submit(spec)
        await first.detach()
        let running = try await fixture.until(spec.runID) { $0.state == .running }
        try await fixture.waitForFile(fixture.runDirectory(spec.runID).appendingPathComponent("result.json"))
        let supervisor = try #require(running.handle.flatMap { pid_t($0.id) })
        #expect(exits(supervisor, within: .seconds(10)))
        #expect(try fixture.ledger.run(id: spec.runID)?.state == .running, "nobody recorded its end")

        let second = try ExecutorFixture(sharing: fixture).executor(files: files)
        let report = try await second.recover()
        #expect(report.finished == [spec.runID])
        let record = try #require(try fixture.ledger.run(id: spec.runID))
        #expect(record.state == .succeeded && record.outputs["answer.txt"] != nil, "\(record.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: fixture.runDirectory(spec.runID).appendingPathComponent("work").path))
    }

    @Test func aReusedPidIsNeverAdopted() async throws {
        let fixture = try ExecutorFixture()
        // The ledger says a run's supervisor is this test process, which started at other ticks.
        let me = getpid()
        let ticks = try #require(ProcessTable.startTicks(of: me))
        var record = RunRecord(id: "run-reused", key: "k-reused", object: ObjectRef(.featurePipeline, "features"), state: .running,
                               trigger: "inputs", sourceCommit: String(repeating: "b", count: 40), command: ["sleep", "1"],
                               submittedAt: Date())
        record.handle = JobHandle(executor: "local", id: String(me), runID: record.id, startTicks: ticks + 1)
        try fixture.ledger.record(record)
        var never = RunRecord(id: "run-never", key: "k-never", object: ObjectRef(.featurePipeline, "features"), state: .submitted,
                              trigger: "inputs", sourceCommit: String(repeating: "b", count: 40), submittedAt: Date())
        never.command = ["true"]
        try fixture.ledger.record(never)
        var foreign = record
        foreign.id = "run-slurm"
        foreign.handle = JobHandle(executor: "slurm", id: "123", runID: "run-slurm")
        try fixture.ledger.record(foreign)

        let executor = try fixture.executor()
        let report = try await executor.recover()
        #expect(report.adopted.isEmpty)
        #expect(Set(report.interrupted) == ["run-reused", "run-never"])
        #expect(try fixture.ledger.run(id: "run-never")?.message == "never started (the process that queued it stopped first)")
        #expect(try fixture.ledger.run(id: "run-slurm")?.state == .running, "another executor's run is left to it")
        #expect(kill(me, 0) == 0, "and nothing was sent to the process that has the pid now")
    }
}
