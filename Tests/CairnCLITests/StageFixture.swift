import CairnCore
import CairnStore
import CairnTestSupport
import Foundation

/// A repository whose model has a registry and a stage history, made by the real `cairn`
/// binary, for the suites of `cairn plan` and `cairn models --history/--at`.
///
/// Model/scorer is trained by TrainingSchedule/nightly (a trainer whose score is its `score`
/// param; the gate asks for at least 5) and has stages [staging, production]:
///
///     commit 1  score 10                          scorer@1, gate passed
///     commit 2  score 1                           scorer@2, gate failed
///     commit 3  score 20, assignments staging: 1  scorer@3, gate passed; staging ← 1
///     commit 4  staging: 1, production: 1         production ← 1
///
/// Four reconciles and three tiny trainings: made once per test process, and copied into
/// fresh directories for each test (`StageFixture.make()`), which may change its copy.
/// Every process is awaited, never waited for on a blocked thread.
final class StageFixture: @unchecked Sendable {
    let root: TemporaryDirectory
    var repository: URL { root.appending("repo") }
    var state: URL { root.appending("state") }
    /// When the template's stage changes were applied (staging ← 1, then production ← 1), and
    /// when scorer@1 was registered.
    let stagingApplied: Date
    let productionApplied: Date
    let firstRegistered: Date
    private var clock = 1_700_000_000

    private init(root: TemporaryDirectory, stagingApplied: Date, productionApplied: Date, firstRegistered: Date) {
        self.root = root
        self.stagingApplied = stagingApplied
        self.productionApplied = productionApplied
        self.firstRegistered = firstRegistered
    }

    /// A copy of the template, made on first use.
    static func make() async throws -> StageFixture {
        let template = try await Template.shared.fixture()
        let copy = try TemporaryDirectory("cairn-stages")
        for name in ["repo", "state"] {
            try FileManager.default.copyItem(at: template.root.appending(name), to: copy.appending(name))
        }
        let fixture = StageFixture(root: copy, stagingApplied: template.stagingApplied, productionApplied: template.productionApplied,
                                   firstRegistered: template.firstRegistered)
        fixture.clock = template.clock
        return fixture
    }

    // MARK: The repository's files

    static let trainer = """
    import json, os, sys
    score = json.loads(os.environ["CAIRN_PARAMS"])["score"]
    open(sys.argv[1], "w").write(json.dumps({"weight": score}))
    open(sys.argv[2], "w").write(json.dumps({"score": score}))

    """

    static func training(score: Int, params: String = "") -> String {
        """
        apiVersion: cairn/v1
        kind: TrainingSchedule
        metadata: {name: nightly}
        spec:
          model: scorer
          command: [python3, train.py, model.json, metrics.json]
          params: {score: \(score)\(params)}
          outputs: {model: model.json, metrics: metrics.json}
          gate:
            - {metric: score, atLeast: 5}

        """
    }

    /// Model/scorer with `assignments` as a YAML flow mapping, and a `policy` line if given.
    static func model(_ assignments: String, policy: String? = nil) -> String {
        """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: scorer}
        spec:
          stages: [staging, production]
          assignments: \(assignments)

        """ + (policy.map { "  policy: \($0)\n" } ?? "")
    }

    // MARK: Commands

    /// git in the repository (or `directory`), with a fixed identity and a clock that moves a
    /// minute a call; its trimmed standard output.
    @discardableResult
    func git(_ arguments: [String], in directory: URL? = nil) async throws -> String {
        clock += 60
        let result = try await runAsync("git", arguments, in: directory ?? repository, environment: GitFixture.environment(time: clock))
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes files (nil deletes) and commits them on the branch checked out.
    @discardableResult
    func commit(_ files: [String: String?], message: String = "change", author: String? = nil) async throws -> String {
        try GitFixture.write(files, in: repository)
        try await git(["add", "-A"])
        try await git(["commit", "-q", "-m", message] + (author.map { ["--author", $0] } ?? []))
        return try await git(["rev-parse", "HEAD"])
    }

    /// A pull request's branch: `name` off main with `files` committed, main checked out again.
    func pullRequest(_ name: String, _ files: [String: String?], message: String = "promote", author: String? = nil) async throws {
        try await git(["checkout", "-q", "-b", name, "main"])
        try await commit(files, message: message, author: author)
        try await git(["checkout", "-q", "main"])
    }

    /// The real `cairn` binary; `state` adds --state-dir.
    func cairn(_ arguments: [String], state: Bool = true, in directory: URL? = nil) async throws -> ProcessResult {
        try await runAsync(try cairnExecutable(), arguments + (state ? ["--state-dir", self.state.path] : []), in: directory, check: false)
    }

    func plan(_ arguments: [String], state: Bool = true, repo: URL? = nil) async throws -> ProcessResult {
        try await cairn(["plan", "--repo", (repo ?? repository).path] + arguments, state: state)
    }

    // MARK: The template

    /// Builds the template once per process; removed when the process exits.
    actor Template {
        static let shared = Template()
        private var building: Task<StageFixture, any Error>?

        func fixture() async throws -> StageFixture {
            if let building { return try await building.value }
            let task = Task { try await StageFixture.buildTemplate() }
            building = task
            return try await task.value
        }
    }

    nonisolated(unsafe) private static var templatePath: String?

    private static func buildTemplate() async throws -> StageFixture {
        let root = try TemporaryDirectory("cairn-stage-template")
        templatePath = root.path
        atexit { if let path = StageFixture.templatePath { try? FileManager.default.removeItem(atPath: path) } }
        try FileManager.default.createDirectory(at: root.appending("repo"), withIntermediateDirectories: true)
        let building = StageFixture(root: root, stagingApplied: .distantPast, productionApplied: .distantPast, firstRegistered: .distantPast)
        try await building.git(["init", "-q", "-b", "main"])
        func reconcile() async throws {
            let result = try await building.cairn(["reconcile", "--once", "--repo", building.repository.path])
            guard result.status == 0 else { throw FixtureError(description: "the template's reconcile failed: \(result.stdout)\(result.stderr)") }
        }
        try await building.commit(["train.py": trainer, "training.yaml": training(score: 10), "model.yaml": model("{}")], message: "Train scorer")
        try await reconcile()
        try await building.commit(["training.yaml": training(score: 1)], message: "A worse scorer")
        try await reconcile()
        try await building.commit(["training.yaml": training(score: 20), "model.yaml": model("{staging: 1}")], message: "Promote scorer@1 to staging")
        try await reconcile()
        try await building.commit(["model.yaml": model("{staging: 1, production: 1}")], message: "Promote scorer@1 to production")
        try await reconcile()

        let store = try Store(readingFrom: building.state)
        let history = try store.stageHistory(of: "scorer")
        let versions = try store.versions(of: "scorer")
        guard history.map(\.summary) == ["production: none → 1", "staging: none → 1"],
              versions.map(\.version) == [3, 2, 1], versions.map(\.gate.passed) == [true, false, true] else {
            throw FixtureError(description: "the template is not as documented: \(history.map(\.summary)), \(versions.map(\.name))")
        }
        let template = StageFixture(root: root, stagingApplied: history[1].appliedAt, productionApplied: history[0].appliedAt,
                                    firstRegistered: versions[2].registeredAt)
        template.clock = building.clock
        return template
    }
}

/// The template could not be made as documented.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
}
