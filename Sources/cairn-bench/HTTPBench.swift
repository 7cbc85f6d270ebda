import ArgumentParser
import AsyncHTTPClient
import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnHTTP
import Crypto
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// Issue 14's figures: how soon a verified webhook starts the pass that handles the new
/// commit, and what the daemon's HTTP face sustains with 10,000 objects. Everything is real
/// and in this process, composed as `cairn run --listen` composes it: a real engine over a
/// real git repository, the real `APIServer` and `EngineService` in one `ServiceGroup`, real
/// HTTP on 127.0.0.1 through AsyncHTTPClient (and wrk when it is on PATH).
struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Time webhook → pass start, and measure /healthz, /api/v1/status and /metrics with 10,000 objects.",
        discussion: """
        Runs the daemon's HTTP face and engine loop in this process, on 127.0.0.1 (a free port), \
        over generated repositories, and measures:
          webhook      over a repository of 5 objects, --iterations times: a commit changing one \
        manifest (untimed), then a GitHub push signed with HMAC-SHA256 (X-Hub-Signature-256); from \
        just before the request is sent until the pass it triggers starts (target p99 < 50 ms), and \
        the HTTP round trip alone. Once on one keep-alive connection (as a client that reuses it), \
        once with a new connection per delivery (as a forge delivers). Each pass ends before the next \
        delivery. Then --large-iterations deliveries with --objects objects loaded.
          load         with --objects objects (the manifests benchmark's fixture; the first pass \
        loads them, and its time is printed): requests per second that /healthz and /api/v1/status \
        sustain for --duration seconds, by wrk (-t2 -c32, when on PATH) and always by an in-process \
        AsyncHTTPClient loop with --concurrency requests in flight; p50/p99 latency, and the body size.
          metrics      --scrapes sequential scrapes of /metrics with the objects loaded: p50/p99 and bytes.
        The machine is shared: wrk, the in-process client and the server share its cores.

        Example:
          cairn-bench http --iterations 200 --objects 10000 --duration 10
        """)

    @Option(help: "Webhook deliveries timed over the small repository, per connection kind.")
    var iterations: Int = 200

    @Option(help: "Webhook deliveries timed with --objects objects loaded (each pass then reconciles a commit among them).")
    var largeIterations: Int = 20

    @Option(help: "Objects for the load and the scrapes (a multiple of 5: the manifests fixture's groups of five kinds).")
    var objects: Int = 10_000

    @Option(help: "Seconds of load per endpoint and per load generator.")
    var duration: Int = 10

    @Option(help: "Requests in flight at once from the in-process client.")
    var concurrency: Int = 32

    @Option(help: "Sequential scrapes of /metrics.")
    var scrapes: Int = 200

    @Flag(help: "Do not use wrk even when it is on PATH.")
    var noWrk = false

    @Option(help: "text or json.")
    var format: String = "text"

    func validate() throws {
        if iterations < 1 || largeIterations < 0 || objects < 5 || duration < 1 || concurrency < 1 || scrapes < 1 {
            throw ValidationError("--iterations, --duration, --concurrency and --scrapes must be at least 1, --objects at least 5")
        }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
    }

    func run() async throws {
        var report = HTTPReport(objects: objects, duration: duration, concurrency: concurrency)
        let client = HTTPClient.shared

        // Webhook → pass start over a small repository: what the daemon adds, not the pass.
        let small = try await BenchDaemon.start(groups: 1, name: "small")
        do {
            progress("http: daemon over \(small.objects) objects listens on 127.0.0.1:\(small.port); first pass \(milliseconds(small.firstPass))")
            report.webhookKeepAlive = try await small.timeWebhooks(client: client, count: iterations, freshConnection: false, label: "keep-alive")
            report.webhookFresh = try await small.timeWebhooks(client: client, count: iterations, freshConnection: true, label: "new connection")
        } catch {
            await small.stop()
            throw error
        }
        await small.stop()

        // The same daemon over the manifests fixture.
        progress("http: generating and committing \(objects) manifests")
        let large = try await BenchDaemon.start(groups: max(1, objects / 5), name: "large")
        do {
            report.loadedObjects = large.objects
            report.firstPass = large.firstPass
            report.generation = large.generation
            progress("http: first pass over \(large.objects) objects took \(milliseconds(large.firstPass)) (status commits included)")
            if largeIterations > 0 {
                report.webhookLarge = try await large.timeWebhooks(client: client, count: largeIterations, freshConnection: false,
                                                                   label: "\(large.objects) objects")
            }
            let base = "http://127.0.0.1:\(large.port)"
            report.statusBytes = try await large.get(client: client, "\(base)/api/v1/status").bytes
            report.healthBytes = try await large.get(client: client, "\(base)/healthz").bytes
            let passesBefore = large.events.passes
            for path in ["/healthz", "/api/v1/status"] {
                if !noWrk, let wrk = Wrk.path {
                    progress("http: wrk -t2 -c32 -d\(duration)s \(base)\(path)")
                    report.load.append(try Wrk.run(wrk, url: base + path, seconds: duration, path: path))
                    progress("http:   \(report.load.last!.summary)")
                }
                progress("http: in-process AsyncHTTPClient, \(concurrency) in flight for \(duration) s: \(base)\(path)")
                report.load.append(try await InProcessLoad.run(client: client, url: base + path, path: path, concurrency: concurrency,
                                                               seconds: duration))
                progress("http:   \(report.load.last!.summary)")
            }
            if noWrk {
                report.wrkNote = "wrk not used (--no-wrk)"
            } else if Wrk.path == nil {
                report.wrkNote = "wrk is not on PATH: only the in-process client measured (Scripts/bench-http installs it as root)"
            }
            report.passesDuringLoad = large.events.passes - passesBefore
            progress("http: \(scrapes) sequential scrapes of /metrics")
            var scrapeTimes: [Double] = []
            for _ in 0..<scrapes {
                let (seconds, bytes) = try await large.get(client: client, "\(base)/metrics")
                scrapeTimes.append(seconds)
                report.metricsBytes = bytes
            }
            report.metrics = Percentiles(scrapeTimes)
            progress("http:   /metrics p50 \(milliseconds(report.metrics.p50)), p99 \(milliseconds(report.metrics.p99)), \(report.metricsBytes) bytes")
        } catch {
            await large.stop()
            throw error
        }
        await large.stop()
        try report.emit(format: format)
    }
}

