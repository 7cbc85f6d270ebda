import ArgumentParser
import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnManifests
import Foundation
import MonitorController
import NIOCore

/// Issue 15's figures: how many pushed samples a second the daemon's HTTP face takes into
/// the Monitors' windows, and what a tick of 1,000 Monitors costs to read.
struct MetricsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Push samples through POST /api/v1/metrics, and time a tick of 1,000 Monitors over filled windows.",
        discussion: """
        Measures, in this process:
          push   the daemon as `cairn run --listen` composes it (a real engine over a small repository, \
        the real APIServer), with a real MetricHub that one Monitor of churn-prod watches (3 \
        thresholds: accuracy mean 5m, latency_seconds p95 5m, errors max 1m; version 3 serving); \
        --concurrency tasks POST batches of --batch samples (half with an RFC 3339 timestamp, \
        every one labelled version 3) through AsyncHTTPClient on 127.0.0.1 for --duration seconds: \
        samples/s accepted (target 50,000), p50/p99 request latency, and this process's resident \
        memory before and after (client and server together).
          tick   --monitors hub registrations of 3 thresholds each (one deployment each), every \
        window filled with --samples-per-window samples spread over it; then --ticks ticks, each \
        reading all the windows (as the controller does at each evaluation), the clock a tenth of \
        a second later each tick (so the windows stay full and their old edges move): p50/p99 of a whole tick. Re-registering every Monitor (which the \
        controller also does each tick) is timed apart.

        Example:
          cairn-bench metrics --duration 5 --batch 1000 --concurrency 8
        """)

    @Option(help: "Seconds of pushing.")
    var duration: Int = 5

    @Option(help: "Samples per request.")
    var batch: Int = 1000

    @Option(help: "Requests in flight at once (AsyncHTTPClient opens at most 8 connections to a host).")
    var concurrency: Int = 8

    @Option(help: "Monitors (hub registrations of 3 thresholds each) for the tick.")
    var monitors: Int = 1000

    @Option(help: "Samples put in each window before the ticks.")
    var samplesPerWindow: Int = 1200

    @Option(help: "Ticks timed.")
    var ticks: Int = 100

    @Option(help: "text or json.")
    var format: String = "text"

    func validate() throws {
        if duration < 1 || batch < 1 || batch > 10_000 || concurrency < 1 || monitors < 1 || samplesPerWindow < 1 || ticks < 1 {
            throw ValidationError("every option must be at least 1, and --batch at most 10000")
        }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
    }

    func run() async throws {
        var report = MetricsReport(batch: batch, concurrency: concurrency, monitors: monitors, samplesPerWindow: samplesPerWindow)
        report.push = try await push()
        report.tick = try tick()
        progress("metrics: a tick of \(monitors) Monitors through the controller, \(ticks) times")
        report.controllerTick = try await MonitorTick(monitors: monitors, samplesPerWindow: samplesPerWindow, ticks: ticks).run()
        try report.emit(format: format)
    }

    /// Three thresholds, as one Monitor's manifest writes them.
    static let thresholds: [MonitorSpec.Threshold] = {
        let yaml = """
            apiVersion: cairn/v1
            kind: Monitor
            metadata: {name: quality}
            spec:
              deployment: churn-prod
              thresholds:
                - {metric: accuracy, below: 0.8, window: 5m, aggregate: mean, action: retrain}
                - {metric: latency_seconds, above: 0.5, window: 5m, aggregate: p95, action: alert}
                - {metric: errors, above: 10, window: 1m, aggregate: max, action: rollback}
              source: {push: {}}
            """
        guard case .monitor(let spec)? = ManifestParser.parse(Data(yaml.utf8), file: "bench.yaml").manifests.first?.spec else {
            fatalError("the benchmark's Monitor manifest does not parse")
        }
        return spec.thresholds
    }()

    // MARK: Push

    func push() async throws -> PushFigures {
        let hub = MetricHub()
        let daemon = try await BenchDaemon.start(groups: 1, name: "metrics", metrics: hub)
        let client = HTTPClient.shared
        do {
            // The controller renews its registration every interval; the run is far shorter than its lifetime.
            hub.watch(monitor: "quality", deployment: "churn-prod", thresholds: Self.thresholds, serving: 3, interval: 30, now: Date())
            let url = "http://127.0.0.1:\(daemon.port)/api/v1/metrics"
            let bodies = (0..<16).map { ByteBuffer(string: Self.body(batch: batch, seed: $0, around: Date())) }
            progress("metrics: \(batch)-sample batches of \(bodies[0].readableBytes) bytes, \(concurrency) in flight for \(duration) s, to \(url)")
            // Warm-up: connections, the first allocations of each path.
            for body in bodies.prefix(concurrency) { _ = try await post(client: client, url: url, body: body) }
            let before = Self.residentKiB()
            let done = PassCount()
            let started = ContinuousClock.now
            let deadline = started + .seconds(duration)
            let results = try await withThrowingTaskGroup(of: (latencies: [Double], accepted: Int).self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var latencies: [Double] = [], accepted = 0, index = worker
                        while ContinuousClock.now < deadline {
                            let sent = ContinuousClock.now
                            accepted += try await post(client: client, url: url, body: bodies[index % bodies.count])
                            latencies.append((ContinuousClock.now - sent).seconds)
                            index += concurrency
                            done.increment()
                        }
                        return (latencies, accepted)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = (ContinuousClock.now - started).seconds
            let after = Self.residentKiB()
            let latencies = results.flatMap(\.latencies)
            let accepted = results.reduce(0) { $0 + $1.accepted }
            var figures = PushFigures(bodyBytes: bodies[0].readableBytes, seconds: elapsed, requests: latencies.count, samples: accepted,
                                      samplesPerSecond: Double(accepted) / elapsed, latency: Percentiles(latencies))
            figures.residentBeforeKiB = before
            figures.residentAfterKiB = after
            progress("metrics:   \(Int(figures.samplesPerSecond)) samples/s, p50 \(milliseconds(figures.latency.p50)), p99 \(milliseconds(figures.latency.p99))")
            await daemon.stop()
            return figures
        } catch {
            await daemon.stop()
            throw error
        }
    }

    /// One POST; the samples the hub accepted. Throws unless 202 with every sample accepted.
    func post(client: HTTPClient, url: String, body: ByteBuffer) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 16)
        let counts = try? JSONDecoder().decode(MetricIngestCounts.self, from: Data(answer.readableBytesView))
        guard response.status == .accepted, let counts, counts.accepted == batch else {
            throw ValidationError("POST /api/v1/metrics: HTTP \(response.status.code): \(String(buffer: answer))")
        }
        return counts.accepted
    }

    /// A batch as a serving process would send it: the three metrics in turn, every sample
    /// labelled with its version, half with an RFC 3339 timestamp in the last 30 s (the 1m window holds them all).
    static func body(batch: Int, seed: Int, around now: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SeededGenerator(seed: UInt64(seed + 1))
        let samples = (0..<batch).map { index -> String in
            let metric = ["accuracy", "latency_seconds", "errors"][index % 3]
            let value = index % 3 == 2 ? Double(Int.random(in: 0...20, using: &generator)) : Double.random(in: 0..<1, using: &generator)
            let time = index % 2 == 0 ? #","timestamp":"\#(formatter.string(from: now.addingTimeInterval(-Double(index % 30))))""# : ""
            return #"{"metric":"\#(metric)","value":\#(value)\#(time),"labels":{"version":"3","region":"eu-west-1"}}"#
        }
        return #"{"deployment":"churn-prod","samples":[\#(samples.joined(separator: ","))]}"#
    }

    static func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
    }

    // MARK: Tick

    func tick() throws -> TickFigures {
        let hub = MetricHub()
        let start = Date()
        let names = (0..<monitors).map { "deployment-\($0)" }
        progress("metrics: \(monitors) Monitors × \(Self.thresholds.count) thresholds, \(samplesPerWindow) samples in each window")
        for name in names {
            hub.watch(monitor: "quality-\(name)", deployment: name, thresholds: Self.thresholds, serving: 3, interval: 30, now: start)
        }
        var generator = SeededGenerator(seed: 15)
        let fillStarted = ContinuousClock.now
        var filled = 0
        for name in names {
            var samples: [MetricSample] = []
            samples.reserveCapacity(samplesPerWindow * Self.thresholds.count)
            for threshold in Self.thresholds {
                // Spread over the window, ending now: every bucket holds some.
                let window = threshold.window.seconds
                for index in 0..<samplesPerWindow {
                    let time = start.addingTimeInterval(-window * Double(samplesPerWindow - index) / Double(samplesPerWindow + 1))
                    samples.append(MetricSample(metric: threshold.metric, value: Double.random(in: 0..<1, using: &generator), time: time))
                }
            }
            guard case .ingested(let counts) = hub.ingest(deployment: name, samples: samples, receivedAt: start) else {
                throw ValidationError("\(name) is not watched")
            }
            filled += counts.accepted
        }
        let fill = (ContinuousClock.now - fillStarted).seconds
        progress("metrics:   filled \(filled) samples in \(String(format: "%.2f", fill)) s; timing \(ticks) ticks")
        let keys = Self.thresholds.map { MetricHub.WindowKey($0) }
        var tickTimes: [Double] = [], watchTimes: [Double] = []
        var read = 0
        // One untimed tick first, then the timed ones, a tenth of a second apart on the hub's
        // clock: the windows stay full (the 1m one would empty after a minute of ticks).
        for tick in 0...ticks {
            let now = start.addingTimeInterval(Double(tick) / 10)
            let started = ContinuousClock.now
            for name in names {
                for key in keys where hub.read(deployment: name, key: key, serving: 3, now: now).value != nil { read += 1 }
            }
            let readEnded = ContinuousClock.now
            for name in names {
                hub.watch(monitor: "quality-\(name)", deployment: name, thresholds: Self.thresholds, serving: 3, interval: 30, now: now)
            }
            if tick > 0 {
                tickTimes.append((readEnded - started).seconds)
                watchTimes.append((ContinuousClock.now - readEnded).seconds)
            }
        }
        guard read == (ticks + 1) * monitors * keys.count else {
            throw ValidationError("\(read) readings had a value; expected \((ticks + 1) * monitors * keys.count)")
        }
        return TickFigures(windows: monitors * keys.count, filledSamples: filled, fillSeconds: fill, read: Percentiles(tickTimes),
                           watch: Percentiles(watchTimes))
    }
}

