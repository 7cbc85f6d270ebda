import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

@Suite struct ArtifactStoreTests {
    func sha256sum(_ url: URL) throws -> String {
        String(try run("sha256sum", [url.path]).stdout.prefix(64))
    }

    @Test func aFileIsStoredOnceUnderItsSHA256AndRestoredByteForByte() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        let output = directory.appending("model.bin")
        let bytes = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: output)
        let artifact = try store.store(output)
        #expect(artifact.kind == .file && artifact.size == bytes.count)
        #expect(artifact.digest.hex == (try sha256sum(output)), "the name is the content's SHA-256, as sha256sum says")
        let blob = store.path(of: artifact.digest)
        #expect(blob.path.hasSuffix("sha256/\(artifact.digest.hex.prefix(2))/\(artifact.digest.hex.dropFirst(2))"))
        #expect(try Data(contentsOf: blob) == bytes)
        // Stored again: the same blob, nothing new, no temporary file left behind.
        #expect(try store.store(output) == artifact)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appending("artifacts/tmp").path).isEmpty)

        let restored = directory.appending("restored.bin")
        try store.restore(artifact, to: restored)
        #expect(try Data(contentsOf: restored) == bytes)
        #expect(throws: ArtifactError.self) { try store.restore(artifact, to: restored) }
    }

    @Test func aDirectoryIsAManifestOfItsFilesAndComesBackWhole() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        let features = directory.appending("features")
        try directory.write("features/a.csv", "x,y\n1,2\n")
        try directory.write("features/nested/b.csv", "z\n3\n")
        try directory.write("features/run.sh", "#!/bin/sh\necho hi\n")
        chmod(features.appendingPathComponent("run.sh").path, 0o755)
        let artifact = try store.store(features)
        #expect(artifact.kind == .directory && artifact.size == 8 + 4 + 18)
        let again = try store.store(features)
        #expect(again.digest == artifact.digest, "the same files make the same directory digest")

        let restored = directory.appending("copy")
        try store.restore(artifact, to: restored)
        #expect(try String(contentsOf: restored.appendingPathComponent("nested/b.csv"), encoding: .utf8) == "z\n3\n")
        #expect(FileManager.default.isExecutableFile(atPath: restored.appendingPathComponent("run.sh").path))
        #expect(!FileManager.default.isExecutableFile(atPath: restored.appendingPathComponent("a.csv").path))

        try directory.write("features/a.csv", "x,y\n1,3\n")
        #expect(try store.store(features).digest != artifact.digest, "a changed file changes the directory's digest")
    }

    @Test func aCorruptBlobIsCaughtOnRestoreAndLeavesNothingBehind() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        try directory.write("out/data.csv", "good\n")
        let artifact = try store.store(directory.appending("out"))
        // Someone edits a stored blob in place.
        let file = try store.store(directory.appending("out/data.csv"))
        let blob = store.path(of: file.digest)
        chmod(blob.path, 0o644)
        try Data("evil\n".utf8).write(to: blob)
        let target = directory.appending("restored")
        #expect(throws: ArtifactError.self) { try store.restore(artifact, to: target) }
        #expect(!FileManager.default.fileExists(atPath: target.path), "nothing half-restored")
        #expect(throws: ArtifactError.self) { try store.restore(file, to: directory.appending("one.csv")) }
        #expect(!FileManager.default.fileExists(atPath: directory.appending("one.csv").path))
    }

    @Test func symlinksInOutputsAreRefused() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        try directory.write("out/real.txt", "x")
        try FileManager.default.createSymbolicLink(atPath: directory.appending("out/escape").path, withDestinationPath: "/etc/passwd")
        #expect(throws: ArtifactError.self) { try store.store(directory.appending("out")) }
        #expect(throws: ArtifactError.self) { try store.store(directory.appending("out/escape")) }
    }
}
