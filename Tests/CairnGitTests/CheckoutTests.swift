import CairnGit
import CairnTestSupport
import Foundation
import Testing

@Suite struct CheckoutTests {
    @Test func aCommitsTreeIsWrittenWithModesAndOnlyInsideSymlinks() throws {
        let fixture = try GitFixture()
        try fixture.directory.write("train.py", "print('train')\n")
        try fixture.directory.write("data/schema.json", "{}\n")
        try fixture.directory.write("bin/run.sh", "#!/bin/sh\necho run\n")
        chmod(fixture.directory.appending("bin/run.sh").path, 0o755)
        symlink("../train.py", fixture.directory.appending("bin/train-link").path)
        symlink("/etc/passwd", fixture.directory.appending("passwd").path)
        symlink("../../outside", fixture.directory.appending("data/escape").path)
        let commit = try fixture.commit([:])
        let repository = try Repository.open(at: fixture.url)
        let target = try TemporaryDirectory("cairn-checkout")

        let written = try repository.writeTree(of: try #require(ObjectID(hex: commit)), into: target.url)
        #expect(written == 4, "three files and the one symlink that stays inside")
        #expect(try String(contentsOf: target.appending("data/schema.json"), encoding: .utf8) == "{}\n")
        func mode(_ path: String) throws -> Int {
            try #require(try FileManager.default.attributesOfItem(atPath: target.appending(path).path)[.posixPermissions] as? Int)
        }
        #expect(try mode("bin/run.sh") == 0o755 && mode("train.py") == 0o644)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target.appending("bin/train-link").path) == "../train.py")
        #expect(!FileManager.default.fileExists(atPath: target.appending("passwd").path))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: target.appending("data/escape").path)) == nil)
    }

    @Test func aSmallRepositoryChecksOutInAFewMilliseconds() throws {
        let fixture = try GitFixture()
        var files: [String: String?] = [:]
        for index in 0..<40 { files["src/module\(index / 10)/file\(index).py"] = String(repeating: "x = \(index)\n", count: 50) }
        let commit = try #require(ObjectID(hex: try fixture.commit(files)))
        var best = Duration.seconds(10)
        for _ in 0..<5 {
            let target = try TemporaryDirectory("cairn-checkout")
            let started = ContinuousClock.now
            try Repository.open(at: fixture.url).writeTree(of: commit, into: target.url)
            best = min(best, ContinuousClock.now - started)
        }
        print("checkout of 40 files: best of 5 \(best)")
        #expect(best < .milliseconds(50), "a small checkout took \(best) at best (aim: a few ms; loose for a shared machine)")
    }

    @Test func aTreeBeyondTheLimitsIsRefusedWhole() throws {
        let fixture = try GitFixture()
        let commit = try #require(ObjectID(hex: try fixture.commit(["a/b/c/d.txt": "deep\n", "top.txt": "top\n"])))
        let target = try TemporaryDirectory("cairn-checkout")
        #expect(throws: GitError.self) {
            try Repository.open(at: fixture.url).writeTree(of: commit, into: target.url, limits: TreeLimits(maxDepth: 1))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty, "nothing written in part")
    }
}
