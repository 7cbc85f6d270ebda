public import Foundation
public import CairnCore
import Synchronization
public import Logging
public import ServiceLifecycle
public import UnixSignals

/// Why the engine should look now. Triggers say *when* to look, never *what* to do: every
/// pass compares the whole desired state with the observed one.
public enum Trigger: String, Sendable {
    case start, interval, requeue, manual, jobFinished, webhook, monitor
}

/// The engine's inbox. Any part of the daemon may send; a burst collapses into one pending
/// trigger (the stream keeps only the newest), and each is numbered as it is sent, so the
/// engine passes over one sent before its last pass started (that pass read the branch after
/// it): 10,000 webhooks cost a pass or two.
public struct Triggers: Sendable {
    public struct Sent: Sendable {
        public let trigger: Trigger
        /// Counts up from 1 in the order triggers were sent.
        public let number: UInt64
    }

    public let stream: AsyncStream<Sent>
    private let continuation: AsyncStream<Sent>.Continuation
    private let counter = Counter()

    private final class Counter: Sendable {
        let value = Mutex<UInt64>(0)
    }

    public init() {
        (stream, continuation) = AsyncStream.makeStream(of: Sent.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func send(_ trigger: Trigger) {
        // Numbered and yielded under one lock, so the stream's newest is the highest number.
        counter.value.withLock { number in
            number += 1
            continuation.yield(Sent(trigger: trigger, number: number))
        }
    }

    /// The number of the last trigger sent.
    public var latest: UInt64 { counter.value.withLock { $0 } }

    public func finish() {
        continuation.finish()
    }
}

/// The engine loop: one pass at a time, started by triggers, never by polling. After each
/// pass it sets one timer for the next object that is due (a requeue or a backoff). On
/// graceful shutdown (SIGTERM, SIGINT) it finishes the pass in flight and returns.
public struct EngineService: Service {
    let engine: Engine
    let triggers: Triggers
    let logger: Logger
    /// The interval the watcher looks at; a failing remote backs off from here up to 5 minutes.
    let interval: Duration
    let onPass: @Sendable (PassOutcome?) -> Void
    /// Told after each pass that wrote something, when status is pushed.
    let pushes: Triggers?
    /// How long a trigger waits for the rest of its burst before the pass starts: a storm
    /// of webhooks sent over a few milliseconds then costs one pass (and one more for the
    /// trigger that arrives during it), not one per gap the loop happens to find.
    let coalescing: Duration
    /// After a pass a webhook started found nothing new (or failed), the least time before the
    /// next webhook starts one: a storm of deliveries that lasts seconds (a forge
    /// redelivering, a script, a replayed capture under fresh ids) would otherwise cost a
    /// pass (a fetch, for a remote) every `coalescing`. A push that brings a commit is
    /// followed by a pass at once, however close behind the one before it comes.
    let webhookSpacing: Duration
    /// Awaited before the first pass: what must be up first (the HTTP listener, so that a
    /// port in use stops the daemon before it does anything). A throw ends the service.
    let startAfter: @Sendable () async throws -> Void
    /// Told as each pass starts, with what started it.
    let onPassStart: @Sendable (Trigger) -> Void

    public init(engine: Engine, triggers: Triggers, interval: Duration, logger: Logger, pushes: Triggers? = nil,
                coalescing: Duration = .milliseconds(10), webhookSpacing: Duration = .seconds(1), startAfter: @escaping @Sendable () async throws -> Void = {},
                onPassStart: @escaping @Sendable (Trigger) -> Void = { _ in },
                onPass: @escaping @Sendable (PassOutcome?) -> Void = { _ in }) {
        self.engine = engine
        self.triggers = triggers
        self.interval = interval
        self.logger = logger
        self.pushes = pushes
        self.coalescing = coalescing
        self.webhookSpacing = webhookSpacing
        self.startAfter = startAfter
        self.onPassStart = onPassStart
        self.onPass = onPass
    }

    public func run() async throws {
        var failures = 0
        var lastError = ""
        var retryAt = Date.distantPast
        var timer: Task<Void, Never>?
        var idleWebhookPass: ContinuousClock.Instant?
        defer { timer?.cancel() }
        try await startAfter()
        // The services (and the group's SIGTERM/SIGINT handlers) are up: from here a signal stops cleanly.
        logger.info("started")
        triggers.send(.start)
        // Triggers sent before the last pass started: it looked after them.
        var covered: UInt64 = 0
        for await sent in triggers.stream.cancelOnGracefulShutdown() {
            if sent.number <= covered { continue }
            let trigger = sent.trigger
            // While a failing remote backs off, the watcher's ticks wait; anything else goes.
            if trigger == .interval, Date() < retryAt, (try? engine.store.hasRequests()) != true { continue }
            timer?.cancel()
            if trigger != .start { try? await Task.sleep(for: coalescing) }
            if trigger == .webhook, let last = idleWebhookPass, ContinuousClock.now < last + webhookSpacing {
                // The last webhook found nothing new: deliveries that arrive meanwhile collapse
                // into the one pending trigger.
                _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(until: last + webhookSpacing) }
            }
            covered = triggers.latest
            var next: Date?
            onPassStart(trigger)
            let started = ContinuousClock.now
            do {
                let outcome = try await engine.reconcileOnce(push: pushes == nil)
                if trigger == .webhook { idleWebhookPass = outcome.ran ? nil : started }
                engine.metrics.pass(trigger: trigger.rawValue, result: outcome.ran ? "ran" : "idle",
                                    duration: outcome.ran ? ContinuousClock.now - started : nil)
                engine.metrics.objects(outcome)
                if failures > 0 { logger.notice("recovered", metadata: ["cairn.commit": "\(outcome.commit.short)"]) }
                failures = 0
                retryAt = .distantPast
                if outcome.ran {
                    logger.info("pass", metadata: [
                        "cairn.commit": "\(outcome.commit.short)", "cairn.trigger": "\(trigger.rawValue)", "cairn.objects": "\(outcome.objects)",
                        "cairn.changed": "\(outcome.changed.count)", "cairn.stalled": "\(outcome.stalled.count)",
                        "cairn.notImplemented": "\(outcome.notImplemented)"])
                }
                next = outcome.nextDue
                if outcome.ran { pushes?.send(trigger) }
                onPass(outcome)
            } catch {
                if trigger == .webhook { idleWebhookPass = started }
                engine.metrics.pass(trigger: trigger.rawValue, result: "failed", duration: ContinuousClock.now - started)
                failures += 1
                let period = interval.seconds
                let wait = Backoff(base: min(period, 2), maximum: max(period, 300)).delay(afterFailures: failures)
                retryAt = Date().addingTimeInterval(wait)
                next = retryAt
                // The same failure again is logged at 1, 2, 4, 8… failures, not at every retry.
                let message = "\(error)"
                let level: Logger.Level = message != lastError || failures & (failures - 1) == 0 ? .error : .debug
                lastError = message
                logger.log(level: level, "pass failed; keeping the last known state", metadata: [
                    "cairn.error": "\(message)", "cairn.failures": "\(failures)", "cairn.retry": "\(String(format: "%.1f", wait))s"])
                onPass(nil)
            }
            if let next {
                timer = Task { [triggers] in
                    let delay = max(0, next.timeIntervalSinceNow)
                    guard (try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))) != nil else { return }
                    triggers.send(.requeue)
                }
            }
        }
    }
}

