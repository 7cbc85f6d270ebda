public import Foundation
public import CairnManifests

/// One run of a job as the metadata store keeps it: written before the job starts, updated
/// when it ends, so a run in flight when the daemon died can be found and adopted.
///
/// Stored as JSON in the `run` table; every field added after the first version is optional
/// or has a default when decoding, so older rows still read.
public struct RunRecord: Codable, Hashable, Sendable {
    public enum State: String, Codable, Hashable, Sendable {
        /// Recorded, waiting for a slot or starting.
        case submitted
        case running
        case succeeded
        case failed
        /// The daemon died while it ran and nothing says how it ended.
        case interrupted
        case cancelled
        /// Not run: its key had succeeded before, and that run's outputs were reused.
        case skipped

        /// Whether the run is over, one way or another.
        public var isFinal: Bool { self != .submitted && self != .running }
    }

    /// Unique per run.
    public var id: String
    /// The run key: the content key of everything the run's result depends on.
    public var key: String
    /// The object that asked for the run.
    public var object: ObjectRef
    /// The pipeline stage it runs, for a FeaturePipeline.
    public var stage: String?
    public var state: State
    /// What started it: `inputs`, `schedule`, `manual`, `monitor`.
    public var trigger: String
    /// For a forced run (`cairn trigger`, a tick with `always`, a monitor): the request it
    /// answers. A forced run never reuses an earlier run of its key.
    public var triggerID: String?
    /// Why it ran, in words: which inputs changed since the last run (or why it was skipped).
    public var reason: String?
    /// The commit of the tracked branch it ran for (hex).
    public var sourceCommit: String
    /// The argv it ran.
    public var command: [String]
    /// Each part of the key by name (`dep:data/raw.csv`, `program`, `params`, …) with its hash,
    /// so the next run can say which of them changed.
    public var inputs: [String: String]
    /// 1 for the first try of a key, 2 for its first retry, …
    public var attempt: Int
    /// Which executor holds it and under what id (a pid with its start time, a Slurm job id).
    public var handle: JobHandle?
    /// The run this one reused, for a skipped run.
    public var reused: String?
    public var submittedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var exitStatus: Int32?
    public var signal: Int32?
    /// How it ended, in words, with the last lines of its log when it failed (secrets redacted).
    public var message: String?
    /// The log file (standard output and error together).
    public var logPath: String?
    /// What it produced, by declared output path, once it succeeded.
    public var outputs: [String: Artifact]
    /// The params it got (CAIRN_PARAMS), as canonical JSON.
    public var params: String?
    /// The artifacts restored into its checkout before it ran (upstream outputs, features), by path.
    public var consumed: [String: Artifact]?
    /// Which run produced each consumed artifact, by path, where the object knew it (a
    /// training: the runs its feature pipeline's status reported), for lineage.
    public var producers: [String: String]?
    /// What the object that asked for the run needs to know of it afterwards, as its spec
    /// said when it ran (a training: its model and output paths), since the spec may change
    /// while it runs.
    public var annotations: [String: String]?

    public init(id: String, key: String, object: ObjectRef, stage: String? = nil, state: State, trigger: String,
                reason: String? = nil, sourceCommit: String, command: [String] = [], inputs: [String: String] = [:],
                attempt: Int = 1, submittedAt: Date, finishedAt: Date? = nil) {
        self.id = id
        self.key = key
        self.object = object
        self.stage = stage
        self.state = state
        self.trigger = trigger
        self.reason = reason
        self.sourceCommit = sourceCommit
        self.command = command
        self.inputs = inputs
        self.attempt = attempt
        self.submittedAt = submittedAt
        self.finishedAt = finishedAt
        self.outputs = [:]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        key = try c.decode(String.self, forKey: .key)
        object = try c.decode(ObjectRef.self, forKey: .object)
        stage = try c.decodeIfPresent(String.self, forKey: .stage)
        state = try c.decode(State.self, forKey: .state)
        trigger = try c.decode(String.self, forKey: .trigger)
        triggerID = try c.decodeIfPresent(String.self, forKey: .triggerID)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        sourceCommit = try c.decode(String.self, forKey: .sourceCommit)
        command = try c.decodeIfPresent([String].self, forKey: .command) ?? []
        inputs = try c.decodeIfPresent([String: String].self, forKey: .inputs) ?? [:]
        attempt = try c.decodeIfPresent(Int.self, forKey: .attempt) ?? 1
        handle = try c.decodeIfPresent(JobHandle.self, forKey: .handle)
        reused = try c.decodeIfPresent(String.self, forKey: .reused)
        submittedAt = try c.decode(Date.self, forKey: .submittedAt)
        startedAt = try c.decodeIfPresent(Date.self, forKey: .startedAt)
        finishedAt = try c.decodeIfPresent(Date.self, forKey: .finishedAt)
        exitStatus = try c.decodeIfPresent(Int32.self, forKey: .exitStatus)
        signal = try c.decodeIfPresent(Int32.self, forKey: .signal)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        logPath = try c.decodeIfPresent(String.self, forKey: .logPath)
        outputs = try c.decodeIfPresent([String: Artifact].self, forKey: .outputs) ?? [:]
        params = try c.decodeIfPresent(String.self, forKey: .params)
        consumed = try c.decodeIfPresent([String: Artifact].self, forKey: .consumed)
        producers = try c.decodeIfPresent([String: String].self, forKey: .producers)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
    }
}

/// The runs part of the metadata store, as controllers may read it.
public protocol RunRecords: Sendable {
    /// Every run with this key, newest first; not the records of skips (which ran nothing).
    func runs(withKey key: String) throws -> [RunRecord]
    /// The newest runs an object asked for, newest first.
    func runs(of object: ObjectRef, limit: Int) throws -> [RunRecord]
    func run(id: String) throws -> RunRecord?
}

/// The runs part of the metadata store as an executor writes it: the row goes in before the
/// process starts and is updated as the run moves on, each write durable when it returns.
public protocol RunLedger: RunRecords {
    /// Inserts the run, or replaces the one with the same id.
    func record(_ run: RunRecord) throws
    /// Runs not yet over (submitted or running), oldest first: what a restarted executor adopts.
    func unfinishedRuns() throws -> [RunRecord]
}

/// A write to the metadata store that a controller asks for. The engine applies it in the
/// same transaction as the object's status and the outbox entry that carries the status to
/// git, so the record and the status can never disagree after a crash.
public enum StoreEffect: Sendable, Hashable {
    /// Insert the run, or replace the one with the same id (a skipped run, say; runs an
    /// executor started are written by the executor itself, before they start).
    case recordRun(RunRecord)
    /// Register a model version; the status commit of the pass writes its file
    /// (`ModelVersion/<model>/<n>.yaml`) and names it in a `Cairn-Model-Version:` trailer.
    case registerVersion(ModelVersion)
    /// Replace what a controller keeps about an object between passes (nil forgets it).
    case remember(ObjectRef, Data?)
    /// A manual trigger was answered (a run was started for it): remove it.
    case consumeTrigger(String)
    /// Ask another object to act now (a monitor's retrain of a TrainingSchedule, its rollback
    /// of a ModelDeployment), as `cairn trigger` does.
    case addTrigger(TriggerRequest)
    /// A stage of a model moved (the Model controller accepted an assignment): record it in the
    /// stage history; the status commit of the pass names it in a `Cairn-Stage:` trailer.
    case changeStage(StageChange)
}
