import CairnHTTP
import CairnTestSupport
import Foundation
import Hummingbird
import Logging
import MonitorController
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// `AlertSender` against real receivers on 127.0.0.1: retried on 503, given up on 400, failing
/// in the background when nothing listens, with `send` returning at once and the queue bounded.
@Suite struct AlertSenderTests {
    static func alert(_ monitor: String = "churn-accuracy", value: Double = 0.61) -> MonitorAlert {
        MonitorAlert(status: "firing", monitor: monitor, deployment: "churn", model: "churn", version: 3, metric: "accuracy",
                     aggregate: "mean", threshold: "below 0.7", value: value, since: Date(timeIntervalSince1970: 1_700_000_000),
                     action: "retrain", summary: "churn-accuracy: mean accuracy 0.61 below 0.7 since 2023-11-14T22:13:20Z",
                     sourceCommit: "0123456789abcdef0123456789abcdef01234567")
    }

    /// A receiver answering `statuses` in turn (then 200), keeping every request.
    final class Receiver: Sendable {
        struct Request: Sendable {
            var body: Data
            var contentType: String?
            var userAgent: String?
        }

        let requests = Locked<[Request]>([])
        let statuses: [HTTPResponse.Status]

        init(statuses: [HTTPResponse.Status]) {
            self.statuses = statuses
        }

        var router: Router<BasicRequestContext> {
            let router = Router(context: BasicRequestContext.self)
            router.post("/hooks/alerts") { [self] request, _ in
                let body = try await request.body.collect(upTo: 1 << 20)
                let count = requests.withLock {
                    $0.append(Request(body: Data(body.readableBytesView), contentType: request.headers[.contentType],
                                      userAgent: request.headers[.userAgent]))
                    return $0.count
                }
                return Response(status: count <= statuses.count ? statuses[count - 1] : .ok)
            }
            return router
        }
    }

