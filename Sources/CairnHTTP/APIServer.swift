public import CairnCore
public import CairnEngine
public import CairnManifests
public import Foundation
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// What the status API answers with: the same text the CLI prints with `--format json`,
/// made by the CLI's own code (the composition root passes it in), so the two cannot drift.
public struct APIContent: Sendable {
    /// Every object's status: `cairn status --format json`.
    public var status: @Sendable () throws -> String
    /// One object's: `cairn status Kind/name --format json`; nil when the object is not known.
    public var object: @Sendable (ObjectRef) throws -> String?
    /// The registry: `cairn models --format json`.
    public var models: @Sendable () throws -> String
    /// One model's newest `limit` versions: `cairn models NAME --format json`; nil when it has none.
    public var model: @Sendable (_ name: String, _ limit: Int) throws -> String?
    /// Where `POST /api/v1/metrics` puts what it accepts: the Monitor controller's windows;
    /// nil: the endpoint answers 404.
    public var metrics: (any MetricSink)?

    public init(status: @escaping @Sendable () throws -> String, object: @escaping @Sendable (ObjectRef) throws -> String?,
                models: @escaping @Sendable () throws -> String, model: @escaping @Sendable (String, Int) throws -> String?,
                metrics: (any MetricSink)? = nil) {
        self.status = status
        self.object = object
        self.models = models
        self.model = model
        self.metrics = metrics
    }
}

public struct APIConfiguration: Sendable {
    public var address: ListenAddress
    /// The shared secret webhooks prove they know; nil: the webhook endpoints answer 404.
    public var webhookSecret: [UInt8]?
    /// The most a webhook's body may hold (GitHub caps its own at 25 MB; a push is far less).
    public var webhookBodyLimit: Int
    /// How long a webhook's body may take to arrive in full (then 408): a sender trickling
    /// bytes would otherwise hold a connection, and a graceful stop, for as long as it likes.
    public var webhookBodyDeadline: Duration
    /// The branch Cairn tracks: a push to it triggers a pass.
    public var branch: String
    /// The most a `POST /api/v1/metrics` body may hold (10,000 samples with a few labels each fit).
    public var metricsBodyLimit: Int
    /// How long a metrics body may take to arrive in full (then 408), as for webhooks.
    public var metricsBodyDeadline: Duration
    /// What time it is, for a pushed sample's timestamp bounds and its arrival (tests fix it).
    public var clock: @Sendable () -> Date

    public init(address: ListenAddress, webhookSecret: [UInt8]? = nil, webhookBodyLimit: Int = 1 << 20,
                webhookBodyDeadline: Duration = .seconds(10), branch: String, metricsBodyLimit: Int = 4 << 20,
                metricsBodyDeadline: Duration = .seconds(10), clock: @escaping @Sendable () -> Date = { Date() }) {
        self.address = address
        self.webhookSecret = webhookSecret
        self.webhookBodyLimit = webhookBodyLimit
        self.webhookBodyDeadline = webhookBodyDeadline
        self.branch = branch
        self.metricsBodyLimit = metricsBodyLimit
        self.metricsBodyDeadline = metricsBodyDeadline
        self.clock = clock
    }
}

/// The daemon's HTTP face. `service` goes into the daemon's service group; `passEnded` is
/// told of every pass (readiness, and the cached status body); `listening()` returns the port
/// once bound, or throws `ListenFailure`, which the engine waits for before its first pass.
public final class APIServer: Sendable {
    public let configuration: APIConfiguration
    let engine: Engine
    let triggers: Triggers
    let content: APIContent
    let metrics: DaemonMetrics
    let logger: Logger
    let verifier: WebhookVerifier?
    let state = Mutex(State())

    struct State {
        /// Passes that ended, and whether one has succeeded (readiness).
        var passes = 0
        var failedPasses = 0
        var ready = false
        /// The group is stopping this service: `/readyz` says so, so a load balancer stops sending.
        var stopping = false
        /// Bumped after each pass that may have changed a status; the cached body is for one generation.
        var generation = 0
        var statusBody: (generation: Int, body: ByteBuffer)?
        var listening: Result<Int, ListenFailure>?
        var waiters: [CheckedContinuation<Int, any Error>] = []
        /// Rejected webhooks are logged at most every 10 s, with how many were not logged.
        var webhookRefusals = LogLimiter()
        /// And refused metric pushes, apart: a sender's flood of bad batches does not hide a forged webhook.
        var metricRefusals = LogLimiter()
    }

    /// One log line per 10 s at most, counting the lines it held back.
    struct LogLimiter {
        var last: ContinuousClock.Instant?
        var held = 0

        /// Nil: do not log now. Otherwise log, saying how many were not logged since the last line.
        mutating func admit(at now: ContinuousClock.Instant) -> Int? {
            if let last, now - last < .seconds(10) {
                held += 1
                return nil
            }
            last = now
            defer { held = 0 }
            return held
        }
    }

