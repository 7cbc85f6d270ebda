import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import NIOCore
import NIOHTTP1
import Synchronization

/// Where a deployment's public port sends requests: the upstream port of the version that
/// serves, or none (then the proxy answers 503). Switching is one assignment under a lock,
/// and picking an upstream counts the request in flight under the same lock, so once a switch
/// has happened no new request can reach the old upstream, and its count only goes down: when
/// it reaches zero, the old process can be stopped without failing anyone.
final class ProxyRoute: Sendable {
    private struct State {
        var upstream: Int?
        /// Why there is no upstream, for the 503's body.
        var unavailable = "no healthy version is serving yet"
        var inFlight: [Int: Int] = [:]
    }

    private let state = Mutex(State())

    /// Sends every new request to `port` (nil: answer 503 with `reason`).
    func switchTo(_ port: Int?, reason: String = "no healthy version is serving yet") {
        state.withLock {
            $0.upstream = port
            $0.unavailable = reason
        }
    }

    var upstream: Int? { state.withLock { $0.upstream } }

    /// Requests sent to `port` and not answered yet.
    func inFlight(on port: Int) -> Int { state.withLock { $0.inFlight[port] ?? 0 } }

    /// The upstream for a new request, counted in flight; or why there is none.
    fileprivate func acquire() -> Result<Int, Unavailable> {
        state.withLock { state in
            guard let port = state.upstream else { return .failure(Unavailable(reason: state.unavailable)) }
            state.inFlight[port, default: 0] += 1
            return .success(port)
        }
    }

    fileprivate func release(_ port: Int) {
        state.withLock { state in
            let left = (state.inFlight[port] ?? 1) - 1
            state.inFlight[port] = left > 0 ? left : nil
        }
    }

    fileprivate struct Unavailable: Error {
        let reason: String
    }
}

/// Forwards each request on the public port to the route's upstream on 127.0.0.1 through the
/// shared client (a keep-alive pool per upstream port), and relays the answer. Bodies are
/// collected up to a limit both ways, so a request counts in flight until its answer is
/// complete. Nothing is logged per request and nothing is allocated beyond the request's own
/// buffers: the proxy's overhead stays well under a millisecond on loopback.
struct ProxyResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let route: ProxyRoute
    let client: HTTPClient
    /// The most a request's or an answer's body may hold.
    let bodyLimit: Int
    /// How long an upstream may take to answer.
    let timeout: TimeAmount

    /// Headers that describe one connection, not the message: never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length",
    ]

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: bodyLimit)
        } catch {
            return Self.error(.contentTooLarge, "the request's body is larger than \(bodyLimit) bytes")
        }
        let port: Int
        switch route.acquire() {
        case .success(let upstream): port = upstream
        case .failure(let unavailable): return Self.error(.serviceUnavailable, unavailable.reason)
        }
        defer { route.release(port) }
        return await forward(request, body: body, to: port)
    }

    private func forward(_ request: Request, body: ByteBuffer, to port: Int) async -> Response {
        var upstream = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(request.head.path ?? "/")")
        upstream.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) {
            upstream.headers.add(name: field.name.rawName, value: field.value)
        }
        if body.readableBytes > 0 || request.headers[.contentLength] != nil { upstream.body = .bytes(body) }
        do {
            let answer = try await client.execute(upstream, timeout: timeout)
            let bytes = try await answer.body.collect(upTo: bodyLimit)
            var headers = HTTPFields()
            for (name, value) in answer.headers where !Self.hopByHop.contains(name.lowercased()) {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            return Response(status: HTTPResponse.Status(code: Int(answer.status.code)), headers: headers,
                            body: ResponseBody(byteBuffer: bytes))
        } catch {
            return Self.error(.badGateway, "the serving process on port \(port) did not answer: \(error)")
        }
    }

    /// A short JSON error: `{"error": "..."}`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let text = (try? JSONEncoder().encode(["error": message])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }
}

/// One deployment's proxy: a Hummingbird server on 127.0.0.1, run in a service group of its
/// own so that it stops gracefully (no new connections, the requests in flight answered, idle
/// keep-alive connections closed) rather than by cancellation, which tears connections down
/// under their writers.
final class ReverseProxy: Sendable {
    let route: ProxyRoute
    /// The port it listens on (the spec's, or the one the system picked).
    let port: Int
    private let task: Task<Void, Never>
    private let group: ServiceGroup

    private init(route: ProxyRoute, port: Int, task: Task<Void, Never>, group: ServiceGroup) {
        self.route = route
        self.port = port
        self.task = task
        self.group = group
    }

    /// Binds 127.0.0.1:`port` (0: any free port) and serves; returns once the server listens,
    /// or throws `PortInUse` when the port is taken (or another bind failure).
    static func start(port: Int, route: ProxyRoute, client: HTTPClient, bodyLimit: Int, timeout: TimeAmount,
                      logger: Logger) async throws -> ReverseProxy {
        let bound = AsyncStream.makeStream(of: Result<Int, any Error>.self)
        let responder = ProxyResponder(route: route, client: client, bodyLimit: bodyLimit, timeout: timeout)
        // Cancelling the server on stop is logged as an error by Hummingbird; what matters
        // (a failed bind) comes back as the thrown error.
        var quiet = logger
        quiet.logLevel = .critical
        let application = Application(
            responder: responder,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { channel in bound.continuation.yield(.success(channel.localAddress?.port ?? port)) },
            logger: quiet)
        let group = ServiceGroup(services: [application], logger: quiet)
        let task = Task {
            do {
                try await group.run()
            } catch {
                bound.continuation.yield(.failure(error))
            }
            bound.continuation.finish()
        }
        for await result in bound.stream {
            switch result {
            case .success(let listening): return ReverseProxy(route: route, port: listening, task: task, group: group)
            case .failure(let error): throw BindFailure(port: port, underlying: error)
            }
        }
        throw BindFailure(port: port, underlying: nil)
    }

    /// Stops listening, lets the requests in flight finish and closes its connections;
    /// returns once the server has stopped (cancelled after 5 s if a request hangs).
    func stop() async {
        await group.triggerGracefulShutdown()
        let deadline = Task { [task] in
            guard (try? await Task.sleep(for: .seconds(5))) != nil else { return }
            task.cancel()
        }
        await task.value
        deadline.cancel()
    }

    struct BindFailure: Error, CustomStringConvertible {
        let port: Int
        let underlying: (any Error)?

        var inUse: Bool {
            if let error = underlying as? IOError { return error.errnoCode == EADDRINUSE }
            return "\(String(describing: underlying))".contains("in use")
        }

        var description: String {
            inUse ? "port \(port) on 127.0.0.1 is already in use"
                : "could not listen on 127.0.0.1:\(port): \(underlying.map { "\($0)" } ?? "the server stopped before it listened")"
        }
    }
}
