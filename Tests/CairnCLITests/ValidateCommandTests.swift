import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct ValidateCommandTests {
    @Test func theExampleRepositoryIsValid() throws {
        let result = try cairn(["validate", packageRoot.appendingPathComponent("Manifests").path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ok: 5 files, 5 valid objects"))
    }

    @Test func aBrokenManifestPointsAtTheExactLine() throws {
        let directory = try TemporaryDirectory()
        for (name, text) in try exampleManifests() { try directory.write(name, text) }
        let training = try String(contentsOf: directory.appending("training.yaml"), encoding: .utf8)
        try directory.write("training.yaml", training.replacingOccurrences(of: "  timeout: 10m", with: "  timout: 10m"))
        let result = try cairn(["validate", directory.path])
        #expect(result.status == 1)
        let line = try #require(training.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("  timeout:") }) + 1
        #expect(result.stdout.contains("\(directory.path)/training.yaml:\(line):3: error: unknown field \"timout\" in spec"), "\(result.stdout)")
        #expect(result.stdout.contains("hint: did you mean \"timeout\"?"))
        #expect(result.stdout.contains("invalid: 1 error"))

        let json = try cairn(["validate", directory.path, "--format", "json"])
        #expect(json.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["valid"] as? Bool == false)
        let diagnostic = try #require((report["diagnostics"] as? [[String: Any]])?.first)
        #expect(diagnostic["field"] as? String == "spec.timout")
        #expect(diagnostic["object"] as? String == "TrainingSchedule/churn-weekly")
        #expect((diagnostic["location"] as? [String: Any])?["line"] as? Int == line)
    }

    @Test func validatesACommitThroughGitWithoutACheckout() throws {
        let repository = try GitFixture()
        let files = Dictionary(uniqueKeysWithValues: try exampleManifests().map { ("ml/\($0.key)", Optional($0.value)) })
        let good = try repository.commit(files, message: "add manifests")
        try repository.commit(["ml/model.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: churn}\nspec: {stages: []}\n"], message: "break")
        // The working tree is broken and HEAD too; the first commit is fine.
        let ok = try cairn(["validate", "--repo", repository.path, "--rev", good, "--path", "ml"])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        let bad = try cairn(["validate", "--repo", repository.path, "--rev", "main", "--path", "ml"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("ml/model.yaml:4:16: error: spec.stages must have at least 1 item"), "\(bad.stdout)")
    }

    @Test func aSymlinkLeavingTheRepositoryIsAnErrorOnDiskAndInGit() throws {
        let repository = try GitFixture()
        try repository.commit(try exampleManifests().mapValues { Optional($0) })
        try FileManager.default.createSymbolicLink(atPath: repository.url.appendingPathComponent("evil.yaml").path,
                                                   withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: repository.url.appendingPathComponent("outside").path,
                                                   withDestinationPath: "/etc")
        try repository.commit([:], message: "links")
        for arguments in [["validate", repository.path], ["validate", "--repo", repository.path]] {
            let result = try cairn(arguments)
            #expect(result.status == 1)
            #expect(result.stdout.contains("evil.yaml:1:1: error: this is a symlink to /etc/passwd, which is outside the repository"), "\(result.stdout)")
        }
        #expect(try cairn(["validate", repository.path]).stdout.contains("outside:1:1: error: this is a symlink to /etc"))
    }

    @Test func fetchesOverGitProtocolAndGivesUpOnARemoteThatDoesNotAnswer() throws {
        let served = try TemporaryDirectory()
        let origin = try GitFixture()
        try origin.commit(try exampleManifests().mapValues { Optional($0) })
        try run("git", ["clone", "-q", "--bare", origin.path, served.appending("ml.git").path], environment: GitFixture.environment())
        let daemon = try GitDaemon(basePath: served.url)
        defer { daemon.stop() }
        let fetched = try cairn(["validate", "--repo", daemon.url("ml.git"), "--rev", "main"])
        #expect(fetched.status == 0, "\(fetched.stdout)\(fetched.stderr)")

        let silent = try SilentServer()
        let hung = try cairn(["validate", "--repo", "git://127.0.0.1:\(silent.port)/ml.git", "--fetch-timeout", "2s"])
        #expect(hung.status == 3)
        #expect(hung.stderr.contains("did not answer within 2s"), "\(hung.stderr)")
        #expect(hung.elapsed < 30)

        let refused = try cairn(["validate", "--repo", "git://127.0.0.1:\(try freePort())/ml.git"])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("could not fetch git://127.0.0.1"), "\(refused.stderr)")
    }

    @Test func usageErrorsExitTwoAndUnreadableThingsThree() throws {
        #expect(try cairn(["validate", "--format", "xml"]).status == 2)
        #expect(try cairn(["validate", "a", "--repo", "b"]).status == 2)
        #expect(try cairn(["validate", "--repo", ".", "--fetch-timeout", "soon"]).status == 2)
        #expect(try cairn(["no-such-command"]).status == 2)
        let notThere = try cairn(["validate", "/no/such/dir"])
        #expect(notThere.status == 3)
        #expect(notThere.stderr.contains("/no/such/dir is not a directory"))
        let plain = try TemporaryDirectory()
        let notRepo = try cairn(["validate", "--repo", plain.path])
        #expect(notRepo.status == 3)
        #expect(notRepo.stderr.contains("is not a git repository"), "\(notRepo.stderr)")
        let help = try cairn(["validate", "--help"])
        #expect(help.status == 0 && help.stdout.contains("Examples:"))
    }
}

/// The example repository's files (manifests and the scripts they run), by path.
func exampleManifests() throws -> [String: String] {
    try exampleRepositoryFiles()
}
