import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// People write beside Cairn: on the status branch, in the notes, or by deleting and
/// resetting the branch. Status must stay complete and never be written twice.
@Suite(.serialized) struct StatusIntegrityTests {
    /// Makes a commit on `cairn/status` as a person would (plumbing, no checkout), with
    /// `message`, adding `file`; returns its id.
    @discardableResult
    func personCommits(on repository: GitFixture, message: String, file: String = "NOTES.md") throws -> String {
        let text = repository.url.appendingPathComponent(".git/person-remark")
        try Data("a remark from a person\n".utf8).write(to: text)
        let blob = try repository.git(["hash-object", "-w", text.path])
        let parent = try repository.git(["rev-parse", "cairn/status"])
        let index = repository.url.appendingPathComponent(".git/person-index")
        var environment = GitFixture.environment()
        environment["GIT_INDEX_FILE"] = index.path
        try run("git", ["read-tree", parent], in: repository.url, environment: environment)
        try run("git", ["update-index", "--add", "--cacheinfo", "100644,\(blob),\(file)"], in: repository.url, environment: environment)
        let tree = try run("git", ["write-tree"], in: repository.url, environment: environment).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let commit = try repository.git(["commit-tree", tree, "-p", parent, "-m", message])
        try repository.git(["update-ref", "refs/heads/cairn/status", commit, parent])
        return commit
    }

    func statusSubjects(_ repository: GitFixture) throws -> [Substring] {
        try repository.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n")
    }

    func storeIdentity(_ repository: GitFixture) throws -> String {
        let mark = try repository.git(["log", "-1", "--format=%(trailers:key=Cairn-Outbox,valueonly)", "cairn/status"])
        return String(mark.split(separator: "/")[0])
    }

