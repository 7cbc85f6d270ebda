import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Training and the registry end to end: `cairn reconcile --once`, `trigger`, `models`,
/// `lineage` and `reproduce` as subprocesses, trainings as real Python processes in their own
/// checkouts, the registry a real SQLite file and files on the status branch.
@Suite(.serialized) struct TrainingRunTests {
    let repository: GitFixture
    let state: TemporaryDirectory

    init() throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-state")
    }

    static let pipeline = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: features}
    spec:
      stages:
        - name: make
          command: [python3, make.py, features.csv]
          outs: [features.csv]
    """

    static func training(params: String = "{scale: 2}", extra: String = "") -> String {
        """
        apiVersion: cairn/v1
        kind: TrainingSchedule
        metadata: {name: nightly}
        spec:
          model: scorer
          features: features
          command: [python3, train.py, features.csv, model.json, metrics.json]
          params: \(params)
          outputs: {model: model.json, metrics: metrics.json}
          gate:
            - {metric: score, atLeast: 5}
        \(extra)
        ---
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: scorer}
        spec:
          stages: [production]
        """
    }

    /// A deterministic trainer: the model is the features' sum times `scale`; with `noise` it
    /// writes the time too (a trainer that does not reproduce); `fail` exits 3; `nometrics`
    /// writes no metrics file; `metrics` replaces the metrics file's text.
    static let files: [String: String?] = [
        "make.py": "import sys\nopen(sys.argv[1], 'w').write('x\\n1\\n2\\n3\\n')\n",
        "train.py": """
        import json, os, sys, time
        params = json.loads(os.environ["CAIRN_PARAMS"])
        rows = [float(v) for v in open(sys.argv[1]).read().split()[1:]]
        if params.get("fail"):
            print("the trainer gave up"); sys.exit(3)
        if params.get("sleep"):
            time.sleep(params["sleep"])
        model = {"weight": sum(rows) * params.get("scale", 1)}
        if params.get("noise"):
            model["trained_at"] = time.time()
        open(sys.argv[2], "w").write(json.dumps(model, sort_keys=True))
        if not params.get("nometrics"):
            open(sys.argv[3], "w").write(params.get("metrics", json.dumps({"score": model["weight"]})))
        """,
        "README.md": "a scorer\n",
    ]

    func commit(_ changes: [String: String?]) throws {
        try repository.commit(changes)
    }

    func cairn(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try CairnTestSupport.cairn(arguments + ["--state-dir", state.path], environment: environment)
    }

    func reconcile(_ extra: [String] = [], environment: [String: String]? = nil) throws -> ProcessResult {
        try cairn(["reconcile", "--once", "--repo", repository.path] + extra, environment: environment)
    }

    func versions() throws -> [ModelVersion] {
        try Store(readingFrom: state.url).versions(of: "scorer")
    }

    @Test func trainsOnceRegistersAndReadsBackWithGit() throws {
        try commit(Self.files.merging(["features.yaml": Self.pipeline, "training.yaml": Self.training()]) { $1 })
        let first = try reconcile()
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("registered scorer@1"), "\(first.stdout)")
        var registered = try versions()
        #expect(registered.map(\.version) == [1])
        let version = try #require(registered.first)
        #expect(version.metrics == ["score": 12] && version.gate.passed)
        #expect(version.lineage.features.keys.sorted() == ["features.csv"])
        #expect(version.lineage.code["train.py"] != nil && version.lineage.trigger == "inputs")
        #expect(version.lineage.sourceCommit == (try repository.git(["rev-parse", "main"])))

        // The registry is in git: the version's file, and the training's status commit names it.
        let file = try repository.git(["show", "cairn/status:ModelVersion/scorer/1.yaml"])
        #expect(file.contains("sha256: \(version.artifact.digest.hex)") && file.contains("\"score\": 12"), "\(file)")
        let trailers = try repository.git(["log", "-1", "--format=%(trailers:key=Cairn-Model-Version,valueonly)", "cairn/status", "--",
                                           "TrainingSchedule/nightly.yaml"])
        #expect(trailers == "scorer@1")

        // A commit that changes nothing the training reads trains nothing.
        try commit(["README.md": "a scorer, trained nightly\n"])
        let quiet = try reconcile()
        #expect(quiet.status == 0 && !quiet.stdout.contains("registered"), "\(quiet.stdout)")
        #expect(try versions().count == 1)

        // A params change trains the next version.
        try commit(["training.yaml": Self.training(params: "{scale: 3}")])
        #expect(try reconcile().status == 0)
        registered = try versions()
        #expect(registered.map(\.version) == [2, 1] && registered[0].metrics == ["score": 18])

        // The commands read it back.
        let list = try cairn(["models", "--format", "json"])
        #expect(list.status == 0 && list.stdout.contains("\"latest\" : 2"), "\(list.stdout)")
        let history = try cairn(["models", "scorer"])
        #expect(history.status == 0 && history.stdout.contains("score=18") && history.stdout.contains("score=12"), "\(history.stdout)")
        let diff = try cairn(["models", "diff", "scorer@1", "scorer@2", "--changed"])
        #expect(diff.status == 0 && diff.stdout.contains("scale") && diff.stdout.contains("12") && diff.stdout.contains("18"), "\(diff.stdout)")
        #expect(!diff.stdout.contains("train.py"), "--changed leaves out what is the same: \(diff.stdout)")
        let diffJSON = try cairn(["models", "diff", "scorer@1", "scorer@2", "--format", "json"])
        #expect(diffJSON.status == 0 && diffJSON.stdout.contains("\"differs\" : true"), "\(diffJSON.stdout)")
        #expect(try cairn(["models", "diff", "scorer@1", "scorer@7"]).status == 1)
        let lineage = try cairn(["lineage", "scorer@2"])
        #expect(lineage.status == 0 && lineage.stdout.contains("features.csv") && lineage.stdout.contains("← stage make"), "\(lineage.stdout)")
        #expect(lineage.stdout.contains("why: params changed"), "\(lineage.stdout)")
        let out = try TemporaryDirectory()
        let get = try cairn(["models", "get", "scorer@2", "--to", out.appending("v2").path])
        #expect(get.status == 0, "\(get.stderr)")
        let copied = try Data(contentsOf: out.appending("v2").appendingPathComponent("model.json"))
        #expect(ContentHash.sha256(of: copied) == registered[0].artifact.digest)
        #expect(try cairn(["models", "get", "scorer@2", "--to", out.appending("v2").path]).status != 0, "never overwrites")

        // The status branch deleted: the restore writes every version's file again.
        _ = try repository.git(["branch", "-D", "cairn/status"])
        try commit(["README.md": "a scorer, trained nightly, restored\n"])
        #expect(try reconcile().status == 0)
        #expect(try repository.git(["ls-tree", "-r", "--name-only", "cairn/status", "ModelVersion"]).split(separator: "\n")
                == ["ModelVersion/scorer/1.yaml", "ModelVersion/scorer/2.yaml"])

        // Errors name what is wrong.
        let missing = try cairn(["lineage", "scorer@9"])
        #expect(missing.status == 1 && missing.stderr.contains("its versions are 1 to 2"), "\(missing.stderr)")
        #expect(try cairn(["models", "nobody"]).status == 1)
        #expect(try cairn(["lineage", "scorer"]).status == 2)
    }

    /// Two runs of different code made the same feature bytes; the version's lineage names
    /// the one whose code was at its commit (the run the pipeline's status reported), not the
    /// newest that made them.
    @Test func lineageNamesTheFeatureRunTheTrainingUsed() throws {
        let make = try #require(Self.files["make.py"] ?? nil)
        try commit(Self.files.merging(["features.yaml": Self.pipeline, "training.yaml": Self.training()]) { $1 })
        #expect(try reconcile().status == 0)
        let store = try Store(readingFrom: state.url)
        let first = try #require(try store.recentRuns(of: ObjectRef(.featurePipeline, "features"), limit: 5).first)
        try commit(["make.py": make + "# the same output\n"])
        #expect(try reconcile().status == 0)
        try commit(["make.py": make])
        #expect(try reconcile().status == 0)
        try commit(["training.yaml": Self.training(params: "{scale: 5}")])
        #expect(try reconcile().status == 0)
        let makeRuns = try store.recentRuns(of: ObjectRef(.featurePipeline, "features"), in: [.succeeded], limit: 5)
        #expect(makeRuns.count == 2, "make ran for its first code and for the comment, not for the revert")
        let second = try #require(try versions().first)
        #expect(second.version == 2 && second.lineage.featureRuns?["features.csv"] == first.id)
        let lineage = try cairn(["lineage", "scorer@2"])
        #expect(lineage.stdout.contains("← stage make, run \(first.id)"), "\(lineage.stdout)")
        #expect(try repository.git(["show", "cairn/status:ModelVersion/scorer/2.yaml"]).contains("run: \"\(first.id)\""))
    }

    @Test func aVersionIsRegisteredExactlyOnceAfterAKillBetweenTheRunsEndAndRegistration() throws {
        try commit(Self.files.merging(["features.yaml": Self.pipeline, "training.yaml": Self.training()]) { $1 })
        var environment = ProcessInfo.processInfo.environment
        environment["CAIRN_FAULT"] = "before-registration"
        let killed = try reconcile(environment: environment)
        #expect(killed.status != 0, "the fault point kills the process: \(killed.stdout)")
        let store = try Store(readingFrom: state.url)
        #expect(try store.recentRuns(of: ObjectRef(.trainingSchedule, "nightly"), limit: 10).map(\.state) == [.succeeded])
        #expect(try versions().isEmpty)

        let again = try reconcile()
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(try versions().map(\.version) == [1])
        #expect(try reconcile().status == 0)
        #expect(try versions().map(\.version) == [1], "registered once, never again")
        let files = try repository.git(["ls-tree", "-r", "--name-only", "cairn/status", "ModelVersion"])
        #expect(files == "ModelVersion/scorer/1.yaml")
        // The training ran once: the restart registered its run, it did not train again.
        #expect(try store.recentRuns(of: ObjectRef(.trainingSchedule, "nightly"), limit: 10).count == 1)
    }

    @Test func triggerForcesATrainingOfAnUnchangedKey() throws {
        try commit(Self.files.merging(["features.yaml": Self.pipeline, "training.yaml": Self.training()]) { $1 })
        #expect(try reconcile().status == 0)
        let triggered = try cairn(["trigger", "TrainingSchedule/nightly", "--repo", repository.path, "--reason", "new labels"])
        #expect(triggered.status == 0, "\(triggered.stdout)\(triggered.stderr)")
        let registered = try versions()
        #expect(registered.map(\.version) == [2, 1])
        #expect(registered[0].lineage.trigger == "manual" && registered[0].lineage.triggerID?.hasPrefix("manual-") == true)
        // Forced, never reused: same key, a second run.
        #expect(registered[0].lineage.runKey == registered[1].lineage.runKey && registered[0].lineage.runID != registered[1].lineage.runID)
        let run = try #require(try Store(readingFrom: state.url).run(id: registered[0].lineage.runID))
        #expect(run.reason == "triggered: new labels" && run.triggerID == registered[0].lineage.triggerID)
        // Handled once: the next pass trains nothing.
        #expect(try reconcile().status == 0)
        #expect(try versions().count == 2)

        #expect(try cairn(["trigger", "TrainingSchedule/other", "--repo", repository.path]).status == 1)
        #expect(try cairn(["trigger", "Model/scorer", "--repo", repository.path]).status == 2)
    }

    @Test func reproduceMatchesRefusesChangedDataAndCatchesANondeterministicTrainer() throws {
        let data = try TemporaryDirectory("cairn-data")
        try data.write("labels.txt", "a\n")
        let labels = data.appending("labels.txt").path
        try commit(Self.files.merging(["features.yaml": Self.pipeline,
                                       "training.yaml": Self.training(extra: "  deps: [\(labels)]")]) { $1 })
        #expect(try reconcile(["--data-root", data.path]).status == 0)
        let same = try cairn(["reproduce", "scorer@1", "--repo", repository.path, "--data-root", data.path])
        #expect(same.status == 0 && same.stdout.contains("reproduced scorer@1: the model's SHA-256 matches"), "\(same.stdout)\(same.stderr)")

        try data.write("labels.txt", "b\n")
        let changed = try cairn(["reproduce", "scorer@1", "--repo", repository.path, "--data-root", data.path])
        #expect(changed.status == 1 && changed.stderr.contains("refused: \(labels) is not what scorer@1 was trained on"), "\(changed.stderr)")

        try commit(["training.yaml": Self.training(params: "{scale: 2, noise: true}", extra: "  deps: [\(labels)]")])
        #expect(try reconcile(["--data-root", data.path]).status == 0)
        let noisy = try cairn(["reproduce", "scorer@2", "--repo", repository.path, "--data-root", data.path, "--format", "json"])
        #expect(noisy.status == 1 && noisy.stdout.contains("\"matches\" : false"), "\(noisy.stdout)\(noisy.stderr)")
    }

    @Test(arguments: [
        ("{fail: true}", "exited with status 3"),
        ("{nometrics: true}", "did not write its declared output metrics.json"),
        (#"{metrics: "not json"}"#, "the metrics file metrics.json is not JSON"),
        (#"{metrics: "{\"score\": NaN}"}"#, "holds NaN"),
        (#"{metrics: "{\"score\": \"high\"}"}"#, "metric \"score\" in metrics.json is a string"),
        ("{sleep: 5}", "timed out"),
    ])
    func aTrainingThatFailsIsStalledWithItsReasonAndRegistersNothing(params: String, reason: String) throws {
        try commit(Self.files.merging(["features.yaml": Self.pipeline,
                                       "training.yaml": Self.training(params: params, extra: "  timeout: 1s")]) { $1 })
        let result = try reconcile()
        #expect(result.status == 1, "stalled: \(result.stdout)")
        #expect(try versions().isEmpty)
        let status = try repository.git(["show", "cairn/status:TrainingSchedule/nightly.yaml"])
        #expect(status.contains("reason: \"TrainingFailed\""), "\(status)")
        let runs = try Store(readingFrom: state.url).recentRuns(of: ObjectRef(.trainingSchedule, "nightly"), limit: 5)
        #expect(runs.first?.state == .failed && runs.first?.message?.contains(reason) == true, "\(runs.first?.message ?? "")")
    }

    @Test func validationNamesTheLineOfABadScheduleTimeZoneOrGate() throws {
        let directory = try TemporaryDirectory()
        try directory.write("features.yaml", Self.pipeline)
        try directory.write("training.yaml", Self.training(extra: """
          schedule: "61 * * * *"
          timeZone: Mars/Olympus_Mons
          retrainOn: sometimes
        """))
        var result = try CairnTestSupport.cairn(["validate", directory.path])
        #expect(result.status == 1)
        for expected in ["training.yaml:12:13: error: spec.schedule: \"61 * * * *\" is not a cron schedule: 61 is outside 0-59 for the minute field",
                         "training.yaml:13:13: error: spec.timeZone: \"Mars/Olympus_Mons\" is not a known time zone",
                         "training.yaml:14:14: error: spec.retrainOn: \"sometimes\" is not one of inputs, commit, schedule"] {
            #expect(result.stdout.contains(expected), "missing \(expected): \(result.stdout)")
        }
        // Checks across fields, once the shapes are right.
        try directory.write("training.yaml", Self.training(extra: "  always: true").replacingOccurrences(
            of: "- {metric: score, atLeast: 5}", with: "- {metric: score, atLeast: 5, by: 1}\n    - {metric: score, beats: staging}"))
        result = try CairnTestSupport.cairn(["validate", directory.path])
        #expect(result.status == 1)
        for expected in ["always: true trains at every tick of spec.schedule, and there is none",
                         "by is the margin of a beats rule, and this rule has no beats", "Model/scorer has no stage \"staging\""] {
            #expect(result.stdout.contains(expected), "missing \(expected): \(result.stdout)")
        }
    }
}
