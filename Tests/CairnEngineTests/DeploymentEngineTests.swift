import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import Testing

/// ModelDeployment through the engine, with a deployer double for the targets: what the
/// engine does around the controller (prune on delete, orphans after a restart, waking on
/// a deployment's change, the status a rollback writes).
@Suite struct DeploymentEngineTests {
    static let model = """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: churn}
        spec:
          stages: [production]
          assignments: {production: PRODUCTION}
          policy: {requireGate: false, strictOrder: false}

        """
    static let deployment = """
        apiVersion: cairn/v1
        kind: ModelDeployment
        metadata: {name: churn-prod}
        spec:
          model: churn
          stage: production
          target:
            process: {command: [python3, serve.py], port: 8601}

        """

    final class Bench {
        let repository: GitFixture
        let state: TemporaryDirectory
        let deployer = DeployerDouble()
        var engine: Engine

        init() throws {
            repository = try GitFixture()
            state = try TemporaryDirectory("cairn-deploy-engine")
            engine = try Self.engine(repository.url, state.url, deployer: deployer)
            for number in 1...2 {
                let lineage = Lineage(schedule: "s", sourceCommit: "c", runID: "r\(number)", runKey: "k\(number)", trigger: "inputs",
                                      triggerID: nil, command: ["true"], params: "{}", environment: [], featurePipeline: nil, features: [:],
                                      code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
                try engine.store.register(ModelVersion(model: "churn", version: number,
                                                       artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data([UInt8(number)])), size: 1),
                                                       artifactPath: "model.json", metrics: [:], gate: GateVerdict(rules: []),
                                                       lineage: lineage, registeredAt: Date()))
            }
        }

        static func engine(_ repository: URL, _ state: URL, deployer: DeployerDouble) throws -> Engine {
            try Engine(source: .local(repository), stateDirectory: state, configuration: ReconcilerConfiguration(),
                       controllers: try ControllerRegistry(Controllers.all), deployer: deployer, push: false,
                       logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) { _, _ in }
        }

        func commit(production: Int?, deployment: Bool = true) throws {
            let model = DeploymentEngineTests.model.replacingOccurrences(of: "PRODUCTION", with: production.map(String.init) ?? "null")
                .replacingOccurrences(of: "{production: null}", with: "{}")
            try repository.commit(["model.yaml": model, "deployment.yaml": deployment ? DeploymentEngineTests.deployment : nil],
                                  message: "production \(production.map(String.init) ?? "none")")
        }

