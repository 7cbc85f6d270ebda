public import Foundation
public import CairnManifests
public import CairnCore

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
    /// The runs the status reports, written as `Cairn-Run:` trailers.
    public var runs: [String]?
    /// Files written in the same status commit besides the object's own (a registered
    /// version's `ModelVersion/<model>/<n>.yaml`), by path.
    public var files: [String: String]?
    /// The model versions the commit registers, `churn@3`, written as `Cairn-Model-Version:` trailers.
    public var versions: [String]?
    /// The stage changes the commit records, each written as a `Cairn-Stage:` trailer.
    public var stageChanges: [StageChange]?
    /// A change proposed with this status (a rollback's reverse assignment): the writer puts
    /// it on its own branch, `cairn/proposals/<slug>-<n>`, before the status commit, which
    /// names the branch in a `Cairn-Proposal:` trailer.
    public var proposal: Proposal?

    public init(id: Int64? = nil, kind: Kind, ref: ObjectRef?, reason: String, body: String, detail: String = "",
                sourceCommit: String, createdAt: Date, runs: [String]? = nil) {
        self.runs = runs
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
    /// Records controllers asked for, written with the statuses they explain.
    public var effects: [StoreEffect] = []
    /// The specs objects were reconciled with, kept as their last good spec.
    public var accepted: [(ObjectRef, Spec)] = []
    /// The manifest files that could not be read (each with its first problem), when the pass read the commit.
    public var invalidFiles: [String]?
    /// What the pass read with (manifest path, tree bounds), when it differs from the last.
    public var readSettings: String?
    /// The source commit the pass reconciled, recorded as the last reconciled one.
    public var reconciledCommit: String?
    public var summary: String?

    public init() {}

    public var isEmpty: Bool {
        upserts.isEmpty && deletions.isEmpty && effects.isEmpty && accepted.isEmpty && invalidFiles == nil && readSettings == nil && events.isEmpty && outbox.isEmpty && reconciledCommit == nil
    }
}
