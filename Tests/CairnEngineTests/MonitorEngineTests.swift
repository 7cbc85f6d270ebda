import CairnCore
import CairnEngine
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// The Monitor controller in the real engine (a git repository, the store, status commits on
/// cairn/status), with a real `MetricHub` fed samples at the times of a manual clock, and a
/// deployer double that serves whatever it is asked. Time moves only when a test moves it.
@Suite(.serialized) struct MonitorEngineTests {
    static let bad = [0.6, 0.6, 0.6]
    static let good = [0.9, 0.9, 0.9]

    // MARK: Alerting-rule timing

    @Test func aThresholdGoesPendingFiresAfterItsForAndResolvesAfterKeepFiringFor() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, for: 10m, keepFiringFor: 2m, minSamples: 5, action: alert}")
        try await bench.pass()
        #expect(try bench.status(MonitorBench.deployment).serving == 3)
        #expect(bench.reason == "InsufficientData")
        // Three samples a tick: the 1m window holds two ticks' worth.
        try await bench.tick(samples: Self.bad)
        #expect(bench.reason == "InsufficientData", "\(bench.message)")
        try await bench.tick(samples: Self.bad)
        let since = bench.clock.now
        #expect(bench.reason == "Pending")
        #expect(bench.message.contains("pending since \(MonitorBench.time(since))"), "\(bench.message)")
        #expect(bench.message.contains("fires at \(MonitorBench.time(since.addingTimeInterval(600)))"), "\(bench.message)")
        for _ in 1...19 {
            try await bench.tick(samples: Self.bad)
            #expect(bench.reason == "Pending", "at +\(bench.clock.now.timeIntervalSince(since))s: \(bench.message)")
        }
        #expect(bench.clock.now.timeIntervalSince(since) == 570)
        try await bench.tick(samples: Self.bad)
        #expect(bench.reason == "Firing")
        #expect(bench.message.contains("firing since \(MonitorBench.time(since.addingTimeInterval(600)))"), "\(bench.message)")
        #expect(try bench.monitorSubjects().last == "Monitor/churn-quality: Firing")

        // Good samples: the condition is false from the next tick; it keeps firing for 2m.
        for _ in 1...4 {
            try await bench.tick(samples: Self.good)
            #expect(bench.reason == "Firing", "at +\(bench.clock.now.timeIntervalSince(since))s: \(bench.message)")
        }
        try await bench.tick(samples: Self.good)
        #expect(bench.reason == "Healthy", "\(bench.message)")
        // One status commit per transition, and none for the passes in between.
        #expect(try bench.monitorSubjects() == ["InsufficientData", "Pending", "Firing", "Healthy"].map { "Monitor/churn-quality: \($0)" })
    }

    @Test func tooFewSamplesNeverGoPendingAndAnEmptyWindowDoesNotResolveAFiringThreshold() async throws {
        // No `for`: with minSamples ignored, the first low sample would fire.
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1h, minSamples: 5, action: alert}")
        try await bench.pass()
        // One low sample every 16 minutes, evaluated every 2 (a pass renews what the hub
        // accepts): never more than 4 in the hour's window.
        for step in 0...30 {
            bench.clock.advance(by: 120)
            if step % 8 == 0 { #expect(bench.push([0.5]) == .ingested(MetricIngestCounts().withAccepted(1))) }
            try await bench.pass()
            #expect(bench.reason == "InsufficientData", "at step \(step): \(bench.message)")
        }
        #expect(bench.message.contains("too few samples (minSamples 5)"), "\(bench.message)")
        #expect(try bench.monitorSubjects() == ["Monitor/churn-quality: InsufficientData"])

        // Two more (the oldest has left the window): five or more, and it fires. Then no
        // samples for two hours: the window empties, and an empty window says nothing, so it
        // goes on firing.
        try await bench.tick(samples: [0.5, 0.5])
        #expect(bench.reason == "Firing", "\(bench.message)")
        for _ in 1...12 {
            try await bench.tick(600)
            #expect(bench.reason == "Firing", "\(bench.message)")
        }
        #expect(try bench.monitorSubjects().last == "Monitor/churn-quality: Firing")
    }

    @Test func aPendingThresholdFiresAtItsOwnTimeAfterARestartWithEmptyWindows() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, for: 10m, minSamples: 5, action: alert}")
        try await bench.pass()
        try await bench.tick(samples: Self.bad)
        try await bench.tick(samples: Self.bad)
        let since = bench.clock.now
        #expect(bench.reason == "Pending")
        for _ in 1...10 { try await bench.tick(samples: Self.bad) }

        // SIGTERM at +5m: a new engine on the same state, and a new hub holding no samples.
        try bench.restart()
        try await bench.pass()
        #expect(bench.reason == "Pending", "\(bench.message)")
        #expect(bench.message.contains("pending since \(MonitorBench.time(since))"), "\(bench.message)")
        // The windows refill; it fires at since + 10m, not at the restart + 10m.
        while bench.clock.now.timeIntervalSince(since) < 570 {
            try await bench.tick(samples: Self.bad)
            #expect(bench.reason == "Pending", "at +\(bench.clock.now.timeIntervalSince(since))s: \(bench.message)")
        }
        try await bench.tick(samples: Self.bad)
        #expect(bench.reason == "Firing", "\(bench.message)")
        #expect(bench.message.contains("firing since \(MonitorBench.time(since.addingTimeInterval(600)))"), "\(bench.message)")
    }

    // MARK: Actions

    @Test func aFlappingMetricRetrainsAtMostOncePerCooldown() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, aggregate: last, cooldown: 20m, action: retrain}")
        try await bench.pass()
        let start = bench.clock.now
        // An hour: 0.69 on even minutes, 0.71 on odd ones; it fires and resolves 30 times.
        for minute in 0..<60 {
            try await bench.tick(60, samples: [minute % 2 == 0 ? 0.69 : 0.71])
        }
        #expect(bench.clock.now.timeIntervalSince(start) == 3600)
        let requests = try bench.retrainRequests()
        #expect((1...3).contains(requests.count), "\(requests.map(\.requestedAt))")
        #expect(Set(requests.map(\.id)).count == requests.count)
        let times = requests.map(\.requestedAt).sorted()
        for (earlier, later) in zip(times, times.dropFirst()) {
            #expect(later.timeIntervalSince(earlier) >= 1200, "\(times)")
        }
        #expect(requests.allSatisfy { $0.reason.contains("while churn@3 served") })
    }

    @Test func anAlertThresholdSendsOneFiringAlertAndOneResolvedAlert() async throws {
        let recorder = AlertRecorder()
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, aggregate: last, action: alert}", alerts: recorder)
        try await bench.pass()
        try await bench.tick(samples: [0.5])
        #expect(bench.reason == "Firing")
        #expect(bench.message.contains("queued a firing alert"), "\(bench.message)")
        try await bench.tick(samples: [0.4])
        try await bench.tick(samples: [0.5])
        #expect(recorder.alerts.map(\.status) == ["firing"])
        let alert = try #require(recorder.alerts.first)
        #expect(alert.monitor == "churn-quality" && alert.deployment == "churn-prod" && alert.model == "churn" && alert.version == 3)
        #expect(alert.value == 0.5 && alert.threshold == "below 0.7" && alert.metric == "accuracy")

        try await bench.tick(samples: [0.9])
        #expect(bench.reason == "Healthy", "\(bench.message)")
        #expect(recorder.alerts.map(\.status) == ["firing", "resolved"])
        #expect(recorder.alerts.last?.value == 0.9)
    }

    @Test func aFlappingAlertSendsNoResolvedAlertForAFiringItDidNotReport() async throws {
        let recorder = AlertRecorder()
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, aggregate: last, cooldown: 20m, action: alert}",
                                     alerts: recorder)
        try await bench.pass()
        for minute in 0..<60 {
            try await bench.tick(60, samples: [minute % 2 == 0 ? 0.69 : 0.71])
        }
        let statuses = recorder.alerts.map(\.status)
        let firing = statuses.filter { $0 == "firing" }.count
        #expect((1...3).contains(firing), "\(statuses)")
        // Every resolved alert follows the firing alert it resolves.
        #expect(statuses == Array(repeating: ["firing", "resolved"], count: firing).flatMap { $0 }, "\(statuses)")
    }

    @Test func withoutAnAlertURLTheStatusSaysNoAlertWasSent() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, aggregate: last, action: alert}")
        try await bench.pass()
        try await bench.tick(samples: [0.5])
        #expect(bench.reason == "Firing")
        #expect(bench.message.contains("no alert sent at \(MonitorBench.time(bench.clock.now)): the daemon has no --alert-url"), "\(bench.message)")
    }

    @Test func aRetrainWithNoNewInputsTrainsNothingAndTheMonitorSaysSo() async throws {
        let bench = try MonitorBench(execution: true)
        try bench.repository.commit([
            "features.yaml": """
                apiVersion: cairn/v1
                kind: FeaturePipeline
                metadata: {name: features}
                spec:
                  stages:
                    - {name: make, command: [python3, make.py, features.csv], outs: [features.csv]}

                """,
            "training.yaml": """
                apiVersion: cairn/v1
                kind: TrainingSchedule
                metadata: {name: churn-weekly}
                spec:
                  model: churn
                  features: features
                  command: [python3, train.py, features.csv, model.json, metrics.json]
                  outputs: {model: model.json, metrics: metrics.json}

                """,
            "model.yaml": MonitorBench.modelYAML(production: nil),
            "make.py": "import sys\nopen(sys.argv[1], 'w').write('x\\n1\\n2\\n')\n",
            "train.py": "import sys\nopen(sys.argv[2], 'w').write('{}')\nopen(sys.argv[3], 'w').write('{\"auc\": 0.8}')\n",
        ], message: "features and a training")
        var (_, settled) = try await bench.engine.reconcileUntilSettled(timeout: .seconds(60))
        #expect(settled)
        let trained = try bench.store.runs(of: MonitorBench.schedule, limit: 10)
        try #require(trained.count == 1 && trained[0].state == .succeeded, "\(trained.map(\.state))")
        // Under a loaded machine the run's end can reach the engine after the settle check: ask
        // for the schedule again until the pass that registers the version has run.
        for _ in 0..<50 where try bench.store.version("churn", 1) == nil {
            try bench.store.request(MonitorBench.schedule)
            try await bench.pass()
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(try bench.store.version("churn", 1) != nil)

        try bench.repository.commit(["model.yaml": MonitorBench.modelYAML(production: 1), "deployment.yaml": MonitorBench.deploymentYAML,
                                     "monitor.yaml": MonitorBench.monitorYAML("{metric: accuracy, below: 0.7, window: 1m, aggregate: last, action: retrain}"),
                                     "serve.py": "print('serving')\n"],
                                    message: "serve churn@1, and watch it")
        (_, settled) = try await bench.engine.reconcileUntilSettled(timeout: .seconds(60))
        #expect(settled)
        #expect(try bench.status(MonitorBench.deployment).serving == 1)

        // Accuracy drops: the monitor asks churn-weekly to retrain, and it has nothing new to train on.
        bench.clock.advance(by: 30)
        bench.push([0.5])
        (_, settled) = try await bench.engine.reconcileUntilSettled(timeout: .seconds(60))
        #expect(settled)
        let schedule = try bench.status(MonitorBench.schedule)
        #expect(schedule.reason == "NoNewInputs", "\(schedule.primaryMessage)")
        #expect(schedule.primaryMessage.contains("there are no new inputs"), "\(schedule.primaryMessage)")
        #expect(try bench.store.triggers(of: MonitorBench.schedule).isEmpty)
        #expect(try bench.store.runs(of: MonitorBench.schedule, limit: 10).map(\.id) == trained.map(\.id))
        #expect(try bench.store.version("churn", 2) == nil)

        // The monitor's next evaluation finds the request answered.
        try await bench.tick()
        #expect(bench.reason == "Firing", "\(bench.message)")
        #expect(bench.message.contains("retrain asked at"), "\(bench.message)")
        #expect(bench.message.contains("no new inputs: TrainingSchedule/churn-weekly had trained these already"), "\(bench.message)")
    }

    // MARK: Samples

    @Test func onlyTheServingVersionsSamplesCountAndANewServingVersionEmptiesTheWindows() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 5m, minSamples: 5, action: alert}")
        try await bench.pass()
        var counts = MetricIngestCounts()
        counts.otherVersion = 6
        #expect(bench.push([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], version: 2) == .ingested(counts))
        try await bench.tick()
        #expect(bench.reason == "InsufficientData", "\(bench.message)")

        #expect(bench.push([0.5, 0.5, 0.5], version: 3) == .ingested(MetricIngestCounts().withAccepted(3)))
        #expect(bench.push([0.5, 0.5]) == .ingested(MetricIngestCounts().withAccepted(2)))
        try await bench.tick()
        #expect(bench.reason == "Firing", "\(bench.message)")

        // Version 2 serves now: the windows start empty, and the firing threshold holds.
        try bench.repository.commit(["model.yaml": MonitorBench.modelYAML(production: 2)], message: "serve 2")
        try await bench.tick()
        #expect(try bench.status(MonitorBench.deployment).serving == 2)
        #expect(bench.reason == "Firing", "\(bench.message)")
        #expect(bench.message.contains("watching churn@2"), "\(bench.message)")
        // Four good samples of 2 (too few to resolve), and good ones of 3 that do not count.
        #expect(bench.push([0.9, 0.9, 0.9, 0.9], version: 2) == .ingested(MetricIngestCounts().withAccepted(4)))
        var other = MetricIngestCounts()
        other.otherVersion = 3
        #expect(bench.push([0.9, 0.9, 0.9], version: 3) == .ingested(other))
        try await bench.tick()
        #expect(bench.reason == "Firing", "\(bench.message)")
        // The fifth: the window of version 2 resolves it.
        try await bench.tick(samples: [0.9], version: 2)
        #expect(bench.reason == "Healthy", "\(bench.message)")
    }

    /// A candidate proposed for production that a newer version overtook there (by hand) is
    /// dropped, said once, and not waited for any more.
    @Test func aCandidateANewerVersionOvertookIsDropped() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 1m, action: alert}")
        try await bench.pass()
        // As the loop leaves it: churn@2 proposed for production, which churn@3 holds now.
        let kept = #"{"deployment":"churn-prod","rules":{},"candidate":{"model":"churn","version":2,"proposed":["production"],"serves":false}}"#
        var changes = PassChanges()
        changes.effects = [.remember(MonitorBench.monitor, Data(kept.utf8))]
        try bench.store.apply(changes)
        try await bench.tick()
        let dropped = try bench.status().primaryMessage
        #expect(dropped.contains("churn@2 was not promoted: production holds churn@3 now"), "\(dropped)")
        try await bench.tick()
        let after = try bench.status().primaryMessage
        #expect(!after.contains("churn@2"), "\(after)")
        #expect(try bench.status().reason != "AwaitingMerge")
    }

    @Test func samplesForADeploymentNoMonitorWatchesAreRefused() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, action: alert}")
        // Before the first evaluation nothing is watched.
        #expect(bench.push([0.5]) == .unknownDeployment(known: []))
        try await bench.pass()
        #expect(bench.push([0.5], deployment: "nope") == .unknownDeployment(known: ["churn-prod"]))
        var ignored = MetricIngestCounts()
        ignored.ignored = 1
        #expect(bench.push([0.5], metric: "latency") == .ingested(ignored))
        #expect(bench.push([0.5]) == .ingested(MetricIngestCounts().withAccepted(1)))
    }

    // MARK: Sources

    @Test func aPrometheusThatIsDownMakesTheMonitorSourceUnavailableAndKeepsItsState() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, window: 5m, aggregate: last, for: 10m, action: alert}",
                                     source: #"{prometheus: {url: "http://127.0.0.1:9", queries: {accuracy: "avg(churn_accuracy)"}}}"#,
                                     prometheus: true)
        bench.prometheus.answer(.value(0.5))
        try await bench.pass()
        let since = bench.clock.now
        #expect(bench.reason == "Pending", "\(bench.message)")
        #expect(bench.prometheus.asked.first == "avg(churn_accuracy)")

        bench.prometheus.answer(.down("connection refused"))
        for _ in 1...4 {
            try await bench.tick()
            let status = try bench.status()
            #expect(status.reason == "SourceUnavailable" && status.ready == .false, "\(status.primaryMessage)")
            #expect(status.primaryMessage.contains("source: Prometheus query for accuracy failed: connection refused"), "\(status.primaryMessage)")
            #expect(status.primaryMessage.contains("pending since \(MonitorBench.time(since))"), "\(status.primaryMessage)")
        }
        #expect(try bench.monitorSubjects().last == "Monitor/churn-quality: SourceUnavailable")

        // An empty answer is no error: evaluating again, on what the window holds.
        bench.prometheus.answer(.empty)
        try await bench.tick()
        #expect(bench.reason == "Pending", "\(bench.message)")
        #expect(bench.message.contains("pending since \(MonitorBench.time(since))"), "\(bench.message)")

        // Back: it fires at since + 10m, the outage neither cleared nor restarted the count.
        bench.prometheus.answer(.value(0.5))
        while bench.clock.now.timeIntervalSince(since) < 570 {
            try await bench.tick()
            #expect(bench.reason == "Pending", "\(bench.message)")
        }
        try await bench.tick()
        #expect(bench.reason == "Firing", "\(bench.message)")
        #expect(bench.message.contains("firing since \(MonitorBench.time(since.addingTimeInterval(600)))"), "\(bench.message)")
    }

    @Test func aDaemonThatCannotQueryPrometheusSaysSo() async throws {
        let bench = try MonitorBench(threshold: "{metric: accuracy, below: 0.7, action: alert}",
                                     source: #"{prometheus: {url: "http://127.0.0.1:9", queries: {accuracy: "up"}}}"#)
        try await bench.pass()
        let status = try bench.status()
        #expect(status.reason == "SourceUnavailable" && status.ready == .false)
        #expect(status.primaryMessage.contains("this daemon cannot query Prometheus"), "\(status.primaryMessage)")
    }
}

extension MetricIngestCounts {
    func withAccepted(_ count: Int) -> MetricIngestCounts {
        var counts = self
        counts.accepted = count
        return counts
    }
}
