public import Foundation
public import CairnManifests

/// One condition of an object's status, as in Kubernetes: `Ready`, `Reconciling` or `Stalled`,
/// each True or False with a reason, a message and when it last changed.
public struct Condition: Codable, Hashable, Sendable {
    public var type: String
    public var status: Bool
    public var reason: String
    public var message: String
    public var lastTransitionTime: Date

    public init(type: String, status: Bool, reason: String, message: String, lastTransitionTime: Date) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}

/// What Cairn last observed of one object.
public struct ObjectStatus: Codable, Hashable, Sendable {
    public var ref: ObjectRef
    /// Where its manifest is, relative to the repository root.
    public var manifestPath: String
    /// The hash of the spec it was reconciled at (observedGeneration).
    public var generation: String
    /// The source commit it was reconciled at.
    public var observedCommit: String
    public var conditions: [Condition]
    /// Consecutive transient failures, for backoff.
    public var failures: Int
    /// When the object is due again (backoff or a requeue), if it is waiting.
    public var nextAttempt: Date?

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

    /// The reason of the condition that is True, Ready first; what a status commit's subject says.
    public var reason: String {
        for type in ["Stalled", "Reconciling", "Ready"] {
            if let condition = condition(type), condition.status { return condition.reason }
        }
        return condition("Ready")?.reason ?? "Unknown"
    }

    public var isReady: Bool { condition("Ready")?.status == true }
}

/// Something that happened to an object, kept for `cairn history`.
public struct Event: Codable, Hashable, Sendable {
    public var id: Int64?
    public var ref: ObjectRef
    public var time: Date
    public var reason: String
    public var message: String
    public var sourceCommit: String

    public init(id: Int64? = nil, ref: ObjectRef, time: Date, reason: String, message: String, sourceCommit: String) {
        self.id = id
        self.ref = ref
        self.time = time
        self.reason = reason
        self.message = message
        self.sourceCommit = sourceCommit
    }
}

/// A change waiting to be written to git: an object's status file (or its removal), or the
/// note on a source commit. Written in the same transaction as the state it reflects.
public struct OutboxEntry: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case status, removal, note
    }

    public var id: Int64?
    public var kind: Kind
    /// The object, for status and removal entries.
    public var ref: ObjectRef?
    public var reason: String
    /// The status file's content (status), or the note's text (note).
    public var body: String
    /// One line for the status commit's body: what the status says.
    public var detail: String
    public var sourceCommit: String
    public var createdAt: Date

    public init(id: Int64? = nil, kind: Kind, ref: ObjectRef?, reason: String, body: String, detail: String = "",
                sourceCommit: String, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.ref = ref
        self.reason = reason
        self.body = body
        self.detail = detail
        self.sourceCommit = sourceCommit
        self.createdAt = createdAt
    }
}

/// Everything one reconcile pass changes, applied in one transaction.
public struct PassChanges: Sendable {
    public var upserts: [ObjectStatus] = []
    public var deletions: [ObjectRef] = []
    public var events: [Event] = []
    public var outbox: [OutboxEntry] = []
    /// The source commit the pass reconciled, recorded as the last reconciled one.
    public var reconciledCommit: String?
    public var summary: String?

    public init() {}

    public var isEmpty: Bool {
        upserts.isEmpty && deletions.isEmpty && events.isEmpty && outbox.isEmpty && reconciledCommit == nil
    }
}
