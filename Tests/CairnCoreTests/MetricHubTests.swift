import CairnCore
import CairnManifests
import Foundation
import MonitorController
import Testing

/// The hub's windows: whose samples each one counts.
@Suite struct MetricHubTests {
    static let threshold: MonitorSpec.Threshold = {
        let yaml = """
            apiVersion: cairn/v1
            kind: Monitor
            metadata: {name: quality}
            spec:
              deployment: churn-prod
              thresholds:
                - {metric: accuracy, below: 0.7, window: 5m, action: alert}
              source: {push: {}}
            """
        guard case .monitor(let spec)? = ManifestParser.parse(Data(yaml.utf8), file: "m.yaml").manifests.first?.spec else {
            fatalError("the test's Monitor does not parse")
        }
        return spec.thresholds[0]
    }()

    /// Two Monitors of one deployment, one pushed to and one reading its own file: pushes reach
    /// only the push Monitor's window, and what the file gave only the file Monitor's.
    @Test func aPolledSourceAndThePushesKeepTheirOwnWindows() {
        let hub = MetricHub()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        hub.watch(monitor: "pushed", deployment: "churn-prod", thresholds: [Self.threshold], serving: 3, interval: 30, push: true, now: now)
        hub.watch(monitor: "filed", deployment: "churn-prod", thresholds: [Self.threshold], serving: 3, interval: 30, push: false, now: now)
        let pushKey = MetricHub.WindowKey(Self.threshold, source: MetricHub.WindowKey.pushed)
        let fileKey = MetricHub.WindowKey(Self.threshold, source: MetricHub.WindowKey.polled(by: "filed"))

        let pushed = hub.ingest(deployment: "churn-prod", samples: [MetricSample(metric: "accuracy", value: 0.9)], receivedAt: now)
        #expect(pushed == .ingested({ var counts = MetricIngestCounts(); counts.accepted = 1; return counts }()))
        let filed = hub.ingest(deployment: "churn-prod", samples: [MetricSample(metric: "accuracy", value: 0.2), MetricSample(metric: "accuracy", value: 0.4)],
                               receivedAt: now, polledBy: "filed")
        #expect(filed == .ingested({ var counts = MetricIngestCounts(); counts.accepted = 2; return counts }()))

        let push = hub.read(deployment: "churn-prod", key: pushKey, serving: 3, now: now)
        #expect(push.samples == 1 && push.value == 0.9, "\(push)")
        let file = hub.read(deployment: "churn-prod", key: fileKey, serving: 3, now: now)
        #expect(file.samples == 2 && abs((file.value ?? 0) - 0.3) < 1e-9, "\(file)")
    }

    /// Pushes for a deployment only non-push Monitors watch are refused as unknown.
    @Test func pushesNeedAPushMonitor() {
        let hub = MetricHub()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        hub.watch(monitor: "filed", deployment: "churn-prod", thresholds: [Self.threshold], serving: 3, interval: 30, push: false, now: now)
        #expect(hub.ingest(deployment: "churn-prod", samples: [MetricSample(metric: "accuracy", value: 0.9)], receivedAt: now)
                == .unknownDeployment(known: []))
    }

    /// A sample dated ahead of its arrival counts as arriving then: it cannot move the window's
    /// edge into the future and have the samples after it refused as too old.
    @Test func aFutureTimestampCountsAsTheArrival() {
        let hub = MetricHub()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        hub.watch(monitor: "pushed", deployment: "churn-prod", thresholds: [Self.threshold], serving: 3, interval: 30, now: now)
        _ = hub.ingest(deployment: "churn-prod", samples: [MetricSample(metric: "accuracy", value: 0.1, time: now.addingTimeInterval(240))],
                       receivedAt: now)
        let later = now.addingTimeInterval(1)
        let next = hub.ingest(deployment: "churn-prod", samples: [MetricSample(metric: "accuracy", value: 0.9, time: later)], receivedAt: later)
        #expect(next == .ingested({ var counts = MetricIngestCounts(); counts.accepted = 1; return counts }()))
        #expect(hub.read(deployment: "churn-prod", key: MetricHub.WindowKey(Self.threshold), serving: 3, now: later).samples == 2)
    }
}
