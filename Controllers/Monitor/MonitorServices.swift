public import CairnCore
public import Foundation

/// Reads one value from a Prometheus-compatible HTTP API: `GET <url>/api/v1/query?query=…`,
/// an instant query. Implemented over HTTP by the daemon (CairnHTTP); tests give their own.
public protocol PrometheusQuerying: Sendable {
    /// The query's single value and its timestamp; nil when the result is an empty vector.
    /// Throws ``MetricSourceError`` when the server is down, slow (past `timeout`), answers
    /// an error, or answers something that is not one finite number.
    func instantQuery(url: String, query: String, timeout: Duration) async throws -> (value: Double, time: Date)?
}

/// Why a source could not be read, in words a status message can carry (no secrets: a URL's
/// user information is never part of it).
public struct MetricSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What an `alert` action (and the resolution of a firing `alert` threshold) sends: POSTed as
/// JSON to the daemon's `--alert-url`.
public struct MonitorAlert: Codable, Sendable, Hashable {
    /// `firing` or `resolved`.
    public var status: String
    public var monitor: String
    public var deployment: String
    public var model: String?
    /// The serving version the window counted.
    public var version: Int?
    public var metric: String
    public var aggregate: String
    /// `below 0.7`, `above 0.05`.
    public var threshold: String
    /// The aggregate when it fired or resolved.
    public var value: Double?
    public var since: Date
    public var action: String
    /// The whole of it in one line, for a chat message.
    public var summary: String
    /// The source commit the Monitor was evaluated at.
    public var sourceCommit: String

    public init(status: String, monitor: String, deployment: String, model: String?, version: Int?, metric: String, aggregate: String,
                threshold: String, value: Double?, since: Date, action: String, summary: String, sourceCommit: String) {
        self.status = status
        self.monitor = monitor
        self.deployment = deployment
        self.model = model
        self.version = version
        self.metric = metric
        self.aggregate = aggregate
        self.threshold = threshold
        self.value = value
        self.since = since
        self.action = action
        self.summary = summary
        self.sourceCommit = sourceCommit
    }
}

/// Delivers alerts. `send` returns at once: delivery (with its retries) happens in the
/// background, bounded, so a slow or dead receiver never holds a pass back.
public protocol AlertSending: Sendable {
    /// Queues the alert; false when no receiver is configured (the status says so).
    func send(_ alert: MonitorAlert) -> Bool
}

/// What the Monitor controller reads and acts through, beyond the reconcile context.
public struct MonitorServices: Sendable {
    public var hub: MetricHub
    public var prometheus: (any PrometheusQuerying)?
    public var alerts: (any AlertSending)?

    public init(hub: MetricHub, prometheus: (any PrometheusQuerying)? = nil, alerts: (any AlertSending)? = nil) {
        self.hub = hub
        self.prometheus = prometheus
        self.alerts = alerts
    }
}