/// The daemon as `cairn run --listen 127.0.0.1:0` composes it, over a generated bare
/// repository in a temporary directory of its own: the HTTP service first (stopped last),
/// then the engine loop waiting for the port, in one service group.
final class BenchDaemon: @unchecked Sendable {
    static let secret = Array("cairn-bench-webhook-secret".utf8)

    let directory: URL
    let repository: Repository
    let engine: Engine
    let server: APIServer
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let events: PassEvents
    let port: Int
    let groups: Int
    var objects = 0
    /// Seconds the first pass took (onPassStart to onPass), and seconds to generate and commit the fixture.
    var firstPass = 0.0
    var generation = 0.0
    private var round = 0
    private let signature = Signature(name: "bench", email: "bench@localhost")

    private init(directory: URL, repository: Repository, engine: Engine, server: APIServer, group: ServiceGroup,
                 running: Task<Void, any Error>, events: PassEvents, port: Int, groups: Int) {
        self.directory = directory
        self.repository = repository
        self.engine = engine
        self.server = server
        self.group = group
        self.running = running
        self.events = events
        self.port = port
        self.groups = groups
    }

    /// `metrics`: what `POST /api/v1/metrics` feeds (nil: no Monitor support, as before).
    static func start(groups: Int, name: String, metrics sink: (any MetricSink)? = nil) async throws -> BenchDaemon {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-http-\(name)-\(UUID().uuidString.prefix(8))")
        do {
            let started = ContinuousClock.now
            let repository = try Repository.create(at: directory, bare: true)
            var files: [String: Data?] = [:]
            for index in 0..<groups {
                for (path, text) in Generated.group(index) { files[path] = Data(text.utf8) }
            }
            let commit = try repository.createCommit(parent: nil, changes: files, message: "generated",
                                                     author: Signature(name: "bench", email: "bench@localhost"))
            try repository.updateReference("refs/heads/main", to: commit, expected: nil, logMessage: "bench")
            let generation = (ContinuousClock.now - started).seconds

            // Warnings and errors only (a failed pass, a refused webhook), on stderr.
            var logger = Logger(label: "cairn-bench") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = .warning
            let metrics = DaemonMetrics()
            let engine = try Engine(source: .local(directory), stateDirectory: directory.appendingPathComponent("state"),
                                    configuration: ReconcilerConfiguration(), controllers: try Controllers.registry(), push: false,
                                    logger: logger, metrics: metrics.engine) { _, _ in }
            let triggers = Triggers()
            var content = APIContent.reading(engine.store)
            content.metrics = sink
            let server = APIServer(
                configuration: APIConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0), webhookSecret: secret,
                                                branch: engine.configuration.branch),
                engine: engine, triggers: triggers, content: content, metrics: metrics, logger: logger)
            let events = PassEvents()
            let service = EngineService(engine: engine, triggers: triggers, interval: .seconds(3600), logger: logger,
                                        startAfter: { _ = try await server.listening() },
                                        onPassStart: { trigger in events.post(.start(trigger, ContinuousClock.now)) },
                                        onPass: { outcome in
                                            server.passEnded(outcome)
                                            events.post(.end(ContinuousClock.now, outcome?.objects))
                                        })
            // As `cairn run` orders them: the HTTP face first, so it is stopped last.
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: server.service, serviceName: "http"), .init(service: service, serviceName: "engine"),
            ]
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [], logger: logger))
            let running = Task { try await group.run() }
            let port = try await server.listening()
            let daemon = BenchDaemon(directory: directory, repository: repository, engine: engine, server: server, group: group,
                                     running: running, events: events, port: port, groups: groups)
            daemon.generation = generation
            // The loop's first pass (trigger `start`): every object loaded and its status committed.
            let (start, end, count) = try await daemon.nextPass(trigger: .start, timeout: .seconds(1800), waiting: "the first pass")
            daemon.firstPass = (end - start).seconds
            daemon.objects = count ?? 0
            guard count != nil else { throw ValidationError("the first pass failed (the log above says why)") }
            return daemon
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Waits for the next pass started by `trigger` (others are skipped), then for its end.
    func nextPass(trigger: Trigger, timeout: Duration, waiting what: String)
        async throws -> (start: ContinuousClock.Instant, end: ContinuousClock.Instant, objects: Int?) {
        let deadline = ContinuousClock.now + timeout
        var started: ContinuousClock.Instant?
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let event = await events.next(timeout: min(left, .seconds(10))) else {
                if ContinuousClock.now < deadline {
                    progress("http:   still waiting for \(what)")
                    continue
                }
                throw ValidationError("\(what) did not come within \(timeout)")
            }
            switch event {
            case .start(let kind, let at):
                if kind == trigger { started = at }
            case .end(let at, let count):
                if let started { return (started, at, count) }
            }
        }
    }

    /// Commits a change to one manifest: the next pass has something to reconcile.
    func commitChange() throws {
        round += 1
        guard let tip = try repository.referenceTarget("refs/heads/main"),
              let (path, text) = Generated.group(round % groups).first(where: { $0.0.hasPrefix("training/") }) else {
            throw ValidationError("no training manifest to change")
        }
        var signature = signature
        signature.time = Date()
        let edited = text.replacingOccurrences(of: "max_iter: 200", with: "max_iter: \(1000 + round)")
        let commit = try repository.createCommit(parent: tip, changes: [path: Data(edited.utf8)], message: "tune \(round)", author: signature)
        try repository.updateReference("refs/heads/main", to: commit, expected: tip, logMessage: "bench")
    }

    /// A GitHub push delivery for the tracked branch's tip, signed as GitHub signs it.
    func pushDelivery(freshConnection: Bool) throws -> HTTPClientRequest {
        let tip = try repository.referenceTarget("refs/heads/main")?.hex ?? ""
        let body = Data("""
            {"ref":"refs/heads/\(engine.configuration.branch)","before":"\(String(repeating: "0", count: 40))","after":"\(tip)",\
            "repository":{"full_name":"bench/cairn"},"pusher":{"name":"bench"}}
            """.utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Self.secret))
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/webhooks/github")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-GitHub-Event", value: "push")
        request.headers.add(name: "X-GitHub-Delivery", value: UUID().uuidString)
        request.headers.add(name: "X-Hub-Signature-256", value: "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        request.headers.add(name: "User-Agent", value: "GitHub-Hookshot/cairn-bench")
        if freshConnection { request.headers.add(name: "Connection", value: "close") }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// `count` deliveries after one untimed warm-up: each a commit (untimed), then a signed
    /// push; from just before sending until the webhook's pass starts, and the round trip.
    func timeWebhooks(client: HTTPClient, count: Int, freshConnection: Bool, label: String) async throws -> WebhookFigures {
        progress("http: webhook → pass start, \(label): one warm-up, then \(count) deliveries over \(objects) objects")
        var figures = WebhookFigures(label: label, objects: objects, freshConnection: freshConnection)
        var toStart: [Double] = []
        var roundTrips: [Double] = []
        var passes: [Double] = []
        var lastProgress = ContinuousClock.now
        for index in 0...count {
            try commitChange()
            let request = try pushDelivery(freshConnection: freshConnection)
            let sent = ContinuousClock.now
            let response = try await client.execute(request, timeout: .seconds(10))
            let answer = try await response.body.collect(upTo: 1 << 16)
            let answered = ContinuousClock.now
            guard response.status == .accepted, String(buffer: answer).contains("triggered") else {
                throw ValidationError("the webhook was not accepted: HTTP \(response.status.code): \(String(buffer: answer))")
            }
            let (start, end, outcome) = try await nextPass(trigger: .webhook, timeout: .seconds(600), waiting: "the webhook's pass")
            guard outcome != nil else { throw ValidationError("the webhook's pass failed (the log above says why)") }
            if index == 0 { continue }
            toStart.append((start - sent).seconds)
            roundTrips.append((answered - sent).seconds)
            passes.append((end - start).seconds)
            if ContinuousClock.now - lastProgress > .seconds(5) || index == count {
                lastProgress = ContinuousClock.now
                progress("http:   \(label): \(index)/\(count), webhook → pass start p50 \(milliseconds(Percentiles(toStart).p50)), "
                         + "max \(milliseconds(toStart.max() ?? 0))")
            }
        }
        figures.toPassStart = Percentiles(toStart)
        figures.roundTrip = Percentiles(roundTrips)
        figures.pass = Percentiles(passes)
        return figures
    }

    /// One GET, its body read to the end: seconds and bytes; throws unless 200.
    func get(client: HTTPClient, _ url: String) async throws -> (seconds: Double, bytes: Int) {
        let started = ContinuousClock.now
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(60))
        var bytes = 0
        for try await chunk in response.body { bytes += chunk.readableBytes }
        guard response.status == .ok else { throw ValidationError("GET \(url): HTTP \(response.status.code)") }
        return ((ContinuousClock.now - started).seconds, bytes)
    }

    /// Stops as `cairn run` stops on SIGTERM: the group shuts down gracefully (the pass in
    /// flight ends, requests in flight are answered), then the fixture is removed.
    func stop() async {
        await group.triggerGracefulShutdown()
        do {
            try await running.value
        } catch {
            progress("http: the service group ended with \(error)")
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// What the engine loop reports, as it happens, with the instant of each: passes starting
/// (and why) and ending (with the count of objects, nil for a failed pass).
final class PassEvents: @unchecked Sendable {
    enum Event {
        case start(Trigger, ContinuousClock.Instant)
        case end(ContinuousClock.Instant, Int?)
    }

    private let lock = NSLock()
    private var queue: [Event] = []
    private var waiter: (id: Int, continuation: CheckedContinuation<Event?, Never>)?
    private var nextID = 0
    private var ended = 0

    /// Passes ended so far.
    var passes: Int { lock.withLock { ended } }

    func post(_ event: Event) {
        let waiting: CheckedContinuation<Event?, Never>? = lock.withLock {
            if case .end = event { ended += 1 }
            guard let waiter else {
                queue.append(event)
                return nil
            }
            self.waiter = nil
            return waiter.continuation
        }
        waiting?.resume(returning: event)
    }

    /// The next event, or nil when none came within `timeout`. One caller at a time.
    func next(timeout: Duration) async -> Event? {
        var timer: Task<Void, Never>?
        let event: Event? = await withCheckedContinuation { continuation in
            let id: Int? = lock.withLock {
                if !queue.isEmpty { return nil }
                nextID += 1
                waiter = (nextID, continuation)
                return nextID
            }
            guard let id else {
                continuation.resume(returning: lock.withLock { queue.removeFirst() })
                return
            }
            timer = Task { [self] in
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                let expired: CheckedContinuation<Event?, Never>? = lock.withLock {
                    guard let waiter, waiter.id == id else { return nil }
                    self.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(returning: nil)
            }
        }
        timer?.cancel()
        return event
    }
}

/// p50, p90, p99 and the maximum of a set of samples in seconds (nearest rank).
struct Percentiles: Encodable {
    var count = 0
    var p50 = 0.0
    var p90 = 0.0
    var p99 = 0.0
    var max = 0.0

    init() {}

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return }
        func rank(_ p: Double) -> Double { sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))] }
        count = sorted.count
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        max = sorted[sorted.count - 1]
    }
}

