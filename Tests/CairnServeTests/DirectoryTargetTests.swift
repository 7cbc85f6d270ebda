@testable import CairnServe
import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Glibc
import Testing

@Suite struct DirectoryTargetTests {
    let fixture: TargetFixture
    init() throws { fixture = try TargetFixture() }

    func target(repositoryRoot: URL?? = .none, dataRoots: [String]? = nil) throws -> DirectoryTarget {
        try DirectoryTarget(environment: fixture.environment(repositoryRoot: repositoryRoot, dataRoots: dataRoots), notify: fixture.notify)
    }

    func request(_ version: ServedVersion, path: String, layout: String = "tfserving", keep: Int = 2,
                 deployment: String = "churn-serving") -> DeploymentRequest {
        DeploymentRequest(deployment: deployment, version: version, target: .directory(path: path, layout: layout, keep: keep),
                          sourceCommit: String(repeating: "a", count: 40))
    }

    func entries(_ url: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    @Test func aVersionIsPlacedUnderItsNumberThroughAHiddenStagingName() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("models/churn")
        // What a crash in the middle of a placement left: a half-written staging directory.
        try fixture.temporary.write("data/models/churn/.cairn-staging-1-dead/model.bin", "half")
        let version = try fixture.version(1, "weights v1")

        let observation = try await target.ensure(request(version, path: base.path), retry: true)

        #expect(observation.phase == .serving && observation.serving == 1 && observation.reason == "Serving")
        #expect(observation.recheckAfter == .seconds(30))
        #expect(observation.message == "churn@1 is in \(base.path)/1 (sha256:\(version.artifact.digest.hex.prefix(12))…)")
        #expect(observation.drift.isEmpty)
        #expect(entries(base) == ["1"], "the leftover staging directory is gone and nothing else is there")
        #expect(entries(base.appendingPathComponent("1")) == ["model.bin"])
        let placed = try ArtifactStore.artifact(describing: base.appendingPathComponent("1/model.bin"))
        #expect(placed.digest == version.artifact.digest)
        // It was written under a hidden staging name and renamed to its number.
        let placement = fixture.logs.messages.first { $0.hasPrefix("placed churn@1 in ") }
        #expect(placement?.hasPrefix("placed churn@1 in \(base.path)/.cairn-staging-1-") == true, "\(fixture.logs.messages)")
        #expect(placement?.hasSuffix(", then renamed it to \(base.path)/1") == true)

        // Asked again, nothing is placed again.
        let again = try await target.ensure(request(version, path: base.path), retry: false)
        #expect(again.phase == .serving && again.drift.isEmpty)
        #expect(fixture.logs.messages.filter { $0.hasPrefix("placed ") }.count == 1)
    }

    @Test func aDirectoryArtifactsContentsBecomeTheVersionDirectory() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("tf/churn")
        let version = try fixture.directoryVersion(4, ["saved_model.pb": "graph", "variables/variables.index": "index"])

        let observation = try await target.ensure(request(version, path: base.path), retry: true)

