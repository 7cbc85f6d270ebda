public import CairnCore
public import CairnManifests
public import Foundation
import Synchronization

/// The windows every Monitor's thresholds read, shared by the HTTP face (pushed samples) and
/// the Monitor controller (polled sources, and every evaluation). One per daemon.
///
/// - A window is kept per deployment, metric, window length and aggregate: two thresholds
///   alike share one. Each is a bounded ``MetricWindow``, so memory does not grow with the
///   sample rate.
/// - Windows count only the serving version's samples. A sample labelled `version` that is not
///   the serving one is counted as `otherVersion` and dropped; an unlabelled one is the serving
///   version's when it arrives. When the serving version changes, every window of the
///   deployment starts empty, so a rollout never mixes two models' metrics.
/// - Pushed samples are accepted only for a deployment a Monitor with a `push` source watches,
///   and go to the windows the push Monitors share; what a Monitor's own source read
///   (Prometheus, a file) goes to that Monitor's windows only (``WindowKey/source``).
/// - What a Monitor watches is registered by the controller at each evaluation, and lapses when
///   not renewed (a deleted Monitor stops accepting samples after ``registrationLifetime``
///   beyond its interval).
/// - Samples are held in memory only: after a restart the windows refill. The alert states
///   (pending since, firing since) are the controller's, kept in the store.
public final class MetricHub: MetricSink {
    public struct WindowKey: Hashable, Sendable {
        public var metric: String
        public var window: TimeInterval
        public var aggregate: MonitorSpec.Aggregate
        /// Whose samples: ``pushed`` (every push Monitor of the deployment shares them), or
        /// one Monitor's own source (``polled(by:)``), so two Monitors reading two Prometheus
        /// queries, or a file and the pushes, never mix their samples.
        public var source: String

        public static let pushed = "push"
        public static func polled(by monitor: String) -> String { "monitor/" + monitor }

        public init(metric: String, window: TimeInterval, aggregate: MonitorSpec.Aggregate, source: String = Self.pushed) {
            self.metric = metric
            self.window = window
            self.aggregate = aggregate
            self.source = source
        }

        public init(_ threshold: MonitorSpec.Threshold, source: String = Self.pushed) {
            self.init(metric: threshold.metric, window: threshold.window.seconds, aggregate: threshold.aggregate, source: source)
        }
    }

    /// What one window holds at one moment.
    public struct Reading: Sendable, Hashable {
        public var value: Double?
        public var samples: Int
    }

    struct Registration {
        var keys: Set<WindowKey>
        var expires: Date
        /// Its source is `push`: samples POSTed for the deployment are for it.
        var push: Bool
    }

    struct Deployment {
        var serving: Int?
        var windows: [WindowKey: MetricWindow] = [:]
        var monitors: [String: Registration] = [:]
        /// Windows by metric, for ingestion.
        var byMetric: [String: [WindowKey]] = [:]
    }

    /// How long past its interval a registration stays without being renewed.
    public static let registrationLifetime: TimeInterval = 120

    private let deployments = Mutex<[String: Deployment]>([:])

    public init() {}

    /// Registers what `monitor` watches on `deployment`, and which version serves there (nil:
    /// none is known to). Windows no Monitor watches any more are dropped; a new serving
    /// version empties the deployment's windows.
    public func watch(monitor: String, deployment name: String, thresholds: [MonitorSpec.Threshold], serving: Int?,
                      interval: TimeInterval, push: Bool = true, now: Date) {
        deployments.withLock { deployments in
            var deployment = deployments[name] ?? Deployment()
            if deployment.serving != serving {
                deployment.serving = serving
                deployment.windows = [:]
            }
            let source = push ? WindowKey.pushed : WindowKey.polled(by: monitor)
            deployment.monitors[monitor] = Registration(keys: Set(thresholds.map { WindowKey($0, source: source) }),
                                                        expires: now.addingTimeInterval(interval + Self.registrationLifetime), push: push)
            Self.prune(&deployment, now: now)
            deployments[name] = deployment
        }
    }

