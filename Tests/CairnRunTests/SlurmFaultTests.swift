import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

extension ExecutorConformanceTests {
    /// What goes wrong around a real Slurm cluster, each ending in a clear record and nothing
    /// run twice. Nested in the serialized conformance suite: one test takes the node down.
    @Suite(.enabled(if: SlurmCluster.wanted, "CAIRN_SLURM=off leaves the Slurm half out"))
    struct SlurmFaults {
        /// A directory with the Slurm tools found on PATH, less `missing`, plus `extra` scripts.
        func tools(in fixture: ExecutorFixture, without missing: String? = nil, extra: [String: String] = [:]) throws -> URL {
            let directory = fixture.directory.appending("bin")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for tool in ["sbatch", "squeue", "scontrol", "scancel", "sacct"] where tool != missing && extra[tool] == nil {
                let found = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
                    .map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
                if let found { try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent(tool).path, withDestinationPath: found) }
            }
            for (tool, script) in extra {
                let path = directory.appendingPathComponent(tool)
                try Data(script.utf8).write(to: path)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path.path)
            }
            return directory
        }

        /// A daemon whose Slurm tools are not there: nothing changes by itself, so the run fails.
        @Test func sbatchMissingFailsTheRunSayingSo() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let bin = try tools(in: fixture, without: "sbatch")
            let executor = try fixture.slurmExecutor(files: ["a.sh": "true\n"], commands: SlurmCommands(directory: bin.path))
            let spec = job(["sh", "a.sh"])
            _ = try await executor.submit(spec)
            let record = try await fixture.final(spec.runID, within: 30)
            #expect(record.state == .failed)
            #expect(record.message == "could not submit it to Slurm: sbatch was not found in \(bin.path) (--slurm-bin); install Slurm's client commands (Debian: slurm-client) there",
                    "\(record.message ?? "")")
            #expect(await executor.inFlight().isEmpty)
        }

        /// Slurm unreachable: nothing was queued, so the run never started (and runs again), and
        /// the controller hears of it as passing trouble, retried with the engine's backoff, not
        /// counted against the run's retries, and not announced as an end (which would wake the
        /// object at once, to fail again at once).
        @Test func slurmUnreachableLeavesTheRunNeverStartedForALaterTry() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let said = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
            let bin = try tools(in: fixture, extra: ["sbatch": "#!/bin/sh\necho '\(said)' >&2\nexit 1\n"])
            let executor = try fixture.slurmExecutor(files: ["a.sh": "true\n"], commands: SlurmCommands(directory: bin.path))
            let spec = job(["sh", "a.sh"])
            do {
                _ = try await executor.submit(spec)
                Issue.record("submit did not throw")
            } catch {
                #expect("\(error)".hasPrefix("could not submit run \(spec.runID) to Slurm: ") && "\(error)".hasSuffix(said), "\(error)")
            }
            let record = try #require(try fixture.ledger.run(id: spec.runID))
            #expect(record.state == .interrupted && record.startedAt == nil)
            #expect(record.message?.hasPrefix("never started: could not submit it to Slurm: ") == true, "\(record.message ?? "")")
            #expect(await executor.inFlight().isEmpty)
            let announced = Task { () -> String? in
                var ends = executor.completions.makeAsyncIterator()
                return await ends.next()?.runID
            }
            try await Task.sleep(for: .milliseconds(500))
            announced.cancel()
            #expect(await announced.value == nil, "no end was announced")
        }

        @Test func sbatchRefusingTheJobFailsTheRunWithWhatItSaid() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let bin = try tools(in: fixture, extra: ["sbatch": "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified' >&2\nexit 1\n"])
            let executor = try fixture.slurmExecutor(files: ["a.sh": "true\n"], commands: SlurmCommands(directory: bin.path))
            let spec = job(["sh", "a.sh"])
            _ = try await executor.submit(spec)
            let record = try await fixture.final(spec.runID, within: 30)
            #expect(record.state == .failed)
            #expect(record.message?.hasPrefix("Slurm refused it: ") == true, "\(record.message ?? "")")
            #expect(record.message?.hasSuffix("exited with status 1: sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified") == true,
                    "\(record.message ?? "")")
        }

        /// An operator's `scancel` is not Cairn's: the run fails, saying Slurm ended it.
        @Test func aJobSlurmCancelsFailsSayingSlurmEndedIt() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let executor = try fixture.slurmExecutor(files: ["long.sh": "echo working\nsleep 120\n"])
            let spec = job(["sh", "long.sh"])
            _ = try await executor.submit(spec)
            let running = try await fixture.until(spec.runID) { $0.state == .running }
            try await fixture.waitForFile(fixture.runDirectory(spec.runID, .slurm).appendingPathComponent("command.pid"))
            let jobID = try #require(running.handle?.id)
            _ = try await runAsync("/usr/bin/env", ["scancel", jobID])
            let record = try await fixture.final(spec.runID)
            #expect(record.state == .failed, "\(record.message ?? "")")
            #expect(record.message?.hasPrefix("Slurm ended job \(jobID) (CANCELLED") == true, "\(record.message ?? "")")
            #expect(record.message?.contains("without Cairn asking") == true, "\(record.message ?? "")")
        }

        /// A job queued while the node is down waits, says why, and runs once it is back.
        @Test func aJobWaitsWhileTheNodeIsDownAndRunsWhenItIsBack() async throws {
            try await SlurmCluster.exclusively { try await nodeDown_aJobWaitsWhileTheNodeIsDownAndRunsWhenItIsBack() }
        }

        func nodeDown_aJobWaitsWhileTheNodeIsDownAndRunsWhenItIsBack() async throws {
            try await SlurmCluster.require()
            let node = try await SlurmCluster.node()
            let fixture = try ExecutorFixture()
            let executor = try fixture.slurmExecutor(files: ["a.sh": "echo ran > out.txt\n"])
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=down", "reason=cairn-test"])
            var resumed = false
            defer { if !resumed { _ = try? CairnTestSupport.run("/usr/bin/env", ["scontrol", "update", "nodename=\(node)", "state=resume"], check: false) } }
            let spec = job(["sh", "a.sh"], outputs: ["out.txt"])
            _ = try await executor.submit(spec)
            let waiting = try await fixture.until(spec.runID, within: 30) { $0.message?.hasPrefix("waiting in Slurm's queue") == true }
            #expect(waiting.state == .submitted && waiting.startedAt == nil, "\(waiting.message ?? "")")
            try await Task.sleep(for: .seconds(2))
            #expect(try fixture.ledger.run(id: spec.runID)?.state == .submitted, "nothing runs on a node that is down")
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=resume"])
            resumed = true
            let record = try await fixture.final(spec.runID)
            #expect(record.state == .succeeded && record.outputs["out.txt"] != nil, "\(record.message ?? "")")
        }

        /// Cancelled while it waits in the queue: over at once, and said so.
        @Test func aJobCancelledWhileQueuedEndsCancelledBeforeItStarted() async throws {
            try await SlurmCluster.exclusively { try await nodeDown_aJobCancelledWhileQueuedEndsCancelledBeforeItStarted() }
        }

        func nodeDown_aJobCancelledWhileQueuedEndsCancelledBeforeItStarted() async throws {
            try await SlurmCluster.require()
            let node = try await SlurmCluster.node()
            let fixture = try ExecutorFixture()
            let executor = try fixture.slurmExecutor(files: ["a.sh": "echo never\n"])
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=down", "reason=cairn-test"])
            var resumed = false
            defer { if !resumed { _ = try? CairnTestSupport.run("/usr/bin/env", ["scontrol", "update", "nodename=\(node)", "state=resume"], check: false) } }
            let spec = job(["sh", "a.sh"])
            _ = try await executor.submit(spec)
            let queued = try await fixture.until(spec.runID, within: 30) { $0.message?.hasPrefix("waiting in Slurm's queue") == true }
            try await executor.cancel(runID: spec.runID)
            let record = try await fixture.final(spec.runID, within: 30)
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=resume"])
            resumed = true
            #expect(record.state == .cancelled && record.startedAt == nil, "\(record.message ?? "")")
            #expect(record.message?.hasPrefix("cancelled before it started (Slurm job \(queued.handle?.id ?? "?"))") == true, "\(record.message ?? "")")
            #expect(!FileManager.default.fileExists(atPath: fixture.runDirectory(spec.runID, .slurm).appendingPathComponent("log").path))
        }

        /// The node goes down under a running job: the run is interrupted (not failed: it did
        /// nothing wrong), for the controller's retry policy to run again; nothing is resubmitted
        /// by the executor itself.
        @Test func aNodeThatGoesDownUnderARunningJobInterruptsTheRun() async throws {
            try await SlurmCluster.exclusively { try await nodeDown_aNodeThatGoesDownUnderARunningJobInterruptsTheRun() }
        }

        func nodeDown_aNodeThatGoesDownUnderARunningJobInterruptsTheRun() async throws {
            try await SlurmCluster.require()
            let node = try await SlurmCluster.node()
            let fixture = try ExecutorFixture()
            let commands = SlurmCommands()
            let executor = try fixture.slurmExecutor(files: ["long.sh": "echo working\nsleep 120\n"], commands: commands)
            let spec = job(["sh", "long.sh"])
            _ = try await executor.submit(spec)
            _ = try await fixture.until(spec.runID) { $0.state == .running }
            try await fixture.waitForFile(fixture.runDirectory(spec.runID, .slurm).appendingPathComponent("command.pid"))
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=down", "reason=cairn-test"])
            var resumed = false
            defer { if !resumed { _ = try? CairnTestSupport.run("/usr/bin/env", ["scontrol", "update", "nodename=\(node)", "state=resume"], check: false) } }
            let record = try await fixture.final(spec.runID)
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=resume"])
            resumed = true
            #expect(record.state == .interrupted, "\(record.message ?? "")")
            #expect(record.message?.contains("NODE_FAIL") == true, "\(record.message ?? "")")
            #expect(commands.calls["sbatch"] == 1)
        }

        /// The daemon dies while its job is queued; the job runs and ends while no daemon
        /// watches; the next daemon records it from its files, and submits nothing.
        @Test func aDaemonKilledWhileItsJobIsQueuedRecordsItsEndAfterARestart() async throws {
            try await SlurmCluster.exclusively { try await nodeDown_aDaemonKilledWhileItsJobIsQueuedRecordsItsEndAfterARestart() }
        }

        func nodeDown_aDaemonKilledWhileItsJobIsQueuedRecordsItsEndAfterARestart() async throws {
            try await SlurmCluster.require()
            let node = try await SlurmCluster.node()
            let fixture = try ExecutorFixture()
            let files = ["a.sh": "echo 42 > answer.txt\n"]
            let first = try fixture.slurmExecutor(files: files)
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=down", "reason=cairn-test"])
            var resumed = false
            defer { if !resumed { _ = try? CairnTestSupport.run("/usr/bin/env", ["scontrol", "update", "nodename=\(node)", "state=resume"], check: false) } }
            let spec = job(["sh", "a.sh"], outputs: ["answer.txt"])
            _ = try await first.submit(spec)
            _ = try await fixture.until(spec.runID, within: 30) { $0.handle?.id.isEmpty == false }
            await first.detach()
            try await SlurmCluster.scontrol(["update", "nodename=\(node)", "state=resume"])
            resumed = true
            try await fixture.waitForFile(fixture.runDirectory(spec.runID, .slurm).appendingPathComponent("exit-status"), within: 90)
            // Its script wrote the file just before it ended: wait until Slurm calls it over too.
            let name = SlurmExecutor.jobName(runID: spec.runID)
            let deadline = Date().addingTimeInterval(60)
            while try await SlurmCluster.jobs(named: name).first?.hasSuffix(" COMPLETED") != true, Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(try fixture.ledger.run(id: spec.runID)?.state == .submitted, "nobody recorded its end")

            let commands = SlurmCommands()
            let second = try ExecutorFixture(sharing: fixture).slurmExecutor(files: files, commands: commands)
            let report = try await second.recover()
            #expect(report.finished == [spec.runID], "\(report)")
            let record = try #require(try fixture.ledger.run(id: spec.runID))
            #expect(record.state == .succeeded && record.outputs["answer.txt"] != nil, "\(record.message ?? "")")
            #expect(commands.calls["sbatch"] == nil, "nothing was submitted again")
            #expect(try await SlurmCluster.jobs(named: SlurmExecutor.jobName(runID: spec.runID)).count == 1)
        }

        /// Killed between `sbatch` and writing the job's id down: the next daemon finds the
        /// job by its name and adopts it.
        @Test func aJobWhoseIdWasNeverWrittenDownIsFoundByName() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let files = ["slow.sh": "sleep 3\necho done > out.txt\n"]
            let first = try fixture.slurmExecutor(files: files)
            let spec = job(["sh", "slow.sh"], outputs: ["out.txt"])
            _ = try await first.submit(spec)
            let queued = try await fixture.until(spec.runID, within: 30) { $0.handle?.id.isEmpty == false }
            await first.detach()
            var lost = queued
            lost.state = .submitted
            lost.handle = JobHandle(executor: "slurm", id: "", runID: spec.runID)
            try fixture.ledger.record(lost)

            let commands = SlurmCommands()
            let second = try ExecutorFixture(sharing: fixture).slurmExecutor(files: files, commands: commands)
            let report = try await second.recover()
            #expect(report.adopted == [spec.runID], "\(report)")
            let record = try await fixture.final(spec.runID)
            #expect(record.state == .succeeded, "\(record.message ?? "")")
            #expect(record.handle?.id == queued.handle?.id, "the same job")
            #expect(commands.calls["sbatch"] == nil)
        }

        /// A run the ledger has and Slurm never got (killed before sbatch answered): marked
        /// never started, for the controller to run again; nothing is submitted by recovery.
        @Test func aRunThatNeverReachedSlurmIsMarkedNeverStarted() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let spec = job(["sh", "a.sh"])
            var record = RunRecord(id: spec.runID, key: spec.key, object: spec.object, stage: spec.stage, state: .submitted, trigger: "inputs",
                                   reason: "r", sourceCommit: spec.sourceCommit, command: spec.command, inputs: [:], attempt: 1, submittedAt: Date())
            record.handle = JobHandle(executor: "slurm", id: "", runID: spec.runID)
            try fixture.ledger.record(record)
            let commands = SlurmCommands()
            let report = try await fixture.slurmExecutor(commands: commands).recover()
            #expect(report.interrupted == [spec.runID])
            let after = try #require(try fixture.ledger.run(id: spec.runID))
            #expect(after.state == .interrupted && after.message == LocalExecutor.neverStarted && after.startedAt == nil)
            #expect(commands.calls["sbatch"] == nil)
        }

        @Test func theProbeReadsItsNonceBackFromTheSharedDirectory() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            let configuration = SlurmConfiguration(sharedDirectory: fixture.shared)
            try FileManager.default.createDirectory(at: fixture.shared, withIntermediateDirectories: true)
            let found = try await SlurmProbe.run(configuration, commands: SlurmCommands(), within: .seconds(90))
            #expect(!found.jobID.isEmpty)
            let left = try FileManager.default.contentsOfDirectory(atPath: fixture.shared.appendingPathComponent("probes").path)
            #expect(left.isEmpty, "the probe cleans up: \(left)")
        }

        /// A node that sees another directory at the shared path (simulated: the job writes
        /// elsewhere): the probe fails, saying the nodes do not share it.
        @Test func aProbeWhoseNonceNeverAppearsFailsSayingTheDirectoryIsNotShared() async throws {
            try await SlurmCluster.require()
            let fixture = try ExecutorFixture()
            try FileManager.default.createDirectory(at: fixture.shared, withIntermediateDirectories: true)
            let elsewhere = fixture.directory.appending("node-view")
            try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
            let configuration = SlurmConfiguration(sharedDirectory: fixture.shared)
            let started = Date()
            do {
                _ = try await SlurmProbe.run(configuration, commands: SlurmCommands(), within: .seconds(90),
                                             writingTo: elsewhere.appendingPathComponent("nonce"))
                Issue.record("the probe passed")
            } catch {
                let message = "\(error)"
                #expect(message.contains("never appeared here: the nodes do not see --slurm-shared-dir \(fixture.shared.path) at the same path"), "\(message)")
            }
            #expect(Date().timeIntervalSince(started) < 60, "it says so once the job has ended, not at the limit")
            #expect(FileManager.default.fileExists(atPath: elsewhere.appendingPathComponent("nonce").path), "the job did run, elsewhere")
        }
    }
}
