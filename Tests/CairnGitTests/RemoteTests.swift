import CairnGit
import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct RemoteTests {
    @Test(arguments: ["path", "file"])
    func mirrorsLocalRepositories(_ style: String) throws {
        let origin = try GitFixture()
        let head = try origin.commit(["m.yaml": "a"])
        try origin.git(["tag", "v1"])
        let state = try TemporaryDirectory()
        let url = style == "path" ? origin.path : "file://\(origin.path)"
        let mirror = try Repository.mirror(url: url, into: state.appending("mirror"))
        #expect(mirror.isBare)
        #expect(try mirror.resolveCommit("main").hex == head)
        #expect(try mirror.referenceTarget("refs/remotes/origin/main")?.hex == head)
        #expect(try mirror.resolveCommit("v1").hex == head)
    }

    @Test func fetchesOverGitProtocolFollowsForcePushesAndPrunes() throws {
        let served = try TemporaryDirectory()
        let origin = try GitFixture()
        try origin.commit(["m.yaml": "1"])
        let second = try origin.commit(["m.yaml": "2"])
        try origin.git(["branch", "topic"])
        try run("git", ["clone", "-q", "--bare", origin.path, served.appending("repo.git").path], environment: GitFixture.environment())
        let daemon = try GitDaemon(basePath: served.url)
        defer { daemon.stop() }
        let state = try TemporaryDirectory()

        var mirror = try Repository.mirror(url: daemon.url("repo.git"), into: state.appending("m"))
        #expect(try mirror.resolveCommit("main").hex == second)
        #expect(try mirror.referenceTarget("refs/remotes/origin/topic") != nil)

        // Rewrite history on the server and delete a branch: the mirror follows both.
        try origin.git(["reset", "-q", "--hard", "HEAD~1"])
        let rewritten = try origin.commit(["m.yaml": "rewritten"])
        try run("git", ["push", "-q", "--force", served.appending("repo.git").path, "main", ":topic"],
                in: origin.url, environment: GitFixture.environment())
        mirror = try Repository.mirror(url: daemon.url("repo.git"), into: state.appending("m"))
        #expect(try mirror.resolveCommit("main").hex == rewritten)
        #expect(try mirror.referenceTarget("refs/remotes/origin/topic") == nil)
    }

    @Test func pushesAndReportsARejectedPushAsItsOwnError() throws {
        let served = try TemporaryDirectory()
        let remote = served.appending("status.git")
        try run("git", ["init", "-q", "--bare", remote.path], environment: GitFixture.environment())
        let daemon = try GitDaemon(basePath: served.url)
        defer { daemon.stop() }
        let local = try GitFixture(bare: true)
        let repository = try Repository.open(at: local.url)
        let first = try repository.createCommit(parent: nil, changes: ["a": Data("1".utf8)], message: "one", author: robot)
        try repository.updateReference("refs/heads/cairn/status", to: first, expected: nil, logMessage: "t")
        try repository.push(to: daemon.url("status.git"), refspecs: ["refs/heads/cairn/status:refs/heads/cairn/status"])
        let remoteHead = { try run("git", ["--git-dir", remote.path, "rev-parse", "cairn/status"], environment: GitFixture.environment()).stdout }
        #expect(try remoteHead().trimmingCharacters(in: .whitespacesAndNewlines) == first.hex)

        // Someone else moves the remote branch; our unrelated commit is not a fast-forward.
        let theirs = try repository.createCommit(parent: first, changes: ["b": Data("2".utf8)], message: "theirs", author: robot)
        try repository.updateReference("refs/heads/theirs", to: theirs, expected: nil, logMessage: "t")
        try repository.push(to: remote.path, refspecs: ["refs/heads/theirs:refs/heads/cairn/status"])
        let ours = try repository.createCommit(parent: first, changes: ["c": Data("3".utf8)], message: "ours", author: robot)
        try repository.updateReference("refs/heads/cairn/status", to: ours, expected: first, logMessage: "t")
        for url in [daemon.url("status.git"), remote.path] {
            let error = try #require(throws: GitError.self) {
                try repository.push(to: url, refspecs: ["refs/heads/cairn/status:refs/heads/cairn/status"])
            }
            #expect(error.code == .pushRejected, "\(url): \(error)")
            #expect(error.message.contains("cairn/status"))
        }
        #expect(try remoteHead().trimmingCharacters(in: .whitespacesAndNewlines) == theirs.hex)
    }

    @Test func refusedConnectionIsANetworkErrorAndSecretsStayOutOfIt() throws {
        let port = try freePort()
        let local = try GitFixture(bare: true)
        let repository = try Repository.open(at: local.url)
        for url in ["git://127.0.0.1:\(port)/x.git", "http://someone:hunter2-secret@127.0.0.1:\(port)/x.git"] {
            let error = try #require(throws: GitError.self) {
                try repository.fetch(from: url, refspecs: Repository.mirrorRefspecs,
                                     credentials: Credentials(username: "u", password: "hunter2-secret"))
            }
            #expect(!error.description.contains("hunter2-secret"))
            #expect(error.description.contains("127.0.0.1"))
        }
        #expect(redactedURL("https://user:token@example.com/repo.git") == "https://example.com/repo.git")
        #expect(redactedURL("/srv/git/repo") == "/srv/git/repo")
    }

    @Test func credentialsComeFromTheEnvironmentAndFiles() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("token", "s3cret-token\n")
        let credentials = try Credentials.fromEnvironment(["CAIRN_GIT_USERNAME": "bot", "CAIRN_GIT_PASSWORD_FILE": file.path,
                                                           "CAIRN_GIT_SSH_KEY": "/keys/id_ed25519"])
        #expect(credentials.username == "bot")
        #expect(credentials.password == "s3cret-token")
        #expect(credentials.sshPrivateKey?.path == "/keys/id_ed25519")
        let error = try #require(throws: GitError.self) {
            try Credentials.fromEnvironment(["CAIRN_GIT_PASSWORD_FILE": directory.appending("missing").path])
        }
        #expect(error.code == .authentication)
        #expect(error.message.contains("CAIRN_GIT_PASSWORD_FILE"))
    }
}