        func status() throws -> ObjectStatus? {
            try engine.store.object(ObjectRef(.modelDeployment, "churn-prod"))
        }
    }

    @Test func aDeletedDeploymentIsTakenDownAfterGitRecordsItDeleted() async throws {
        let bench = try Bench()
        try bench.commit(production: 1)
        try await bench.engine.reconcileOnce()
        #expect(try bench.status()?.reason == "Serving")
        #expect(bench.deployer.calls == [.init(version: 1, retry: true)] && bench.deployer.removed.isEmpty)

        try bench.commit(production: 1, deployment: false)
        try await bench.engine.reconcileOnce()
        #expect(try bench.status() == nil)
        #expect(bench.deployer.removed == ["churn-prod"])
        #expect(try bench.repository.git(["log", "-1", "--format=%s", "cairn/status"]).trimmingCharacters(in: .whitespacesAndNewlines) == "ModelDeployment/churn-prod: Deleted")
    }

    @Test func aRollbackIsWrittenToTheStatusBranchWithItsProposalAndNotRepeated() async throws {
        let bench = try Bench()
        try bench.commit(production: 1)
        try await bench.engine.reconcileOnce()
        bench.deployer.answer(2, with: .failed)
        try bench.commit(production: 2)
        try await bench.engine.reconcileOnce()
        let status = try #require(try bench.status())
        #expect(status.reason == "RolledBack" && status.ready == .false && !status.isStalled && status.condition("Reconciling")?.status == .false)
        let subjects = try bench.repository.git(["log", "--format=%s", "cairn/status", "--", "ModelDeployment/churn-prod.yaml"])
        #expect(subjects.hasPrefix("ModelDeployment/churn-prod: RolledBack\n"), "\(subjects)")
        // The reverse assignment, on a branch of its own: model.yaml with production back to 1.
        let trailer = try bench.repository.git(["log", "-1", "--format=%(trailers:key=Cairn-Proposal,valueonly)", "cairn/status"])
        #expect(trailer.trimmingCharacters(in: .whitespacesAndNewlines) == "cairn/proposals/churn-rollback-1")
        let diff = try bench.repository.git(["diff", "main", "cairn/proposals/churn-rollback-1"])
        #expect(diff.contains("-  assignments: {production: 2}") && diff.contains("+  assignments: {production: 1}"), "\(diff)")
        #expect(try bench.repository.git(["rev-parse", "cairn/proposals/churn-rollback-1^"]) == bench.repository.git(["rev-parse", "main"]))

        // The same commit again (a restart, a requeue): nothing new is written or tried.
        let before = try bench.repository.git(["rev-parse", "cairn/status"])
        try bench.engine.store.request(ObjectRef(.modelDeployment, "churn-prod"))
        try await bench.engine.reconcileOnce()
        #expect(try bench.repository.git(["rev-parse", "cairn/status"]) == before)
        #expect(bench.deployer.calls.filter { $0.version == 2 }.count == 1)
    }

    @Test func settlingWaitsForARolloutUnderWayAndLooksAgainWhenItChanges() async throws {
        let bench = try Bench()
        try bench.commit(production: 1)
        bench.deployer.answer(1, with: .progressing)
        bench.deployer.startWork("churn-prod")
        let deployer = bench.deployer
        // The rollout ends once the engine has asked for it, whenever that is.
        let rollout = Task {
            while deployer.calls.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            deployer.answer(1, with: .serving)
            deployer.finish("churn-prod")
        }
        let (outcome, settled) = try await bench.engine.reconcileUntilSettled(timeout: .seconds(30))
        try await rollout.value
        #expect(settled && outcome.changed.contains(ObjectRef(.modelDeployment, "churn-prod")))
        #expect(try bench.status()?.reason == "Serving")
        #expect(bench.deployer.calls.map(\.version) == [1, 1])
    }

    @Test func whatAPreviousDaemonLeftForAGoneDeploymentIsTakenDownAfterTheFirstPass() async throws {
        let bench = try Bench()
        bench.deployer.leave(["churn-old", "churn-prod"])
        try bench.commit(production: 1)
        try await bench.engine.reconcileOnce()
        // churn-prod is in the manifests, so it is adopted; churn-old is not, so it goes.
        #expect(bench.deployer.removed == ["churn-old"])
        try bench.repository.commit(["README.md": "x"], message: "another commit")
        try await bench.engine.reconcileOnce()
        #expect(bench.deployer.removed == ["churn-old"])
    }

    @Test func aCommitThatChangesTheServingCodeRollsTheSameVersionOutAgainAndOneThatDoesNotLeavesIt() async throws {
        let bench = try Bench()
        try bench.repository.commit(["serve.py": "print('v1 of the server')\n", "helpers.py": "X = 1\n"], message: "serving code")
        try bench.commit(production: 1)
        try await bench.engine.reconcileOnce()
        let first = try #require(bench.deployer.requests.last?.codeKey)

        // A README edit: the deployment is looked at (every commit is), its code is the same.
        try bench.repository.commit(["README.md": "hello\n"], message: "docs")
        try await bench.engine.reconcileOnce()
        #expect(bench.deployer.requests.last?.codeKey == first)

        // serve.py imports a helper; changing the helper changes the code the server runs.
        try bench.repository.commit(["serve.py": "import helpers\nprint('v1 of the server')\n"], message: "serve.py imports helpers")
        try await bench.engine.reconcileOnce()
        let second = try #require(bench.deployer.requests.last?.codeKey)
        #expect(second != first)
        try bench.repository.commit(["helpers.py": "X = 2\n"], message: "fix a helper")
        try await bench.engine.reconcileOnce()
        #expect(try #require(bench.deployer.requests.last?.codeKey) != second)
        #expect(Set(bench.deployer.requests.map(\.version.version)) == [1])
    }
}
