import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// A repository with many manifests, so that a pass takes long enough to be killed inside.
func largeRepository(objects: Int) throws -> GitFixture {
    let fixture = try GitFixture()
    var files: [String: String?] = [:]
    for index in 0..<objects {
        files["models/m\(index).yaml"] = """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: m\(index)}
        spec:
          stages: [staging, production]

        """
    }
    try fixture.commit(files, message: "many models")
    return fixture
}

@Suite(.serialized) struct CrashTests {
    /// Kills `cairn reconcile --once` at each named point between the store and git, and at
    /// random moments, then runs it to completion: every object has exactly one status commit,
    /// no outbox entry is committed twice, the store and the branch agree.
    @Test(arguments: ["before-store-apply", "after-store-apply", "between-status-commits", "after-status-ref", "after-notes",
                      "random-20ms", "random-80ms", "random-200ms"])
    func killNineAnywhereLosesNothingAndDuplicatesNothing(_ point: String) throws {
        let objects = 120
        let repository = try largeRepository(objects: objects)
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]
        var environment = ProcessInfo.processInfo.environment
        if point.hasPrefix("random-") {
            let delay = Double(point.dropFirst("random-".count).dropLast(2)) ?? 50
            let child = try Command(try cairnExecutable(), arguments, standardOutput: .discard, standardError: .discard).start()
            // The point of this case is a moment chosen at random, so here sleeping is the test.
            usleep(UInt32(delay * 1000))
            child.terminate(signal: SIGKILL)
            _ = child.waitUntilExit()
        } else {
            environment["CAIRN_FAULT"] = point
            let crashed = try cairn(arguments, environment: environment)
            #expect(crashed.status != 0, "the fault point \(point) was not reached")
        }
        let finished = try cairn(arguments)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")

        let subjects = try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n")
        #expect(subjects.count == objects, "one status commit per object, no more, no less")
        #expect(Set(subjects).count == objects)
        let marks = try repository.git(["log", "--format=%(trailers:key=Cairn-Outbox,valueonly)", "cairn/status"])
            .split(separator: "\n").filter { !$0.isEmpty }
        #expect(Set(marks).count == marks.count, "an outbox entry was committed twice")
        let files = try repository.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n")
        #expect(files.count == objects + 1)
        let head = try repository.git(["rev-parse", "main"])
        #expect(try repository.git(["notes", "--ref=cairn", "show", head]).contains("\(objects) objects, \(objects) Ready."))
        let status = try cairn(["status", "--state-dir", state.path, "--format", "json"])
        #expect(status.status == 0)
        let listed = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [Any]
        #expect(listed?.count == objects)
        // A further run finds nothing to do.
        #expect(try cairn(arguments).stdout.contains("already reconciled"))
    }
}

@Suite(.serialized) struct DaemonTests {
    @Test func sigtermStopsTheDaemonCleanly() throws {
        let repository = try largeRepository(objects: 3)
        let state = try TemporaryDirectory("cairn-state")
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1s"],
                                           logTo: state.appending("log"))
        #expect(daemon.waitFor("cairn.changed=3"), "\(daemon.output)")
        #expect(daemon.terminate() == 0)
        #expect(daemon.termination == .exited(0), "it exits by itself at SIGTERM, not killed by it")
        #expect(daemon.output.contains("stopped"))
        #expect(daemon.output.contains("cairn.commit="), "\(daemon.output)")
        #expect(try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n").count == 3)
    }

    @Test func aQueuedRequestWakesTheDaemonAndTheStatusCommands() throws {
        let repository = try largeRepository(objects: 2)
        let state = try TemporaryDirectory("cairn-state")
        #expect(try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]).status == 0)
        // Without a daemon, nothing would act on the request: say so instead of "queued".
        let nobody = try cairn(["reconcile", "Model/m1", "--repo", repository.path, "--state-dir", state.path])
        #expect(nobody.status == 3 && nobody.stderr.contains("no `cairn run` is running"), "\(nobody.stderr)")

        // A long interval: only the request can make the daemon look again.
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--interval", "1h"], logTo: state.appending("log"))
        #expect(daemon.waitFor("started"), "\(daemon.output)")
        let queued = try cairn(["reconcile", "Model/m1", "--repo", repository.path, "--state-dir", state.path])
        #expect(queued.status == 0 && queued.stdout.contains("queued Model/m1"), "\(queued.stdout)\(queued.stderr)")
        #expect(daemon.waitFor("cairn.trigger=manual", seconds: 10), "\(daemon.output)")
        // A one-off pass on the daemon's state directory would race it: refused, naming it.
        let racing = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path])
        #expect(racing.status == 3 && racing.stderr.contains("another cairn process (pid \(daemon.process.processID))"), "\(racing.stderr)")
        // A second daemon on the same state directory refuses to start, naming the first.
        let second = try cairn(["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1h"])
        #expect(second.status == 3 && second.stderr.contains("pid \(daemon.process.processID)"), "\(second.stderr)")
        #expect(daemon.terminate() == 0)

        let status = try cairn(["status", "Model/m0", "--state-dir", state.path])
        #expect(status.status == 0, "shown")
        #expect(status.stdout.contains("Model/m0  True   NoStageAssigned"), "\(status.stdout)")
        let history = try cairn(["history", "Model/m0", "--state-dir", state.path])
        #expect(history.status == 0 && history.stdout.contains("NoStageAssigned"))
        #expect(try cairn(["status", "Model/none", "--state-dir", state.path]).status == 1)
        #expect(try cairn(["status", "--state-dir", state.appending("nothing").path]).status == 3)
        #expect(try cairn(["reconcile", "--repo", repository.path]).status == 2)
    }
}