/// Pushes the status branch and notes to the remote after passes that wrote something; a
/// push that fails (the remote is down, or refuses) is retried with backoff without holding
/// up the passes. A burst of passes costs one push.
public struct StatusPushService: Service {
    let engine: Engine
    let pushes: Triggers
    let logger: Logger

    public init(engine: Engine, pushes: Triggers, logger: Logger) {
        self.engine = engine
        self.pushes = pushes
        self.logger = logger
    }

    public func run() async throws {
        var failures = 0
        var retry: Task<Void, Never>?
        defer { retry?.cancel() }
        for await _ in pushes.stream.cancelOnGracefulShutdown() {
            retry?.cancel()
            do {
                try await engine.pushStatus()
                if failures > 0 { logger.notice("push recovered") }
                failures = 0
            } catch {
                failures += 1
                let wait = Backoff(base: 2, maximum: 300).delay(afterFailures: failures)
                logger.error("push failed; status stays committed locally and is pushed later", metadata: [
                    "cairn.error": "\(error)", "cairn.failures": "\(failures)", "cairn.retry": "\(String(format: "%.1f", wait))s"])
                retry = Task { [pushes] in
                    guard (try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))) != nil else { return }
                    pushes.send(.requeue)
                }
            }
        }
        // Shutting down: the engine has finished its last pass; push what it wrote.
        do {
            try await engine.pushStatus()
        } catch {
            logger.error("push failed at shutdown; the next start pushes it", metadata: ["cairn.error": "\(error)"])
        }
    }
}

/// Turns each run an executor finished into a pass for its object (`Trigger.jobFinished`):
/// controllers never wait on a job, its end brings them back.
public struct RunCompletionService: Service {
    let engine: Engine
    let triggers: Triggers

    public init(engine: Engine, triggers: Triggers) {
        self.engine = engine
        self.triggers = triggers
    }

    public func run() async throws {
        guard engine.execution != nil else { return }
        for await _ in engine.runEndings.cancelOnGracefulShutdown() {
            triggers.send(.jobFinished)
        }
    }
}

/// Says when to look at the branch: every interval. (A webhook adds pushes as they happen.)
/// An unchanged tip costs the engine one ref read, so a tick is cheap.
public struct WatcherService: Service {
    let interval: Duration
    let triggers: Triggers

    public init(interval: Duration, triggers: Triggers) {
        self.interval = interval
        self.triggers = triggers
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            let slept: Void? = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard slept != nil, !Task.isCancelled else { return }
            triggers.send(.interval)
        }
    }
}

/// `cairn reconcile Kind/name` queues the object in the store and sends SIGUSR1 to the daemon
/// holding the state directory's lock; this turns the signal into a trigger.
/// Make it before the daemon publishes its pid: until the handler is installed, SIGUSR1
/// would end the process.
public struct ManualRequestService: Service {
    let triggers: Triggers
    let signals: UnixSignalsSequence

    public init(triggers: Triggers) async {
        self.triggers = triggers
        signals = await UnixSignalsSequence(trapping: .sigusr1)
    }

    public func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            triggers.send(.manual)
        }
    }
}
