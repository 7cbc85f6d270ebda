import AsyncHTTPClient
import CairnCore
import CairnEngine
import CairnHTTP
import CairnManifests
import CairnRun
import CairnStore
import Foundation
import Logging
import MonitorController
import NIOCore
import ServiceLifecycle

/// The demo's last act: the feedback loop. A feedback job reports the served model's accuracy
/// to the daemon's HTTP face (`POST /api/v1/metrics`) and collects labelled customers; the
/// accuracy drops, Monitor/churn-quality goes pending and then fires, its retrain trains on
/// the new rows, the new version passes its gate, and Cairn proposes it on a branch (one
/// stage at a time, as the Model's strictOrder asks) until the demo has merged it into
/// production and it serves.
final class DemoLoop {
    let engine: Engine
    let script: DemoScript
    let git: GitCommandLine
    let traffic: DemoTraffic
    let hub: MetricHub
    let feedback: URL
    let step: (String, () throws -> Void) async throws -> Void

    static let monitor = ObjectRef(.monitor, "churn-quality")
    private var lastSeen: String?
    private var printedVersions: Set<Int> = [1, 2, 3, 4]

    init(engine: Engine, script: DemoScript, git: GitCommandLine, traffic: DemoTraffic, hub: MetricHub, feedback: URL,
         step: @escaping (String, () throws -> Void) async throws -> Void) {
        self.engine = engine
        self.script = script
        self.git = git
        self.traffic = traffic
        self.hub = hub
        self.feedback = feedback
        self.step = step
    }

    func run() async throws {
        let start = Date()
        print("\n— The feedback loop: degradation → firing → retrain → gate → proposal → merge → deployment —\n")
        let labels = feedback.appendingPathComponent("labels.csv")
        try Data("customer,tenure_months,monthly_spend,support_calls,churned\n".utf8).write(to: labels)
        try await step("connect the feedback: ingest also appends the labelled customers the serving side collects (\(labels.path), "
                       + "under the demo's --data-root); none yet, so raw.csv is byte for byte the same and nothing retrains") {
            try script.edit("features.yaml", "--rows, \"3000\", --out, data/raw.csv]",
                            "--rows, \"3000\", --out, data/raw.csv, --feedback, \"\(labels.path)\"]",
                            "Ingest the labelled customers the serving side collects")
        }
        try await step("serve.py reads models in format 2 as well: churn@3 is deployed again with the new code, blue/green") {
            try script.edit("serve.py", "READS_FORMATS = (1,)", "READS_FORMATS = (1, 2)", "Serve models in format 2 as well")
        }
        try await step("watch churn closely for the demo: accuracy over 1m below 0.7 for 3s, from 5 samples, evaluated every second") {
            try script.edit("monitor.yaml", "interval: 30s", "interval: 1s", "Evaluate the quality monitor every second")
            try script.edit("monitor.yaml", "{metric: accuracy, below: 0.7, window: 1h, for: 10m, minSamples: 50, cooldown: 6h, action: retrain}",
                            "{metric: accuracy, below: 0.7, window: 1m, for: 3s, minSamples: 5, cooldown: 6h, action: retrain}",
                            "Watch churn's accuracy closely")
        }
        try await wait(for: ["InsufficientData", "Healthy"], timeout: 30)

        // The daemon's HTTP face, as `cairn run --listen 127.0.0.1:0` serves it.
        let api = try await DemoAPI.start(engine: engine, hub: hub)
        try await report(api, version: 3, accuracy: 0.86, count: 10, note: "the feedback job reports churn@3's accuracy: healthy")
        try await wait(for: ["Healthy"], timeout: 10)

        print("• the customers change: the feedback job collects 2000 labelled customers and churn@3's accuracy drops")
        try collectFeedback(into: labels, rows: 2000)
        try await report(api, version: 3, accuracy: 0.5, count: 20, note: "churn@3's accuracy now (the window's mean over the last minute falls to 0.62)")
        try await wait(for: ["Pending"], timeout: 10)
        try await wait(for: ["Firing", "Retraining"], timeout: 15)
        try await wait(for: ["PromotionProposed"], timeout: 120)
        try show(["log", "-1", "--format=%h %an: %s%n%n%b", "cairn/proposals/churn-promote-1"])
        try show(["diff", "main", "cairn/proposals/churn-promote-1"])

        try await step("squash-merge cairn/proposals/churn-promote-1 (as a person would): churn@5 goes to staging first, as strictOrder asks") {
            try script.take("model.yaml", from: "cairn/proposals/churn-promote-1", "Promote churn@5 to staging (squash-merged cairn/proposals/churn-promote-1)")
        }
        try await wait(for: ["PromotionProposed"], timeout: 30)
        try show(["log", "-1", "--format=%h %an: %s%n%n%b", "cairn/proposals/churn-promote-2"])
        let (_, tally) = try await traffic.during {
            try await step("squash-merge cairn/proposals/churn-promote-2, whose plan says acceptable: churn@5 goes to production, blue/green, "
                           + "while a client calls the model") {
                try script.take("model.yaml", from: "cairn/proposals/churn-promote-2",
                                "Promote churn@5 to production (squash-merged cairn/proposals/churn-promote-2)")
            }
        }
        print("    \(tally.summary)")
        try await report(api, version: 5, accuracy: 0.9, count: 10, note: "the feedback job reports churn@5's accuracy")
        try await wait(for: ["Healthy"], timeout: 15)
        try show(["log", "--format=%h %s", "-12", "cairn/status", "--", "Monitor/churn-quality.yaml"])
        print("\n$ git show cairn/status:ModelVersion/churn/5.yaml | grep -E '^  (trigger|reason)'")
        let version = try git.run(["show", "cairn/status:ModelVersion/churn/5.yaml"])
        print(version.split(separator: "\n").filter { $0.hasPrefix("  trigger") || $0.hasPrefix("  reason") }.joined(separator: "\n"))
        print(String(format: "The loop took %.0f s, from the first degraded sample to churn@5 serving, with two merges by a person in between.",
                     Date().timeIntervalSince(start)))
        await api.stop()
    }

