import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Synchronization
import Testing

/// A served bare repository of the proposal setup's commit, and an engine that tracks it by
/// URL through a mirror, pushing. Its fetch is real, and can be held back to open the window
/// in which a person pushes after Cairn's fetch and before its push.
final class ServedProposals {
    let setup: ProposalSetup
    let served: TemporaryDirectory
    let remote: String
    let engine: Engine
    private let fetching = FetchSwitch()

    init() throws {
        setup = try ProposalSetup()
        served = try TemporaryDirectory("cairn-served")
        remote = served.appending("ml.git").path
        try run("git", ["clone", "-q", "--bare", setup.repository.path, remote], environment: GitFixture.environment())
        let state = try TemporaryDirectory("cairn-state")
        let fetching = fetching
        engine = try Engine(source: .remote("file://" + remote), stateDirectory: state.url, configuration: ReconcilerConfiguration(),
                            controllers: try ControllerRegistry(Controllers.all), push: true, logger: setup.logger) { url, mirror in
            guard fetching.on else { return }
            try Repository.open(at: mirror).fetch(from: url, refspecs: Repository.mirrorRefspecs, prune: true)
        }
        mirror = state.appending("mirror.git")
        self.state = state
    }

    let mirror: URL
    let state: TemporaryDirectory

    func holdFetches() { fetching.on = false }

    func queue(_ createdAt: Date = Date(timeIntervalSince1970: 1_700_000_500)) throws {
        var entry = OutboxEntry(kind: .status, ref: ObjectRef(.modelDeployment, "churn-prod"), reason: "RolledBack",
                                body: "kind: ModelDeployment\nreason: RolledBack\n", detail: "rolled back", sourceCommit: setup.base,
                                createdAt: createdAt)
        entry.proposal = setup.proposal()
        var changes = PassChanges()
        changes.outbox = [entry]
        try engine.store.apply(changes)
    }

    func remoteGit(_ arguments: [String], check: Bool = true) throws -> String {
        try run("git", ["--git-dir", remote] + arguments, environment: GitFixture.environment(), check: check).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func mirrorGit(_ arguments: [String]) throws -> String {
        try run("git", ["--git-dir", mirror.path] + arguments, environment: GitFixture.environment()).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A person's commit pushed to `branch` on the remote, from a clone of their own.
    func personPushes(to branch: String, from start: String) throws -> String {
        let person = try TemporaryDirectory("person")
        let clone = person.appending("c")
        let environment = GitFixture.environment()
        try run("git", ["clone", "-q", remote, clone.path], environment: environment)
        try run("git", ["checkout", "-q", "-b", branch, start], in: clone, environment: environment)
        try Data("Ana's own rollback plan\n".utf8).write(to: clone.appendingPathComponent("PLAN.md"))
        try run("git", ["add", "-A"], in: clone, environment: environment)
        try run("git", ["commit", "-q", "-m", "Ana's plan"], in: clone, environment: environment)
        try run("git", ["push", "-q", "origin", branch], in: clone, environment: environment)
        return try run("git", ["rev-parse", "HEAD"], in: clone, environment: environment).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Whether the engine's fetch fetches.
final class FetchSwitch: Sendable {
    private let state = Mutex(true)
    var on: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

@Suite struct ProposalPushTests {
    @Test func proposalBranchesArePushedAndNumberedAfterTheRemotes() async throws {
        let served = try ServedProposals()
        try served.queue()
        try await served.engine.reconcileOnce(push: true)

        let pushed = try served.remoteGit(["rev-parse", "cairn/proposals/churn-rollback-1"])
        #expect(try served.remoteGit(["rev-parse", "cairn/proposals/churn-rollback-1^"]) == served.setup.base)
        #expect(try served.remoteGit(["log", "-1", "--format=%(trailers:key=Cairn-Proposal,valueonly)", "cairn/status", "--",
                                      "ModelDeployment/churn-prod.yaml"]) == "cairn/proposals/churn-rollback-1")
        // The remote holds it now; the mirror's copy is let go, so a merged and deleted branch is not pushed again.
        #expect(try served.mirrorGit(["for-each-ref", "refs/heads/cairn/proposals/"]).isEmpty)

        // The next proposal is numbered after the remote's branch.
        try served.queue(Date(timeIntervalSince1970: 1_700_009_000))
        try await served.engine.reconcileOnce(push: true)
        #expect(try served.remoteGit(["rev-parse", "cairn/proposals/churn-rollback-1"]) == pushed)
        #expect(!(try served.remoteGit(["rev-parse", "cairn/proposals/churn-rollback-2"])).isEmpty)
    }

    /// A person pushes a branch of the same name after Cairn's fetch and before its push: the
    /// push is refused, said once, never forced; the status still goes out.
    @Test func aBranchAPersonPushedFirstIsNeverForced() async throws {
        let served = try ServedProposals()
        try served.queue()
        try await served.engine.reconcileOnce(push: false)
        #expect(try served.mirrorGit(["for-each-ref", "--format=%(refname)", "refs/heads/cairn/proposals/"])
                == "refs/heads/cairn/proposals/churn-rollback-1")

        let theirs = try served.personPushes(to: "cairn/proposals/churn-rollback-1", from: served.setup.base)
        served.holdFetches()
        try await served.engine.pushStatus()
        try await served.engine.pushStatus()

        #expect(try served.remoteGit(["rev-parse", "cairn/proposals/churn-rollback-1"]) == theirs, "the person's branch was not forced")
        #expect(try served.remoteGit(["log", "-1", "--format=%s", "cairn/status", "--", "ModelDeployment/churn-prod.yaml"])
                == "ModelDeployment/churn-prod: RolledBack", "the status went out")
        #expect(served.setup.logs.count("a proposal branch was not pushed") == 1, "\(served.setup.logs.all)")
        // Cairn's proposal stays in its mirror, where nothing is lost.
        #expect(!(try served.mirrorGit(["rev-parse", "refs/heads/cairn/proposals/churn-rollback-1"])).isEmpty)

        // Fetched, the remote's branch is seen for what it is: still not pushed over, not said again.
        let fetched = try await served.refetch()
        #expect(fetched == theirs)
        #expect(served.setup.logs.count("a proposal branch was not pushed") == 1)
    }
}

extension ServedProposals {
    /// One more pass with fetching on, pushing; returns the remote's tip of the contested branch.
    func refetch() async throws -> String {
        fetching.on = true
        try await engine.reconcileOnce(push: true)
        return try remoteGit(["rev-parse", "cairn/proposals/churn-rollback-1"])
    }
}