@Suite(.serialized) struct ShutdownTests {
    /// SIGTERM while the first pass over many objects is surely in flight (held at a pause
    /// point): the daemon finishes that pass, status commits included, and exits 0; a restart
    /// then finds nothing to do: one status commit per object, none lost and none twice.
    @Test func sigtermMidPassThenRestartLosesAndDuplicatesNothing() throws {
        let objects = 300
        let repository = try largeRepository(objects: objects)
        let state = try TemporaryDirectory("cairn-state")
        var environment = ProcessInfo.processInfo.environment
        environment["CAIRN_FAULT"] = "pause:evaluate"
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--interval", "1h"], logTo: state.appending("log"),
                                           environment: environment)
        #expect(daemon.waitFor("paused at evaluate"), "\(daemon.output)")
        #expect(daemon.terminate() == 0, "\(daemon.output)")
        let log = daemon.output
        let passLine = try #require(log.range(of: "cairn.changed=\(objects)"), "the pass in flight finished: \(log)")
        let stopped = try #require(log.range(of: "stopped"))
        #expect(passLine.lowerBound < stopped.lowerBound)
        #expect(try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n").count == objects,
                "the pass's status commits were written before the exit")
        let finished = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path])
        #expect(finished.status == 0 && finished.stdout.contains("already reconciled"), "\(finished.stdout)\(finished.stderr)")
        let subjects = try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n")
        #expect(subjects.count == objects && Set(subjects).count == objects, "one status commit per object")
        let marks = try repository.git(["log", "--format=%(trailers:key=Cairn-Outbox,valueonly)", "cairn/status"])
            .split(separator: "\n").filter { !$0.isEmpty }
        #expect(Set(marks).count == objects)
        let notes = try repository.git(["notes", "--ref=cairn", "list"]).split(separator: "\n")
        #expect(notes.count == 1, "one note on the one reconciled commit")
    }
}

@Suite(.serialized) struct MissingBranchTests {
    /// Tracking a branch that does not exist says which do, keeps the daemon up, and recovers
    /// as soon as the branch appears.
    @Test func aMissingBranchNamesTheExistingOnesAndTheDaemonWaitsForIt() throws {
        let repository = try largeRepository(objects: 2)
        try repository.git(["branch", "dev"])
        let state = try TemporaryDirectory("cairn-state")
        let once = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--branch", "mian"])
        #expect(once.status == 3)
        #expect(once.stderr.contains("the branch mian does not exist; the repository has: dev, main (choose one with --branch)"),
                "\(once.stderr)")

        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--branch", "mian", "--interval", "1h"], logTo: state.appending("log"))
        #expect(daemon.waitFor("the branch mian does not exist"), "\(daemon.output)")
        try repository.git(["branch", "mian"])
        // Nothing is known yet, so `cairn reconcile Model/m0` would refuse; wake it as that command does.
        let unknown = try cairn(["reconcile", "Model/m0", "--repo", repository.path, "--state-dir", state.path, "--branch", "mian"])
        #expect(unknown.status == 1 && unknown.stderr.contains("Model/m0 is not an object the daemon knows"), "\(unknown.stderr)")
        kill(daemon.process.processID, SIGUSR1)
        #expect(daemon.waitFor("recovered", seconds: 10), "\(daemon.output)")
        #expect(daemon.terminate() == 0)
        #expect(try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n").count == 2)
    }
}
