public import CoreMetrics
public import CairnCore
import Foundation

/// What the engine counts, through swift-metrics with a factory it is given (the daemon's
/// Prometheus registry; a no-op one by default), so the engine knows no metrics backend and
/// tests each get their own. Names and labels are fixed here, in one place: a backend such
/// as Prometheus refuses a name registered twice with different labels.
///
/// Metrics (Docs/operations.md, "Metrics", says what each is for):
/// - `cairn_passes_total{trigger, result}`: result `ran` (the tip or something due was
///   reconciled), `idle` (nothing to do: one ref read), `failed` (a fetch or a pass failed).
/// - `cairn_pass_duration_seconds`: passes that ran or failed.
/// - `cairn_last_successful_pass_timestamp_seconds`: Unix time of the last pass that did not
///   fail (the engine's start until one has).
/// - `cairn_objects{condition}`: `ready`, `stalled`, `not_ready` (on its way, or rolled
///   back), `not_implemented`; set after each pass that did not fail.
/// - `cairn_unreadable_manifest_files`.
/// - `cairn_runs_finished_total{kind, name, result}`: result as the run ended
///   (`succeeded`, `failed`, `cancelled`, `interrupted`).
/// - `cairn_git_fetch_errors_total`, `cairn_git_push_errors_total`.
public struct EngineMetrics: Sendable {
    public let factory: any MetricsFactory

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    public static let passDuration = "cairn_pass_duration_seconds"

    /// Makes the error counters exist at zero, so a scrape shows them (and an alert on their
    /// increase has a series) before the first error.
    func prime() {
        Counter(label: "cairn_git_fetch_errors_total", factory: factory).increment(by: 0)
        Counter(label: "cairn_git_push_errors_total", factory: factory).increment(by: 0)
        // A daemon whose first pass never succeeds is not reconciling from its start.
        Gauge(label: "cairn_last_successful_pass_timestamp_seconds", factory: factory).record(Date().timeIntervalSince1970)
    }

    func pass(trigger: String, result: String, duration: Duration?) {
        Counter(label: "cairn_passes_total", dimensions: [("trigger", trigger), ("result", result)], factory: factory).increment()
        if let duration {
            let (seconds, attoseconds) = duration.components
            CoreMetrics.Timer(label: Self.passDuration, factory: factory)
                .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        if result != "failed" {
            Gauge(label: "cairn_last_successful_pass_timestamp_seconds", factory: factory).record(Date().timeIntervalSince1970)
        }
    }

    func objects(_ outcome: PassOutcome) {
        let counts = [("ready", outcome.ready), ("stalled", outcome.stalled.count), ("not_ready", outcome.waiting.count),
                      ("not_implemented", outcome.notImplemented)]
        for (condition, count) in counts {
            Gauge(label: "cairn_objects", dimensions: [("condition", condition)], factory: factory).record(count)
        }
        Gauge(label: "cairn_unreadable_manifest_files", factory: factory).record(outcome.unreadableFiles.count)
    }

    func runFinished(_ run: RunRecord) {
        Counter(label: "cairn_runs_finished_total",
                dimensions: [("kind", run.object.kind.rawValue), ("name", run.object.name), ("result", run.state.rawValue)],
                factory: factory).increment()
    }

    func fetchFailed() {
        Counter(label: "cairn_git_fetch_errors_total", factory: factory).increment()
    }

    func pushFailed() {
        Counter(label: "cairn_git_push_errors_total", factory: factory).increment()
    }
}
