public import CairnEngine
import CoreMetrics
import Prometheus

/// The daemon's Prometheus registry: what the engine counts (through `engine`, a swift-metrics
/// factory over this registry), what the HTTP face counts (webhooks), and gauges read from
/// the store and the executor when scraped. One per daemon (and per test), never the
/// process-wide swift-metrics bootstrap, so two in one process do not mix.
public final class DaemonMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    /// Give this to the `Engine`.
    public let engine: EngineMetrics

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // An idle pass costs a ref read; one that runs controllers costs milliseconds to minutes.
        factory.durationHistogramBuckets[EngineMetrics.passDuration] = [
            .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
            .seconds(15), .seconds(60), .seconds(300),
        ]
        engine = EngineMetrics(factory: factory)
        for provider in WebhookProvider.allCases {
            Counter(label: "cairn_webhooks_total", dimensions: [("provider", provider.rawValue), ("result", "triggered")],
                    factory: engine.factory).increment(by: 0)
        }
    }

    /// `cairn_webhooks_total{provider, result}`: result as `WebhookVerdict.result` gives it,
    /// or `too_large`, `timed_out`, `aborted` and `disabled`, which the route decides before a verdict.
    func webhook(_ provider: WebhookProvider, result: String) {
        Counter(label: "cairn_webhooks_total", dimensions: [("provider", provider.rawValue), ("result", result)],
                factory: engine.factory).increment()
    }

    /// Sets the gauges that are read when scraped: `cairn_queue_depth` (objects asked for and
    /// waiting for a pass) and `cairn_runs_in_flight` (runs queued or running).
    func scraped(queueDepth: Int?, runsInFlight: Int?) {
        if let queueDepth { Gauge(label: "cairn_queue_depth", factory: engine.factory).record(queueDepth) }
        if let runsInFlight { Gauge(label: "cairn_runs_in_flight", factory: engine.factory).record(runsInFlight) }
    }

    /// The text format Prometheus scrapes (version 0.0.4).
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
