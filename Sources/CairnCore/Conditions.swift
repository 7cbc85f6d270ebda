public import Foundation
public import CairnManifests

/// The three values a condition can hold, as in Kubernetes. `Unknown` is an honest answer:
/// for `Ready` it means Cairn has not checked, or cannot check yet, whether the world matches.
public enum ConditionStatus: String, Codable, Hashable, Sendable, CustomStringConvertible {
    case `true` = "True"
    case `false` = "False"
    case unknown = "Unknown"

    public var description: String { rawValue }

    /// Stores written before conditions had three values held a Bool; both read the same.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self = flag ? .true : .false
        } else {
            let text = try container.decode(String.self)
            guard let value = ConditionStatus(rawValue: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text) is not True, False or Unknown")
            }
            self = value
        }
    }
}

/// One condition of an object's status: `Ready`, `Reconciling` or `Stalled`, with a reason, a
/// message and when its status last changed.
public struct Condition: Codable, Hashable, Sendable {
    public var type: String
    public var status: ConditionStatus
    public var reason: String
    public var message: String
    public var lastTransitionTime: Date

    public init(type: String, status: ConditionStatus, reason: String, message: String, lastTransitionTime: Date) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }

    /// Whether two conditions say the same thing, whenever they were written.
    public func sameSubstance(as other: Condition) -> Bool {
        type == other.type && status == other.status && reason == other.reason && message == other.message
    }
}

/// What Cairn last observed of one object.
public struct ObjectStatus: Codable, Hashable, Sendable {
    public var ref: ObjectRef
    /// Where its manifest is, relative to the repository root.
    public var manifestPath: String
    /// The content key of the spec it was reconciled at (observedGeneration).
    public var generation: String
    /// The source commit it was reconciled at.
    public var observedCommit: String
    public var conditions: [Condition]
    /// Consecutive transient failures, for backoff.
    public var failures: Int
    /// When the object is due again (backoff or a requeue), if it is waiting.
    public var nextAttempt: Date?
    /// The runs this status reports (started, running, or whose outputs it uses): the
    /// status commit's `Cairn-Run:` trailers. Nil when none.
    public var runs: [String]?
    /// A Model's stages as accepted (who holds each, since when, by whose commit): written in
    /// its status file, so the file's history is the stage history. Nil for other kinds.
    public var stages: StageMap?
    /// A ModelDeployment's version that was last checked to serve (what a Monitor's windows
    /// count samples for). Nil for other kinds, and while nothing serves.
    public var serving: Int?

    public init(ref: ObjectRef, manifestPath: String, generation: String, observedCommit: String,
                conditions: [Condition], failures: Int = 0, nextAttempt: Date? = nil) {
        self.ref = ref
        self.manifestPath = manifestPath
        self.generation = generation
        self.observedCommit = observedCommit
        self.conditions = conditions
        self.failures = failures
        self.nextAttempt = nextAttempt
    }

    public func condition(_ type: String) -> Condition? { conditions.first { $0.type == type } }

    /// The reason of the condition that is True, Stalled first; otherwise Ready's (which is
    /// how `NotImplemented`, a Ready=Unknown, shows). What a status commit's subject says.
    public var reason: String {
        for type in ["Stalled", "Reconciling", "Ready"] {
            if let condition = condition(type), condition.status == .true { return condition.reason }
        }
        return condition("Ready")?.reason ?? "Unknown"
    }

    /// The message of the condition that explains the status.
    public var primaryMessage: String {
        for type in ["Stalled", "Reconciling", "Ready"] {
            if let condition = condition(type), condition.status == .true { return condition.message }
        }
        return condition("Ready")?.message ?? ""
    }

    public var ready: ConditionStatus { condition("Ready")?.status ?? .unknown }
    public var isReady: Bool { ready == .true }
    public var isStalled: Bool { condition("Stalled")?.status == .true }
    /// Ready=Unknown because the controller of its kind cannot do its work yet.
    public var isNotImplemented: Bool { ready == .unknown && condition("Ready")?.reason == ConditionReason.notImplemented }

    /// Whether this status says something different from `other`: what is worth a status commit.
    public func differsInSubstance(from other: ObjectStatus?) -> Bool {
        guard let other else { return true }
        return generation != other.generation || manifestPath != other.manifestPath || conditions.count != other.conditions.count
            || (runs ?? []) != (other.runs ?? []) || !StageMap.sameSubstance(stages, other.stages) || serving != other.serving
            || zip(conditions, other.conditions).contains { !$0.sameSubstance(as: $1) }
    }
}

/// Reasons the engine itself gives; controllers add their own.
public enum ConditionReason {
    public static let notImplemented = "NotImplemented"
    public static let invalidManifest = "InvalidManifest"
    public static let suspended = "Suspended"
    public static let dependencyNotAccepted = "DependencyNotAccepted"
}