    /// Killed after the status ref moved but before the outbox was cleared; then a person
    /// commits on the status branch. The restart finds its entries below the person's commit
    /// and writes none of them again.
    @Test func aCrashAfterTheRefMovedThenAPersonsCommitDuplicatesNothing() throws {
        let objects = 200
        let repository = try largeRepository(objects: objects)
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]
        var environment = ProcessInfo.processInfo.environment
        environment["CAIRN_FAULT"] = "after-status-ref"
        #expect(try cairn(arguments, environment: environment).status != 0, "the fault point was not reached")
        try personCommits(on: repository, message: "A remark")
        let finished = try cairn(arguments)
        #expect(finished.status == 0, "\(finished.stderr)")
        let subjects = try statusSubjects(repository)
        #expect(subjects.count == objects + 1, "every status once, and the person's commit")
        #expect(subjects.first == "A remark")
        #expect(try repository.git(["show", "cairn/status:NOTES.md"]) == "a remark from a person")
    }

    /// A commit carrying a forged `Cairn-Outbox:` trailer with a large id hides nothing: ids
    /// are matched exactly, not as a high-water mark.
    @Test func aForgedOutboxTrailerHidesNoStatusChange() throws {
        let repository = try largeRepository(objects: 12)
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]
        #expect(try cairn(arguments).status == 0)
        let identity = try storeIdentity(repository)
        // Trailers naming the very next ids (ids are sequential and the store is named in every
        // status commit), and a high one: neither hides a change.
        let next = Int(try repository.git(["log", "-1", "--format=%(trailers:key=Cairn-Outbox,valueonly)", "cairn/status"])
            .split(separator: "/")[1]) ?? 0
        for offset in 1...13 { try personCommits(on: repository, message: "Forged\n\nCairn-Outbox: \(identity)/\(next + offset)") }
        try personCommits(on: repository, message: "Forged\n\nCairn-Outbox: \(identity)/999999")
        var files: [String: String?] = [:]
        for index in 0..<12 {
            files["models/m\(index).yaml"] = "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: m\(index)}\nspec:\n  stages: [staging]\n"
        }
        try repository.commit(files, message: "one stage each")
        #expect(try cairn(arguments).status == 0)
        let subjects = try statusSubjects(repository)
        #expect(subjects.prefix(12).allSatisfy { $0.hasSuffix(": NoStageAssigned") }, "\(subjects)")
        #expect(subjects.count == 12 + 14 + 12, "\(subjects)")
    }

    /// The status branch is the status page: deleted, or reset to an older commit, the next
    /// pass (even one with nothing new to reconcile) brings back every object's file.
    @Test(arguments: ["delete", "reset"])
    func aDeletedOrResetStatusBranchIsRestoredWhole(_ how: String) throws {
        let objects = 25
        let repository = try largeRepository(objects: objects)
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]
        #expect(try cairn(arguments).status == 0)
        if how == "delete" {
            try repository.git(["branch", "-D", "cairn/status"])
        } else {
            try repository.git(["update-ref", "refs/heads/cairn/status", "cairn/status~20"])
            #expect(try repository.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n").count == 6)
        }
        let again = try cairn(arguments)
        #expect(again.status == 0 && again.stdout.contains("already reconciled"), "\(again.stdout)")
        let files = try repository.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n")
        #expect(files.count == objects + 1, "every object's file and the README")
        #expect(try repository.git(["log", "-1", "--format=%s", "cairn/status"]) == "Cairn: restored \(objects) status file(s)")
        #expect(try repository.git(["show", "cairn/status:Model/m7.yaml"]).contains("reason: \"NoStageAssigned\""))
        // Restored once: the next run finds the branch as it left it.
        let tip = try repository.git(["rev-parse", "cairn/status"])
        #expect(try cairn(arguments).status == 0)
        #expect(try repository.git(["rev-parse", "cairn/status"]) == tip)
    }

    /// `--status-branch` naming a work branch: Cairn refuses to commit on it.
    @Test func aWorkBranchIsNeverUsedAsTheStatusBranch() throws {
        let repository = try largeRepository(objects: 2)
        try repository.git(["branch", "feature"])
        let state = try TemporaryDirectory("cairn-state")
        let before = try repository.git(["rev-parse", "feature"])
        let result = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--status-branch", "feature"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("the branch feature exists and is not a Cairn status branch"), "\(result.stderr)")
        #expect(try repository.git(["rev-parse", "feature"]) == before)
        // Not even after a state directory has written a status branch of its own.
        #expect(try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]).status == 0)
        try repository.commit(["models/m0.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: m0}\nspec: {stages: [a]}\n"])
        let again = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--status-branch", "feature"])
        #expect(again.status == 3 && again.stderr.contains("is not a Cairn status branch"), "\(again.stderr)")
        #expect(try repository.git(["rev-parse", "feature"]) == before)
    }

    /// A person appends notes under refs/notes/cairn while the daemon annotates the commits it
    /// reconciles, on the same commits: every note of theirs and every summary of Cairn's stays.
    @Test func aPersonAppendingNotesWhileTheDaemonRunsLosesNone() throws {
        let repository = try largeRepository(objects: 3)
        let state = try TemporaryDirectory("cairn-state")
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--interval", "1s"], logTo: state.appending("log"))
        #expect(daemon.waitFor("cairn.changed=3"), "\(daemon.output)")
        var commits: [String] = []
        for round in 0..<40 {
            commits.append(try repository.commit(["models/m\(round % 3).yaml": """
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: m\(round % 3)}
            spec:
              stages: [staging, production]
              assignments: {staging: \(round)}

            """], message: "round \(round)"))
            // The person annotates this commit and the one before, racing the daemon.
            for commit in commits.suffix(2) {
                try repository.git(["notes", "--ref=cairn", "append", "-m", "person: round \(round) on \(commit.prefix(8))", commit])
            }
        }
        let last = try #require(commits.last)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !(try repository.git(["notes", "--ref=cairn", "show", last], check: false)).contains("Cairn reconciled") {
            usleep(200_000)
        }
        #expect(daemon.terminate() == 0)
        var personNotes = 0
        for (round, commit) in commits.enumerated() {
            let note = try repository.git(["notes", "--ref=cairn", "show", commit], check: false)
            for other in [round, round + 1] where other < commits.count {
                #expect(note.contains("person: round \(other) on \(commit.prefix(8))"), "round \(round): \(note)")
                personNotes += 1
            }
        }
        #expect(personNotes == 79)
        let reconciled = try commits.filter { try repository.git(["notes", "--ref=cairn", "show", $0], check: false).contains("Cairn reconciled") }
        #expect(reconciled.contains(last), "the daemon annotated the last commit")
    }
}

