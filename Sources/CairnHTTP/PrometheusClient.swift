import AsyncHTTPClient
import NIOHTTP1
public import Foundation
public import MonitorController

/// Instant queries against a Prometheus-compatible HTTP API over `HTTPClient.shared`:
/// `GET <url>/api/v1/query?query=<query>`, the answer's body at most `bodyLimit` bytes, the
/// whole exchange within the caller's timeout. A `user:password@` in the URL is sent as basic
/// authentication and never appears in an error; errors name the host and port.
public struct PrometheusClient: PrometheusQuerying {
    /// The largest answer read; a larger one is an error (one series is a few hundred bytes).
    public var bodyLimit: Int

    public init(bodyLimit: Int = 1 << 20) {
        self.bodyLimit = bodyLimit
    }

    public func instantQuery(url: String, query: String, timeout: Duration) async throws -> (value: Double, time: Date)? {
        let target: OutboundTarget
        do {
            target = try OutboundTarget(url, role: "the Prometheus URL", trimmingSlash: true)
        } catch {
            throw MetricSourceError(error.description)
        }
        guard !target.url.contains("?"), !target.url.contains("#") else {
            throw MetricSourceError("the Prometheus URL for \(target.host) must not hold a query or fragment; give the server's base URL")
        }
        var request = HTTPClientRequest(url: "\(target.url)/api/v1/query?query=\(Self.percentEncoded(query))")
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cairn")
        if let authorization = target.authorization { request.headers.add(name: "Authorization", value: authorization) }
        let answer: (status: HTTPResponseStatus, body: Data)
        do {
            answer = try await exchange(request, with: target, what: "Prometheus at \(target.host)", timeout: timeout, bodyLimit: bodyLimit)
        } catch {
            throw MetricSourceError(error.description)
        }
        return try PrometheusAnswer.parse(status: answer.status, body: answer.body, host: target.host)
    }

    /// Only unreserved characters stay as they are: `+` in PromQL is addition, not a space.
    static func percentEncoded(_ text: String) -> String {
        var allowed = CharacterSet()
        allowed.insert(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
