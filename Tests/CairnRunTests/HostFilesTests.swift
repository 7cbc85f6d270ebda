import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

@Suite struct HostFilesTests {
    @Test func dataPathsMustLieUnderADataRootAfterResolvingSymlinks() throws {
        let directory = try TemporaryDirectory()
        let root = directory.appending("data")
        try directory.write("data/raw.csv", "a,b\n")
        try directory.write("secret/key", "k\n")
        symlink(directory.appending("secret").path, root.appendingPathComponent("sneaky").path)
        let files = LocalHostFiles(policy: ExecutionPolicy(dataRoots: [root.path]), cache: InMemoryFileHashCache())
        #expect(files.refusal(ofDataPath: root.appendingPathComponent("raw.csv").path) == nil)
        #expect(files.refusal(ofDataPath: root.appendingPathComponent("not-yet/there.csv").path) == nil)
        #expect(files.refusal(ofDataPath: "data/raw.csv")?.contains("is not an absolute path") == true)
        #expect(files.refusal(ofDataPath: root.path + "/../secret/key")?.contains("'..'") == true)
        let sneaky = try #require(files.refusal(ofDataPath: root.appendingPathComponent("sneaky/key").path))
        #expect(sneaky.contains("resolves to \(directory.url.resolvingSymlinksInPath().path)/secret/key") && sneaky.contains(root.path), "\(sneaky)")
        let none = LocalHostFiles(policy: ExecutionPolicy(), cache: InMemoryFileHashCache())
        #expect(none.refusal(ofDataPath: root.path)?.contains("no --data-root is set") == true)
    }

    @Test func aFileChangedMomentsAgoIsHashedButNotRemembered() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("data/fresh.csv", "a\n")
        let cache = InMemoryFileHashCache()
        let files = LocalHostFiles(policy: ExecutionPolicy(dataRoots: [directory.path]), cache: cache)
        let first = try #require(try files.contentHash(ofDataPath: file.path))
        // A same-size rewrite within the same instant keeps size and (coarse) mtime; it is seen
        // because the first hash was never remembered.
        try directory.write("data/fresh.csv", "b\n")
        #expect(try files.contentHash(ofDataPath: file.path) != first)
        #expect(cache.hits == 0)
    }

    @Test func hashesMatchSha256sumAndUnchangedFilesAreNotReadAgain() throws {
        let directory = try TemporaryDirectory()
        let bytes = Data((0..<5_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let file = try directory.write("data/big.bin", bytes)
        try directory.write("data/nested/small.txt", "hello\n")
        let cache = InMemoryFileHashCache()
        // Every file here was just written; the racy window is tested on its own below.
        let files = LocalHostFiles(policy: ExecutionPolicy(dataRoots: [directory.path]), cache: cache, racyWindow: -1)
        let hash = try #require(try files.contentHash(ofDataPath: file.path))
        #expect(hash.hex == String(try run("sha256sum", [file.path]).stdout.prefix(64)))
        // Another process (a fresh instance has an empty memory) finds it in the shared cache.
        let again = LocalHostFiles(policy: ExecutionPolicy(dataRoots: [directory.path]), cache: cache, racyWindow: -1)
        #expect(try again.contentHash(ofDataPath: file.path) == hash && cache.hits == 1, "the second look is a stat")

        let folder = directory.appending("data").path
        let before = try #require(try LocalHostFiles(policy: ExecutionPolicy(dataRoots: [directory.path]), cache: cache, racyWindow: -1)
            .contentHash(ofDataPath: folder))
        #expect(cache.hits == 2, "the big file came from the cache")
        try directory.write("data/nested/small.txt", "changed\n")
        #expect(try files.contentHash(ofDataPath: folder) != before)
        #expect(try files.contentHash(ofDataPath: directory.appending("missing").path) == nil)

        symlink("/etc", directory.appending("data/out").path)
        #expect(throws: ExecutorError.self) { try files.contentHash(ofDataPath: folder) }
    }

    @Test func programsResolveOnTheRunsPathToTheFileTheyName() throws {
        let files = LocalHostFiles(policy: ExecutionPolicy(), cache: InMemoryFileHashCache())
        let (path, hash) = try #require(try files.program("sh"))
        let real = URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath().path
        #expect(path == real)
        #expect(hash.hex == String(try run("sha256sum", [real]).stdout.prefix(64)))
        #expect(try files.program("no-such-program-xyz") == nil)
    }

    @Test func hashingRunsAtDiskSpeed() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("large.bin", Data(count: 256 << 20))
        let started = ContinuousClock.now
        _ = try LocalHostFiles(policy: ExecutionPolicy(dataRoots: [directory.path]), cache: InMemoryFileHashCache()).contentHash(ofDataPath: file.path)
        let elapsed = ContinuousClock.now - started
        let rate = 256.0 / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
        print("hashed 256 MiB at \(Int(rate)) MiB/s")
        #expect(elapsed < .seconds(10), "256 MiB took \(elapsed)")
    }
}