struct WebhookFigures: Encodable {
    var label: String
    var objects: Int
    var freshConnection: Bool
    /// From just before the request is sent until the pass it triggered starts (seconds).
    var toPassStart = Percentiles()
    /// The request's round trip alone (the answer is 202 once the trigger is sent).
    var roundTrip = Percentiles()
    /// The pass itself, for reference.
    var pass = Percentiles()
}

/// One endpoint under load from one load generator.
struct LoadFigures: Encodable {
    var path: String
    /// `wrk -t2 -c32` or `AsyncHTTPClient, 32 in flight`.
    var generator: String
    var seconds: Double
    var requests: Int
    var requestsPerSecond: Double
    var p50: Double
    var p99: Double
    var failures: Int
    var note: String?

    var summary: String {
        String(format: "%@ by %@: %.0f requests/s (%d in %.1f s), p50 %@, p99 %@, %d failed", path, generator, requestsPerSecond, requests,
               seconds, milliseconds(p50), milliseconds(p99), failures) + (note.map { "; \($0)" } ?? "")
    }
}

/// `concurrency` tasks calling `url` one request after another for `seconds`, through the
/// shared AsyncHTTPClient (which opens at most 8 connections to one host: the requests
/// beyond them wait in its pool, and their wait counts in their latency).
enum InProcessLoad {
    static func run(client: HTTPClient, url: String, path: String, concurrency: Int, seconds: Int) async throws -> LoadFigures {
        let done = PassCount()
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let results = await withTaskGroup(of: (latencies: [Double], failures: Int, example: String?).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var failures = 0
                    var example: String?
                    while ContinuousClock.now < deadline {
                        let sent = ContinuousClock.now
                        do {
                            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
                            for try await _ in response.body {}
                            if response.status != .ok {
                                failures += 1
                                example = example ?? "HTTP \(response.status.code)"
                            }
                        } catch {
                            failures += 1
                            example = example ?? "\(error)"
                        }
                        latencies.append((ContinuousClock.now - sent).seconds)
                        done.increment()
                    }
                    return (latencies, failures, example)
                }
            }
            group.addTask {
                while ContinuousClock.now + .seconds(5) < deadline {
                    try? await Task.sleep(for: .seconds(5))
                    progress("http:   \(done.value) requests so far")
                }
                return ([], 0, nil)
            }
            var all: [(latencies: [Double], failures: Int, example: String?)] = []
            for await result in group { all.append(result) }
            return all
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let latencies = results.flatMap(\.latencies)
        let percentiles = Percentiles(latencies)
        let failures = results.reduce(0) { $0 + $1.failures }
        return LoadFigures(path: path, generator: "AsyncHTTPClient (in process, \(concurrency) in flight, ≤ 8 connections)", seconds: elapsed,
                           requests: latencies.count, requestsPerSecond: Double(latencies.count) / elapsed, p50: percentiles.p50,
                           p99: percentiles.p99, failures: failures,
                           note: results.compactMap(\.example).first.map { "first failure: \($0)" })
    }
}

