import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Model stages through the engine: a real repository, commit by commit, reconciled by the
/// Engine into a real SQLite store and a real status branch. Versions are put in the registry
/// directly (training them is another suite's subject), so each pass judges only assignments.
///
/// churn has three versions: 1 passed its gate, 2 failed it, 3 passed.
///
/// Serialized, and every git call awaited: a test here holds no thread of the cooperative pool
/// while git runs, which the process-heavy suites of the full run need.
@Suite(.serialized) struct ModelStageTests {
    /// The repository holds Model/churn (model.yaml) and its neighbour Model/other (other.yaml).
    final class Stages {
        let repository: TemporaryDirectory
        let state: TemporaryDirectory
        private(set) var engine: Engine!
        var store: Store { engine.store }
        private var clock = 1_700_000_000

        private init() throws {
            repository = try TemporaryDirectory("cairn-git")
            state = try TemporaryDirectory("cairn-state")
        }

        static func make() async throws -> Stages {
            let stages = try Stages()
            try await stages.git(["init", "-q", "-b", "main"])
            try await stages.commit(["model.yaml": model("churn", [:]), "other.yaml": model("other", [:])])
            stages.engine = try Setup.engine(stages.repository.url, stages.state.url)
            for (number, passed) in [(1, true), (2, false), (3, true)] { try stages.store.register(version("churn", number, passed: passed)) }
            try stages.store.register(version("other", 1, passed: true))
            return stages
        }

        /// git in the repository, with a fixed identity and a clock a minute on per call; its
        /// trimmed standard output.
        @discardableResult
        func git(_ arguments: [String]) async throws -> String {
            clock += 60
            let result = try await runAsync("git", arguments, in: repository.url, environment: GitFixture.environment(time: clock))
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Writes `files` and commits them (as `author`); returns the commit.
        @discardableResult
        func commit(_ files: [String: String], author: String = "Ada Tester <ada@example.com>") async throws -> String {
            for (path, text) in files { try repository.write(path, text) }
            try await git(["add", "-A"])
            try await git(["commit", "-q", "--author", author, "-m", "change"])
            return try await git(["rev-parse", "HEAD"])
        }

        /// A Model with stages [staging, production]; assignments in block style, one a line,
        /// in the order given (so a test knows each one's line: the first is line 7).
        static func model(_ name: String, _ assignments: KeyValuePairs<String, Int>, policy: String? = nil) -> String {
            var lines = ["apiVersion: cairn/v1", "kind: Model", "metadata: {name: \(name)}", "spec:", "  stages: [staging, production]"]
            lines.append(assignments.isEmpty ? "  assignments: {}" : "  assignments:")
            lines += assignments.map { "    \($0.key): \($0.value)" }
            if let policy { lines.append("  policy: \(policy)") }
            return lines.joined(separator: "\n") + "\n"
        }

        static func version(_ model: String, _ number: Int, passed: Bool) -> ModelVersion {
            let value = passed ? 0.9 : 0.6
            let rule = GateRuleResult(rule: "auc >= 0.8", metric: "auc", value: value, threshold: 0.8, passed: passed,
                                      verdict: passed ? "auc 0.9 >= 0.8" : "auc 0.6 < 0.8")
            let lineage = Lineage(schedule: "\(model)-weekly", sourceCommit: String(repeating: "0", count: 40), runID: "run-\(model)-\(number)",
                                  runKey: "sha256:\(model)\(number)", trigger: "inputs", triggerID: nil, command: ["python3", "train.py"],
                                  params: "{}", environment: [], featurePipeline: nil, features: [:], code: [:], data: [:], program: nil,
                                  startedAt: nil, finishedAt: nil)
            return ModelVersion(model: model, version: number, artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(model)\(number)".utf8)), size: 1),
                                artifactPath: "model.json", metrics: ["auc": value], gate: GateVerdict(rules: [rule]), lineage: lineage,
                                registeredAt: Date(timeIntervalSince1970: 1_600_000_000))
        }

        /// Commits churn's (and optionally other's) assignments as `author`, reconciles, and
        /// returns the pass and the commit.
        @discardableResult
        func commit(churn: KeyValuePairs<String, Int>, policy: String? = nil, other: KeyValuePairs<String, Int>? = nil,
                    author: String = "Ada Tester <ada@example.com>") async throws -> (PassOutcome, String) {
            var files = ["model.yaml": Self.model("churn", churn, policy: policy)]
            if let other { files["other.yaml"] = Self.model("other", other) }
            let commit = try await commit(files, author: author)
            return (try await engine.reconcileOnce(), commit)
        }

        /// Commits a README change (nothing a Model reads), reconciles, and returns the pass and the commit.
        func commitReadme(_ text: String) async throws -> (PassOutcome, String) {
            let commit = try await commit(["README.md": text])
            return (try await engine.reconcileOnce(), commit)
        }

        func status(_ name: String = "churn") throws -> ObjectStatus { try #require(try store.object(ObjectRef(.model, name))) }
        func held(_ name: String = "churn") throws -> [String: Int] { try store.stageMap(of: name).versions }
        func statusFile(_ name: String = "churn") async throws -> String { try await git(["show", "cairn/status:Model/\(name).yaml"]) }
    }

    @Test func aPromotionToAMissingVersionStallsWithVersionNotFoundAndTheStageStays() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        let (pass, _) = try await stages.commit(churn: ["staging": 9])
        #expect(pass.stalled == [ObjectRef(.model, "churn")])
        let status = try stages.status()
        #expect(status.isStalled && status.reason == "VersionNotFound", "\(status.primaryMessage)")
        #expect(status.primaryMessage.contains("staging → churn@9: no such version is registered"), "\(status.primaryMessage)")
        #expect(try stages.held() == ["staging": 1])
        #expect(try stages.store.stageHistory(of: "churn").count == 1, "a refusal is no stage change")
        // The refusal is in the status a reader sees in git, with the stage where it was.
        let file = try await stages.statusFile()
        #expect(file.contains("reason: \"VersionNotFound\"") && file.contains("no such version is registered"), "\(file)")
        #expect(file.contains("stages:\n  staging:\n    version: 1\n"), "\(file)")
    }