    /// Passes until Monitor/churn-quality's reason is one of `reasons`, printing each new status.
    private func wait(for reasons: Set<String>, timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            _ = try await engine.reconcileUntilSettled(timeout: .seconds(300))
            let status = try engine.store.object(Self.monitor)
            if let status, status.primaryMessage != lastSeen {
                lastSeen = status.primaryMessage
                print("    Monitor/churn-quality: \(status.reason): \(status.primaryMessage)")
                for version in try engine.store.versions(of: "churn") where !printedVersions.contains(version.version) {
                    printedVersions.insert(version.version)
                    if version.version > 4 {
                        print("    registered \(version.name) (trigger \(version.lineage.trigger)): \(ModelText.metrics(version.metrics)); gate \(version.gate.summary)")
                    }
                }
            }
            if let status, reasons.contains(status.reason) { return }
            guard Date() < deadline else {
                throw CairnExit.unreadable("the demo waited \(Int(timeout)) s for Monitor/churn-quality to be \(reasons.sorted().joined(separator: " or ")); "
                                           + "it is \(status?.reason ?? "unknown"): \(status?.primaryMessage ?? "")")
            }
            try await Task.sleep(for: .milliseconds(400))
        }
    }


    /// What the feedback job would POST, sent for real, with the daemon's answer.
    private func report(_ api: DemoAPI, version: Int, accuracy: Double, count: Int, note: String) async throws {
        // A little spread around the figure, as real measurements have.
        let samples = (0..<count).map { index in
            "{\"metric\": \"accuracy\", \"value\": \(String(format: "%.3f", accuracy + Double(index % 3 - 1) * 0.01)), \"labels\": {\"version\": \"\(version)\"}}"
        }
        let body = "{\"deployment\": \"churn-prod\", \"samples\": [" + samples.joined(separator: ", ") + "]}"
        print("• \(note):")
        print("    $ curl -s -X POST 127.0.0.1:\(api.port)/api/v1/metrics -d '{\"deployment\": \"churn-prod\", \"samples\": [\(samples[0]), … \(count) in all]}'")
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(api.port)/api/v1/metrics")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let answer = String(buffer: try await response.body.collect(upTo: 1 << 16))
        print("    \(response.status.code) \(answer.trimmingCharacters(in: .whitespacesAndNewlines))")
        guard response.status == .accepted else {
            throw CairnExit.unreadable("the daemon refused the demo's samples: HTTP \(response.status.code) \(answer)")
        }
    }

    /// The feedback job's labelled customers, appended as the serving side would (seeded, so
    /// the demo retrains the same version every time).
    private func collectFeedback(into labels: URL, rows: Int) throws {
        let temporary = feedback.appendingPathComponent("collected.csv")
        let generate = Command("python3", [script.root.appendingPathComponent("pipelines/ingest.py").path, "--rows", "\(rows)", "--seed", "11",
                                           "--out", temporary.path], workingDirectory: script.root)
        let outcome = try generate.runSynchronously()
        guard outcome.succeeded else { throw CairnExit.unreadable("the demo's feedback job failed: \(outcome.standardError.text)") }
        // Python's csv module ends lines with \r\n, one Character in Swift.
        let collected = try String(contentsOf: temporary, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        let handle = try FileHandle(forWritingTo: labels)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((collected.joined(separator: "\n") + "\n").utf8))
        try handle.close()
        try FileManager.default.removeItem(at: temporary)
        print("    \(labels.lastPathComponent) now holds \(collected.count) labelled customers")
    }

    private func show(_ arguments: [String]) throws {
        print("\n$ git \(arguments.map { $0.contains(" ") || $0.contains("%") ? "'\($0)'" : $0 }.joined(separator: " "))")
        print(try git.run(arguments), terminator: "")
    }
}

/// The daemon's HTTP face, started for the demo on a free loopback port.
struct DemoAPI {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(engine: Engine, hub: MetricHub) async throws -> DemoAPI {
        var content = APIContent.reading(engine.store)
        content.metrics = hub
        let logger = Logger(label: "cairn.demo.http")
        let server = APIServer(configuration: APIConfiguration(address: ListenAddress(parsing: "127.0.0.1:0")!, branch: "main"),
                               engine: engine, triggers: Triggers(), content: content, metrics: DaemonMetrics(), logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: server.service)], logger: logger))
        let task = Task { try await group.run() }
        let port = try await server.listening()
        print("    (the daemon's HTTP face listens on 127.0.0.1:\(port), as `cairn run --listen` serves it)")
        return DemoAPI(port: port, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
