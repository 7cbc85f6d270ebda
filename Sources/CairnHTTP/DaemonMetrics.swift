import CairnCore
public import CairnEngine
import CoreMetrics
import Prometheus

/// The daemon's Prometheus registry: what the engine counts (through `engine`, a swift-metrics
/// factory over this registry), what the HTTP face counts (webhooks, metric pushes), and gauges read from
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
        for result in Self.sampleResults {
            Counter(label: "cairn_metric_samples_total", dimensions: [("result", result)], factory: engine.factory).increment(by: 0)
        }
    }

    /// Every `result` of `cairn_metric_samples_total`.
    static let sampleResults = ["accepted", "ignored", "other_version", "unattributed", "expired", "rejected"]

    /// `cairn_metric_samples_total{result}` for a batch the Monitors' windows took.
    func metricSamples(_ counts: MetricIngestCounts) {
        for (result, count) in zip(Self.sampleResults, [counts.accepted, counts.ignored, counts.otherVersion, counts.unattributed,
                                                        counts.expired]) where count > 0 {
            Counter(label: "cairn_metric_samples_total", dimensions: [("result", result)], factory: engine.factory).increment(by: count)
        }
    }

    /// `cairn_metric_samples_total{result="rejected"}`: the samples of a refused batch, as far
    /// as it was read (it is refused at its first problem).
    func metricSamples(rejected: Int) {
        guard rejected > 0 else { return }
        Counter(label: "cairn_metric_samples_total", dimensions: [("result", "rejected")], factory: engine.factory).increment(by: rejected)
    }

    /// `cairn_metric_push_requests_total{status}`: `POST /api/v1/metrics` by HTTP status.
    func metricPush(status: Int) {
        Counter(label: "cairn_metric_push_requests_total", dimensions: [("status", String(status))], factory: engine.factory).increment()
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