/// wrk, when installed: `wrk -t2 -c32 -dNs --latency URL`, its report parsed.
enum Wrk {
    static var path: String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/wrk" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func run(_ wrk: String, url: String, seconds: Int, path: String) throws -> LoadFigures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrk)
        process.arguments = ["-t2", "-c32", "-d\(seconds)s", "--latency", url]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0, let rps = value(after: "Requests/sec:", in: text).flatMap({ Double($0) }) else {
            throw ValidationError("wrk did not report requests/sec (exit \(process.terminationStatus)): \(text.suffix(600))")
        }
        // "  123456 requests in 10.00s, 12.34MB read"
        let totals = text.split(separator: "\n").first { $0.contains(" requests in ") }?.split(separator: " ") ?? []
        let requests = totals.first.flatMap { Int($0) } ?? 0
        let elapsed = totals.count > 3 ? duration(String(totals[3].trimmingCharacters(in: CharacterSet(charactersIn: ",")))) ?? Double(seconds)
            : Double(seconds)
        let non2xx = value(after: "Non-2xx or 3xx responses:", in: text).flatMap { Int($0) } ?? 0
        let socketErrors = text.split(separator: "\n").first { $0.contains("Socket errors:") }.map { String($0).trimmingCharacters(in: .whitespaces) }
        return LoadFigures(path: path, generator: "wrk -t2 -c32", seconds: elapsed, requests: requests, requestsPerSecond: rps,
                           p50: value(after: "50%", in: text).flatMap(duration) ?? 0, p99: value(after: "99%", in: text).flatMap(duration) ?? 0,
                           failures: non2xx, note: socketErrors)
    }

    /// The first word after `label` on its line.
    private static func value(after label: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(label) else { continue }
            return trimmed.dropFirst(label.count).split(separator: " ").first.map(String.init)
        }
        return nil
    }

    /// wrk's `262.00us`, `1.23ms`, `1.00s`, `2.00m` in seconds.
    static func duration(_ text: String) -> Double? {
        for (unit, scale) in [("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(unit) {
            return Double(text.dropLast(unit.count)).map { $0 * scale }
        }
        return nil
    }
}

