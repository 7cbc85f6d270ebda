import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A Hummingbird server on 127.0.0.1, on a port the system picks, for the duration of `body`:
/// the remote end (a Prometheus, an alert receiver) the daemon's clients talk to.
enum TestHTTPServer {
    static func with(_ router: Router<BasicRequestContext>, _ body: (_ port: Int) async throws -> Void) async throws {
        let bound = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "test-server", factory: { _ in SwiftLogNoOpLogHandler() })
        let application = Application(router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                                      onServerRunning: { channel in
                                          bound.continuation.yield(channel.localAddress?.port ?? 0)
                                          bound.continuation.finish()
                                      },
                                      logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [application], logger: logger))
        let running = Task { try await group.run() }
        var ports = bound.stream.makeAsyncIterator()
        guard let port = await ports.next(), port > 0 else {
            running.cancel()
            throw CocoaError(.fileReadUnknown)
        }
        do {
            try await body(port)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
    }
}

/// Keeps every message logged through it (with its metadata), for tests to read.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(level: Logger.Level, text: String)] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let all = self.metadata.merging(explicit ?? [:]) { $1 }
        let text = "\(message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lock.withLock { lines.append((level, text)) }
    }

    var messages: [String] { lock.withLock { lines.map(\.text) } }

    func messages(atLeast level: Logger.Level) -> [String] {
        lock.withLock { lines.filter { $0.level >= level }.map(\.text) }
    }

    static func logger() -> (Logger, LogCapture) {
        let capture = LogCapture()
        return (Logger(label: "test", factory: { _ in capture }), capture)
    }
}

/// A value a server's handlers and the test share.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    var value: Value { mutex.withLock { $0 } }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        mutex.withLock { body(&$0) }
    }
}
