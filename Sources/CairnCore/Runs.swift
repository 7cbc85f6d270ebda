public import Foundation
public import CairnManifests

/// One run of a job as the metadata store keeps it: written before the job starts, updated
/// when it ends, so a run in flight when the daemon died can be found and adopted.
public struct RunRecord: Codable, Hashable, Sendable {
    public enum State: String, Codable, Hashable, Sendable {
        case submitted, running, succeeded, failed, interrupted, cancelled

        /// Whether the run is over, one way or another.
        public var isFinal: Bool { self != .submitted && self != .running }
    }

    /// Unique per run.
    public var id: String
    /// The run key: the content key of everything the run's result depends on.
    public var key: String
    /// The object that asked for the run.
    public var object: ObjectRef
    public var state: State
    /// What started it: `inputs`, `schedule`, `manual`, `monitor`.
    public var trigger: String
    /// The commit of the tracked branch it ran for (hex).
    public var sourceCommit: String
    public var submittedAt: Date
    public var finishedAt: Date?

    public init(id: String, key: String, object: ObjectRef, state: State, trigger: String, sourceCommit: String,
                submittedAt: Date, finishedAt: Date? = nil) {
        self.id = id
        self.key = key
        self.object = object
        self.state = state
        self.trigger = trigger
        self.sourceCommit = sourceCommit
        self.submittedAt = submittedAt
        self.finishedAt = finishedAt
    }
}

/// The runs part of the metadata store, as controllers may read it.
public protocol RunRecords: Sendable {
    /// Every run with this key, newest first.
    func runs(withKey key: String) throws -> [RunRecord]
    /// The newest runs an object asked for, newest first.
    func runs(of object: ObjectRef, limit: Int) throws -> [RunRecord]
}

/// A write to the metadata store that a controller asks for. The engine applies it in the
/// same transaction as the object's status and the outbox entry that carries the status to
/// git, so the record and the status can never disagree after a crash.
public enum StoreEffect: Sendable, Hashable {
    /// Insert the run, or replace the one with the same id.
    case recordRun(RunRecord)
}