    /// Forgets `monitor` (it was deleted, suspended, or now watches another deployment).
    public func unwatch(monitor: String, except deployment: String? = nil) {
        deployments.withLock { deployments in
            for name in Array(deployments.keys) where name != deployment {
                guard deployments[name]?.monitors.removeValue(forKey: monitor) != nil else { continue }
                if deployments[name]?.monitors.isEmpty == true {
                    deployments[name] = nil
                } else if var entry = deployments[name] {
                    Self.prune(&entry, now: .distantPast)
                    deployments[name] = entry
                }
            }
        }
    }

    /// Drops expired registrations and the windows no registration names.
    private static func prune(_ deployment: inout Deployment, now: Date) {
        deployment.monitors = deployment.monitors.filter { $0.value.expires > now }
        let wanted = deployment.monitors.values.reduce(into: Set<WindowKey>()) { $0.formUnion($1.keys) }
        deployment.windows = deployment.windows.filter { wanted.contains($0.key) }
        for key in wanted where deployment.windows[key] == nil {
            deployment.windows[key] = MetricWindow(window: key.window, aggregate: key.aggregate)
        }
        deployment.byMetric = Dictionary(grouping: wanted, by: \.metric)
    }

    /// Pushed samples (`POST /api/v1/metrics`): accepted for a deployment a Monitor with a
    /// `push` source watches.
    public func ingest(deployment name: String, samples: [MetricSample], receivedAt: Date) -> MetricIngestResult {
        ingest(deployment: name, samples: samples, receivedAt: receivedAt, polledBy: nil)
    }

    /// `polledBy`: the Monitor whose own source (Prometheus, a file) read these; nil for pushes.
    public func ingest(deployment name: String, samples: [MetricSample], receivedAt: Date, polledBy monitor: String?) -> MetricIngestResult {
        let source = monitor.map(WindowKey.polled(by:)) ?? WindowKey.pushed
        return deployments.withLock { deployments in
            func watched(_ deployment: Deployment) -> Bool {
                if let monitor { return deployment.monitors[monitor].map { $0.expires > receivedAt } == true }
                return deployment.monitors.values.contains { $0.expires > receivedAt && $0.push }
            }
            guard deployments[name].map(watched) == true,
                  // Taken out while it changes, so its windows are not copied (one owner, no copy on write).
                  var deployment = deployments.removeValue(forKey: name) else {
                let known = deployments.filter { watched($0.value) }.keys.sorted()
                return .unknownDeployment(known: known)
            }
            var counts = MetricIngestCounts()
            for sample in samples {
                guard let keys = deployment.byMetric[sample.metric]?.filter({ $0.source == source }), !keys.isEmpty else {
                    counts.ignored += 1
                    continue
                }
                guard let serving = deployment.serving else {
                    counts.unattributed += 1
                    continue
                }
                if let label = sample.labels["version"], Int(label) != serving {
                    counts.otherVersion += 1
                    continue
                }
                // A timestamp ahead of the arrival counts as the arrival: a sender whose clock
                // runs fast (or a hostile one) cannot push the windows' edge into the future
                // and have every sample after it refused as too old.
                let time = min(sample.time ?? receivedAt, receivedAt)
                var added = false
                for key in keys {
                    if case .accepted = deployment.windows[key]?.add(sample.value, at: time) { added = true }
                }
                if added { counts.accepted += 1 } else { counts.expired += 1 }
            }
            deployments[name] = deployment
            return .ingested(counts)
        }
    }

    /// The window of `key` on `deployment` at `now`, for the serving version `serving`: empty
    /// when that is not the version the windows hold.
    public func read(deployment name: String, key: WindowKey, serving: Int?, now: Date) -> Reading {
        deployments.withLock { deployments in
            // In place: a copy of the deployment (or its window table) per read costs more than the read.
            guard deployments[name]?.serving == serving, deployments[name]?.windows[key] != nil else { return Reading(value: nil, samples: 0) }
            deployments[name]?.windows[key]?.expire(at: now)
            guard let window = deployments[name]?.windows[key] else { return Reading(value: nil, samples: 0) }
            return Reading(value: window.value(at: now), samples: window.count(at: now))
        }
    }
}