/// A small deterministic generator (SplitMix64): the same batches every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct PushFigures: Encodable {
    var bodyBytes = 0
    var seconds = 0.0
    var requests = 0
    var samples = 0
    var samplesPerSecond = 0.0
    var latency = Percentiles()
    var residentBeforeKiB = 0
    var residentAfterKiB = 0
}

struct TickFigures: Encodable {
    var windows = 0
    var filledSamples = 0
    var fillSeconds = 0.0
    /// Reading every window once.
    var read = Percentiles()
    /// Re-registering every Monitor.
    var watch = Percentiles()
}

struct MetricsReport: TextReport {
    var machine = Machine.current
    var batch: Int
    var concurrency: Int
    var monitors: Int
    var samplesPerWindow: Int
    var push = PushFigures()
    var tick = TickFigures()
    /// A whole tick through the controller (`MonitorTick`).
    var controllerTick = Percentiles()

    var text: String {
        let growth = Double(push.residentAfterKiB - push.residentBeforeKiB) / 1024
        return [
            "Monitors' metrics (issue 15), in process on 127.0.0.1 (\(machine.build); \(machine.cpu), \(machine.cores) cores)",
            "POST /api/v1/metrics: \(batch)-sample batches (\(push.bodyBytes) bytes), \(concurrency) in flight, \(String(format: "%.1f", push.seconds)) s",
            String(format: "  %.0f samples/s accepted (target 50,000; %.0f%% of it), %d requests, %d samples", push.samplesPerSecond,
                   push.samplesPerSecond / 500, push.requests, push.samples),
            "  request latency p50 \(milliseconds(push.latency.p50)), p90 \(milliseconds(push.latency.p90)), p99 \(milliseconds(push.latency.p99)), "
                + "max \(milliseconds(push.latency.max))",
            String(format: "  resident memory (client and server, one process) %.1f MiB before, %.1f MiB after: %+.1f MiB",
                   Double(push.residentBeforeKiB) / 1024, Double(push.residentAfterKiB) / 1024, growth),
            "a tick of \(monitors) Monitors: \(tick.windows) windows (mean 5m, p95 5m, max 1m), \(samplesPerWindow) samples each "
                + "(\(tick.filledSamples) ingested in \(String(format: "%.2f", tick.fillSeconds)) s)",
            "  reading every window, \(tick.read.count) ticks: p50 \(milliseconds(tick.read.p50)), p99 \(milliseconds(tick.read.p99)), "
                + "max \(milliseconds(tick.read.max))",
            "  re-registering every Monitor: p50 \(milliseconds(tick.watch.p50)), p99 \(milliseconds(tick.watch.p99))",
            "  the controller's reconcile of every Monitor (memory in and out, windows registered and read, 3 thresholds "
                + "evaluated, the report), \(controllerTick.count) ticks: p50 \(milliseconds(controllerTick.p50)), "
                + "p99 \(milliseconds(controllerTick.p99)) (the store's transaction is left out: a steady tick changes no status)",
        ].joined(separator: "\n")
    }
}
