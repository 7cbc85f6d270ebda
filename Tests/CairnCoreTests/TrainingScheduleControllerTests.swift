import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing
@testable import TrainingScheduleController

/// The TrainingSchedule controller pass by pass, over a real SQLite store (TrainingBench.swift):
/// what it trains, what it registers and how, what it waits for, and what its status says.
@Suite struct TrainingScheduleRegistrationTests {
    @Test func aKeyWithoutASuccessTrainsAndItsSuccessBecomesVersionOne() async throws {
        let bench = try TrainingBench(TrainingBench.schedule("gate: [{metric: auc, atLeast: 0.75}]"))
        let first = try await bench.pass()
        #expect(first.state == .reconciling && first.reason == "Training", "\(first.message)")
        let job = try #require(bench.executor.submitted.first)
        #expect(bench.executor.submitted.count == 1)
        #expect(job.trigger == "inputs" && job.triggerID == nil && job.reason == "first training")
        #expect(job.inputs == ["features/churn.csv": try #require(bench.features)])
        #expect(job.keyInputs["input:features/churn.csv"] == bench.features?.digest.description)
        #expect(job.outputs == ["model.json", "metrics.json"])
        #expect(first.registered.isEmpty)

        let run = try bench.executor.succeed(metrics: #"{"auc": 0.83, "accuracy": 0.8}"#)
        let second = try await bench.pass()
        #expect(second.state == .ready && second.reason == "Registered", "\(second.message)")
        #expect(second.registered.count == 1)
        let version = try #require(second.registered.first)
        #expect(version.name == "churn@1")
        #expect(version.metrics == ["auc": 0.83, "accuracy": 0.8])
        #expect(version.artifact == run.outputs["model.json"] && version.artifactPath == "model.json")
        #expect(version.gate.passed && version.gate.summary == "passed (auc 0.83 >= 0.75)")
        let lineage = version.lineage
        #expect(lineage.schedule == "churn-weekly" && lineage.sourceCommit == "c1")
        #expect(lineage.runID == job.runID && lineage.runKey == job.key)
        #expect(lineage.trigger == "inputs" && lineage.triggerID == nil)
        #expect(lineage.params == job.params && job.params.contains("max_iter"), "\(job.params)")
        #expect(lineage.featurePipeline == "churn-features" && lineage.features == job.inputs)
        #expect(lineage.code == ["train.py": ContentHash.sha256(of: Data(TrainingBench.trainPy.utf8)).description])
        #expect(lineage.metricsPath == "metrics.json" && lineage.metricsArtifact == run.outputs["metrics.json"])
        #expect(second.message.hasPrefix("registered churn@1 (run \(job.runID), commit c1)"), "\(second.message)")
        #expect(second.runs == [job.runID])
        #expect(try bench.store.version("churn", 1) == version)

        // A commit that changes nothing the training reads: nothing trains, nothing is registered.
        let third = try await bench.pass(commit: "c2")
        #expect(third.state == .ready && third.reason == "UpToDate", "\(third.message)")
        #expect(third.message.contains("inputs unchanged since churn@1"))
        #expect(third.registered.isEmpty && bench.executor.submitted.count == 1)
        #expect(try bench.store.latestVersionNumber(of: "churn") == 1)
    }

    @Test func aParamsChangeTrainsVersionTwoAgainstTheChampion() async throws {
        let gate = "gate: [{metric: auc, beats: production}]"
        let bench = try TrainingBench(TrainingBench.schedule(gate))
        let first = try await bench.trainToVersion(metrics: #"{"auc": 0.8}"#)
        #expect(first.version.name == "churn@1")
        #expect(first.version.gate.rules.first?.verdict == "no version holds production yet, so there is nothing to beat: passes")
        // Version 1 is promoted; the Model's change alone trains nothing.
        try bench.hold("production", 1)
        #expect(try await bench.pass(commit: "c2").reason == "UpToDate")

        bench.schedule = TrainingBench.schedule(params: "{C: 0.5, max_iter: 200}", gate)
        let started = try await bench.pass(commit: "c3")
        #expect(started.reason == "Training", "\(started.message)")
        let job = try #require(bench.executor.submitted.last)
        #expect(bench.executor.submitted.count == 2 && job.reason == "params changed")
        try bench.executor.succeed(metrics: #"{"auc": 0.82}"#)
        let registered = try await bench.pass(commit: "c3")
        #expect(registered.reason == "Registered", "\(registered.message)")
        let second = try #require(registered.registered.first)
        #expect(second.name == "churn@2" && second.lineage.sourceCommit == "c3" && second.lineage.runID == job.runID)
        #expect(second.lineage.params.contains("0.5") && second.lineage.params != first.version.lineage.params)
        let rule = try #require(second.gate.rules.first)
        #expect(rule.passed && rule.champion == 1 && rule.sameFeatures == true && rule.threshold == 0.8)
        #expect(rule.verdict == "auc 0.82 beats production (version 1: 0.8)")
    }

    @Test func numbersGrowPerModelAcrossSchedulesAndAreNeverGivenTwice() async throws {
        let bench = try TrainingBench()
        bench.models = [TrainingBench.model("churn"), TrainingBench.model("fraud")]
        let trainings: [(schedule: String, commit: String, expected: String)] = [
            (TrainingBench.schedule(name: "churn-weekly", params: "{C: 1.0}"), "c1", "churn@1"),
            (TrainingBench.schedule(name: "churn-nightly", params: "{C: 2.0}"), "c1", "churn@2"),
            (TrainingBench.schedule(name: "fraud-daily", model: "fraud", params: "{C: 3.0}"), "c1", "fraud@1"),
            (TrainingBench.schedule(name: "churn-weekly", params: "{C: 4.0}"), "c2", "churn@3"),
        ]
        for training in trainings {
            bench.schedule = training.schedule
            let (version, _) = try await bench.trainToVersion(commit: training.commit)
            #expect(version.name == training.expected)
        }
        let churn = try bench.store.versions(of: "churn")
        #expect(churn.map(\.version) == [3, 2, 1])
        #expect(churn.map(\.lineage.schedule) == ["churn-weekly", "churn-nightly", "churn-weekly"])
        #expect(Set(churn.map(\.lineage.runID)).count == 3)
        #expect(try bench.store.versions(of: "fraud").map(\.version) == [1])
    }

    /// The executor recorded the success; the pass that registers it dies before its
    /// transaction, and the next pass registers it, once.
    @Test func aSuccessIsRegisteredExactlyOnceAcrossACrash() async throws {
        let bench = try TrainingBench()
        try await bench.pass()
        let run = try bench.executor.succeed()
        let lost = try await bench.pass(apply: false)
        #expect(lost.registered.map(\.name) == ["churn@1"])
        #expect(try bench.store.latestVersionNumber(of: "churn") == 0)

        let again = try await bench.pass()
        #expect(again.reason == "Registered", "\(again.message)")
        #expect(again.registered.map(\.name) == ["churn@1"] && again.registered.first?.lineage.runID == run.id)
        for _ in 0..<2 {
            let after = try await bench.pass()
            #expect(after.registered.isEmpty && after.reason == "UpToDate", "\(after.message)")
        }
        #expect(try bench.store.versions(of: "churn").map(\.lineage.runID) == [run.id])
        #expect(bench.executor.submitted.count == 1)
    }
}

// MARK: Metrics

@Suite struct TrainingScheduleMetricsTests {
    struct Fault: Sendable, CustomTestStringConvertible {
        var name: String
        var metrics: String?
        var model = true
        /// The metrics file left the artifact store (`cairn gc`) before the pass.
        var collected = false
        /// What the run's message and the status say.
        var says: [String]
        var testDescription: String { name }
    }

    static let faults: [Fault] = [
        Fault(name: "not JSON", metrics: "auc=0.91\n", says: ["the metrics file metrics.json is not JSON", "auc=0.91"]),
        Fault(name: "NaN", metrics: #"{"auc": NaN}"#, says: ["metrics.json holds NaN"]),
        Fault(name: "Infinity", metrics: #"{"auc": Infinity}"#, says: ["metrics.json holds Infinity"]),
        Fault(name: "-Infinity", metrics: #"{"loss": -Infinity}"#, says: ["metrics.json holds -Infinity"]),
        Fault(name: "a string", metrics: #"{"auc": "0.91"}"#, says: [#"metric "auc" in metrics.json is a string ("0.91"), not a number"#]),
        Fault(name: "a boolean", metrics: #"{"auc": 0.9, "converged": true}"#, says: [#"metric "converged" in metrics.json is a boolean (true)"#]),
        Fault(name: "null", metrics: #"{"auc": null}"#, says: [#"metric "auc" in metrics.json is null"#]),
        Fault(name: "a nested object", metrics: #"{"auc": {"test": 0.9}}"#, says: [#"metric "auc" in metrics.json is a list or an object"#]),
        Fault(name: "a list at the top", metrics: "[0.91, 0.87]", says: ["metrics.json is JSON but not an object of metric name to number"]),
        Fault(name: "a number beyond a double", metrics: #"{"auc": 1e999}"#, says: [#"metric "auc" in metrics.json"#]),
        Fault(name: "no metrics output", metrics: nil, says: ["the training wrote no metrics file at metrics.json"]),
        Fault(name: "no model output", metrics: #"{"auc": 0.9}"#, model: false, says: ["the training wrote no model at model.json"]),
        Fault(name: "metrics collected from the artifact store", metrics: #"{"auc": 0.9}"#, collected: true,
              says: ["the metrics file metrics.json is no longer in the artifact store"]),
    ]

    /// With retries 0, a run that ended well with outputs that cannot make a version fails the training.
    @Test(arguments: faults) func outputsThatMakeNoVersionFailTheTraining(_ fault: Fault) async throws {
        let bench = try TrainingBench()
        try await bench.pass()
        let run = try bench.executor.succeed(model: fault.model ? "weights" : nil, metrics: fault.metrics)
        if fault.collected, let metrics = run.outputs["metrics.json"] { bench.artifacts.remove(metrics) }
        let outcome = try await bench.pass()
        #expect(outcome.registered.isEmpty)
        let failed = try #require(outcome.recordedRuns.first, "\(outcome.reason): \(outcome.message)")
        #expect(failed.id == run.id && failed.state == .failed)
        #expect(outcome.state == .stalled && outcome.reason == "TrainingFailed", "\(outcome.message)")
        for text in fault.says {
            #expect(failed.message?.contains(text) == true, "\(failed.message ?? "no message")")
            #expect(outcome.message.contains(text), "\(outcome.message)")
        }
        // It stays failed: nothing is registered or run again for the same inputs.
        #expect(try bench.store.run(id: run.id)?.state == .failed)
        let later = try await bench.pass()
        #expect(later.reason == "TrainingFailed" && later.registered.isEmpty && later.recordedRuns.isEmpty)
        #expect(bench.executor.submitted.count == 1)
        #expect(try bench.store.latestVersionNumber(of: "churn") == 0)
    }

    @Test(arguments: [
        (#"{"auc": 1, "errors": 0}"#, ["auc": 1.0, "errors": 0.0]),
        (#" {"auc": 0.91, "loss": -2.5e-3} "#, ["auc": 0.91, "loss": -0.0025]),
        (#"{"NaN_rate": 0.01}"#, ["NaN_rate": 0.01]),
        ("{}", [:]),
    ])
    func numbersAreMetrics(_ text: String, _ metrics: [String: Double]) async throws {
        let bench = try TrainingBench()
        let (version, outcome) = try await bench.trainToVersion(metrics: text)
        #expect(version.metrics == metrics)
        #expect(outcome.reason == "Registered", "\(outcome.message)")
    }
}

// MARK: Failures

@Suite struct TrainingScheduleFailureTests {
    struct Failure: Sendable, CustomTestStringConvertible {
        var name: String
        var message: String
        var exitStatus: Int32?
        var signal: Int32?
        var testDescription: String { name }
    }

    static let failures = [
        Failure(name: "exits 1", message: "exit status 1; the log ended with: ValueError: no rows", exitStatus: 1),
        Failure(name: "times out", message: "timed out after 10m0s", signal: 9),
    ]

    @Test(arguments: failures) func aFailedTrainingIsRetriedAfterItsBackoffThenStalls(_ failure: Failure) async throws {
        let bench = try TrainingBench(TrainingBench.schedule("retries: 1", "timeout: 10m"))
        try await bench.pass()
        let first = try #require(bench.executor.submitted.first)
        #expect(first.timeout == .seconds(600) && first.attempt == 1)
        bench.clock.advance(by: 600)
        try bench.executor.fail(message: failure.message, exitStatus: failure.exitStatus, signal: failure.signal)

        let waiting = try await bench.pass()
        #expect(waiting.state == .reconciling && waiting.reason == "RetryScheduled", "\(waiting.message)")
        #expect(waiting.message.contains("run \(first.runID) failed (\(failure.message))"), "\(waiting.message)")
        #expect(waiting.requeueAfter == .seconds(5))
        bench.clock.advance(by: 4)
        #expect(try await bench.pass().reason == "RetryScheduled")
        #expect(bench.executor.submitted.count == 1)

        bench.clock.advance(by: 1)
        let retrying = try await bench.pass()
        #expect(retrying.reason == "Training", "\(retrying.message)")
        let second = try #require(bench.executor.submitted.last)
        #expect(bench.executor.submitted.count == 2 && second.attempt == 2 && second.key == first.key)
        #expect(second.reason == "retry 1 of 1 after run \(first.runID) failed")

        bench.clock.advance(by: 600)
        try bench.executor.fail(message: failure.message, exitStatus: failure.exitStatus, signal: failure.signal)
        let stalled = try await bench.pass()
        #expect(stalled.state == .stalled && stalled.reason == "TrainingFailed", "\(stalled.message)")
        #expect(stalled.message.contains("run \(second.runID) failed: \(failure.message)"), "\(stalled.message)")
        bench.clock.advance(by: 3600)
        #expect(try await bench.pass().reason == "TrainingFailed")
        #expect(bench.executor.submitted.count == 2)

        // A commit that changes the inputs trains again.
        bench.files["train.py"] = TrainingBench.trainPy + "# fixed\n"
        #expect(try await bench.pass(commit: "c2").reason == "Training")
        #expect(bench.executor.submitted.count == 3 && bench.executor.submitted.last?.attempt == 1)
    }
}

// MARK: Features

@Suite struct TrainingScheduleFeatureTests {
    struct Wait: Sendable, CustomTestStringConvertible {
        var name: String
        var arrange: @Sendable (TrainingBench) throws -> Void
        var says: String
        var testDescription: String { name }
    }

    static let waits = [
        Wait(name: "the pipeline was not reconciled yet", arrange: { $0.pipelineStatus = nil },
             says: "FeaturePipeline/churn-features has not been reconciled yet"),
        Wait(name: "the pipeline is not Ready", arrange: { bench in
            bench.pipelineStatus = TrainingBench.status(TrainingBench.pipelineRef, ready: false, reason: "Running",
                                                        message: "stage featurize is running", runs: ["features-run-1"])
        }, says: "FeaturePipeline/churn-features is not Ready (Running: stage featurize is running)"),
        Wait(name: "its runs lack an output", arrange: { bench in
            let run = try bench.recordPipelineRun(outputs: [:])
            bench.pipelineStatus?.runs = [run.id]
        }, says: "FeaturePipeline/churn-features has not produced features/churn.csv yet"),
        Wait(name: "its output left the artifact store", arrange: { bench in
            if let features = bench.features { bench.artifacts.remove(features) }
        }, says: "FeaturePipeline/churn-features has not produced features/churn.csv yet"),
    ]

    @Test(arguments: waits) func nothingTrainsUntilTheFeaturesAreThere(_ wait: Wait) async throws {
        let bench = try TrainingBench()
        try wait.arrange(bench)
        let outcome = try await bench.pass()
        #expect(outcome.state == .reconciling && outcome.reason == "WaitingForFeatures", "\(outcome.message)")
        #expect(outcome.message.contains(wait.says), "\(outcome.message)")
        #expect(bench.executor.submitted.isEmpty)
        // Once the pipeline has written them, it trains on them.
        try bench.publishFeatures("id,tenure,label\n1,3,0\n2,5,1\n")
        #expect(try await bench.pass().reason == "Training")
        #expect(bench.executor.submitted.first?.inputs == ["features/churn.csv": try #require(bench.features)])
    }
}

// MARK: Gates

@Suite struct TrainingScheduleGateTests {
    struct Champion: Sendable {
        var auc: Double
        /// Whether it was measured on the features the challenger trains on.
        var sameFeatures: Bool
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var rule: String
        var metrics: String
        /// Version 1, holding production when the challenger registers.
        var champion: Champion?
        /// production assigned to a version that was never registered.
        var unregistered: Int?
        var passed: Bool
        var verdict: String
        var sameFeatures: Bool?
        var testDescription: String { name }
    }

    static let beats = "{metric: auc, beats: production, by: 0.01}"
    static let cases = [
        Case(name: "atLeast, met", rule: "{metric: auc, atLeast: 0.75}", metrics: #"{"auc": 0.8}"#, passed: true, verdict: "auc 0.8 >= 0.75"),
        Case(name: "atLeast, met exactly", rule: "{metric: auc, atLeast: 0.75}", metrics: #"{"auc": 0.75}"#, passed: true, verdict: "auc 0.75 >= 0.75"),
        Case(name: "atLeast, missed", rule: "{metric: auc, atLeast: 0.75}", metrics: #"{"auc": 0.7}"#, passed: false, verdict: "auc 0.7 < 0.75"),
        Case(name: "atMost, met", rule: "{metric: loss, atMost: 0.3}", metrics: #"{"loss": 0.25}"#, passed: true, verdict: "loss 0.25 <= 0.3"),
        Case(name: "atMost, met exactly", rule: "{metric: loss, atMost: 0.3}", metrics: #"{"loss": 0.3}"#, passed: true, verdict: "loss 0.3 <= 0.3"),
        Case(name: "atMost, missed", rule: "{metric: loss, atMost: 0.3}", metrics: #"{"loss": 0.4}"#, passed: false, verdict: "loss 0.4 > 0.3"),
        Case(name: "beats, nobody holds production", rule: beats, metrics: #"{"auc": 0.8}"#, passed: true,
             verdict: "no version holds production yet, so there is nothing to beat: passes"),
        Case(name: "beats, the champion scores higher", rule: beats, metrics: #"{"auc": 0.85}"#, champion: Champion(auc: 0.9, sameFeatures: true),
             passed: false, verdict: "auc 0.85 does not beat production (version 1: 0.9 + 0.01)", sameFeatures: true),
        Case(name: "beats, the champion scores lower", rule: beats, metrics: #"{"auc": 0.85}"#, champion: Champion(auc: 0.8, sameFeatures: true),
             passed: true, verdict: "auc 0.85 beats production (version 1: 0.8 + 0.01)", sameFeatures: true),
        Case(name: "beats, by less than the margin", rule: beats, metrics: #"{"auc": 0.805}"#, champion: Champion(auc: 0.8, sameFeatures: true),
             passed: false, verdict: "auc 0.805 does not beat production (version 1: 0.8 + 0.01)", sameFeatures: true),
        Case(name: "beats by exactly the margin", rule: beats, metrics: #"{"auc": 0.81}"#, champion: Champion(auc: 0.8, sameFeatures: true),
             passed: true, verdict: "auc 0.81 beats production (version 1: 0.8 + 0.01)", sameFeatures: true),
        Case(name: "beats a champion measured on other features", rule: beats, metrics: #"{"auc": 0.85}"#,
             champion: Champion(auc: 0.8, sameFeatures: false), passed: true,
             verdict: "auc 0.85 beats production (version 1: 0.8 + 0.01) (measured on other feature data than the champion's: the comparison is across data)",
             sameFeatures: false),
        Case(name: "beats a version that is not registered", rule: beats, metrics: #"{"auc": 0.85}"#, unregistered: 7, passed: false,
             verdict: "production is assigned version 7 of churn, which is not registered, so it cannot be compared"),
        Case(name: "the metric is missing", rule: "{metric: auc, atLeast: 0.75}", metrics: #"{"accuracy": 0.9}"#, passed: false,
             verdict: "the metrics have no auc (they have accuracy)"),
    ]

    @Test(arguments: cases) func theGateJudgesEachRule(_ gate: Case) async throws {
        let bench = try TrainingBench(TrainingBench.schedule("gate: [\(gate.rule)]"))
        if let champion = gate.champion {
            let features = champion.sameFeatures ? try #require(bench.features) : bench.artifacts.put("id,tenure,label\n9,9,1\n")
            try bench.store.register(Self.champion(auc: champion.auc, features: ["features/churn.csv": features]))
            try bench.hold("production", 1)
        }
        if let number = gate.unregistered { try bench.hold("production", number) }
        let (version, outcome) = try await bench.trainToVersion(metrics: gate.metrics)
        let rule = try #require(version.gate.rules.first)
        #expect(rule.verdict == gate.verdict)
        #expect(rule.passed == gate.passed && version.gate.passed == gate.passed)
        #expect(rule.sameFeatures == gate.sameFeatures)
        #expect(rule.champion == (gate.champion == nil ? gate.unregistered : 1))
        // A version is registered either way; the status says whether it passed, and why.
        #expect(version.version == (gate.champion == nil ? 1 : 2))
        #expect(outcome.state == .ready && outcome.reason == (gate.passed ? "Registered" : "GateFailed"), "\(outcome.message)")
        #expect(outcome.message.contains(gate.verdict), "\(outcome.message)")
    }

    static func champion(auc: Double, features: [String: Artifact]) -> ModelVersion {
        let lineage = Lineage(schedule: "churn-weekly", sourceCommit: "c0", runID: "champion-run", runKey: "sha256:champion", trigger: "inputs",
                              triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [], featurePipeline: "churn-features",
                              features: features, code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
        return ModelVersion(model: "churn", version: 1, artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("champion".utf8)), size: 8),
                            artifactPath: "model.json", metrics: ["auc": auc], gate: GateVerdict(rules: []), lineage: lineage,
                            registeredAt: Date(timeIntervalSince1970: 0))
    }
}

// MARK: Concurrency

@Suite struct TrainingScheduleConcurrencyTests {
    /// Commit c1 starts run A; commit c2 changes train.py while A runs.
    @Test(arguments: TrainingScheduleSpec.ConcurrencyPolicy.allCases)
    func aNewKeyWhileATrainingRuns(_ policy: TrainingScheduleSpec.ConcurrencyPolicy) async throws {
        let bench = try TrainingBench(TrainingBench.schedule("concurrencyPolicy: \(policy.rawValue)"))
        try await bench.pass(commit: "c1")
        let a = try #require(bench.executor.submitted.first)
        bench.files["train.py"] = TrainingBench.trainPy + "# faster\n"
        let second = try await bench.pass(commit: "c2")

        switch policy {
        case .Forbid:
            #expect(second.state == .reconciling && second.reason == "Queued", "\(second.message)")
            #expect(second.message.contains("run \(a.runID) is under way and concurrencyPolicy is Forbid"), "\(second.message)")
            #expect(try await bench.pass(commit: "c2").reason == "Queued")
            #expect(bench.executor.submitted.count == 1 && bench.executor.cancelled.isEmpty)
            // A ends: its model is registered, and the newest key starts.
            try bench.executor.succeed(a.runID)
            let next = try await bench.pass(commit: "c2")
            #expect(next.reason == "Training", "\(next.message)")
            #expect(next.registered.map(\.lineage.runID) == [a.runID])
            let b = try #require(bench.executor.submitted.last)
            #expect(bench.executor.submitted.count == 2 && b.key != a.key && b.sourceCommit == "c2")
            #expect(b.reason == "train.py changed")
        case .Replace:
            #expect(bench.executor.cancelled == [a.runID])
            #expect(bench.executor.submitted.count == 2)
            #expect(second.reason == "Training" && second.message.contains("cancelled \(a.runID) under concurrencyPolicy Replace"),
                    "\(second.message)")
            let b = bench.executor.submitted[1]
            #expect(b.key != a.key && b.sourceCommit == "c2")
            try bench.executor.endCancelled()
            #expect(try bench.store.run(id: a.runID)?.state == .cancelled)
            try bench.executor.succeed(b.runID)
            let next = try await bench.pass(commit: "c2")
            #expect(next.reason == "Registered" && next.registered.map(\.lineage.runID) == [b.runID], "\(next.message)")
        case .Allow:
            #expect(bench.executor.submitted.count == 2 && bench.executor.cancelled.isEmpty)
            #expect(second.reason == "Training", "\(second.message)")
            let b = bench.executor.submitted[1]
            #expect(try Set(bench.store.unfinishedRuns().map(\.id)) == [a.runID, b.runID])
            // Both end before the next pass: two numbers, in the order the runs started.
            try bench.executor.succeed(b.runID)
            try bench.executor.succeed(a.runID)
            let next = try await bench.pass(commit: "c2")
            #expect(next.registered.map(\.name) == ["churn@1", "churn@2"])
            #expect(next.registered.map(\.lineage.runID) == [a.runID, b.runID])
            #expect(next.reason == "Registered", "\(next.message)")
        }
    }
}

// MARK: What starts a training

@Suite struct TrainingScheduleRetrainTests {
    /// The pipeline writes new feature data at the same commit.
    @Test(arguments: [TrainingScheduleSpec.RetrainOn.inputs, .commit])
    func newFeatureDataAtTheSameCommit(_ retrainOn: TrainingScheduleSpec.RetrainOn) async throws {
        let bench = try TrainingBench(TrainingBench.schedule("retrainOn: \(retrainOn.rawValue)"))
        try await bench.trainToVersion(commit: "c1")
        try bench.publishFeatures("id,tenure,label\n1,3,0\n2,8,1\n")
        let outcome = try await bench.pass(commit: "c1")
        switch retrainOn {
        case .inputs:
            #expect(outcome.reason == "Training", "\(outcome.message)")
            #expect(bench.executor.submitted.count == 2)
            #expect(bench.executor.submitted.last?.trigger == "inputs")
        default:
            #expect(outcome.state == .ready && outcome.reason == "WaitingForCommit", "\(outcome.message)")
            #expect(outcome.message.contains("retrainOn is commit: it trains at the next commit"), "\(outcome.message)")
            #expect(bench.executor.submitted.count == 1)
            // The next commit trains, whatever it changed.
            let next = try await bench.pass(commit: "c2")
            #expect(next.reason == "Training", "\(next.message)")
            let job = try #require(bench.executor.submitted.last)
            #expect(bench.executor.submitted.count == 2 && job.trigger == "commit" && job.sourceCommit == "c2")
            #expect(job.reason == "features/churn.csv changed")
        }
    }

    @Test func underRetrainOnScheduleAKeyChangeWaitsForATick() async throws {
        let bench = try TrainingBench(TrainingBench.schedule(#"schedule: "0 * * * *""#, "retrainOn: schedule"), at: "2027-01-15T10:30:00Z")
        let first = try await bench.pass()
        #expect(first.state == .ready && first.reason == "WaitingForTick", "\(first.message)")
        #expect(first.requeueAfter == .seconds(1800))
        #expect(bench.executor.submitted.isEmpty)

        bench.clock.advance(by: 1830)                                      // 11:00:30
        #expect(try await bench.pass().reason == "Training")
        let tick = try #require(bench.executor.submitted.first)
        #expect(tick.trigger == "schedule" && tick.triggerID == nil)
        #expect(tick.reason.hasPrefix("the schedule's tick at 2027-01-15T11:00:00Z"), "\(tick.reason)")
        try bench.executor.succeed()
        #expect(try await bench.pass().reason == "Registered")

        bench.schedule = TrainingBench.schedule(params: "{C: 0.1}", #"schedule: "0 * * * *""#, "retrainOn: schedule")
        bench.clock.advance(by: 600)                                       // 11:10:30
        let waiting = try await bench.pass(commit: "c2")
        #expect(waiting.reason == "WaitingForTick", "\(waiting.message)")
        #expect(bench.executor.submitted.count == 1)
        bench.clock.advance(by: 3000)                                      // 12:00:30
        #expect(try await bench.pass(commit: "c2").reason == "Training")
        let next = try #require(bench.executor.submitted.last)
        #expect(bench.executor.submitted.count == 2 && next.trigger == "schedule" && next.reason.contains("params changed"))
        try bench.executor.succeed()
        #expect(try await bench.pass(commit: "c2").registered.map(\.name) == ["churn@2"])
        // A tick on inputs that succeeded trains nothing.
        bench.clock.advance(by: 3600)                                      // 13:00:30
        #expect(try await bench.pass(commit: "c2").reason == "UpToDate")
        #expect(bench.executor.submitted.count == 2)
    }

    @Test func withAlwaysEveryTickTrainsUnchangedInputs() async throws {
        let bench = try TrainingBench(TrainingBench.schedule(#"schedule: "0 * * * *""#, "always: true"), at: "2027-01-15T10:30:00Z")
        let (first, _) = try await bench.trainToVersion()
        #expect(first.lineage.trigger == "inputs")

        bench.clock.advance(by: 1860)                                      // 11:01
        let ticked = try await bench.pass()
        #expect(ticked.reason == "Training", "\(ticked.message)")
        let job = try #require(bench.executor.submitted.last)
        #expect(bench.executor.submitted.count == 2)
        #expect(job.trigger == "schedule" && job.triggerID == "tick-2027-01-15T11:00:00Z" && job.key == first.lineage.runKey)
        #expect(job.reason == "the schedule's tick at 2027-01-15T11:00:00Z (always: true)")
        #expect(try bench.store.run(id: job.runID)?.triggerID == "tick-2027-01-15T11:00:00Z")
        try bench.executor.succeed()
        let registered = try await bench.pass()
        let second = try #require(registered.registered.first)
        #expect(second.name == "churn@2" && registered.reason == "Registered", "\(registered.message)")
        #expect(second.lineage.trigger == "schedule" && second.lineage.triggerID == "tick-2027-01-15T11:00:00Z")

        bench.clock.advance(by: 1800)                                      // 11:31: no tick
        #expect(try await bench.pass().reason == "UpToDate")
        #expect(bench.executor.submitted.count == 2)
        bench.clock.advance(by: 1800)                                      // 12:01
        try await bench.pass()
        #expect(bench.executor.submitted.count == 3 && bench.executor.submitted.last?.triggerID == "tick-2027-01-15T12:00:00Z")
    }
}

// MARK: Manual triggers

@Suite struct TrainingScheduleTriggerTests {
    static let ref = ObjectRef(.trainingSchedule, "churn-weekly")

    func trigger(_ bench: TrainingBench, _ id: String = "manual-1") throws {
        try bench.store.addTrigger(TriggerRequest(id: id, object: Self.ref, source: "manual", reason: "alice: retrain after the outage",
                                                  requestedAt: bench.clock.now))
    }

    @Test func aTriggerTrainsAKeyThatSucceededOnce() async throws {
        let bench = try TrainingBench()
        let (first, _) = try await bench.trainToVersion()
        try trigger(bench)
        let outcome = try await bench.pass()
        #expect(outcome.reason == "Training", "\(outcome.message)")
        #expect(outcome.consumedTriggers == ["manual-1"])
        #expect(try bench.store.triggers(of: Self.ref).isEmpty)
        let job = try #require(bench.executor.submitted.last)
        #expect(bench.executor.submitted.count == 2)
        #expect(job.triggerID == "manual-1" && job.trigger == "manual" && job.key == first.lineage.runKey)
        #expect(job.reason == "triggered: alice: retrain after the outage")

        try bench.executor.succeed()
        let registered = try await bench.pass()
        let second = try #require(registered.registered.first)
        #expect(second.name == "churn@2")
        #expect(second.lineage.trigger == "manual" && second.lineage.triggerID == "manual-1")
        let after = try await bench.pass()
        #expect(after.reason == "UpToDate" && bench.executor.submitted.count == 2)
    }

    /// The process dies after submitting a trigger's run and before the pass that consumes
    /// the trigger commits: the next pass sees the run answers it, and does not train twice.
    @Test func aTriggerAnsweredBeforeACrashIsNotAnsweredTwice() async throws {
        let bench = try TrainingBench()
        _ = try await bench.trainToVersion()
        try trigger(bench)
        try await bench.pass(apply: false)
        #expect(bench.executor.submitted.count == 2 && bench.executor.submitted.last?.triggerID == "manual-1")
        #expect(try bench.store.triggers(of: Self.ref).map(\.id) == ["manual-1"], "the crash left it pending")
        let after = try await bench.pass()
        #expect(after.consumedTriggers == ["manual-1"] && bench.executor.submitted.count == 2, "\(after.reason): \(after.message)")
        #expect(try bench.store.triggers(of: Self.ref).isEmpty)
    }

    /// A forced training that fails leaves the key's success standing, and says so: Ready,
    /// reason LastTrainingFailed, naming the run, until a training succeeds again.
    @Test func aFailedForcedTrainingIsSaidNotHidden() async throws {
        let bench = try TrainingBench()
        let (first, _) = try await bench.trainToVersion()
        try trigger(bench)
        try await bench.pass()
        let forced = try #require(bench.executor.submitted.last)
        _ = try bench.executor.fail(message: "exit status 1; the log ended with: MemoryError")
        let outcome = try await bench.pass()
        #expect(outcome.state == .ready && outcome.reason == "LastTrainingFailed", "\(outcome.reason): \(outcome.message)")
        #expect(outcome.message.contains(forced.runID) && outcome.message.contains("MemoryError") && outcome.message.contains(first.name))
        #expect(outcome.runs.contains(forced.runID))
        #expect(bench.executor.submitted.count == 2, "a forced training is not retried by itself")
    }

    @Test func aTriggerWhileATrainingRunsWaitsForIt() async throws {
        let bench = try TrainingBench()
        try await bench.pass()
        let a = try #require(bench.executor.submitted.first)
        try trigger(bench)
        let queued = try await bench.pass()
        #expect(queued.reason == "Queued", "\(queued.message)")
        #expect(queued.consumedTriggers.isEmpty && bench.executor.submitted.count == 1)
        #expect(try bench.store.triggers(of: Self.ref).map(\.id) == ["manual-1"])

        try bench.executor.succeed(a.runID)
        let next = try await bench.pass()
        #expect(next.registered.map(\.name) == ["churn@1"])
        #expect(next.consumedTriggers == ["manual-1"])
        #expect(bench.executor.submitted.count == 2 && bench.executor.submitted.last?.triggerID == "manual-1")
    }
}

// MARK: Catch-up

@Suite struct TrainingScheduleCatchupTests {
    /// Hourly, `always: true`: trained at 10:30, then down until 13:40, across 11:00, 12:00 and 13:00.
    @Test(arguments: TrainingScheduleSpec.Catchup.allCases)
    func missedTicksAfterDowntime(_ catchup: TrainingScheduleSpec.Catchup) async throws {
        let bench = try TrainingBench(TrainingBench.schedule(#"schedule: "0 * * * *""#, "always: true", "catchup: \(catchup.rawValue)"),
                                      at: "2027-01-15T10:30:00Z")
        try await bench.trainToVersion()
        var ticks: [String?] { bench.executor.submitted.dropFirst().map(\.triggerID) }

        bench.clock.advance(by: 3 * 3600 + 600)                            // 13:40
        let back = try await bench.pass()
        #expect(back.requeueAfter == .seconds(1200))
        switch catchup {
        case .none:
            #expect(ticks.isEmpty)
            #expect(back.reason == "UpToDate" && back.message.contains("(3 missed ticks dropped, catchup: none)"), "\(back.message)")
        case .latest:
            #expect(ticks == ["tick-2027-01-15T13:00:00Z"])
            #expect(back.reason == "Training")
            try bench.executor.succeed()
            #expect(try await bench.pass().registered.map(\.name) == ["churn@2"])
            #expect(try await bench.pass().reason == "UpToDate")
            #expect(ticks.count == 1)
        case .all:
            #expect(ticks == ["tick-2027-01-15T11:00:00Z"])
            bench.clock.advance(by: 60)
            let queued = try await bench.pass()
            #expect(queued.reason == "Queued", "\(queued.message)")
            #expect(ticks.count == 1)
            for (number, expected) in [(2, ["tick-2027-01-15T11:00:00Z", "tick-2027-01-15T12:00:00Z"]),
                                       (3, ["tick-2027-01-15T11:00:00Z", "tick-2027-01-15T12:00:00Z", "tick-2027-01-15T13:00:00Z"])] {
                try bench.executor.succeed()
                let next = try await bench.pass()
                #expect(next.registered.map(\.version) == [number])
                #expect(ticks == expected)
            }
            try bench.executor.succeed()
            #expect(try await bench.pass().registered.map(\.version) == [4])
            #expect(try await bench.pass().reason == "UpToDate")
            #expect(ticks.count == 3)
        }
    }
}

// MARK: Bugs these tests found
// Each test below failed against the first version of the controller; they keep the fixes.

extension TrainingScheduleGateTests {
    /// 0.8 + 0.05 is 0.8500000000000001 in binary floating point, so a challenger that wins by
    /// exactly `by` is compared with a threshold a hair above its score.
    @Test func aWinByExactlyTheMarginPassesWhateverTheBinaryFractions() async throws {
        let bench = try TrainingBench(TrainingBench.schedule("gate: [{metric: auc, beats: production, by: 0.05}]"))
        try bench.store.register(Self.champion(auc: 0.8, features: ["features/churn.csv": try #require(bench.features)]))
        try bench.hold("production", 1)
        let (version, _) = try await bench.trainToVersion(metrics: #"{"auc": 0.85}"#)
        let rule = try #require(version.gate.rules.first)
        #expect(rule.passed, "\(rule.verdict)")
    }
}

extension TrainingScheduleConcurrencyTests {
    /// Replace cancelled A for B; then c3 reverts train.py, so A's inputs are current again. A
    /// did not fail: it was cancelled by the controller itself, so its inputs train again.
    @Test func aRunReplaceCancelledIsNoFailureOfItsInputs() async throws {
        let bench = try TrainingBench(TrainingBench.schedule("concurrencyPolicy: Replace"))
        try await bench.pass(commit: "c1")
        let a = try #require(bench.executor.submitted.first)
        bench.files["train.py"] = TrainingBench.trainPy + "# faster\n"
        try await bench.pass(commit: "c2")
        try bench.executor.endCancelled()
        try bench.executor.succeed()
        #expect(try await bench.pass(commit: "c2").reason == "Registered")

        bench.clock.advance(by: 60)
        bench.files["train.py"] = TrainingBench.trainPy
        let reverted = try await bench.pass(commit: "c3")
        #expect(reverted.reason == "Training", "\(reverted.message)")
        #expect(bench.executor.submitted.last?.key == a.key && bench.executor.submitted.count == 3)
    }
}

extension TrainingScheduleConcurrencyTests {
    /// A manual trigger under Replace while a run of the same key is under way: the local
    /// executor's cancel returns once SIGTERM is sent, and the run is recorded cancelled when
    /// its process is gone; until then a submit of its key is answered with it.
    @Test func aTriggerUnderReplaceGetsARunOfItsOwn() async throws {
        let bench = try TrainingBench(TrainingBench.schedule("concurrencyPolicy: Replace"))
        try await bench.pass()
        let a = try #require(bench.executor.submitted.first)
        let ref = ObjectRef(.trainingSchedule, "churn-weekly")
        try bench.store.addTrigger(TriggerRequest(id: "manual-1", object: ref, source: "manual", reason: "alice", requestedAt: bench.clock.now))
        let triggered = try await bench.pass()
        #expect(bench.executor.cancelled == [a.runID])
        try bench.executor.endCancelled()
        for _ in 0..<3 { try await bench.pass() }
        let answered = bench.executor.submitted.contains { $0.triggerID == "manual-1" }
        let pending = try bench.store.triggers(of: ref).map(\.id)
        #expect(answered || pending == ["manual-1"], "status said: \(triggered.message)")
    }
}

extension TrainingScheduleRetrainTests {
    /// `retries` says how many times a failed run is retried, whatever started it.
    @Test func underRetrainOnScheduleAFailedTrainingIsRetried() async throws {
        let bench = try TrainingBench(TrainingBench.schedule(#"schedule: "0 * * * *""#, "retrainOn: schedule", "retries: 1"))
        try await bench.pass()
        bench.clock.advance(by: 1830)                                      // 11:00:30
        try await bench.pass()
        let tick = try #require(bench.executor.submitted.first)
        try bench.executor.fail(message: "exit status 1; the log ended with: MemoryError")
        let failed = try await bench.pass()
        bench.clock.advance(by: 60)
        try await bench.pass()
        #expect(failed.state != .ready, "\(failed.reason): \(failed.message)")
        #expect(failed.message.contains(tick.runID), "\(failed.message)")
        #expect(bench.executor.submitted.count == 2)
    }
}

extension TrainingScheduleMetricsTests {
    /// 1e999 is a number JSON allows and a Double cannot hold: refused, but not as a list.
    @Test func aNumberBeyondADoubleIsCalledWhatItIs() async throws {
        let bench = try TrainingBench()
        try await bench.pass()
        try bench.executor.succeed(metrics: #"{"auc": 1e999}"#)
        let outcome = try await bench.pass()
        #expect(outcome.reason == "TrainingFailed")
        #expect(!outcome.message.contains("is a list or an object"), "\(outcome.message)")
    }
}

extension TrainingScheduleMetricsTests {
    /// The status of the pass that refuses a run says why once, not twice in one message.
    @Test func theStatusGivesTheReasonOnce() async throws {
        let bench = try TrainingBench()
        try await bench.pass()
        try bench.executor.succeed(metrics: "[0.91]")
        let outcome = try await bench.pass()
        let reason = "the metrics file metrics.json is JSON but not an object of metric name to number"
        #expect(outcome.reason == "TrainingFailed" && outcome.message.contains(reason))
        #expect(outcome.message.components(separatedBy: reason).count == 2, "\(outcome.message)")
    }
}

@Suite struct TrainingScheduleIsolationTests {
    /// Two schedules train two models with the same command, params and features.
    @Test func twoModelsTrainedAlikeEachGetAVersion() async throws {
        let bench = try TrainingBench()
        bench.models = [TrainingBench.model("churn"), TrainingBench.model("churn-eu")]
        bench.schedule = TrainingBench.schedule(name: "churn-weekly", model: "churn")
        try await bench.trainToVersion()
        bench.schedule = TrainingBench.schedule(name: "churn-eu-weekly", model: "churn-eu")
        let other = try await bench.pass()
        if bench.executor.submitted.count == 2 { try bench.executor.succeed() }
        try await bench.pass()
        let versions = try bench.store.latestVersionNumber(of: "churn-eu")
        #expect(!other.message.contains("churn@1"), "Model/churn-eu's schedule reports another model's version: \(other.message)")
        #expect(versions == 1)
    }
}
