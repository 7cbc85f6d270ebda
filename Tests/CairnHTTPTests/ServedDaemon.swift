import AsyncHTTPClient
import CairnCore
import CairnEngine
import CairnHTTP
import CairnStore
import CairnTestSupport
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
@testable import CairnCLI

/// The daemon's HTTP face as `cairn run --listen 127.0.0.1:0` wires it (Run.swift): a real
/// engine over a real git repository, the real `APIServer` first in a service group and the
/// `EngineService` after it, its first pass waiting until the port is bound; served on a port
/// the system picks, and called over real HTTP with `HTTPClient.shared`.
final class ServedDaemon: Sendable {
    static let secret = "It's a Secret to Everybody"
    /// Two Models without runs: a repository the engine reconciles in milliseconds.
    static let manifests: [String: String?] = ["models/churn.yaml": model("churn"), "models/fraud.yaml": model("fraud")]

    static func model(_ name: String, stages: String = "[staging, production]") -> String {
        "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: \(name)}\nspec:\n  stages: \(stages)\n  assignments: {}\n"
    }

    let repository: GitFixture
    let state: TemporaryDirectory
    let engine: Engine
    let server: APIServer
    let triggers: Triggers
    /// What `APIContent.reading(store)` says now: the content the daemon serves.
    let content: APIContent
    let passes: PassLog
    /// The engine's first pass waits for this (after the port is bound) when made `gated`.
    let gate: Gate
    let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let stopped = Mutex(false)

    /// Starts one; `stop()` it (or use `with`, which does).
    /// `metrics`: what `POST /api/v1/metrics` feeds (nil: the daemon has no Monitor support);
    /// `clock`: the time the HTTP face takes it to be.
    static func start(secret: String? = ServedDaemon.secret, bodyLimit: Int = 1 << 20, bodyDeadline: Duration = .seconds(10),
                      gated: Bool = false, metrics sink: (any MetricSink)? = nil,
                      clock: @escaping @Sendable () -> Date = { Date() }) async throws -> ServedDaemon {
        let repository = try GitFixture()
        try repository.commit(manifests, message: "manifests")
        let state = try TemporaryDirectory("cairn-http-state")
        let logger = Logger(label: "cairn-http-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let metrics = DaemonMetrics()
        let engine = try Engine(source: .local(repository.url), stateDirectory: state.url, configuration: ReconcilerConfiguration(),
                                controllers: try ControllerRegistry(Controllers.all), push: false, logger: logger,
                                metrics: metrics.engine) { _, _ in }
        let triggers = Triggers()
        var content = APIContent.reading(engine.store)
        content.metrics = sink
        let server = APIServer(configuration: APIConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0),
                                                               webhookSecret: secret.map { Array($0.utf8) },
                                                               webhookBodyLimit: bodyLimit, webhookBodyDeadline: bodyDeadline,
                                                               branch: engine.configuration.branch, clock: clock),
                               engine: engine, triggers: triggers, content: content, metrics: metrics, logger: logger)
        let passes = PassLog()
        let gate = Gate()
        if !gated { gate.open() }
        let service = EngineService(engine: engine, triggers: triggers, interval: .seconds(3600), logger: logger,
                                    startAfter: { _ = try await server.listening(); await gate.wait() },
                                    onPassStart: { passes.started($0) },
                                    onPass: { outcome in
                                        server.passEnded(outcome)
                                        passes.ended(outcome)
                                    })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server.service, serviceName: "http"), .init(service: service, serviceName: "engine")],
            logger: logger))
        let running = Task { try await group.run() }
        let port: Int
        do {
            port = try await server.listening()
        } catch {
            gate.open()
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        return ServedDaemon(repository: repository, state: state, engine: engine, server: server, triggers: triggers, content: content,
                            passes: passes, gate: gate, port: port, group: group, running: running)
    }

    /// Runs `body` with a started daemon, and stops it gracefully afterwards, even when `body` throws.
    static func with(secret: String? = ServedDaemon.secret, bodyLimit: Int = 1 << 20, bodyDeadline: Duration = .seconds(10),
                     gated: Bool = false, metrics sink: (any MetricSink)? = nil, clock: @escaping @Sendable () -> Date = { Date() },
                     _ body: (ServedDaemon) async throws -> Void) async throws {
        let daemon = try await start(secret: secret, bodyLimit: bodyLimit, bodyDeadline: bodyDeadline, gated: gated, metrics: sink,
                                     clock: clock)
        do {
            try await body(daemon)
        } catch {
            try? await daemon.stop()
            throw error
        }
        try await daemon.stop()
    }

    private init(repository: GitFixture, state: TemporaryDirectory, engine: Engine, server: APIServer, triggers: Triggers,
                 content: APIContent, passes: PassLog, gate: Gate, port: Int, group: ServiceGroup, running: Task<Void, any Error>) {
        self.repository = repository
        self.state = state
        self.engine = engine
        self.server = server
        self.triggers = triggers
        self.content = content
        self.passes = passes
        self.gate = gate
        self.port = port
        self.group = group
        self.running = running
    }

    /// Graceful shutdown, as SIGTERM: the group's services stop in reverse order; returns
    /// once they have, throwing what the group threw.
    func stop() async throws {
        gate.open()
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        if first { await group.triggerGracefulShutdown() }
        try await running.value
    }

    // MARK: HTTP

    struct Answer: Sendable {
        let status: Int
        let contentType: String?
        let body: String

        /// The body as a JSON object of strings (the API's answers and errors).
        var fields: [String: String]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: String]
        }
    }

    /// One request; `host` "localhost" goes through connections of its own in the client's
    /// pool (keyed by host), so a probe does not queue behind other requests to 127.0.0.1.
    func request(_ path: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
                 host: String = "127.0.0.1", timeout: TimeAmount = .seconds(10)) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://\(host):\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = body }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), contentType: response.headers.first(name: "content-type"),
                      body: String(buffer: bytes))
    }

    func get(_ path: String, host: String = "127.0.0.1") async throws -> Answer {
        try await request(path, host: host)
    }

    /// POSTs `body` to `/api/v1/metrics` as JSON.
    func pushMetrics(_ body: String) async throws -> Answer {
        try await request("/api/v1/metrics", method: .POST, headers: [("content-type", "application/json")],
                          body: .bytes(ByteBuffer(string: body)))
    }

    /// POSTs `body` to `/api/v1/webhooks/{provider}` with `headers`.
    func webhook(_ provider: String, body: String, headers: [(String, String)]) async throws -> Answer {
        try await request("/api/v1/webhooks/\(provider)", method: .POST, headers: headers + [("content-type", "application/json")],
                          body: .bytes(ByteBuffer(string: body)))
    }

    // MARK: Waiting

    /// Polls `condition` every 20 ms until it holds; fails the test after `limit`.
    func eventually(_ what: String, within limit: Duration = .seconds(10),
                    _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what, limit: limit) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the first pass has ended.
    func firstPass() async throws {
        try await eventually("the first pass to end") { passes.ended >= 1 }
    }

    /// Waits until `count` passes have ended and none is in flight.
    func settled(atLeast count: Int) async throws {
        try await eventually("\(count) passes to end") { passes.ended >= count && passes.ended == passes.started.count }
    }

    /// Fails when a pass started by `trigger` starts within `window`, beyond the `count` there are.
    func expectNoPass(_ trigger: Trigger, beyond count: Int, within window: Duration = .milliseconds(300)) async throws {
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            if passes.count(trigger) > count { throw UnexpectedPass(trigger: trigger, count: passes.count(trigger)) }
            try await Task.sleep(for: .milliseconds(20))
        }
        if passes.count(trigger) > count { throw UnexpectedPass(trigger: trigger, count: passes.count(trigger)) }
    }

    /// Commits `files` to the tracked branch with git (not blocking a thread on it).
    func commit(_ files: [String: String?], message: String) async throws {
        try GitFixture.write(files, in: repository.url)
        let environment = GitFixture.environment(time: 1_800_000_000)
        try await runAsync("git", ["add", "-A"], in: repository.url, environment: environment)
        try await runAsync("git", ["commit", "-q", "-m", message], in: repository.url, environment: environment)
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let limit: Duration
    var description: String { "waited \(limit) for \(what)" }
}