struct HTTPReport: TextReport {
    var machine = Machine.current
    var objects: Int
    var duration: Int
    var concurrency: Int
    var webhookKeepAlive = WebhookFigures(label: "", objects: 0, freshConnection: false)
    var webhookFresh = WebhookFigures(label: "", objects: 0, freshConnection: true)
    var webhookLarge: WebhookFigures?
    var loadedObjects = 0
    var generation = 0.0
    var firstPass = 0.0
    var statusBytes = 0
    var healthBytes = 0
    var load: [LoadFigures] = []
    var wrkNote: String?
    var passesDuringLoad = 0
    var metrics = Percentiles()
    var metricsBytes = 0

    var text: String {
        var lines = ["HTTP face (issue 14), in process on 127.0.0.1 (\(machine.build); \(machine.cpu), \(machine.cores) cores)"]
        lines.append("webhook → pass start: a signed GitHub push, from just before sending until the pass starts (the engine waits 10 ms for the rest of a burst)")
        lines.append("  " + "deliveries".padding(toLength: 34, withPad: " ", startingAt: 0) + "    p50        p90        p99        max")
        for figures in [webhookKeepAlive, webhookFresh] + (webhookLarge.map { [$0] } ?? []) {
            let kind = "\(figures.toPassStart.count), \(figures.objects) objects, \(figures.freshConnection ? "new connection" : "keep-alive")"
            lines.append("  " + kind.padding(toLength: 34, withPad: " ", startingAt: 0) + row(figures.toPassStart)
                         + String(format: "   target p99 < 50 ms (%.0f%% of it)", figures.toPassStart.p99 / 0.05 * 100))
            lines.append("    " + "of which the HTTP round trip".padding(toLength: 32, withPad: " ", startingAt: 0) + row(figures.roundTrip))
            lines.append("    " + "the pass itself (reference)".padding(toLength: 32, withPad: " ", startingAt: 0) + row(figures.pass))
        }
        lines.append(String(format: "with %d objects: generated and committed in %.2f s; first pass (every object, status commits written) %@",
                            loadedObjects, generation, milliseconds(firstPass)))
        lines.append("  body: /api/v1/status \(statusBytes) bytes, /healthz \(healthBytes) bytes; \(duration) s of load per endpoint and generator")
        for figures in load {
            lines.append("  " + figures.path.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + String(format: "%9.0f req/s   p50 %@   p99 %@   %d requests, %d failed   by %@", figures.requestsPerSecond,
                                  pad(milliseconds(figures.p50)), pad(milliseconds(figures.p99)), figures.requests, figures.failures, figures.generator)
                         + (figures.note.map { " (\($0))" } ?? ""))
        }
        if let wrkNote { lines.append("  \(wrkNote)") }
        lines.append("  passes during the load: \(passesDuringLoad) (the status body is encoded once per pass that changed something)")
        lines.append("/metrics with \(loadedObjects) objects, \(metrics.count) sequential scrapes: p50 \(milliseconds(metrics.p50)), "
                     + "p99 \(milliseconds(metrics.p99)), max \(milliseconds(metrics.max)); \(metricsBytes) bytes")
        return lines.joined(separator: "\n")
    }

    private func row(_ figures: Percentiles) -> String {
        [figures.p50, figures.p90, figures.p99, figures.max].map { pad(milliseconds($0)) }.joined(separator: " ")
    }

    private func pad(_ text: String) -> String { String(repeating: " ", count: max(0, 10 - text.count)) + text }
}
