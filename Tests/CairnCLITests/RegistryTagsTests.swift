import CairnCore
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// `--registry-tags`: the registry as annotated tags in GTO's grammar, checked with git (and
/// with GTO itself when CAIRN_GTO names its binary), through the real `cairn` binary.
///
/// Serialized, small, and async: every subprocess is awaited (`runAsync`), never waited for on
/// one of the cooperative pool's threads, which all suites share (two on a two-core machine).
/// Most tests fill the registry straight into the store (versions at real commits, stage
/// changes as the Model controller records them) and let `cairn reconcile` write the tags;
/// one trains and promotes for real.
@Suite(.serialized) struct RegistryTagsTests {
    let repository: GitFixture
    let state: TemporaryDirectory

    init() throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-state")
    }

    func cairn(_ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessResult {
        try await cairnAsync(arguments + ["--state-dir", state.path], environment: environment)
    }

    func reconcile(tags: Bool = true, repo: String? = nil, _ extra: [String] = [], environment: [String: String]? = nil) async throws -> ProcessResult {
        try await cairn(["reconcile", "--once", "--repo", repo ?? repository.path] + (tags ? ["--registry-tags"] : []) + extra,
                        environment: environment)
    }

    /// git in the test's repository (or in `gitDirectory`), awaited; its output trimmed.
    @discardableResult
    func git(_ arguments: [String], gitDirectory: String? = nil) async throws -> String {
        try await runAsync("git", (gitDirectory.map { ["--git-dir", $0] } ?? ["-C", repository.path]) + arguments,
                           environment: GitFixture.environment()).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes `files` (nil deletes) and commits them all; returns the commit id.
    @discardableResult
    func commit(_ files: [String: String?], message: String = "change") async throws -> String {
        try GitFixture.write(files, in: repository.url)
        try await git(["add", "-A"])
        try await git(["commit", "-q", "-m", message])
        return try await git(["rev-parse", "HEAD"])
    }

    /// `name → commit` for every tag; each must be annotated.
    func tags(gitDirectory: String? = nil) async throws -> [String: String] {
        let listing = try await git(["for-each-ref", "--format=%(refname:short) %(objecttype) %(*objectname)", "refs/tags"], gitDirectory: gitDirectory)
        var result: [String: String] = [:]
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            #expect(parts.count == 3 && parts[1] == "tag", "every tag Cairn writes is annotated: \(line)")
            if parts.count == 3 { result[parts[0]] = parts[2] }
        }
        return result
    }

    // MARK: A real training and real promotions

    static func manifests(assignments: String) -> [String: String?] {
        [
            "make.py": "import sys\nopen(sys.argv[1], 'w').write('x\\n1\\n2\\n3\\n')\n",
            "train.py": """
            import json, sys
            rows = [float(v) for v in open(sys.argv[1]).read().split()[1:]]
            open(sys.argv[2], "w").write(json.dumps({"weight": sum(rows)}))
            open(sys.argv[3], "w").write(json.dumps({"score": sum(rows)}))
            """,
            "ml.yaml": """
            apiVersion: cairn/v1
            kind: FeaturePipeline
            metadata: {name: features}
            spec:
              stages:
                - name: make
                  command: [python3, make.py, features.csv]
                  outs: [features.csv]
            ---
            apiVersion: cairn/v1
            kind: TrainingSchedule
            metadata: {name: nightly}
            spec:
              model: scorer
              features: features
              command: [python3, train.py, features.csv, model.json, metrics.json]
              outputs: {model: model.json, metrics: metrics.json}
              gate:
                - {metric: score, atLeast: 5}
            ---
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: scorer}
            spec:
              stages: [staging, production]
              assignments: \(assignments)
              policy: {requireGate: true, strictOrder: true}
            """,
        ]
    }

    @Test func tagsFollowARealTrainingAndItsPromotionsOnlyWhenAskedFor() async throws {
        let trained = try await self.commit(Self.manifests(assignments: "{}"))
        let first = try await reconcile(tags: false)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("registered scorer@1"), "\(first.stdout)")
        #expect(try await git(["tag", "-l"]).isEmpty, "off by default: no tag without --registry-tags")

        // Turned on later: the version registered before is tagged too, then each promotion.
        try await self.commit(Self.manifests(assignments: "{staging: 1}"), message: "Promote scorer 1 to staging")
        #expect(try await reconcile().status == 0)
        #expect(try await tags() == ["scorer@v1.0.0": trained, "scorer#staging#1": trained])
        #expect(try await git(["tag", "-l", "--format=%(contents:subject)|%(taggername) %(taggeremail)", "scorer@v1.0.0"])
                == "Registering artifact scorer version v1.0.0|Cairn <cairn@localhost>")
        #expect(try await git(["tag", "-l", "--format=%(contents:subject)|%(taggername) %(taggeremail)", "scorer#staging#1"])
                == "Assigning stage staging to artifact scorer version v1.0.0|Ada Tester <ada@example.com>",
                "a stage tag names the author of the commit that moved the stage")

        // One commit leaves staging and takes production: GTO numbers both in one sequence.
        try await self.commit(Self.manifests(assignments: "{production: 1}"), message: "Promote scorer 1 to production")
        let promoted = try await reconcile()
        #expect(promoted.status == 0, "\(promoted.stdout)\(promoted.stderr)")
        let expected = ["scorer@v1.0.0": trained, "scorer#staging#1": trained, "scorer#staging!#2": trained, "scorer#production#3": trained]
        #expect(try await tags() == expected)
        #expect(try await git(["tag", "-l", "--format=%(contents:subject)", "scorer#staging!#2"])
                == "Unassigning stage 'staging' to artifact 'scorer' version 'v1.0.0'")
        let objects = try await git(["for-each-ref", "--format=%(objectname)", "refs/tags"])

        // Again: nothing new, nothing moved, nothing to report.
        #expect(try await reconcile().status == 0)
        #expect(try await git(["for-each-ref", "--format=%(objectname)", "refs/tags"]) == objects)
        let status = try await cairn(["status"])
        #expect(status.status == 0 && !status.stdout.contains("registry tag"), "\(status.stdout)")
        try await expectGTOAgrees(model: "scorer", tagged: [1])
    }

    // MARK: A registry filled into the store

    static let dana = "Dana <dana@example.com>"

    /// Writes into the state directory's store, closing it before `cairn` opens it.
    func fill(_ body: (Store) throws -> Void) throws {
        try body(try Store(directory: state.url))
    }

    /// Registers `number` at `commit` straight into the store, as a training would.
    func register(_ number: Int, at commit: String, in store: Store) throws {
        let lineage = Lineage(schedule: "nightly", sourceCommit: commit, runID: "run-\(number)", runKey: "key-\(number)", trigger: "inputs",
                              triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [], featurePipeline: nil,
                              features: [:], code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
        try store.register(ModelVersion(model: "scorer", version: number,
                                        artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(number)".utf8)), size: 1),
                                        artifactPath: "model.json", metrics: ["score": Double(number)], gate: GateVerdict(rules: []),
                                        lineage: lineage, registeredAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(number) * 1_000)))
    }

    /// Records that `stage` moved from `previous` to `version`, as the Model controller would.
    func move(_ stage: String, from previous: Int?, to version: Int?, at offset: Double, commit: String, in store: Store) throws {
        let time = Date(timeIntervalSince1970: 1_700_000_000 + offset)
        try store.recordStageChange(StageChange(model: "scorer", stage: stage, version: version, previous: previous, sourceCommit: commit,
                                                author: Self.dana, committedAt: time, appliedAt: time,
                                                ordinal: try store.stageChangeCount(of: "scorer", stage: stage) + 1))
    }

    @Test func aKillBetweenWritingATagAndRecordingItNeitherLosesNorDuplicatesIt() async throws {
        let commit = try await self.commit(["README.md": "scorer\n"])
        try fill { store in
            try register(1, at: commit, in: store)
            try move("staging", from: nil, to: 1, at: 1_500, commit: commit, in: store)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["CAIRN_FAULT"] = "after-registry-tag"
        let killed = try await reconcile(environment: environment)
        #expect(killed.termination == .signaled(SIGKILL), "the fault point kills the process: \(killed.stderr)")
        #expect(try await tags() == ["scorer@v1.0.0": commit], "the first tag is in git, and the store does not know yet")
        let written = try await git(["rev-parse", "refs/tags/scorer@v1.0.0"])
        #expect(try Store(readingFrom: state.url).registryTagsToWrite().compactMap(\.name) == ["scorer@v1.0.0", "scorer#staging#1"])

        let again = try await reconcile()
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(try await tags() == ["scorer@v1.0.0": commit, "scorer#staging#1": commit])
        #expect(try await git(["rev-parse", "refs/tags/scorer@v1.0.0"]) == written, "adopted, not written again")
        let store = try Store(readingFrom: state.url)
        let recorded = try store.registryTags(of: ["scorer"])
        #expect(recorded.map(\.name) == ["scorer@v1.0.0", "scorer#staging#1"] && recorded.allSatisfy { $0.state == .created })
        #expect(recorded.first?.object == written)

        // A rerun (and a new stage change after it) names nothing twice.
        #expect(try await reconcile().status == 0)
        try fill { try move("production", from: nil, to: 1, at: 2_000, commit: commit, in: $0) }
        #expect(try await reconcile().status == 0)
        #expect(try await tags() == ["scorer@v1.0.0": commit, "scorer#staging#1": commit, "scorer#production#2": commit])
        #expect(try store.registryTags(of: ["scorer"]).count == 3)
    }

    @Test func aTagSomeoneElseMadeIsNeverMovedAndIsReported() async throws {
        let commit = try await self.commit(["README.md": "scorer\n"])
        let other = try await self.commit(["README.md": "scorer, later\n"])
        try await git(["tag", "-a", "-m", "mine", "scorer@v1.0.0", other])
        let theirs = try await git(["rev-parse", "refs/tags/scorer@v1.0.0"])
        try fill { store in
            try register(1, at: commit, in: store)
            try move("production", from: nil, to: 1, at: 1_500, commit: other, in: store)
        }
        let held = try await reconcile()
        #expect(held.status == 0, "the registry is fine; only its tag is held: \(held.stdout)\(held.stderr)")
        #expect(held.stderr.contains("registry tag held") && held.stderr.contains("scorer@v1.0.0"), "\(held.stderr)")
        #expect(try await git(["rev-parse", "refs/tags/scorer@v1.0.0"]) == theirs, "never moved")
        #expect(try await tags() == ["scorer@v1.0.0": other], "the stage tag waits for the version's own tag")
        let status = try await cairn(["status"])
        #expect(status.stdout.contains("2 registry tag(s) are not written"), "\(status.stdout)")
        #expect(status.stdout.contains("scorer@v1.0.0 (held): a tag named scorer@v1.0.0 exists and points at commit \(other.prefix(12))"),
                "\(status.stdout)")
        #expect(status.stdout.contains("git tag -d 'scorer@v1.0.0'"), "\(status.stdout)")
        #expect(try await reconcile().status == 0)
        #expect(try await git(["rev-parse", "refs/tags/scorer@v1.0.0"]) == theirs, "still never moved")

        // They remove theirs and tag the right commit themselves: adopted, and the stage follows.
        try await git(["tag", "-d", "scorer@v1.0.0"])
        try await git(["tag", "-a", "-m", "Registering artifact scorer version v1.0.0", "scorer@v1.0.0", commit])
        let right = try await git(["rev-parse", "refs/tags/scorer@v1.0.0"])
        #expect(try await reconcile().status == 0)
        #expect(try await tags() == ["scorer@v1.0.0": commit, "scorer#production#1": commit])
        #expect(try await git(["rev-parse", "refs/tags/scorer@v1.0.0"]) == right)
        #expect(try Store(readingFrom: state.url).registryTags(of: ["scorer"]).map(\.state) == [.created, .created])
        #expect(!(try await cairn(["status"]).stdout.contains("registry tag")))
    }

    @Test func tagsArePushedWithTheStatusBranchAndARemoteTagIsNeverForced() async throws {
        let served = try TemporaryDirectory("cairn-served")
        let remote = served.appending("ml.git").path
        // One object, so that there is a status branch to push: a Model nothing is assigned to.
        let first = try await self.commit(["README.md": "scorer\n",
                                           "other.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: other}\nspec: {stages: [production]}\n"])
        let second = try await self.commit(["README.md": "scorer, later\n"])
        try await git(["clone", "-q", "--bare", repository.path, remote])
        // Someone tagged version 2 on the remote by hand, at another commit than Cairn's version 2.
        try await git(["tag", "-a", "-m", "by hand", "scorer@v2.0.0", first], gitDirectory: remote)
        let theirs = try await git(["rev-parse", "refs/tags/scorer@v2.0.0"], gitDirectory: remote)
        try fill { store in
            try register(1, at: first, in: store)
            try move("staging", from: nil, to: 1, at: 1_500, commit: first, in: store)
            try register(2, at: second, in: store)
        }
        let pushed = try await reconcile(repo: "file://" + remote, ["--push"])
        #expect(pushed.status == 0, "\(pushed.stdout)\(pushed.stderr)")
        #expect(try await tags(gitDirectory: remote) == ["scorer@v1.0.0": first, "scorer#staging#1": first, "scorer@v2.0.0": first])
        #expect(try await git(["rev-parse", "refs/tags/scorer@v2.0.0"], gitDirectory: remote) == theirs, "the remote's tag is never forced")
        #expect(try await git(["log", "--format=%s", "cairn/status"], gitDirectory: remote).contains("Model/other: NoStageAssigned"),
                "the status branch went with the tags")
        #expect(try await cairn(["status"]).stdout.contains("scorer@v2.0.0 (held)"))

        // A later promotion is pushed on the next pass.
        try fill { try move("production", from: nil, to: 1, at: 3_000, commit: second, in: $0) }
        #expect(try await reconcile(repo: "file://" + remote, ["--push"]).status == 0)
        #expect(try await tags(gitDirectory: remote)["scorer#production#2"] == first)
    }

    /// GTO reads what Cairn wrote as `cairn models` tells it: two versions, a stage that moves
    /// on and back (where GTO's sorts differ unless the version left is unassigned), a stage
    /// unassigned, and a retraining at the same commit (one version per commit for GTO).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CAIRN_GTO"] != nil, "CAIRN_GTO names no gto binary"))
    func gtoReadsTheTagsAsCairnModelsTellsThem() async throws {
        let first = try await self.commit(["README.md": "scorer\n"])
        let second = try await self.commit(["README.md": "scorer, later\n"])
        try fill { store in
            try register(1, at: first, in: store)
            try move("staging", from: nil, to: 1, at: 1_100, commit: first, in: store)
            try move("production", from: nil, to: 1, at: 1_200, commit: first, in: store)
            try register(2, at: second, in: store)
            try move("staging", from: 1, to: 2, at: 2_100, commit: second, in: store)
            try move("production", from: 1, to: 2, at: 2_200, commit: second, in: store)
            try register(3, at: second, in: store)
            try move("production", from: 2, to: 1, at: 3_100, commit: second, in: store)
            try move("staging", from: 2, to: nil, at: 3_200, commit: second, in: store)
        }
        let pass = try await reconcile()
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        #expect(try await cairn(["status"]).stdout.contains("1 registry tag(s) were skipped"))
        try await expectGTOAgrees(model: "scorer", tagged: [1, 2])
    }

    // MARK: GTO as the witness

    /// With CAIRN_GTO set, `gto show` and `gto history` must read the tags as `cairn models`
    /// tells the registry (a gto that fails fails the test); without it, nothing is checked.
    func expectGTOAgrees(model: String, tagged: Set<Int>) async throws {
        guard let gto = ProcessInfo.processInfo.environment["CAIRN_GTO"] else { return }
        func json(_ result: ProcessResult) throws -> Any { try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) }
        func gtoJSON(_ arguments: [String]) async throws -> Any {
            try json(try await runAsync(gto, arguments + ["--json", "-r", repository.path], in: repository.url, environment: GitFixture.environment()))
        }
        func cairnJSON(_ arguments: [String]) async throws -> Any { try json(try await cairn(arguments + ["--format", "json"])) }

        // Who holds each stage, and the latest version.
        let summary = try #require((try await cairnJSON(["models"]) as? [[String: Any]])?.first { $0["model"] as? String == model })
        let stages = try #require(summary["stages"] as? [String: Int])
        for sort in ["timestamp", "semver"] {
            let shown = try #require((try await gtoJSON(["show", "--sort", sort]) as? [String: Any])?[model] as? [String: Any], "gto show lists \(model)")
            let held = (shown["stage"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
            #expect(held == stages.mapValues(GTOTag.semver), "gto show --sort \(sort): \(held), cairn models: \(stages)")
            let latest = try #require(tagged.max())
            #expect(shown["version"] as? String == GTOTag.semver(latest))
        }

        // Each tagged version at its source commit.
        let versions = try #require(try await cairnJSON(["models", model]) as? [[String: Any]])
        let commits = Dictionary(uniqueKeysWithValues: versions.compactMap { version -> (String, String)? in
            guard let number = version["version"] as? Int, tagged.contains(number),
                  let commit = (version["lineage"] as? [String: Any])?["sourceCommit"] as? String else { return nil }
            return (GTOTag.semver(number), commit)
        })
        let gtoVersions = try #require(try await gtoJSON(["show", model]) as? [[String: Any]])
        #expect(Dictionary(uniqueKeysWithValues: gtoVersions.compactMap { version -> (String, String)? in
            guard let name = version["version"] as? String, let commit = version["commit_hexsha"] as? String else { return nil }
            return (name, commit)
        }) == commits)

        // The stage history, event by event, in order.
        let changes = try #require(try await cairnJSON(["models", model, "--history"]) as? [[String: Any]])
        var expected: [String] = []
        for change in changes.reversed() {
            let stage = change["stage"] as? String ?? "?"
            if let previous = change["previous"] as? Int, tagged.contains(previous) { expected.append("unassignment \(stage) \(GTOTag.semver(previous))") }
            if let version = change["version"] as? Int, tagged.contains(version) { expected.append("assignment \(stage) \(GTOTag.semver(version))") }
        }
        let events = try #require(try await gtoJSON(["history", model]) as? [[String: Any]])
        let read = events.reversed().compactMap { event -> String? in
            guard let kind = event["event"] as? String, kind == "assignment" || kind == "unassignment" else { return nil }
            return "\(kind) \(event["stage"] as? String ?? "?") \(event["version"] as? String ?? "?")"
        }
        #expect(read == expected)
        #expect(events.filter { $0["event"] as? String == "registration" }.count == tagged.count)
    }
}

