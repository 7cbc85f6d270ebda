import CairnGit
import CairnTestSupport
import Foundation
import Testing

@Suite struct RepositoryReadTests {
    @Test func opensWorkingTreeAndBareRepositories() throws {
        let work = try GitFixture()
        try work.commit(["a.txt": "a"])
        let bare = try GitFixture(bare: true)
        #expect(try Repository.open(at: work.url).isBare == false)
        #expect(try Repository.open(at: bare.url).isBare == true)
    }

    @Test func openingANonRepositoryNamesThePathAndTheFunction() throws {
        let plain = try TemporaryDirectory()
        let error = try #require(throws: GitError.self) { try Repository.open(at: plain.url) }
        #expect(error.code == .notFound)
        #expect(error.message.contains(plain.path))
        #expect(error.function == "git_repository_open_ext")
    }

    @Test(arguments: ["main", "v1", "v1-light", "HEAD~1", "full", "short"])
    func resolvesBranchesTagsAndIds(_ revision: String) throws {
        let fixture = try GitFixture()
        let first = try fixture.commit(["a.txt": "1"], message: "first")
        let second = try fixture.commit(["a.txt": "2"], message: "second")
        try fixture.git(["tag", "-a", "v1", "-m", "annotated", first])
        try fixture.git(["tag", "v1-light", first])
        let expected: [String: String] = ["main": second, "v1": first, "v1-light": first, "HEAD~1": first, "full": second, "short": second]
        let spelled = ["full": second, "short": String(second.prefix(9))][revision] ?? revision
        let repository = try Repository.open(at: fixture.url)
        #expect(try repository.resolveCommit(spelled).hex == expected[revision])
    }

    @Test func unknownRevisionIsNotFound() throws {
        let fixture = try GitFixture()
        try fixture.commit(["a.txt": "1"])
        let repository = try Repository.open(at: fixture.url)
        let error = try #require(throws: GitError.self) { try repository.resolveCommit("no-such-branch") }
        #expect(error.code == .notFound)
        #expect(error.message.contains("no-such-branch"))
        #expect(throws: GitError.self) { try repository.resolveCommit("--upload-pack=evil") }
    }

    @Test func readsACommitAsGitShowsIt() throws {
        let fixture = try GitFixture()
        let parent = try fixture.commit(["a.txt": "1"], message: "first")
        let id = try fixture.commit(["b.txt": "2"], message: "Add b\n\nWith a body.")
        let commit = try Repository.open(at: fixture.url).commit(try #require(ObjectID(hex: id)))
        #expect(commit.parents.map(\.hex) == [parent])
        #expect(commit.author.name == "Ada Tester")
        #expect(commit.author.email == "ada@example.com")
        #expect(commit.subject == "Add b")
        #expect(commit.message.contains("With a body."))
        #expect(Int(commit.committer.time.timeIntervalSince1970) == Int(try fixture.git(["log", "-1", "--format=%ct"])))
        #expect(commit.tree.hex == (try fixture.git(["rev-parse", "HEAD^{tree}"])))
    }

    @Test func listsFilesRecursivelyWithTheirKinds() throws {
        let fixture = try GitFixture()
        try fixture.commit(["m/a.yaml": "a", "m/deep/b.yaml": "b", "other/c.txt": "c", "top.txt": "t"])
        try FileManager.default.createSymbolicLink(atPath: fixture.url.appendingPathComponent("m/link.yaml").path,
                                                   withDestinationPath: "/etc/passwd")
        try run("/bin/chmod", ["+x", fixture.url.appendingPathComponent("m/a.yaml").path])
        let head = try fixture.commit([:], message: "link and mode")
        let repository = try Repository.open(at: fixture.url)
        let commit = try #require(ObjectID(hex: head))

        let all = try repository.listFiles(in: commit)
        let fromGit = try fixture.git(["ls-tree", "-r", "--name-only", "HEAD"]).split(separator: "\n").map(String.init)
        #expect(all.map(\.path).sorted() == fromGit.sorted())

        let under = try repository.listFiles(in: commit, under: "m")
        #expect(under.map(\.path).sorted() == ["m/a.yaml", "m/deep/b.yaml", "m/link.yaml"])
        #expect(under.first { $0.path == "m/link.yaml" }?.kind == .symlink)
        #expect(under.first { $0.path == "m/a.yaml" }?.kind == .executable)
        #expect(under.first { $0.path == "m/deep/b.yaml" }?.kind == .file)
        #expect(try repository.listFiles(in: commit, under: "top.txt").map(\.path) == ["top.txt"])
        let missing = try #require(throws: GitError.self) { try repository.listFiles(in: commit, under: "nope") }
        #expect(missing.code == .notFound)
    }

    @Test func readsBlobsAndFilesWithoutAWorkingTree() throws {
        let fixture = try GitFixture(bare: false)
        let bytes = Data([0, 1, 2, 255, 10, 13])
        try fixture.directory.write("bin/data", bytes)
        let head = try fixture.commit(["x/readme.md": "hello\n"])
        let repository = try Repository.open(at: fixture.url)
        let commit = try #require(ObjectID(hex: head))
        #expect(try repository.file(at: "bin/data", in: commit) == bytes)
        #expect(try repository.file(at: "x/readme.md", in: commit) == Data("hello\n".utf8))
        #expect(try repository.file(at: "x/none", in: commit) == nil)
        let entry = try #require(try repository.listFiles(in: commit, under: "bin").first)
        #expect(try repository.blobSize(entry.blob) == bytes.count)
    }
}

@Suite struct DiffTests {
    @Test func reportsAddedModifiedDeletedAndRenamedPaths() throws {
        let fixture = try GitFixture()
        let long = String(repeating: "a line that stays the same\n", count: 20)
        let old = try fixture.commit(["m/keep.yaml": "k", "m/change.yaml": "1", "m/gone.yaml": "g", "m/old-name.yaml": long, "x/out.txt": "o"])
        try fixture.git(["mv", "m/old-name.yaml", "m/new-name.yaml"])
        let new = try fixture.commit(["m/change.yaml": "2", "m/gone.yaml": nil, "m/added.yaml": "n", "x/out.txt": "changed"])
        let repository = try Repository.open(at: fixture.url)
        let changes = try repository.diff(from: ObjectID(hex: old), to: try #require(ObjectID(hex: new)), under: "m")
        let summary = Set(changes.map { "\($0.kind.rawValue) \($0.oldPath) \($0.path)" })
        #expect(summary == [
            "added m/added.yaml m/added.yaml",
            "modified m/change.yaml m/change.yaml",
            "deleted m/gone.yaml m/gone.yaml",
            "renamed m/old-name.yaml m/new-name.yaml",
        ])
        let everything = try repository.diff(from: ObjectID(hex: old), to: try #require(ObjectID(hex: new)))
        #expect(everything.contains { $0.path == "x/out.txt" && $0.kind == .modified })
        let deleted = try #require(changes.first { $0.kind == .deleted })
        #expect(deleted.newBlob == nil && deleted.oldBlob != nil)
    }

