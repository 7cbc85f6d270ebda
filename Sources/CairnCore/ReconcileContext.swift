public import Foundation
public import CairnManifests
public import Logging

/// What a controller may use while it reconciles one object, and nothing more: the source
/// commit and its files, the statuses of what the object depends on, the store through
/// narrow protocols, the job executor, the time and a logger.
///
/// Not Sendable: it lives for one call, on the engine's executor (the controller's async
/// function runs on its caller's actor), and the repository reader inside it must not travel.
public struct ReconcileContext {
    /// The object being reconciled.
    public let object: ObjectRef
    /// The commit of the tracked branch this pass reconciles (hex).
    public let sourceCommit: String
    /// Who made `sourceCommit` and when (what a stage change records); nil where unknown.
    public var sourceAuthor: CommitAuthor?
    /// The repository's files at `sourceCommit`.
    public let files: any SourceFiles
    /// The current status of every object this one depends on (from this pass when it was
    /// evaluated before, otherwise as last stored). Each is accepted: valid and not stalled.
    public let dependencies: [ObjectRef: ObjectStatus]
    /// The status the object had before this pass, if any.
    public let previous: ObjectStatus?
    /// Runs recorded in the metadata store.
    public let runs: any RunRecords
    /// The model registry, with the versions this pass registered before this object.
    public let versions: any ModelVersions
    /// What the controller kept about objects between passes, and pending manual triggers.
    public let memory: any ObjectMemory
    /// The manifests of the objects this one depends on, as of `sourceCommit` (a
    /// TrainingSchedule reads its FeaturePipeline's outputs).
    public let relatedManifests: [ObjectRef: Manifest]
    /// Where jobs run, the artifact store and what the daemon allows; nil where nothing may
    /// run (a controller then says so rather than pretend).
    public let execution: Execution?
    /// Where models are served (process, directory and command targets); nil where nothing
    /// may be deployed (a ModelDeployment then says so rather than pretend).
    public var deployer: (any Deployer)?
    /// Any object's manifest at `sourceCommit` (nil when it has none, or it does not parse):
    /// for a controller that acts on objects it does not depend on (a Monitor retrains the
    /// schedule that trained the serving version, and proposes a promotion in the Model's file).
    public var manifest: (ObjectRef) -> Manifest? = { _ in nil }
    /// Any object's status, from this pass when it was evaluated before, otherwise as stored.
    public var status: (ObjectRef) -> ObjectStatus? = { _ in nil }
    /// The pass's time: one instant for every object of a pass.
    public let now: Date
    /// Carries `cairn.object` and `cairn.commit` metadata.
    public let logger: Logger

    public init(object: ObjectRef, sourceCommit: String, files: any SourceFiles, dependencies: [ObjectRef: ObjectStatus],
                previous: ObjectStatus?, runs: any RunRecords, versions: any ModelVersions = EmptyRecords(),
                memory: any ObjectMemory = EmptyRecords(), relatedManifests: [ObjectRef: Manifest] = [:],
                execution: Execution?, now: Date, logger: Logger) {
        self.object = object
        self.sourceCommit = sourceCommit
        self.files = files
        self.dependencies = dependencies
        self.previous = previous
        self.runs = runs
        self.versions = versions
        self.memory = memory
        self.relatedManifests = relatedManifests
        self.execution = execution
        self.now = now
        self.logger = logger
    }
}

/// Read access to the repository's files at one commit. Paths are repository paths, which
/// cannot leave the repository.
public protocol SourceFiles {
    /// The bytes of a regular file; nil when there is no file at `path`.
    func contents(of path: RepositoryPath) throws -> Data?
    /// SHA-256 of a file's bytes, or of a directory's listing (each file's hash and relative
    /// path, sorted); nil when nothing is at `path`.
    func contentHash(of path: RepositoryPath) throws -> ContentHash?
}

/// The SHA-256 of some content, written `sha256:<hex>`.
public struct ContentHash: Hashable, Sendable, Codable, CustomStringConvertible {
    public let hex: String

    public init(hex: String) { self.hex = hex }

    public var description: String { "sha256:\(hex)" }
}
