public import Foundation

/// One observation of a deployed model's metric, as a serving process or a feedback job
/// reports it (`POST /api/v1/metrics`), or as a Monitor's source reads it.
public struct MetricSample: Sendable, Hashable {
    /// The metric's name, as a Monitor's threshold names it (`accuracy`).
    public var metric: String
    /// Finite: NaN and the infinities are refused before a sample gets here.
    public var value: Double
    /// When it was observed; nil means when it arrived.
    public var time: Date?
    /// Free labels; `version` (an integer) says which version of the model it is about,
    /// otherwise the sample is counted for the version that serves when it arrives.
    public var labels: [String: String]

    public init(metric: String, value: Double, time: Date? = nil, labels: [String: String] = [:]) {
        self.metric = metric
        self.value = value
        self.time = time
        self.labels = labels
    }
}

/// What became of a batch of samples for one deployment.
public struct MetricIngestCounts: Sendable, Hashable, Codable {
    /// Added to at least one threshold's window.
    public var accepted = 0
    /// No threshold of any Monitor of the deployment watches the metric.
    public var ignored = 0
    /// About a version that does not serve (an older one, from before a rollout): windows
    /// count only the serving version's samples.
    public var otherVersion = 0
    /// No version of the deployment is known to serve yet, so the sample cannot be attributed.
    public var unattributed = 0
    /// Older than every window that watches the metric.
    public var expired = 0

    public init() {}
}

public enum MetricIngestResult: Sendable, Hashable {
    case ingested(MetricIngestCounts)
    /// No Monitor with a `push` source watches this deployment.
    case unknownDeployment(known: [String])
}

/// Where pushed samples go: the Monitor controller's windows. The HTTP face hands every
/// accepted batch here; the controller reads the windows at each evaluation.
public protocol MetricSink: Sendable {
    func ingest(deployment: String, samples: [MetricSample], receivedAt: Date) -> MetricIngestResult
}

/// The bounds on a sample's timestamp that the push endpoint and every source apply, so a
/// clock that is far off (or a hostile sender) cannot park samples where no window looks.
public enum MetricTimeBounds {
    /// A sample more than this far in the future is refused.
    public static let maximumFuture: TimeInterval = 5 * 60
    /// A sample more than this far in the past is refused (windows are at most 24 h).
    public static let maximumPast: TimeInterval = 24 * 3600

    /// Nil when `time` is acceptable at `now`; otherwise why not, in words.
    public static func problem(with time: Date, now: Date) -> String? {
        let offset = time.timeIntervalSince(now)
        if offset > maximumFuture {
            return "its timestamp is \(Int(offset)) s in the future (at most \(Int(maximumFuture)) s is allowed; is the sender's clock right?)"
        }
        if -offset > maximumPast {
            return "its timestamp is \(Int(-offset)) s in the past (at most \(Int(maximumPast)) s, the longest window, is allowed)"
        }
        return nil
    }
}