    /// Runs the sender as the daemon does, in a service group, until `body` returns.
    static func running(_ sender: AlertSender, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [sender], logger: Logger(label: "group", factory: { _ in SwiftLogNoOpLogHandler() })))
        let task = Task { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<400 where !condition() { try await Task.sleep(for: .milliseconds(25)) }
    }

    /// Quick retries; an attempt timeout far beyond any answer's, since beside the whole suite a
    /// loaded machine can hold a local answer for seconds, and a timed-out attempt is a retry
    /// the tests do not expect.
    static let fast = AlertSender.Policy(attempts: 5, baseDelay: .milliseconds(20), attemptTimeout: .seconds(60), drain: .seconds(2))

    @Test func twoFailuresThenDeliveredOnceWithThePayloadIntact() async throws {
        let receiver = Receiver(statuses: [.serviceUnavailable, .serviceUnavailable])
        let (logger, logs) = LogCapture.logger()
        try await TestHTTPServer.with(receiver.router) { port in
            let sender = try AlertSender(url: "http://127.0.0.1:\(port)/hooks/alerts", logger: logger, policy: Self.fast)
            try await Self.running(sender) {
                #expect(sender.send(Self.alert()))
                try await Self.eventually { receiver.requests.withLock { $0.count } >= 3 && logs.messages.contains { $0.hasPrefix("alert delivered") } }
            }
        }
        let requests = receiver.requests.withLock { $0 }
        #expect(requests.count == 3)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(MonitorAlert.self, from: requests[2].body) == Self.alert())
        #expect(requests.allSatisfy { $0.body == requests[0].body && $0.contentType == "application/json" && $0.userAgent == "cairn" })
        let object = try JSONSerialization.jsonObject(with: requests[2].body) as? [String: Any]
        #expect(object?["since"] as? String == "2023-11-14T22:13:20Z")
        #expect(logs.messages(atLeast: .warning).filter { $0.contains("the receiver answered HTTP 503; retrying") }.count == 2)
    }

    @Test func aClientErrorIsNotRetried() async throws {
        let receiver = Receiver(statuses: [.badRequest])
        let (logger, logs) = LogCapture.logger()
        try await TestHTTPServer.with(receiver.router) { port in
            let sender = try AlertSender(url: "http://127.0.0.1:\(port)/hooks/alerts", logger: logger, policy: Self.fast)
            try await Self.running(sender) {
                #expect(sender.send(Self.alert()))
                try await Self.eventually { logs.messages.contains { $0.contains("not retried") } }
                try await Task.sleep(for: .milliseconds(200))  // Room for a retry that must not come.
            }
        }
        #expect(receiver.requests.withLock { $0.count } == 1)
        #expect(logs.messages(atLeast: .error).contains { $0.hasPrefix("alert not delivered: the receiver answered HTTP 400; not retried") })
    }

    /// Nothing listens: every attempt fails in the background, each `send` returns at once, the
    /// last failure is logged as an error, and the URL's password is never logged.
    @Test func aDownReceiverFailsInTheBackgroundAndSendNeverBlocks() async throws {
        let port = try freePort()
        let (logger, logs) = LogCapture.logger()
        let sender = try AlertSender(url: "http://hook:pa55word@127.0.0.1:\(port)/alerts", logger: logger,
                                     policy: AlertSender.Policy(attempts: 3, baseDelay: .milliseconds(10), attemptTimeout: .seconds(60), drain: .milliseconds(300)))
        try await Self.running(sender) {
            var slowest = Duration.zero
            for index in 0..<20 {
                let started = ContinuousClock.now
                #expect(sender.send(Self.alert(value: Double(index))))
                slowest = max(slowest, ContinuousClock.now - started)
            }
            #expect(slowest < .milliseconds(10), "slowest send took \(slowest)")
            try await Self.eventually { logs.messages(atLeast: .error).contains { $0.hasPrefix("alert not delivered after 3 attempts") } }
        }
        let errors = logs.messages(atLeast: .error)
        #expect(errors.first?.hasPrefix("alert not delivered after 3 attempts: cannot reach the alert receiver at 127.0.0.1:\(port): connection refused") == true,
                "\(errors.first ?? "nothing logged")")
        #expect(logs.messages.contains { $0.contains("retrying in") })
        #expect(!logs.messages.contains { $0.contains("pa55word") })
        #expect(sender.receiver == "127.0.0.1:\(port)")
    }

    /// With the consumer stuck on a receiver that does not answer, a full queue drops its
    /// oldest alerts: the newest are the ones delivered, and the drop is logged with a count.
    @Test func aFullQueueDropsTheOldest() async throws {
        let (logger, logs) = LogCapture.logger()
        let release = Locked(false)
        let requests = Locked<[Double]>([])
        let router = Router(context: BasicRequestContext.self)
        router.post("/alerts") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let alert = try JSONDecoder.iso8601.decode(MonitorAlert.self, from: Data(body.readableBytesView))
            requests.withLock { $0.append(alert.value ?? -1) }
            while !release.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            return Response(status: .ok)
        }
        try await TestHTTPServer.with(router) { port in
            // An attempt timeout far beyond the test's own waits: a loaded machine must not turn
            // the held first request into a retried one.
            let patient = AlertSender.Policy(attempts: 5, baseDelay: .milliseconds(20), attemptTimeout: .seconds(120), drain: .seconds(2))
            let sender = try AlertSender(url: "http://127.0.0.1:\(port)/alerts", logger: logger, policy: patient, capacity: 3)
            try await Self.running(sender) {
                #expect(sender.send(Self.alert(value: 0)))
                // The first is in flight (held by the receiver) before the rest queue behind it.
                try await Self.eventually { requests.withLock { $0.count } == 1 }
                for value in 1...6 { #expect(sender.send(Self.alert(value: Double(value)))) }
                release.withLock { $0 = true }
                try await Self.eventually { requests.withLock { $0.count } == 4 && logs.messages.contains { $0.hasPrefix("alerts dropped") } }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(requests.withLock { $0 } == [0, 4, 5, 6])
        #expect(logs.messages(atLeast: .warning).contains { $0.hasPrefix("alerts dropped: more than 3 were waiting") && $0.contains("cairn.count=3") })
    }

    @Test func anAlertURLMustBeHTTP() {
        #expect(throws: AlertURLError.self) { try AlertSender(url: "file:///tmp/alerts", logger: Logger(label: "test")) }
        #expect(throws: AlertURLError.self) { try AlertSender(url: "not a url", logger: Logger(label: "test")) }
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
