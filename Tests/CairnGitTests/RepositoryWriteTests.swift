import CairnGit
import CairnTestSupport
import Foundation
import Testing

let robot = Signature(name: "Cairn", email: "cairn@localhost", time: Date(timeIntervalSince1970: 1_700_000_000))

@Suite struct CommitBuildingTests {
    @Test func buildsCommitsFromPathChangesWithoutAWorkingTree() throws {
        let fixture = try GitFixture(bare: true)
        let repository = try Repository.open(at: fixture.url)
        let first = try repository.createCommit(
            parent: nil, changes: ["README.md": Data("status\n".utf8), "Model/churn.yaml": Data("a: 1\n".utf8),
                                   "Model/other.yaml": Data("b\n".utf8), "Deep/x/y/z.yaml": Data("z\n".utf8)],
            message: "first\n", author: robot)
        let second = try repository.createCommit(
            parent: first, changes: ["Model/churn.yaml": Data("a: 2\n".utf8), "Deep/x/y/z.yaml": nil, "New/n.yaml": Data("n\n".utf8)],
            message: "Model/churn: Ready\n\nCairn-Object: Model/churn\n", author: robot)
        try repository.updateReference("refs/heads/cairn/status", to: second, expected: nil, logMessage: "test")

        #expect(try fixture.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n") ==
                ["Model/churn.yaml", "Model/other.yaml", "New/n.yaml", "README.md"])
        #expect(try fixture.git(["show", "cairn/status:Model/churn.yaml"]) == "a: 2")
        #expect(try fixture.git(["log", "--format=%s", "cairn/status"]).split(separator: "\n") == ["Model/churn: Ready", "first"])
        #expect(try fixture.git(["log", "-1", "--format=%(trailers:key=Cairn-Object,valueonly)", "cairn/status"]) == "Model/churn")
        #expect(try fixture.git(["rev-parse", "cairn/status^"]) == first.hex)
        try fixture.git(["fsck", "--strict"])
    }

    @Test func rejectsPathsThatLeaveTheTree() throws {
        let fixture = try GitFixture(bare: true)
        let repository = try Repository.open(at: fixture.url)
        for path in ["../x", "a/../../b", ".git/config", ""] {
            let error = try #require(throws: GitError.self) {
                try repository.createCommit(parent: nil, changes: [path: Data()], message: "m", author: robot)
            }
            #expect(error.code == .invalidSpec)
        }
    }
}

@Suite struct ReferenceTests {
    @Test func compareAndSwapMovesOnlyFromWhereWeSawIt() throws {
        let fixture = try GitFixture()
        let a = try #require(ObjectID(hex: try fixture.commit(["f": "1"])))
        let b = try #require(ObjectID(hex: try fixture.commit(["f": "2"])))
        let repository = try Repository.open(at: fixture.url)
        try repository.updateReference("refs/heads/status", to: a, expected: nil, logMessage: "create")
        #expect(try repository.referenceTarget("refs/heads/status") == a)

        let again = try #require(throws: GitError.self) {
            try repository.updateReference("refs/heads/status", to: b, expected: nil, logMessage: "create again")
        }
        #expect(again.code == .refMoved)

        try repository.updateReference("refs/heads/status", to: b, expected: a, logMessage: "move")
        let stale = try #require(throws: GitError.self) {
            try repository.updateReference("refs/heads/status", to: a, expected: a, logMessage: "stale")
        }
        #expect(stale.code == .refMoved)
        #expect(try fixture.git(["rev-parse", "refs/heads/status"]) == b.hex)
        #expect(try repository.referenceTarget("refs/heads/none") == nil)
    }

    @Test func ofTwoWritersRacingFromTheSameTipExactlyOneWins() throws {
        let fixture = try GitFixture()
        let base = try #require(ObjectID(hex: try fixture.commit(["f": "0"])))
        let left = try Repository.open(at: fixture.url), right = try Repository.open(at: fixture.url)
        let leftCommit = try left.createCommit(parent: base, changes: ["l": Data("l".utf8)], message: "l", author: robot)
        let rightCommit = try right.createCommit(parent: base, changes: ["r": Data("r".utf8)], message: "r", author: robot)
        try left.updateReference("refs/heads/main", to: leftCommit, expected: base, logMessage: "left")
        let loser = try #require(throws: GitError.self) {
            try right.updateReference("refs/heads/main", to: rightCommit, expected: base, logMessage: "right")
        }
        #expect(loser.code == .refMoved)
        #expect(try fixture.git(["rev-parse", "main"]) == leftCommit.hex)
    }

    @Test func notesAreReadableByGitAndMoveByCompareAndSwap() throws {
        let fixture = try GitFixture()
        let commit = try #require(ObjectID(hex: try fixture.commit(["f": "1"])))
        let repository = try Repository.open(at: fixture.url)
        #expect(try repository.note(on: commit, notesRef: "refs/notes/cairn") == nil)
        try repository.setNote("reconciled: 5 objects Ready\n", on: commit, notesRef: "refs/notes/cairn", author: robot)
        #expect(try fixture.git(["notes", "--ref=cairn", "show", commit.hex]) == "reconciled: 5 objects Ready")
        #expect(try fixture.git(["log", "-1", "--notes=cairn", "--format=%N"]) == "reconciled: 5 objects Ready")

        let seen = try repository.referenceTarget("refs/notes/cairn")
        try fixture.git(["notes", "--ref=cairn", "add", "-f", "-m", "a person's note", commit.hex])
        let error = try #require(throws: GitError.self) {
            try repository.setNote("mine", on: commit, notesRef: "refs/notes/cairn", author: robot, expectedTip: .some(seen))
        }
        #expect(error.code == .refMoved)
        #expect(try repository.note(on: commit, notesRef: "refs/notes/cairn") == "a person's note\n")
    }
}