    @Test func diffFromNothingAddsEverythingAndSameCommitIsEmpty() throws {
        let fixture = try GitFixture()
        let head = try #require(ObjectID(hex: try fixture.commit(["a": "1", "d/b": "2"])))
        let repository = try Repository.open(at: fixture.url)
        #expect(try repository.diff(from: nil, to: head).map(\.kind) == [.added, .added])
        #expect(try repository.diff(from: head, to: head).isEmpty)
    }
}

@Suite struct DiffAgreesWithGitTests {
    /// The side-by-side tree walk reports what `git diff --name-status` reports.
    @Test(arguments: [
        ["a/b/c.yaml": "changed", "a/new/d.yaml": "new", "z.yaml": "z2"] as [String: String?],
        ["a/b/c.yaml": nil, "a/b/e.yaml": nil, "top.yaml": nil] as [String: String?],
        ["a.txt": "x", "a/b/c.yaml": "again"] as [String: String?],
    ])
    func matchesGit(_ edits: [String: String?]) throws {
        let fixture = try GitFixture()
        let old = try fixture.commit(["a/b/c.yaml": "c", "a/b/e.yaml": "e", "a/f.yaml": "f", "top.yaml": "t", "z.yaml": "z"])
        let new = try fixture.commit(edits)
        let repository = try Repository.open(at: fixture.url)
        let ours = try repository.diff(from: ObjectID(hex: old), to: try #require(ObjectID(hex: new)))
            .map { "\($0.kind == .added ? "A" : $0.kind == .deleted ? "D" : "M")\t\($0.path)" }.sorted()
        let theirs = try fixture.git(["diff", "--no-renames", "--name-status", old, new]).split(separator: "\n").map(String.init).sorted()
        #expect(ours == theirs)
    }

    @Test func aFileReplacedByADirectoryIsADeleteAndAnAdd() throws {
        let fixture = try GitFixture()
        let old = try fixture.commit(["x": "file", "x.y": "1"])
        try fixture.git(["rm", "-q", "x"])
        let new = try fixture.commit(["x/inner.yaml": "dir"])
        let repository = try Repository.open(at: fixture.url)
        let changes = try repository.diff(from: ObjectID(hex: old), to: try #require(ObjectID(hex: new)))
        #expect(Set(changes.map { "\($0.kind.rawValue) \($0.path)" }) == ["deleted x", "added x/inner.yaml"])
    }
}
