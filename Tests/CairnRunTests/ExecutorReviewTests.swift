import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// A checkout that also holds symlinks (path → where it points), as a commit may.
struct LinkingCheckout: SourceCheckout {
    var files: [String: String] = [:]
    var links: [String: String]

    func checkout(commit: String, into directory: URL) throws {
        try FilesCheckout(files).checkout(commit: commit, into: directory)
        for (path, destination) in links {
            let target = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: target.path, withDestinationPath: destination)
        }
    }
}

/// A run directory prepared as the executor would, with its row in the ledger as submitted and
/// no handle: what a daemon leaves when it dies between starting the supervisor and recording it.
func handPreparedRun(_ fixture: ExecutorFixture, argv: [String], outputs: [String] = []) throws -> (runID: String, directory: URL) {
    let runID = "run-hand-\(UUID().uuidString.prefix(8).lowercased())"
    let directory = fixture.runDirectory(runID)
    let work = directory.appendingPathComponent("work")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    let job = SupervisedJob(argv: argv, environment: ["PATH": LocalExecutor.runPath, "HOME": directory.path],
                            workingDirectory: work.path, timeoutSeconds: nil, graceSeconds: 1, logCap: 1 << 20,
                            secretNames: [], outputs: outputs)
    try JSONEncoder().encode(job).write(to: directory.appendingPathComponent("job.json"))
    var record = RunRecord(id: runID, key: "key-\(runID)", object: ObjectRef(.featurePipeline, "features"), state: .submitted,
                           trigger: "inputs", sourceCommit: String(repeating: "c", count: 40), command: argv, submittedAt: Date())
    record.logPath = directory.appendingPathComponent("log").path
    try fixture.ledger.record(record)
    return (runID, directory)
}

/// SIGKILL for every process whose argv holds `marker`.
func killMarked(_ marker: String) {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
    for entry in entries {
        guard let pid = pid_t(entry), pid != getpid(),
              let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
        if String(decoding: data, as: UTF8.self).split(separator: "\0").contains(where: { $0 == marker }) { kill(pid, SIGKILL) }
    }
}

