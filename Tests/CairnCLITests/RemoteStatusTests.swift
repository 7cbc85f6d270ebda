import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct RemoteStatusTests {
    /// A served bare repository with the example manifests, and a working clone to push from.
    func servedRepository() throws -> (served: TemporaryDirectory, url: String, work: GitFixture) {
        let work = try GitFixture()
        try work.commit(try exampleManifests().mapValues { Optional($0) })
        let served = try TemporaryDirectory("cairn-served")
        try run("git", ["clone", "-q", "--bare", work.path, served.appending("ml.git").path], environment: GitFixture.environment())
        try work.git(["remote", "add", "origin", served.appending("ml.git").path])
        return (served, "file://" + served.appending("ml.git").path, work)
    }

    @Test func aPersonPushingToTheStatusBranchAndNotesMeanwhileLosesNothing() throws {
        let (served, url, work) = try servedRepository()
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", url, "--state-dir", state.path, "--push"]
        let first = try cairn(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let remote = served.appending("ml.git").path
        func remoteGit(_ args: [String]) throws -> String {
            try run("git", ["--git-dir", remote] + args, environment: GitFixture.environment()).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // One status file per object, and the version the training registered; the pipeline
        // ran its stages (Running, then UpToDate).
        #expect(try remoteGit(["ls-tree", "--name-only", "-r", "cairn/status"]).split(separator: "\n").count == 7)
        #expect(try remoteGit(["ls-tree", "--name-only", "-r", "cairn/status"]).contains("ModelVersion/churn/1.yaml"))
        #expect(try remoteGit(["log", "-1", "--format=%s", "cairn/status", "--", "FeaturePipeline/churn-features.yaml"])
                == "FeaturePipeline/churn-features: UpToDate")

        // A person adds a file to the status branch and a note of their own, and pushes both.
        let person = try TemporaryDirectory("person")
        try run("git", ["clone", "-q", "-b", "cairn/status", remote, person.appending("c").path], environment: GitFixture.environment())
        let clone = person.appending("c")
        try Data("read me\n".utf8).write(to: clone.appendingPathComponent("NOTES-FROM-ANA.md"))
        try run("git", ["add", "-A"], in: clone, environment: GitFixture.environment())
        try run("git", ["commit", "-q", "-m", "Ana's remark"], in: clone, environment: GitFixture.environment())
        try run("git", ["fetch", "-q", "origin", "refs/notes/cairn:refs/notes/cairn"], in: clone, environment: GitFixture.environment())
        let firstCommit = try remoteGit(["rev-parse", "main"])
        try run("git", ["notes", "--ref=cairn", "append", "-m", "Ana: checked by hand", firstCommit], in: clone, environment: GitFixture.environment())
        try run("git", ["push", "-q", "origin", "cairn/status", "refs/notes/cairn"], in: clone, environment: GitFixture.environment())

        // A new commit on main gives Cairn something to write; its push is rejected at first.
        let training = try #require(try exampleManifests()["training.yaml"])
        try work.commit(["training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 0.5")])
        try work.git(["push", "-q", "origin", "main"])
        let second = try cairn(arguments)
        #expect(second.status == 0, "\(second.stderr)")

        let subjects = try remoteGit(["log", "--format=%s", "cairn/status"])
        #expect(subjects.contains("Ana's remark"))
        #expect(subjects.hasPrefix("TrainingSchedule/churn-weekly: Registered"), "\(subjects)")
        #expect(try remoteGit(["ls-tree", "--name-only", "-r", "cairn/status"]).contains("ModelVersion/churn/2.yaml"))
        #expect(try remoteGit(["ls-tree", "--name-only", "cairn/status"]).contains("NOTES-FROM-ANA.md"))
        let note = try remoteGit(["notes", "--ref=cairn", "show", firstCommit])
        #expect(note.contains("Ana: checked by hand") && note.contains("Cairn reconciled this commit"), "\(note)")
        let newHead = try remoteGit(["rev-parse", "main"])
        #expect(try remoteGit(["notes", "--ref=cairn", "show", newHead]).contains("TrainingSchedule/churn-weekly: "))
        // Nothing was forced: Ana's commit is an ancestor of the remote status tip.
        #expect(try remoteGit(["merge-base", "--is-ancestor", try run("git", ["rev-parse", "HEAD"], in: clone).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines), "cairn/status"]).isEmpty)
    }

    @Test func aRemoteThatStopsAnsweringIsBackedOffAndRecoveredFrom() throws {
        let (served, url, work) = try servedRepository()
        let state = try TemporaryDirectory("cairn-state")
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", url, "--state-dir", state.path, "--interval", "1s", "--fetch-timeout", "5s"],
                                           logTo: state.appending("log"))
        func waitFor(_ text: String) -> Bool { daemon.waitFor(text) }
        func logText() -> String { daemon.output }
        #expect(waitFor("cairn.changed=5"), "\(logText())")
        let away = served.appending("gone.git")
        try FileManager.default.moveItem(at: served.appending("ml.git"), to: away)
        #expect(waitFor("pass failed; keeping the last known state"), "\(logText())")
        let status = try cairn(["status", "--state-dir", state.path])
        #expect(status.status == 0, "the last known state is kept: \(status.stdout)")

        try FileManager.default.moveItem(at: away, to: served.appending("ml.git"))
        let training = try #require(try exampleManifests()["training.yaml"])
        try work.commit(["training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 0.5")])
        try work.git(["push", "-q", "origin", "main"])
        #expect(waitFor("recovered"), "\(logText())")
        // The new commit's params train (the first version, or the second when the first
        // commit's training ran before the remote went away).
        #expect(waitFor("[TrainingScheduleController] registered"), "\(logText())")
        #expect(daemon.terminate() == 0)
    }

    /// The daemon pushes through its own service: after each pass that wrote something, and a
    /// new commit's status reaches the remote without `reconcile --once`.
    @Test func theDaemonPushesStatusAfterItsPasses() throws {
        let (served, url, work) = try servedRepository()
        let state = try TemporaryDirectory("cairn-state")
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", url, "--state-dir", state.path, "--push",
                                                                   "--interval", "1s"], logTo: state.appending("log"))
        let remote = served.appending("ml.git").path
        func remoteSubjects() -> [Substring] {
            ((try? run("git", ["--git-dir", remote, "log", "--format=%s", "cairn/status"], environment: GitFixture.environment(),
                       check: false).stdout) ?? "").split(separator: "\n")
        }
        func waitForRemote(_ count: Int) -> Bool {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if remoteSubjects().count >= count { return true }
                usleep(200_000)
            }
            return false
        }
        // The first pass's five statuses, the pipeline's runs ending and the first training
        // (how many Running commits come before UpToDate depends on how the runs interleave
        // with passes).
        let deadline = Date().addingTimeInterval(60)
        while !remoteSubjects().contains("TrainingSchedule/churn-weekly: Registered") && Date() < deadline { usleep(200_000) }
        let before = remoteSubjects().count
        #expect(before >= 6, "\(daemon.output)")
        let training = try #require(try exampleManifests()["training.yaml"])
        try work.commit(["training.yaml": training.replacingOccurrences(of: "C: 1.0", with: "C: 4.0")])
        try work.git(["push", "-q", "origin", "main"])
        #expect(waitForRemote(before + 1), "\(daemon.output)")
        #expect(remoteSubjects().first?.hasPrefix("TrainingSchedule/churn-weekly: ") == true, "\(remoteSubjects())")
        #expect(daemon.terminate() == 0)
        #expect(!daemon.output.contains("push failed"), "\(daemon.output)")
    }
}
