import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite struct ProposalTests {
    let branch = "cairn/proposals/churn-rollback-1"

    /// The trailer's values in the status branch's newest commit.
    func statusTrailer(_ setup: ProposalSetup, _ key: String) throws -> String {
        try setup.git(["log", "-1", "--format=%(trailers:key=\(key),valueonly)", "cairn/status"])
    }

    @Test func aProposalBecomesABranchThatChangesOnlyTheEditedScalar() throws {
        let setup = try ProposalSetup()
        try setup.queue(setup.proposal())
        #expect(try setup.writer().drain() == 1)

        #expect(try setup.proposalBranches() == [branch])
        #expect(try setup.git(["rev-parse", "\(branch)^"]) == setup.base, "the proposal starts from its base commit")
        #expect(try setup.git(["diff", "--name-only", setup.base, branch]) == "models.yaml")
        let edited = proposalModels.replacingOccurrences(of: "production: 3   # promoted", with: "production: 2   # promoted")
        #expect(try setup.git(["show", "\(branch):models.yaml"]) + "\n" == edited, "one scalar changed; comment and layout kept")
        let message = try setup.git(["log", "-1", "--format=%B", branch])
        #expect(message.hasPrefix("Roll back churn production to churn@2\n\nchurn@3 failed its health check"), "\(message)")
        #expect(try setup.git(["log", "-1", "--format=%(trailers:key=Cairn-Proposal-For,valueonly)", branch]) == "ModelDeployment/churn-prod")
        #expect(try setup.git(["log", "-1", "--format=%(trailers:key=Cairn-Proposal-Id,valueonly)", branch]).count == 24)
        #expect(try setup.git(["log", "-1", "--format=%an <%ae>", branch]) == "Cairn <cairn@localhost>")

        // The status commit names the branch; the tracked branch is untouched.
        #expect(try statusTrailer(setup, "Cairn-Proposal") == branch)
        #expect(try setup.git(["log", "-1", "--format=%b", "cairn/status"]).contains("Proposed on the branch \(branch): Roll back churn"))
        #expect(try setup.git(["rev-parse", "main"]) == setup.base)
    }

    @Test func aBranchAPersonMadeIsPassedOverAndLeftAsItIs() throws {
        let setup = try ProposalSetup()
        try setup.git(["branch", branch])
        try setup.queue(setup.proposal())
        try setup.writer().drain()

        #expect(try setup.proposalBranches() == [branch, "cairn/proposals/churn-rollback-2"])
        #expect(try setup.git(["rev-parse", branch]) == setup.base, "the person's branch did not move")
        #expect(try statusTrailer(setup, "Cairn-Proposal") == "cairn/proposals/churn-rollback-2")
    }

    /// The outbox entry drained again (as after a crash between writing the branch and clearing
    /// the entry) finds its branch by `Cairn-Proposal-Id` and writes no second one; another
    /// proposal still gets the next number.
    @Test func theSameEntryDrainedAgainAdoptsItsBranch() throws {
        let setup = try ProposalSetup()
        let writer = try setup.writer()
        try setup.queue(setup.proposal())
        try writer.drain()
        try setup.queue(setup.proposal())
        try writer.drain()

        #expect(try setup.proposalBranches() == [branch])
        #expect(try statusTrailer(setup, "Cairn-Proposal") == branch)
        #expect(setup.logs.count("wrote a proposal branch") == 1)

        try setup.queue(setup.proposal(), createdAt: Date(timeIntervalSince1970: 1_700_009_000))
        try writer.drain()
        #expect(try setup.proposalBranches() == [branch, "cairn/proposals/churn-rollback-2"])
    }

    @Test func anEditThatNoLongerFitsWritesNoBranchButTheStatusSaysWhy() throws {
        let setup = try ProposalSetup()
        try setup.queue(setup.proposal(expected: "4"))
        #expect(try setup.writer().drain() == 1)

        #expect(try setup.proposalBranches().isEmpty)
        #expect(try setup.git(["show", "cairn/status:ModelDeployment/churn-prod.yaml"]).contains("RolledBack"))
        let body = try setup.git(["log", "-1", "--format=%b", "cairn/status"])
        #expect(body.contains("The proposal \"Roll back churn production to churn@2\" was not written: models.yaml:9:17: "
                              + "Model/churn spec.assignments.production is '3', not '4' as the proposal expected"), "\(body)")
        #expect(try statusTrailer(setup, "Cairn-Proposal").isEmpty)
        #expect(try setup.store.pendingOutbox().isEmpty, "the entry is drained, not retried for ever")
    }

    @Test func aSignedProposalVerifiesWithGitAndWithCairn() async throws {
        let setup = try ProposalSetup()
        let keys = try TemporaryDirectory("cairn-keys")
        let key = keys.appending("cairn")
        try run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cairn", "-f", key.path])
        let allowed = keys.appending("allowed_signers")
        let publicKey = try String(contentsOf: keys.appending("cairn.pub"), encoding: .utf8)
        try Data("cairn@localhost namespaces=\"git\" \(publicKey)".utf8).write(to: allowed)
        let signer = try SSHCommitSigner(checking: key)
        try setup.queue(setup.proposal())
        try setup.writer(sign: { try signer.sign($0) }).drain()

        let verified = try run("git", ["-c", "gpg.ssh.allowedSignersFile=\(allowed.path)", "verify-commit", branch], in: setup.repository.url,
                               environment: GitFixture.environment(), check: false)
        #expect(verified.status == 0 && verified.stderr.contains("Good \"git\" signature for cairn@localhost"), "\(verified.stderr)")
        let repository = try Repository.open(at: setup.repository.url)
        let commit = try #require(try repository.referenceTarget("refs/heads/\(branch)"))
        let verifier = CommitVerifier(trust: CommitTrust(mode: .head, allowedSigners: allowed))
        #expect(try await verifier.problem(with: commit, in: repository) == nil)
        // The status commit is Cairn's own record and stays unsigned.
        #expect(try repository.signature(of: try #require(try repository.referenceTarget("refs/heads/cairn/status"))) == nil)
    }

    @Test func aKeyThatCannotSignIsRefusedAtStart() throws {
        let keys = try TemporaryDirectory("cairn-keys")
        let missing = #expect(throws: SigningKeyError.self) { try SSHCommitSigner(checking: keys.appending("absent")) }
        #expect(missing?.description.contains("cannot read the signing key") == true, "\(String(describing: missing))")
        try Data("not a key\n".utf8).write(to: keys.appending("garbage"))
        let garbage = #expect(throws: SigningKeyError.self) { try SSHCommitSigner(checking: keys.appending("garbage")) }
        #expect(garbage?.description.contains("cannot sign: ssh-keygen exited with status 255") == true, "\(String(describing: garbage))")
        // A key with a passphrase: a daemon cannot type it.
        try run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret", "-f", keys.appending("locked").path])
        #expect(throws: SigningKeyError.self) { try SSHCommitSigner(checking: keys.appending("locked")) }
    }
}
