import AsyncHTTPClient
public import CoreMetrics
import Foundation
public import Logging
public import MonitorController
import NIOCore
public import ServiceLifecycle
import Synchronization

/// Delivers Monitor alerts to the daemon's `--alert-url`: `send` queues and returns at once;
/// `run()` (a service in the daemon's group) POSTs them as JSON one at a time, retrying with
/// exponential backoff. At most `capacity` wait; past that the oldest is dropped (and counted).
/// At graceful shutdown it keeps delivering what is queued for `policy.drain`, then stops.
///
/// `cairn_alerts_total{result}`: `delivered`, `failed` (given up on: a 4xx answer, every
/// attempt failed, or shutdown) and `dropped` (pushed out of a full queue).
public final class AlertSender: AlertSending, Service {
    public struct Policy: Sendable {
        /// Attempts per alert, the first included.
        public var attempts: Int
        /// The wait before the second attempt; each later wait doubles it (1, 2, 4, 8 s).
        public var baseDelay: Duration
        /// How long one attempt may take, answer included.
        public var attemptTimeout: Duration
        /// How long queued alerts are still delivered after graceful shutdown begins.
        public var drain: Duration

        public init(attempts: Int = 5, baseDelay: Duration = .seconds(1), attemptTimeout: Duration = .seconds(10), drain: Duration = .seconds(5)) {
            self.attempts = max(attempts, 1)
            self.baseDelay = baseDelay
            self.attemptTimeout = attemptTimeout
            self.drain = drain
        }
    }

    /// `host:port` of the receiver: what logs name (never the URL's user information).
    public let receiver: String
    public let policy: Policy
    public let capacity: Int
    private let target: OutboundTarget
    private let logger: Logger
    private let queue: AsyncStream<MonitorAlert>
    private let continuation: AsyncStream<MonitorAlert>.Continuation
    /// Dropped since the consumer last logged it.
    private let unloggedDrops = Atomic<Int>(0)
    private let drainDeadline = Mutex<ContinuousClock.Instant?>(nil)
    private let delivered: Counter
    private let failed: Counter
    private let dropped: Counter

    /// Throws ``AlertURLError`` when `url` is not an http or https URL with a host.
    public init(url: String, logger: Logger, policy: Policy = Policy(), capacity: Int = 1000,
                metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        do {
            target = try OutboundTarget(url, role: "--alert-url")
        } catch {
            throw AlertURLError(description: error.description)
        }
        receiver = target.host
        self.policy = policy
        let capacity = max(capacity, 1)
        self.capacity = capacity
        var logger = logger
        logger[metadataKey: "cairn.alertReceiver"] = "\(target.host)"
        self.logger = logger
        (queue, continuation) = AsyncStream.makeStream(of: MonitorAlert.self, bufferingPolicy: .bufferingNewest(capacity))
        delivered = Counter(label: "cairn_alerts_total", dimensions: [("result", "delivered")], factory: metrics)
        failed = Counter(label: "cairn_alerts_total", dimensions: [("result", "failed")], factory: metrics)
        dropped = Counter(label: "cairn_alerts_total", dimensions: [("result", "dropped")], factory: metrics)
        for counter in [delivered, failed, dropped] { counter.increment(by: 0) }
    }

    /// Queues the alert and returns at once: true, unless the sender has shut down.
    public func send(_ alert: MonitorAlert) -> Bool {
        switch continuation.yield(alert) {
        case .enqueued:
            return true
        case .dropped:
            unloggedDrops.add(1, ordering: .relaxed)
            dropped.increment()
            return true
        case .terminated:
            logger.warning("alert not sent: the daemon is shutting down", metadata: ["cairn.monitor": "\(alert.monitor)"])
            return false
        @unknown default:
            return false
        }
    }

    /// Delivers queued alerts until graceful shutdown, then what is left for `policy.drain`.
    /// Run it once (as a service in the daemon's group, listed before the engine so that it
    /// stops after the last pass).
    public func run() async throws {
        await withGracefulShutdownHandler {
            var abandoned = 0
            for await alert in queue {
                reportDrops()
                if let deadline = drainDeadline.withLock({ $0 }), ContinuousClock.now >= deadline {
                    abandoned += 1
                    continue
                }
                await deliver(alert)
            }
            reportDrops()
            if abandoned > 0 {
                failed.increment(by: Int64(abandoned))
                logger.error("alerts not delivered: the daemon stopped first", metadata: ["cairn.count": "\(abandoned)"])
            }
        } onGracefulShutdown: { [self] in
            drainDeadline.withLock { $0 = ContinuousClock.now + policy.drain }
            continuation.finish()
        }
    }

    private func reportDrops() {
        let count = unloggedDrops.exchange(0, ordering: .relaxed)
        guard count > 0 else { return }
        logger.warning("alerts dropped: more than \(capacity) were waiting for the receiver; the oldest went first",
                       metadata: ["cairn.count": "\(count)"])
    }

    private func deliver(_ alert: MonitorAlert) async {
        var logger = logger
        logger[metadataKey: "cairn.monitor"] = "\(alert.monitor)"
        logger[metadataKey: "cairn.alert"] = "\(alert.status)"
        let body: Data
        do {
            body = try Self.encoder.encode(alert)
        } catch {
            failed.increment()
            logger.error("alert not sent: it could not be encoded as JSON: \(error)")
            return
        }
        var delay = policy.baseDelay
        for attempt in 1...policy.attempts {
            let problem: String
            switch await post(body) {
            case .delivered:
                delivered.increment()
                logger.debug("alert delivered", metadata: ["cairn.attempt": "\(attempt)"])
                return
            case .refused(let status):
                failed.increment()
                logger.error("alert not delivered: the receiver answered HTTP \(status); not retried (fix the receiver or --alert-url)",
                             metadata: ["cairn.attempt": "\(attempt)"])
                return
            case .retry(let reason):
                problem = reason
            }
            if attempt == policy.attempts {
                failed.increment()
                logger.error("alert not delivered after \(attempt) attempts: \(problem)")
                return
            }
            if let deadline = drainDeadline.withLock({ $0 }), ContinuousClock.now + delay > deadline {
                failed.increment()
                logger.error("alert not delivered: \(problem); the daemon stopped before the next attempt",
                             metadata: ["cairn.attempt": "\(attempt)"])
                return
            }
            logger.warning("alert delivery failed: \(problem); retrying in \(seconds(delay))", metadata: ["cairn.attempt": "\(attempt)"])
            do {
                try await Task.sleep(for: delay)
            } catch {
                failed.increment()
                logger.error("alert not delivered: \(problem); cancelled before the next attempt")
                return
            }
            delay *= 2
        }
    }

    private enum Attempt {
        case delivered
        /// A 4xx other than 408 and 429 (or a 3xx left after redirects): retrying will not help.
        case refused(UInt)
        case retry(String)
    }

    private func post(_ body: Data) async -> Attempt {
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cairn")
        if let authorization = target.authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let answer = try await exchange(request, with: target, what: "the alert receiver at \(target.host)",
                                            timeout: policy.attemptTimeout, bodyLimit: 1 << 20)
            let code = answer.status.code
            switch code {
            case 200..<300: return .delivered
            case 408, 429, 500...: return .retry("the receiver answered HTTP \(code)")
            default: return .refused(code)
            }
        } catch {
            return .retry(error.description)
        }
    }

    /// ISO 8601 dates, sorted keys: what the receiver reads.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

/// `--alert-url` is not a URL the daemon can POST to.
public struct AlertURLError: Error, Sendable, CustomStringConvertible {
    public let description: String
}