    @Test func aPromotionToAGateFailedVersionIsRefusedWithGateFailed() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        try await stages.commit(churn: ["staging": 2])
        let status = try stages.status()
        #expect(status.isStalled && status.reason == "GateFailed", "\(status.primaryMessage)")
        #expect(status.primaryMessage.contains("churn@2: the version failed its gate (failed: auc 0.6 < 0.8)"), "\(status.primaryMessage)")
        #expect(try stages.held() == ["staging": 1])
        // Judged again at a commit that does not touch it, it is refused again, and says nothing new.
        let statusCommits = try await stages.git(["rev-list", "--count", "cairn/status"])
        let (quiet, _) = try await stages.commitReadme("churn\n")
        #expect(quiet.stalled == [ObjectRef(.model, "churn")] && quiet.changed.isEmpty)
        #expect(try await stages.git(["rev-list", "--count", "cairn/status"]) == statusCommits)

        // The same version is accepted where the policy does not ask for a passed gate.
        try await stages.commit(churn: ["staging": 2], policy: "{requireGate: false}")
        #expect(try stages.status().reason == "StagesHeld")
        #expect(try stages.held() == ["staging": 2])
    }

    @Test func outOfOrderIsRefusedUntilTheVersionHeldThePreviousStageInAnEarlierCommit() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["production": 1])
        var status = try stages.status()
        #expect(status.isStalled && status.reason == "OrderViolated", "\(status.primaryMessage)")
        #expect(status.primaryMessage.contains("production → churn@1: the version has never held staging (nothing holds staging)"),
                "\(status.primaryMessage)")
        #expect(try stages.held().isEmpty)

        try await stages.commit(churn: ["staging": 1])
        #expect(try stages.held() == ["staging": 1])
        let (pass, commit) = try await stages.commit(churn: ["staging": 1, "production": 1])
        status = try stages.status()
        #expect(pass.stalled.isEmpty && status.reason == "StagesHeld", "\(status.primaryMessage)")
        #expect(try stages.held() == ["staging": 1, "production": 1])
        #expect(try stages.store.stageHistory(of: "churn").first?.sourceCommit == commit)

        // Without strictOrder, a version may go to production directly.
        try await stages.commit(churn: ["staging": 1, "production": 3], policy: "{strictOrder: false}")
        #expect(try stages.held() == ["staging": 1, "production": 3])
    }

    /// "Promote to staging first, then to production in a later commit": the later commit need
    /// not touch the Model. An engine that keeps running (the daemon) moves production at the
    /// next commit, as one started afresh for each commit (`reconcile --once`) does.
    @Test func aStageRefusedAsOutOfOrderMovesAtTheNextCommitEvenOneThatLeavesTheModelAlone() async throws {
        let stages = try await Stages.make()
        let (both, _) = try await stages.commit(churn: ["staging": 1, "production": 1])
        #expect(both.stalled == [ObjectRef(.model, "churn")])
        #expect(try stages.status().reason == "OrderViolated")
        #expect(try stages.held() == ["staging": 1])
        let (next, readme) = try await stages.commitReadme("churn, promoted\n")
        let message = try stages.status().primaryMessage
        #expect(next.stalled.isEmpty, "\(message)")
        #expect(try stages.held() == ["staging": 1, "production": 1])
        #expect(try stages.store.stageHistory(of: "churn").first?.sourceCommit == readme)
        // Once it holds, a further commit changes nothing.
        let (quiet, _) = try await stages.commitReadme("churn, promoted twice\n")
        #expect(!quiet.changed.contains(ObjectRef(.model, "churn")))
        #expect(try stages.store.stageHistory(of: "churn").count == 2)
    }

    @Test func anUndeclaredStageIsALocatedErrorThatStallsOnlyItsModel() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        // churn assigns a stage it does not declare; in the same commit, other promotes its version 1.
        let (pass, _) = try await stages.commit(churn: ["staging": 1, "canary": 3], other: ["staging": 1])
        #expect(pass.stalled == [ObjectRef(.model, "churn")])
        let status = try stages.status()
        #expect(status.reason == ConditionReason.invalidManifest, "\(status.primaryMessage)")
        // Line 8 is `    canary: 3`: file, line and column of the field, and the stage it names.
        #expect(status.primaryMessage.hasPrefix("model.yaml:8:5: stage \"canary\" is assigned but not declared in spec.stages"),
                "\(status.primaryMessage)")
        #expect(try await stages.statusFile().contains("model.yaml:8:5"))
        // churn keeps its last good stages; its neighbour moves as if nothing happened.
        #expect(try stages.held() == ["staging": 1])
        #expect(try stages.status("other").reason == "StagesHeld")
        #expect(try stages.held("other") == ["staging": 1])
    }

    @Test func ofTwoStagesInOneCommitTheAcceptedOneMovesAndIsRecordedWhenTheOtherIsRefused() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        try await stages.commit(churn: ["staging": 1, "production": 1])
        // Staging to 3 (passed its gate); production to 2 (failed it).
        let (pass, commit) = try await stages.commit(churn: ["staging": 3, "production": 2], author: "Dana Scientist <dana@example.com>")
        #expect(pass.stalled == [ObjectRef(.model, "churn")])
        let status = try stages.status()
        #expect(status.reason == "GateFailed", "\(status.primaryMessage)")
        #expect(status.primaryMessage.contains("staging holds churn@3, production holds churn@1"), "\(status.primaryMessage)")
        #expect(try stages.held() == ["staging": 3, "production": 1])
        let change = try #require(try stages.store.stageHistory(of: "churn").first)
        #expect(change.summary == "staging: 1 → 3" && change.sourceCommit == commit && change.author == "Dana Scientist <dana@example.com>")
        // The status commit of that pass names the one move, and only it.
        let trailers = try await stages.git(["log", "-1", "--format=%(trailers:key=Cairn-Stage,valueonly)", "cairn/status", "--", "Model/churn.yaml"])
        #expect(trailers == "churn staging 3")
    }

    @Test func aRefusedAssignmentIsAcceptedFromTheCommitThatFixesIt() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        try await stages.commit(churn: ["staging": 9])
        #expect(try stages.status().reason == "VersionNotFound")
        let (pass, fix) = try await stages.commit(churn: ["staging": 3], author: "Dana Scientist <dana@example.com>")
        #expect(pass.healthy)
        let status = try stages.status()
        #expect(status.ready == .true && status.reason == "StagesHeld" && status.primaryMessage == "staging holds churn@3")
        let history = try stages.store.stageHistory(of: "churn")
        #expect(history.map(\.summary) == ["staging: 1 → 3", "staging: none → 1"], "the refused 9 is not in the history")
        #expect(history.first?.sourceCommit == fix && history.first?.author == "Dana Scientist <dana@example.com>")
        #expect(history.map(\.ordinal) == [2, 1])
    }

    /// What git says (the stage map in Model/churn.yaml, the `Cairn-Stage:` trailers of its
    /// history) is what the store says, after accepted, refused and undone changes.
    @Test func theStatusBranchAndItsTrailersAgreeWithTheStore() async throws {
        let stages = try await Stages.make()
        try await stages.commit(churn: ["staging": 1])
        try await stages.commit(churn: ["staging": 1, "production": 1])
        try await stages.commit(churn: ["staging": 3, "production": 2])   // production refused
        try await stages.commit(churn: ["staging": 3, "production": 3])
        try await stages.commit(churn: ["staging": 3])                    // production unassigned

        let repository = try Repository.open(at: stages.repository.url)
        let branch = try #require(try StatusBranchRegistry.find(in: repository, statusBranch: "cairn/status"))
        let fromGit = try branch.stageMap(of: "churn")
        let fromStore = try stages.store.stageMap(of: "churn")
        #expect(fromStore.versions == ["staging": 3] && fromStore.held == ["staging": [1, 3], "production": [1, 3]])
        #expect(StageMap.sameSubstance(fromGit, fromStore), "git: \(fromGit), store: \(fromStore)")

        let trailers = try await stages.git(["log", "--format=%(trailers:key=Cairn-Stage,valueonly)", "cairn/status", "--", "Model/churn.yaml"])
            .split(separator: "\n").map(String.init)
        let history = try stages.store.stageHistory(of: "churn")
        #expect(trailers == history.map { "churn \($0.stage) \($0.version.map(String.init) ?? "none")" }, "\(trailers)")
        #expect(trailers == ["churn production none", "churn production 3", "churn staging 3", "churn production 1", "churn staging 1"])
        // Each trailer is on the status commit made from the commit that moved the stage.
        let sources = try await stages.git(["log", "--format=%(trailers:key=Cairn-Source-Commit,valueonly)", "--grep", "Cairn-Stage:",
                                            "cairn/status", "--", "Model/churn.yaml"])
            .split(separator: "\n").map(String.init)
        #expect(Array(Set(sources)).sorted() == Array(Set(history.map(\.sourceCommit))).sorted())
    }
}
