import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import ModelController
import Testing

/// The Model controller commit by commit over a real SQLite store: what the promotion policy
/// accepts and refuses, what is recorded, and what the status says.
@Suite struct ModelControllerTests {
    /// A store with versions of churn, and a way to reconcile a Model manifest against it as
    /// the engine would (effects applied in the pass's transaction).
    final class Bench {
        let directory: TemporaryDirectory
        let store: Store
        let clock = ManualClock(Date(timeIntervalSince1970: 1_790_000_000))

        init(versions gates: [Bool]) throws {
            directory = try TemporaryDirectory("cairn-model")
            store = try Store(directory: directory.url)
            for (index, passed) in gates.enumerated() { try store.register(Self.version(index + 1, passed: passed)) }
        }

        static func version(_ number: Int, passed: Bool) -> ModelVersion {
            let rule = GateRuleResult(rule: "auc >= 0.75", metric: "auc", value: passed ? 0.8 : 0.7, threshold: 0.75, passed: passed,
                                      verdict: passed ? "auc 0.8 >= 0.75" : "auc 0.7 < 0.75")
            let lineage = Lineage(schedule: "churn-weekly", sourceCommit: "c\(number)", runID: "run-\(number)", runKey: "sha256:k\(number)",
                                  trigger: "inputs", triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [],
                                  featurePipeline: nil, features: [:], code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
            return ModelVersion(model: "churn", version: number, artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(number)".utf8)), size: 1),
                                artifactPath: "model.json", metrics: ["auc": passed ? 0.8 : 0.7], gate: GateVerdict(rules: [rule]),
                                lineage: lineage, registeredAt: Date(timeIntervalSince1970: 1_780_000_000))
        }

        /// Reconciles `assignments` (YAML flow mapping) at `commit`, by `author`.
        @discardableResult
        func pass(_ assignments: String, commit: String, author: String = "Ada <ada@example.com>", policy: String = "") async throws -> Outcome {
            let yaml = """
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: churn}
            spec:
              stages: [staging, production]
              assignments: \(assignments)
            \(policy.isEmpty ? "" : "  policy: \(policy)\n")
            """
            let parsed = ManifestParser.parse(Data(yaml.utf8), file: "model.yaml")
            let manifest = try #require(parsed.manifests.first, "\(parsed.diagnostics)")
            var context = ReconcileContext(object: manifest.ref, sourceCommit: commit, files: NoFiles(), dependencies: [:], previous: nil,
                                           runs: store, versions: store, memory: store, execution: nil, now: clock.now,
                                           logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            context.sourceAuthor = CommitAuthor(name: author, time: clock.now.addingTimeInterval(-60))
            let outcome = try await ModelController().reconcile(manifest, in: context)
            var changes = PassChanges()
            changes.effects = outcome.effects
            try store.apply(changes)
            clock.advance(by: 3600)
            return outcome
        }
    }

    struct NoFiles: SourceFiles {
        func contents(of path: RepositoryPath) throws -> Data? { nil }
        func contentHash(of path: RepositoryPath) throws -> ContentHash? { nil }
    }

    @Test func aPromotionByCommitsIsAcceptedAndRecordedWithItsCommitAuthorAndTime() async throws {
        let bench = try Bench(versions: [true, true])
        let none = try await bench.pass("{}", commit: "a0")
        #expect(none.state == .ready && none.reason == "NoStageAssigned" && none.effects.isEmpty)

        let staging = try await bench.pass("{staging: 1}", commit: "a1", author: "Dana <dana@example.com>")
        #expect(staging.state == .ready && staging.reason == "StagesHeld", "\(staging.message)")
        #expect(staging.message == "staging holds churn@1")
        let history = try bench.store.stageHistory(of: "churn")
        #expect(history.count == 1)
        let change = try #require(history.first)
        #expect(change.stage == "staging" && change.version == 1 && change.previous == nil && change.sourceCommit == "a1")
        #expect(change.author == "Dana <dana@example.com>" && change.ordinal == 1)
        #expect(change.committedAt < change.appliedAt)

        let production = try await bench.pass("{staging: 1, production: 1}", commit: "a2")
        #expect(production.reason == "StagesHeld" && production.message == "staging holds churn@1, production holds churn@1")
        #expect(production.stages?.held == ["staging": [1], "production": [1]])
        // The same commit again (a pass set off by something else): nothing more is recorded.
        let again = try await bench.pass("{staging: 1, production: 1}", commit: "a2")
        #expect(again.effects.isEmpty && again.reason == "StagesHeld")
        #expect(try bench.store.stageHistory(of: "churn").count == 2)
    }

    @Test func eachRuleRefusesWithItsReasonAndTheStageStaysWhereItWas() async throws {
        let bench = try Bench(versions: [true, false, true])
        try await bench.pass("{staging: 1}", commit: "b1")
        try await bench.pass("{staging: 1, production: 1}", commit: "b2")

        let missing = try await bench.pass("{staging: 9, production: 1}", commit: "b3")
        #expect(missing.state == .stalled && missing.reason == "VersionNotFound", "\(missing.message)")
        #expect(missing.message.contains("staging → churn@9: no such version is registered"))
        #expect(missing.message.contains("The refused stage stays where it was: staging holds churn@1"))
        #expect(missing.effects.isEmpty && missing.stages?.versions == ["staging": 1, "production": 1])

        let gate = try await bench.pass("{staging: 2, production: 1}", commit: "b4")
        #expect(gate.reason == "GateFailed" && gate.message.contains("the version failed its gate (failed: auc 0.7 < 0.75)"), "\(gate.message)")

        let order = try await bench.pass("{staging: 1, production: 3}", commit: "b5")
        #expect(order.reason == "OrderViolated" && order.message.contains("churn@3: the version has never held staging"), "\(order.message)")
        #expect(try bench.store.stageMap(of: "churn").versions == ["staging": 1, "production": 1])
        #expect(try bench.store.stageHistory(of: "churn").count == 2, "no refusal is recorded as a change")

        // With requireGate off, the gate-failed version may hold staging.
        let lenient = try await bench.pass("{staging: 2, production: 1}", commit: "b6", policy: "{requireGate: false}")
        #expect(lenient.state == .ready && lenient.message.contains("staging holds churn@2"), "\(lenient.message)")
    }

    @Test func twoStagesInOneCommitAreJudgedApartAndBothAtOnceIsOutOfOrder() async throws {
        let bench = try Bench(versions: [true, true])
        // Staging and production to a new version in one commit: staging moves, production does not.
        let both = try await bench.pass("{staging: 1, production: 1}", commit: "c1")
        #expect(both.state == .stalled && both.reason == "OrderViolated", "\(both.message)")
        #expect(both.message.contains("assigning both in one commit does not count"), "\(both.message)")
        #expect(try bench.store.stageMap(of: "churn").versions == ["staging": 1])
        #expect(both.effects.count == 1)
        // The same manifest at the next commit: version 1 held staging since, so production moves.
        let next = try await bench.pass("{staging: 1, production: 1}", commit: "c2")
        #expect(next.state == .ready, "\(next.message)")
        #expect(try bench.store.stageMap(of: "churn").versions == ["staging": 1, "production": 1])
    }

    @Test func demotionsAndUnassignmentsAreAcceptedAndNumberedPerStage() async throws {
        let bench = try Bench(versions: [true, true])
        try await bench.pass("{staging: 1}", commit: "d1")
        try await bench.pass("{staging: 1, production: 1}", commit: "d2")
        try await bench.pass("{staging: 2, production: 1}", commit: "d3")
        try await bench.pass("{staging: 2, production: 2}", commit: "d4")
        // Back to version 1 (it held staging and production before): accepted.
        let rollback = try await bench.pass("{staging: 2, production: 1}", commit: "d5")
        #expect(rollback.state == .ready, "\(rollback.message)")
        let unassigned = try await bench.pass("{production: 1}", commit: "d6")
        #expect(unassigned.state == .ready && unassigned.message == "production holds churn@1")
        let history = try bench.store.stageHistory(of: "churn")
        #expect(history.map(\.summary) == ["staging: 2 → none", "production: 2 → 1", "production: 1 → 2", "staging: 1 → 2",
                                           "production: none → 1", "staging: none → 1"])
        #expect(history.map(\.ordinal) == [3, 3, 2, 2, 1, 1])
        #expect(try bench.store.stageMap(of: "churn").held == ["staging": [1, 2], "production": [1, 2]])

        // The stages at a time: between d3 (applied at start + 2 h) and d4 (start + 3 h).
        let between = Date(timeIntervalSince1970: 1_790_000_000 + 2.5 * 3600)
        let then = try bench.store.stageChanges(of: "churn", asOf: between)
        #expect(then.map(\.stage) == ["production", "staging"] && then.map(\.version) == [1, 2])
        let early = try bench.store.stageChanges(of: "churn", asOf: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(early.isEmpty)
    }
}