struct UnexpectedPass: Error, CustomStringConvertible {
    let trigger: Trigger
    let count: Int
    var description: String { "a pass started by \(trigger.rawValue) started (\(count) now)" }
}

/// The passes the engine started (by trigger) and ended, as it reports them.
final class PassLog: Sendable {
    private let state = Mutex<(started: [Trigger], ended: Int, failed: Int)>(([], 0, 0))

    func started(_ trigger: Trigger) { state.withLock { $0.started.append(trigger) } }
    func ended(_ outcome: PassOutcome?) {
        state.withLock { state in
            state.ended += 1
            if outcome == nil { state.failed += 1 }
        }
    }

    var started: [Trigger] { state.withLock { $0.started } }
    var ended: Int { state.withLock { $0.ended } }
    var failed: Int { state.withLock { $0.failed } }
    func count(_ trigger: Trigger) -> Int { state.withLock { $0.started.count(where: { $0 == trigger }) } }
}

/// Closed until opened; `wait()` returns once it is open.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// How GitHub, Gitea and generic senders sign: HMAC-SHA256 of the exact body, in hex.
func signature(_ body: String, secret: String = ServedDaemon.secret) -> String {
    HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        .map { String(format: "%02x", $0) }.joined()
}

/// A push to `branch`, as a forge's body names it.
func pushBody(_ branch: String = "main") -> String {
    #"{"ref":"refs/heads/\#(branch)","after":"0123456789abcdef0123456789abcdef01234567"}"#
}

/// GitHub's headers for a push delivery; `signature` nil leaves the header out.
func gitHubHeaders(signature: String?, delivery: String = UUID().uuidString) -> [(String, String)] {
    var headers = [("x-github-event", "push"), ("x-github-delivery", delivery)]
    if let signature { headers.append(("x-hub-signature-256", signature)) }
    return headers
}