func mode(of url: URL) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// The defects a review found in the local executor, each with a real run.
@Suite struct ExecutorReviewTests {
    @Test func anOutputTheCommitHoldsDoesNotCountAsWritten() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["model/weights.txt": "old\n", "metrics.json": "{}\n"])
        for outputs in [["model"], ["metrics.json"]] {
            let spec = job(["true"], outputs: outputs)
            _ = try await executor.submit(spec)
            let record = try await fixture.final(spec.runID)
            #expect(record.state == .failed)
            #expect(record.message?.hasPrefix("it exited with status 0 but did not write its declared output \(outputs[0])") == true,
                    "\(record.message ?? "")")
        }
    }

    @Test func aSupervisorWhoseHandleWasNeverRecordedIsAdoptedFromItsPidFile() async throws {
        let fixture = try ExecutorFixture()
        // It ends when the test says so (a file `go`), so it is still running when recovered however slow the machine.
        let (runID, directory) = try handPreparedRun(fixture, argv: ["/bin/sh", "-c", "until [ -e go ]; do sleep 0.05; done; echo done > out.txt"],
                                                     outputs: ["out.txt"])
        let supervisor = try Command(try cairnExecutable(), ["_supervise", directory.path],
                                     standardOutput: .discard, standardError: .discard).start()
        try await fixture.waitForFile(directory.appendingPathComponent("supervisor.pid"))

        let executor = try fixture.executor()
        let report = try await executor.recover()
        #expect(report.adopted == [runID] && report.interrupted.isEmpty && report.finished.isEmpty)
        let adopted = try #require(try fixture.ledger.run(id: runID))
        #expect(adopted.state == .running && adopted.startedAt != nil)
        #expect(adopted.handle?.id == String(supervisor.processID) && adopted.handle?.startTicks == ProcessTable.startTicks(of: supervisor.processID))
        #expect(await executor.inFlight() == [runID])
        #expect(FileManager.default.createFile(atPath: directory.appendingPathComponent("work/go").path, contents: nil))
        let record = try await fixture.final(runID)
        #expect(record.state == .succeeded && record.outputs["out.txt"] != nil, "\(record.message ?? "")")
        _ = await supervisor.wait()
    }

    @Test func aRunThatWasQueuedAndNeverStartedSaysSoAndHasNoStartTime() async throws {
        let fixture = try ExecutorFixture()
        var queued = RunRecord(id: "run-queued", key: "k-queued", object: ObjectRef(.featurePipeline, "features"), state: .submitted,
                               trigger: "inputs", sourceCommit: String(repeating: "d", count: 40), command: ["true"], submittedAt: Date())
        queued.logPath = fixture.runDirectory("run-queued").appendingPathComponent("log").path
        try fixture.ledger.record(queued)
        let report = try await fixture.executor().recover()
        #expect(report.interrupted == ["run-queued"] && report.adopted.isEmpty)
        let record = try #require(try fixture.ledger.run(id: "run-queued"))
        #expect(record.state == .interrupted && record.startedAt == nil && record.handle == nil && record.finishedAt != nil)
        #expect(record.message == "never started (the process that queued it stopped first)")
    }

    @Test func aLedgerThatFailsAtTheEndKeepsTheRunAndItsOutputsUntilItTakesTheRecord() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["work.sh": "until [ -e go ]; do sleep 0.05; done\necho done > out.txt\n"])
        let spec = job(["sh", "work.sh"], outputs: ["out.txt"])
        _ = try await executor.submit(spec)
        let running = try await fixture.until(spec.runID) { $0.state == .running }
        fixture.ledger.failWrites = true
        let directory = fixture.runDirectory(spec.runID)
        #expect(FileManager.default.createFile(atPath: directory.appendingPathComponent("work/go").path, contents: nil))
        try await fixture.waitForFile(directory.appendingPathComponent("result.json"))
        let supervisor = try #require(running.handle.flatMap { pid_t($0.id) })
        #expect(exits(supervisor, within: .seconds(10)))
        try await Task.sleep(for: .seconds(2))  // The first write failed, and a retry.
        #expect(await executor.inFlight() == [spec.runID], "still in flight while its end is not recorded")
        // Its checkout is kept (the output itself was moved into the artifact store already).
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("work/go").path), "its checkout is kept")
        #expect(try fixture.ledger.run(id: spec.runID)?.state == .running)

        fixture.ledger.failWrites = false
        let record = try await fixture.final(spec.runID, within: 30)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        let output = try #require(record.outputs["out.txt"])
        let restored = fixture.directory.appending("out.txt")
        try fixture.artifacts.restore(output, to: restored)
        #expect(try String(contentsOf: restored, encoding: .utf8) == "done\n")
        #expect(await executor.inFlight().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("work").path), "removed once recorded")
    }

    @Test func aGrandchildThatLeftTheGroupAndKeepsWritingDoesNotHoldTheRun() async throws {
        let marker = "cairn-stray-\(UUID().uuidString.prefix(8).lowercased())"
        defer { killMarked(marker) }
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(grace: .seconds(1))
        let script = "import os,subprocess,sys; subprocess.Popen(['setsid','sh','-c','while true; do echo x; sleep 0.1; done', sys.argv[1]]); sys.exit(0)"
        let spec = job(["python3", "-c", script, marker])
        let started = ContinuousClock.now
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID, within: 90)
        let took = ContinuousClock.now - started
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        // About 1.2 s on a quiet machine; the bound only tells "ends" from "held for ever"
        // (the writer never stops), with room for a machine busy with the whole suite and
        // other builds (54 s was seen under such load).
        #expect(took < .seconds(80), "ended \(took) after it was submitted; grace is 1 s")
    }

    @Test func aLogThatCannotBeWrittenIsDrainedAndSaidInTheResultAndTheMessage() async throws {
        let fixture = try ExecutorFixture()
        let (runID, directory) = try handPreparedRun(fixture, argv: ["/bin/sh", "-c", "for i in $(seq 1 2000); do echo line $i; done; echo done > out.txt"],
                                                     outputs: ["out.txt"])
        // Every write to the log fails with ENOSPC, as on a full disk.
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("log").path, withDestinationPath: "/dev/full")
        let supervisor = try Command(try cairnExecutable(), ["_supervise", directory.path],
                                     standardOutput: .discard, standardError: .discard).start()
        let outcome = await supervisor.wait()
        #expect(outcome.succeeded)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("result.json"))) as? [String: Any])
        #expect(result["logError"] as? String == "No space left on device")
        #expect(result["exitStatus"] as? Int == 0, "the command was not held up by its log: \(result)")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("log"))
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("log").path, contents: nil)

        let report = try await fixture.executor().recover()
        #expect(report.finished == [runID])
        let record = try #require(try fixture.ledger.run(id: runID))
        #expect(record.state == .succeeded)
        #expect(record.message?.contains("its log could not be written (No space left on device)") == true, "\(record.message ?? "")")
    }

    @Test(arguments: [100, 50_000])
    func theLogIsReadableByItsOwnerOnly(lines: Int) async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(logCap: 8192)
        let spec = job(["/bin/sh", "-c", "seq 1 \(lines)"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        let directory = fixture.runDirectory(spec.runID)
        #expect(try mode(of: directory.appendingPathComponent("log")) == 0o600)
        #expect(try mode(of: directory.appendingPathComponent("supervisor.log")) == 0o600)
        if lines > 1000 {
            #expect(try String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8).hasPrefix("[cairn: the first"), "it rotated")
        }
    }

    @Test func aRunCannotReadTheDaemonsEnvironmentThroughItsSupervisor() async throws {
        let secret = "s3cr3t-\(UUID().uuidString)"
        setenv("CAIRN_TEST_SECRET", secret, 1)
        defer { unsetenv("CAIRN_TEST_SECRET") }
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        let spec = job(["python3", "-c", "import os; print(open('/proc/%d/environ' % os.getppid()).read().replace('\\0', '\\n'))"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        let log = try String(contentsOfFile: try #require(record.logPath), encoding: .utf8)
        #expect(log.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), "it read its supervisor's environment")
        #expect(!log.contains(secret) && !log.contains("CAIRN_TEST_SECRET"), "the run saw the test process's variable")
    }

    @Test(arguments: ["data/raw.csv", "data/sub/raw.csv"])
    func anInputIsNeverRestoredThroughASymlinkInTheCheckout(path: String) async throws {
        let fixture = try ExecutorFixture()
        let outside = fixture.directory.appending("somewhere")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let file = fixture.directory.appending("raw.csv")
        try Data("a,b\n1,2\n".utf8).write(to: file)
        let input = try fixture.artifacts.store(file)
        let executor = try fixture.executor(source: LinkingCheckout(links: ["data": outside.path]))
        var spec = job(["true"])
        spec.inputs = [path: input]
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.handle == nil)
        #expect(record.message == "could not start: the input \(path) would be restored through data, which is a symlink in the checkout and may lead out of the run's directory; nothing was restored",
                "\(record.message ?? "")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "nothing was created outside")
    }

    @Test func aStoredDirectoryWithAMissingFileBlobIsNotContained() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        try directory.write("model/a.bin", "aaa\n")
        try directory.write("model/nested/b.bin", "bbb\n")
        let artifact = try store.store(directory.appending("model"))
        let file = try store.store(directory.appending("model/nested/b.bin"))
        #expect(store.contains(artifact) && store.contains(file))
        try FileManager.default.removeItem(at: store.path(of: file.digest))
        #expect(!store.contains(artifact), "one of its files is gone")
        #expect(!store.contains(file))
        #expect(store.contains(try store.store(directory.appending("model/a.bin"))))
    }
}