        #expect(observation.phase == .serving && observation.serving == 4)
        #expect(text(of: base.appendingPathComponent("4/saved_model.pb")) == "graph")
        #expect(text(of: base.appendingPathComponent("4/variables/variables.index")) == "index")
        #expect(try ArtifactStore.artifact(describing: base.appendingPathComponent("4")).digest == version.artifact.digest)
    }

    @Test func oldVersionsArePrunedToKeepAndDirectoriesCairnDidNotPlaceStay() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        try fixture.temporary.write("data/churn/0/model.bin", "someone else's")
        var versions: [ServedVersion] = []
        for number in 1...3 {
            versions.append(try fixture.version(number, "weights v\(number)"))
            _ = try await target.ensure(request(versions.last!, path: base.path, keep: 2), retry: true)
        }
        #expect(entries(base) == ["0", "2", "3"])

        // A rollback to 2: 3 goes too, or TF Serving (which serves the highest number) would keep serving it.
        let back = try await target.ensure(request(versions[1], path: base.path, keep: 2), retry: true)
        #expect(back.phase == .serving && back.serving == 2)
        #expect(entries(base) == ["0", "2"])
        #expect(text(of: base.appendingPathComponent("0/model.bin")) == "someone else's")

        // A higher directory Cairn did not place is named in the message: it would be served instead.
        try fixture.temporary.write("data/churn/9/model.bin", "stranger")
        let shadowed = try await target.ensure(request(versions[1], path: base.path, keep: 2), retry: false)
        #expect(shadowed.message.contains("\(base.path)/9 were not placed by Cairn"), "\(shadowed.message)")
    }

    @Test func aVersionEditedByHandIsPutBackAndReportedAsDrift() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        let version = try fixture.version(3, "weights v3")
        _ = try await target.ensure(request(version, path: base.path), retry: true)
        let file = base.appendingPathComponent("3/model.bin")
        try Data("tampered".utf8).write(to: file)
        let tampered = ContentHash.sha256(of: Data("tampered".utf8))

        let observation = try await target.ensure(request(version, path: base.path), retry: false)

        #expect(observation.phase == .serving)
        #expect(observation.drift == ["\(base.path)/3 was edited by hand (its hash was sha256:\(tampered.hex.prefix(12))…); put back"])
        #expect(text(of: file) == "weights v3")
        #expect(entries(base) == ["3"], "the replaced copy was deleted")
        let next = try await target.ensure(request(version, path: base.path), retry: false)
        #expect(next.drift.isEmpty)
    }

    @Test func aVersionDeletedByHandIsPutBack() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        let version = try fixture.version(3, "weights v3")
        _ = try await target.ensure(request(version, path: base.path), retry: true)
        try FileManager.default.removeItem(at: base.appendingPathComponent("3"))

        let observation = try await target.ensure(request(version, path: base.path), retry: false)

        #expect(observation.phase == .serving)
        #expect(observation.drift == ["\(base.path)/3 was deleted by hand; put back"])
        #expect(text(of: base.appendingPathComponent("3/model.bin")) == "weights v3")
    }

    @Test func aVersionDirectoryCairnDidNotPlaceIsNotOverwritten() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        try fixture.temporary.write("data/churn/5/model.bin", "someone else's 5")
        let version = try fixture.version(5, "weights v5")

        let error = await reconcileError(.transient, "PathOccupied") {
            try await target.ensure(request(version, path: base.path), retry: true)
        }
        #expect(error?.message.contains("\(base.path)/5 exists and was not placed by Cairn") == true, "\(String(describing: error))")
        #expect(text(of: base.appendingPathComponent("5/model.bin")) == "someone else's 5")
    }

    @Test(arguments: [
        ("/elsewhere/models", "/elsewhere/models is not under a data root"),
        ("data/../../etc", "holds a '.' or '..' component"),
    ])
    func anAbsolutePathOutsideTheDataRootsIsRefused(path: String, expected: String) async throws {
        let target = try target()
        let absolute = path.hasPrefix("/") ? fixture.temporary.path + path : fixture.temporary.path + "/" + path
        let observation = try await target.ensure(request(try fixture.version(1, "v1"), path: absolute), retry: true)
        #expect(observation.phase == .refused && observation.reason == "PathNotAllowed")
        #expect(observation.message.contains(expected), "\(observation.message)")
        if path.hasPrefix("/") { #expect(observation.message.hasSuffix("add one with --data-root"), "\(observation.message)") }
        #expect(!FileManager.default.fileExists(atPath: fixture.temporary.path + "/elsewhere"))
    }

    @Test func aPathThatLeavesTheDataRootThroughASymlinkIsRefused() async throws {
        let target = try target()
        let outside = fixture.temporary.appending("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: fixture.data.appendingPathComponent("link"), withDestinationURL: outside)
        let observation = try await target.ensure(request(try fixture.version(1, "v1"), path: fixture.data.path + "/link/churn"), retry: true)
        #expect(observation.phase == .refused && observation.reason == "PathNotAllowed")
        #expect(observation.message.contains("resolves to \(LocalHostFiles.resolve(outside.path))/churn"), "\(observation.message)")
        #expect(entries(outside).isEmpty)
    }

    @Test func aRelativePathIsUnderTheRepositoryAndMayNotLeaveIt() async throws {
        let target = try target()
        let version = try fixture.version(1, "v1")
        let inside = try await target.ensure(request(version, path: "serving/churn"), retry: true)
        #expect(inside.phase == .serving)
        #expect(text(of: fixture.repository.appendingPathComponent("serving/churn/1/model.bin")) == "v1")

        for path in ["../outside", "serving/../../outside", ".git/models"] {
            let observation = try await target.ensure(request(version, path: path, deployment: "other"), retry: true)
            #expect(observation.phase == .refused && observation.reason == "PathNotAllowed", "\(path): \(observation.message)")
        }
        try FileManager.default.createSymbolicLink(at: fixture.repository.appendingPathComponent("out"), withDestinationURL: fixture.data)
        let linked = try await target.ensure(request(version, path: "out/churn", deployment: "other"), retry: true)
        #expect(linked.phase == .refused && linked.message.contains("outside the repository"), "\(linked.message)")
        #expect(entries(fixture.data).isEmpty)

        let mirror = try self.target(repositoryRoot: .some(nil))
        let remote = try await mirror.ensure(request(version, path: "serving/churn", deployment: "other"), retry: true)
        #expect(remote.phase == .refused && remote.message.contains("no working directory"), "\(remote.message)")
    }

    @Test func aBaseThatCannotBeWrittenBacksOffWithTheReasonAndLeavesNothing() async throws {
        let target = try target()
        // Root may write anywhere it has a directory: a base under a regular file fails for everyone.
        try fixture.temporary.write("data/file", "not a directory")
        let base = fixture.data.path + "/file/churn"
        let error = await reconcileError(.transient, "DirectoryNotWritable") {
            try await target.ensure(request(try fixture.version(1, "v1"), path: base), retry: true)
        }
        #expect(error?.message.contains(base) == true && error?.message.contains("Not a directory") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: fixture.serving.appendingPathComponent("churn-serving/directory.json").path))
    }

    /// As root, permissions do not stop writes, so only an unprivileged run can see this one.
    @Test(.enabled(if: geteuid() != 0, "root writes through a directory's permissions"))
    func aReadOnlyBaseBacksOff() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        chmod(base.path, 0o555)
        defer { chmod(base.path, 0o755) }
        let error = await reconcileError(.transient, "DirectoryNotWritable") {
            try await target.ensure(request(try fixture.version(1, "v1"), path: base.path), retry: true)
        }
        #expect(error?.message.contains("Permission denied") == true, "\(String(describing: error))")
        #expect(entries(base).isEmpty)
    }

    @Test func thePlainLayoutSwitchesASymlinkCairnOwns() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("serve/churn")
        let first = try fixture.version(1, "weights v1")
        let second = try fixture.version(2, "weights v2")

        let one = try await target.ensure(request(first, path: base.path, layout: "plain"), retry: true)
        #expect(one.phase == .serving && text(of: base.appendingPathComponent("model.bin")) == "weights v1")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: base.path) == ".churn.cairn-1")
        _ = try await target.ensure(request(second, path: base.path, layout: "plain"), retry: true)
        #expect(text(of: base.appendingPathComponent("model.bin")) == "weights v2")
        #expect(entries(base.deletingLastPathComponent()) == [".churn.cairn-1", ".churn.cairn-2", "churn"])

        // Pointed elsewhere by hand: put back, as drift.
        try FileManager.default.removeItem(at: base)
        try FileManager.default.createSymbolicLink(atPath: base.path, withDestinationPath: ".churn.cairn-1")
        let healed = try await target.ensure(request(second, path: base.path, layout: "plain"), retry: false)
        #expect(healed.drift == ["\(base.path) was pointed at .churn.cairn-1 by hand; put back"])
        #expect(text(of: base.appendingPathComponent("model.bin")) == "weights v2")
    }

    @Test func removeDeletesWhatCairnPlacedAndItsRecordAndRecoverFindsRecords() async throws {
        let target = try target()
        let base = fixture.data.appendingPathComponent("churn")
        try fixture.temporary.write("data/churn/0/model.bin", "someone else's")
        for number in 1...2 {
            _ = try await target.ensure(request(try fixture.version(number, "v\(number)"), path: base.path, keep: 3), retry: true)
        }
        #expect(entries(base) == ["0", "1", "2"])

        let restarted = try self.target()
        #expect(try await restarted.recover() == ["churn-serving"])
        try await restarted.remove(deployment: "churn-serving")

        #expect(entries(base) == ["0"])
        #expect(!FileManager.default.fileExists(atPath: fixture.serving.appendingPathComponent("churn-serving").path))
        #expect(try await restarted.recover().isEmpty)
        try await restarted.remove(deployment: "churn-serving")  // nothing left to do
    }
}
