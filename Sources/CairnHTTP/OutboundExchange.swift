import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A server the daemon calls (Prometheus, the alert receiver), as its URL names it: checked to
/// be http or https with a host, and split into what may be said in a message (the host and
/// port, never `user:password@`) and what is sent.
struct OutboundTarget: Sendable {
    /// `host` or `host:port`: what messages and logs name.
    let host: String
    let hostname: String
    let port: Int
    /// The URL without user information (and, with `trimmingSlash`, without trailing slashes).
    let url: String
    /// `Basic …` from the URL's user information, if it has any.
    let authorization: String?

    /// `role` names the URL in a message ("the Prometheus URL", "--alert-url").
    init(_ text: String, role: String, trimmingSlash: Bool = false) throws(OutboundFailure) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let hostname = components.host, !hostname.isEmpty else {
            throw OutboundFailure("\(role) is not a URL such as http://127.0.0.1:9090")
        }
        let shown = components.port.map { "\(hostname):\($0)" } ?? hostname
        guard scheme == "http" || scheme == "https" else {
            throw OutboundFailure("\(role) for \(shown) must start with http:// or https://, not \(scheme.prefix(20))://")
        }
        host = shown
        self.hostname = hostname
        port = components.port ?? (scheme == "https" ? 443 : 80)
        if let user = components.user {
            let password = components.password ?? ""
            let credentials = "\(user.removingPercentEncoding ?? user):\(password.removingPercentEncoding ?? password)"
            authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        } else {
            authorization = nil
        }
        var bare = components
        bare.user = nil
        bare.password = nil
        var url = bare.string ?? ""
        while trimmingSlash && url.hasSuffix("/") { url.removeLast() }
        self.url = url
    }

    /// Why a TCP connection to the host cannot be made, or nil when one can (or the probe could
    /// not tell within `limit`, kept short: the exchange waits for the probe when the answer wins).
    func connectRefusal(within limit: Duration) async -> String? {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(max(limit.nanoseconds / 1_000_000, 1)))
        do {
            let channel = try await bootstrap.connect(host: hostname, port: port).get()
            try? await channel.close()
            return nil
        } catch {
            if error is ChannelError { return nil }  // The probe timed out: no verdict.
            return connectionProblem(error)
        }
    }
}

/// Why an exchange with a server failed, in words that name the host and nothing secret.
struct OutboundFailure: Error, Sendable, CustomStringConvertible {
    /// The request may be worth repeating later (no answer, refused, closed); false for a
    /// refusal that will not change by itself (a bad URL, an answer too large).
    var transient: Bool
    var description: String

    init(_ description: String, transient: Bool = false) {
        self.description = description
        self.transient = transient
    }
}

/// One request over `HTTPClient.shared`, the whole of it (answer and body) within `timeout`,
/// the body at most `bodyLimit` bytes. `what` names the server in failures ("Prometheus at
/// host:9090"). The shared client retries refused connections until the deadline, so after
/// `probeAfter` without an answer a TCP connect tells "nothing listens there" apart from "slow".
func exchange(_ request: HTTPClientRequest, with target: OutboundTarget, what: String, timeout: Duration, bodyLimit: Int,
              probeAfter: Duration = .milliseconds(250)) async throws(OutboundFailure) -> (status: HTTPResponseStatus, body: Data) {
    let timedOut = OutboundFailure("\(what) did not answer within \(seconds(timeout))", transient: true)
    // A race the first finisher wins, without waiting for the others: the shared client does
    // not stop retrying a refused connection when cancelled, so a task group (which waits for
    // every child) would hold the caller until the deadline even after the probe's verdict.
    let outcome: Result<(status: HTTPResponseStatus, body: Data), OutboundFailure> = await withCheckedContinuation { continuation in
        let race = FirstFinisher(continuation)
        let attempt = Task {
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
                do {
                    let body = try await response.body.collect(upTo: bodyLimit)
                    race.finish(.success((response.status, Data(body.readableBytesView))))
                } catch is NIOTooManyBytesError {
                    race.finish(.failure(OutboundFailure("\(what) answered more than \(bodyLimit) bytes")))
                }
            } catch {
                race.finish(.failure(describedFailure(error, what: what, timedOut: timedOut)))
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if race.finish(.failure(timedOut)) { attempt.cancel() }
        }
        if probeAfter < timeout {
            Task {
                try? await Task.sleep(for: probeAfter)
                guard !race.isFinished,
                      let refusal = await target.connectRefusal(within: min(timeout - probeAfter, .milliseconds(200))) else { return }
                if race.finish(.failure(OutboundFailure("cannot reach \(what): \(refusal)", transient: true))) { attempt.cancel() }
            }
        }
    }
    return try outcome.get()
}

/// Resumes a continuation with the first result it is given and ignores the rest.
private final class FirstFinisher<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Result<Value, OutboundFailure>, Never>?>(nil)

    init(_ continuation: CheckedContinuation<Result<Value, OutboundFailure>, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    var isFinished: Bool { continuation.withLock { $0 == nil } }

    /// Whether this result was the first (and so the one the caller gets).
    @discardableResult
    func finish(_ result: Result<Value, OutboundFailure>) -> Bool {
        guard let waiting = continuation.withLock({ value -> CheckedContinuation<Result<Value, OutboundFailure>, Never>? in
            defer { value = nil }
            return value
        }) else { return false }
        waiting.resume(returning: result)
        return true
    }
}

private func describedFailure(_ error: any Error, what: String, timedOut: OutboundFailure) -> OutboundFailure {
    if let error = error as? HTTPClientError {
        switch error {
        case .deadlineExceeded, .readTimeout, .connectTimeout, .getConnectionFromPoolTimeout:
            return timedOut
        case .remoteConnectionClosed:
            return OutboundFailure("\(what) closed the connection before answering", transient: true)
        default:
            break
        }
    }
    return OutboundFailure("cannot reach \(what): \(connectionProblem(error))", transient: true)
}

/// The errno behind a connection error, as strerror says it, or the error's own words (capped).
func connectionProblem(_ error: any Error) -> String {
    if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
    if let error = error as? NIOConnectionError {
        if let first = error.connectionErrors.first { return connectionProblem(first.error) }
        if let dns = error.dnsAAAAError ?? error.dnsAError { return "its name does not resolve (\(capped("\(dns)", 100)))" }
    }
    return capped("\(error)", 200)
}

/// `text`, cut to `limit` characters with an ellipsis.
func capped(_ text: String, _ limit: Int) -> String {
    text.count <= limit ? text : String(text.prefix(limit)) + "…"
}

/// `5 s`, `0.5 s`.
func seconds(_ duration: Duration) -> String {
    let value = Double(duration.nanoseconds) / 1e9
    return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