    public init(configuration: APIConfiguration, engine: Engine, triggers: Triggers, content: APIContent, metrics: DaemonMetrics,
                logger: Logger) {
        self.configuration = configuration
        self.engine = engine
        self.triggers = triggers
        self.content = content
        self.metrics = metrics
        self.logger = logger
        verifier = configuration.webhookSecret.map { WebhookVerifier(secret: $0, branch: configuration.branch) }
    }

    /// The service to run in the daemon's group: stops gracefully (no new connections, the
    /// requests in flight answered) when the group shuts down.
    public var service: some Service { APIService(server: self) }

    /// The port it listens on, once it does; throws `ListenFailure` when it cannot.
    public func listening() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let known: Result<Int, ListenFailure>? = state.withLock { state in
                if state.listening == nil { state.waiters.append(continuation) }
                return state.listening
            }
            if let known { continuation.resume(with: known.mapError { $0 }) }
        }
    }

    func bound(_ result: Result<Int, ListenFailure>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard state.listening == nil else { return [] }
            state.listening = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 }) }
    }

    /// Tell it of every pass (nil: the pass failed).
    public func passEnded(_ outcome: PassOutcome?) {
        state.withLock { state in
            state.passes += 1
            if outcome == nil { state.failedPasses += 1 } else { state.ready = true }
            if outcome?.ran != false { state.generation += 1 }
        }
    }

    /// The status of every object, as JSON: encoded once per pass that changed something,
    /// since a daemon with 10,000 objects is scraped far more often than it changes.
    func statusBody() throws -> ByteBuffer {
        let (generation, cached) = state.withLock { ($0.generation, $0.statusBody) }
        if let cached, cached.generation == generation { return cached.body }
        // With the newline `cairn status --format json` ends with.
        let body = ByteBuffer(string: try content.status() + "\n")
        state.withLock { state in
            if state.generation == generation { state.statusBody = (generation, body) }
        }
        return body
    }

    /// Logs a rejected webhook, at most once per 10 s (a flood of forged ones is one line a
    /// while, with their count), never with the body or the signature.
    func logRejection(_ provider: WebhookProvider, _ result: String, _ reason: String) {
        let now = ContinuousClock.now
        guard let skipped = state.withLock({ $0.webhookRefusals.admit(at: now) }) else { return }
        logger.warning("webhook refused", metadata: [
            "cairn.webhook": "\(provider.rawValue)", "cairn.result": "\(result)", "cairn.reason": "\(reason)",
            "cairn.notLogged": "\(skipped)"])
    }
}

/// Why the daemon could not listen where it was told to.
public struct ListenFailure: Error, CustomStringConvertible {
    public let address: ListenAddress
    let underlying: String
    let inUse: Bool

    init(address: ListenAddress, error: (any Error)?) {
        self.address = address
        if let error = error as? IOError {
            inUse = error.errnoCode == EADDRINUSE
            underlying = String(cString: strerror(error.errnoCode))
        } else {
            underlying = error.map { "\($0)" } ?? "the server stopped before it listened"
            inUse = underlying.contains("in use")
        }
    }

    public var description: String {
        inUse ? "cannot listen on \(address): the address is already in use (another cairn run, or another server?); "
            + "give --listen another port, or stop what holds it"
            : "cannot listen on \(address): \(underlying)"
    }
}

/// Runs the Hummingbird application and reports how binding went.
struct APIService: Service {
    let server: APIServer

    func run() async throws {
        let address = server.configuration.address
        let application = Application(
            router: server.router(),
            // An idle keep-alive connection is closed after a minute, and at most 256 are open at
            // once (more wait in the kernel's backlog): whoever can reach the port cannot use up
            // the file descriptors the daemon's runs and git need.
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "cairn",
                                                    availableConnectionsDelegate: .maximum(256, logger: server.logger)),
            onServerRunning: { [server] channel in
                let port = channel.localAddress?.port ?? address.port
                server.logger.info("listening", metadata: ["cairn.http": "\(ListenAddress(host: address.host, port: port))"])
                server.bound(.success(port))
            },
            // Hummingbird's own lines (a request it could not parse, say) at warning and above.
            logger: server.logger.withLevel(.warning))
        do {
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: { [server] in
                server.state.withLock { $0.stopping = true }
            }
        } catch {
            // Bound before: not a listening problem, and the engine is not waiting on it.
            if server.state.withLock({ $0.listening }) != nil { throw error }
            let failure = ListenFailure(address: address, error: error)
            server.bound(.failure(failure))
            throw failure
        }
        server.bound(.failure(ListenFailure(address: address, error: nil)))
    }
}

extension Logger {
    func withLevel(_ level: Logger.Level) -> Logger {
        var copy = self
        copy.logLevel = max(level, logLevel)
        return copy
    }
}
