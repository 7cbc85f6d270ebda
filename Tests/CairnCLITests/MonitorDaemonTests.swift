import CairnTestSupport
import Foundation
import Testing

/// `cairn run --listen` with a Monitor: samples POSTed to /api/v1/metrics, the alert state kept
/// across a SIGTERM and a restart, as Prometheus restores `for` state.
@Suite(.serialized) struct MonitorDaemonTests {
    /// A threshold pending when the daemon is stopped is pending since the same moment after a
    /// restart (once the refilled window says so again), and fires `for` after that moment.
    @Test func aThresholdPendingAtSIGTERMKeepsItsStartAcrossARestart() async throws {
        let root = try TemporaryDirectory("cairn-monitor-restart")
        let repository = root.appending("churn"), state = root.appending("state")
        #expect(try await cairnAsync(["init", repository.path]).status == 0)
        let arguments = ["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1s"]
        var daemon = try await HTTPDaemon(arguments, log: root.appending("log1"))
        #expect(await until(180) { await daemon.get("/api/v1/models/churn")?.status == 200 }, "\(daemon.output)")
        // churn@1 is registered: serve it on a free port; one threshold, quick, that only alerts.
        try edit(repository, "deployment.yaml", "  stage: production\n", "  version: 1\n")
        try edit(repository, "deployment.yaml", "      port: 8601\n", "")
        try edit(repository, "monitor.yaml", "interval: 30s", "interval: 1s")
        try edit(repository, "monitor.yaml", """
                - {metric: accuracy, below: 0.7, window: 1h, for: 10m, minSamples: 50, cooldown: 6h, action: retrain}
                - {metric: error_rate, above: 0.05, window: 5m, for: 5m, keepFiringFor: 2m, action: rollback}
            """, """
                - {metric: accuracy, below: 0.7, window: 10m, for: 12s, minSamples: 3, action: alert}
            """)
        _ = try git(repository, ["-c", "user.name=Dana", "-c", "user.email=dana@example.com", "commit", "-qam", "Serve churn@1; watch its accuracy closely"])
        #expect(await until(120) { await daemon.get("/api/v1/status/ModelDeployment/churn-prod")?.body.contains("\"Serving\"") == true },
                "\(daemon.output)")
        #expect(await until(30) {
            let reason = await monitorReason(daemon)
            return reason == "Healthy" || reason == "InsufficientData"
        }, "\(daemon.output)")
        let bad = samples(0.5, count: 5, version: "1")
        let accepted = try #require(await daemon.post("/api/v1/metrics", headers: [], body: bad))
        #expect(accepted.status == 202 && accepted.body.contains("\"accepted\":5"), "\(accepted.body)")
        let pending = await until(15) { await monitorReason(daemon) == "Pending" }
        let pendingMessage = await monitorMessage(daemon)
        #expect(pending, "\(pendingMessage)")
        let pendingSince = try #require(since(in: await monitorMessage(daemon), "pending since "))
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")

        daemon = try await HTTPDaemon(arguments, log: root.appending("log2"))
        #expect(await until(60) { await daemon.get("/readyz")?.status == 200 }, "\(daemon.output)")
        // The windows are empty after a restart: the state holds, neither cleared nor fired.
        let restarted = await monitorMessage(daemon)
        #expect(await monitorReason(daemon) == "Pending", "\(restarted)")
        #expect(since(in: restarted, "pending since ") == pendingSince, "\(restarted)")
        let again = try #require(await daemon.post("/api/v1/metrics", headers: [], body: bad))
        #expect(again.status == 202, "\(again.body)")
        let fired = await until(30) { await monitorReason(daemon) == "Firing" }
        let firing = await monitorMessage(daemon)
        #expect(fired, "\(firing)")
        let firedAt = try #require(since(in: firing, "firing since "))
        #expect(firedAt.timeIntervalSince(pendingSince) >= 12, "fired \(firedAt) for a pending since \(pendingSince)")
        // No --alert-url: the status says so rather than pretend.
        #expect(firing.contains("no alert sent"), "\(firing)")
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
        let log = try git(repository, ["log", "--format=%s", "cairn/status", "--", "Monitor/churn-quality.yaml"])
        #expect(log.hasPrefix("Monitor/churn-quality: Firing\nMonitor/churn-quality: Pending\n"), "\(log)")
    }

    /// A push for a deployment no Monitor watches: 404, naming the ones that are watched.
    @Test func samplesForAnUnknownDeploymentAreRefused() async throws {
        let root = try TemporaryDirectory("cairn-monitor-unknown")
        let repository = root.appending("churn"), state = root.appending("state")
        #expect(try await cairnAsync(["init", repository.path]).status == 0)
        let daemon = try await HTTPDaemon(["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1s"],
                                          log: root.appending("log"))
        #expect(await until(60) { await monitorReason(daemon) != nil }, "\(daemon.output)")
        let body = "{\"deployment\": \"churn-staging\", \"samples\": [{\"metric\": \"accuracy\", \"value\": 0.5}]}"
        let reply = try #require(await daemon.post("/api/v1/metrics", headers: [], body: body))
        #expect(reply.status == 404 && reply.body.contains("churn-staging") && reply.body.contains("churn-prod"), "\(reply.body)")
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
    }
}

private func samples(_ value: Double, count: Int, version: String) -> String {
    let one = "{\"metric\": \"accuracy\", \"value\": \(value), \"labels\": {\"version\": \"\(version)\"}}"
    return "{\"deployment\": \"churn-prod\", \"samples\": [" + Array(repeating: one, count: count).joined(separator: ", ") + "]}"
}

private func monitorStatus(_ daemon: HTTPDaemon) async -> [String: Any]? {
    guard let reply = await daemon.get("/api/v1/status/Monitor/churn-quality"), reply.status == 200,
          let list = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [[String: Any]] else { return nil }
    return list.first
}

private func monitorReason(_ daemon: HTTPDaemon) async -> String? {
    guard let status = await monitorStatus(daemon), let conditions = status["conditions"] as? [[String: Any]] else { return nil }
    return conditions.first { $0["type"] as? String == "Ready" }?["reason"] as? String
}

private func monitorMessage(_ daemon: HTTPDaemon) async -> String {
    guard let status = await monitorStatus(daemon), let conditions = status["conditions"] as? [[String: Any]] else { return "" }
    return conditions.first { $0["type"] as? String == "Ready" }?["message"] as? String ?? ""
}

/// The time after `marker` in a status message (`pending since 2026-11-27T10:00:00Z`).
private func since(in message: String, _ marker: String) -> Date? {
    guard let range = message.range(of: marker) else { return nil }
    let text = String(message[range.upperBound...].prefix(20))
    return ISO8601DateFormatter().date(from: text)
}

private func edit(_ repository: URL, _ path: String, _ old: String, _ new: String) throws {
    let url = repository.appendingPathComponent(path)
    let text = try String(contentsOf: url, encoding: .utf8)
    guard text.contains(old) else { throw EditFailed(path: path, old: old) }
    try text.replacingOccurrences(of: old, with: new).write(to: url, atomically: true, encoding: .utf8)
}

private struct EditFailed: Error, CustomStringConvertible {
    let path: String, old: String
    var description: String { "\(path) does not contain \(old)" }
}

private func git(_ repository: URL, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
    process.arguments = ["-C", repository.path] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