@Suite(.serialized) struct ReadOnlyStateTests {
    /// `status` and `history` read a state directory the reader cannot write (another user's
    /// daemon), while that daemon runs and after it stopped. Tests run as root, whom file modes
    /// do not stop, so the reader here is `nobody` (through setpriv).
    @Test(.enabled(if: getuid() == 0, "only root can run the reader as another user; CI runs as root"))
    func statusAndHistoryReadAStateDirectoryTheReaderCannotWrite() throws {
        let repository = try largeRepository(objects: 3)
        let parent = try TemporaryDirectory("cairn-readonly")
        let state = parent.appending("state")
        #expect(try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]).status == 0)
        chmod(parent.path, 0o755)
        chmod(state.path, 0o755)
        let setpriv = try which("setpriv")
        func asNobody(_ arguments: [String]) throws -> ProcessResult {
            try run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", try cairnExecutable()] + arguments, check: false)
        }
        // Nobody cannot write there: the reader really is read-only.
        #expect(try run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", "touch", state.appendingPathComponent("probe").path],
                        check: false).status != 0)

        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--interval", "1h"], logTo: parent.appending("log"))
        #expect(daemon.waitFor("started"), "\(daemon.output)")
        let live = try asNobody(["status", "--state-dir", state.path])
        #expect(live.status == 0 && live.stdout.contains("Model/m1  True   NoStageAssigned"), "\(live.stdout)\(live.stderr)")
        #expect(daemon.terminate() == 0)

        let stopped = try asNobody(["status", "--state-dir", state.path, "--format", "json"])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(stopped.stdout.utf8)) as? [Any])?.count == 3)
        let history = try asNobody(["history", "Model/m2", "--state-dir", state.path])
        #expect(history.status == 0 && history.stdout.contains("NoStageAssigned"), "\(history.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state.appendingPathComponent("probe").path))
    }
}

@Suite struct ReadingFromACloneTests {
    /// The recipe in Docs/status-in-git.md and on the status branch's README works from a
    /// plain clone, and the README names the branches in use.
    @Test func theCloneRecipeShowsStatusAndNotes() throws {
        let repository = try largeRepository(objects: 2)
        let state = try TemporaryDirectory("cairn-state")
        #expect(try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path,
                           "--status-branch", "ml/status"]).status == 0)
        let readme = try repository.git(["show", "ml/status:README.md"])
        #expect(readme.contains("git fetch origin ml/status refs/notes/cairn:refs/notes/cairn"), "\(readme)")
        #expect(readme.contains("git log origin/ml/status") && !readme.contains("cairn/status"), "\(readme)")

        let home = try TemporaryDirectory("cairn-clone")
        let clone = home.url.appendingPathComponent("clone")
        let environment = GitFixture.environment()
        try run("git", ["clone", "-q", repository.path, clone.path], environment: environment)
        try run("git", ["fetch", "-q", "origin", "ml/status", "refs/notes/cairn:refs/notes/cairn"], in: clone, environment: environment)
        let log = try run("git", ["log", "--format=%s", "origin/ml/status"], in: clone, environment: environment).stdout
        #expect(log.contains("Model/m1: NoStageAssigned"), "\(log)")
        let notes = try run("git", ["log", "--notes=cairn", "--format=%N", "origin/main"], in: clone, environment: environment).stdout
        #expect(notes.contains("Cairn reconciled this commit: 2 objects"), "\(notes)")
    }
}
