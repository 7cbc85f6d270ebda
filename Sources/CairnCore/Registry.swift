public import Foundation
public import CairnManifests

/// One registered version of a model: what a successful training produced, how it scored,
/// whether it passed its gate, and where it came from. Versions are numbered per model from
/// 1, in the order they were registered, and a number is never given twice.
///
/// Stored as JSON in the `modelVersion` table and written to the status branch as
/// `ModelVersion/<model>/<version>.yaml` in the same transaction, so the registry can be read
/// with git alone.
public struct ModelVersion: Codable, Hashable, Sendable {
    public var model: String
    public var version: Int
    /// The model file as the artifact store holds it (its SHA-256 names it).
    public var artifact: Artifact
    /// The declared path the training wrote the model to (`outputs.model`).
    public var artifactPath: String
    /// The metrics the training wrote, by name; every value finite.
    public var metrics: [String: Double]
    public var gate: GateVerdict
    public var lineage: Lineage
    public var registeredAt: Date

    public init(model: String, version: Int, artifact: Artifact, artifactPath: String, metrics: [String: Double],
                gate: GateVerdict, lineage: Lineage, registeredAt: Date) {
        self.model = model
        self.version = version
        self.artifact = artifact
        self.artifactPath = artifactPath
        self.metrics = metrics
        self.gate = gate
        self.lineage = lineage
        self.registeredAt = registeredAt
    }

    /// `churn@3`.
    public var name: String { "\(model)@\(version)" }
}

/// What the gate decided of a version, rule by rule.
public struct GateVerdict: Codable, Hashable, Sendable {
    public var passed: Bool
    public var rules: [GateRuleResult]

    public init(rules: [GateRuleResult]) {
        self.rules = rules
        passed = rules.allSatisfy(\.passed)
    }

    /// `passed (auc 0.83 >= 0.75)` or `failed: auc 0.61 < 0.75`; `no gate` for none.
    public var summary: String {
        if rules.isEmpty { return "no gate" }
        let failing = rules.filter { !$0.passed }
        if failing.isEmpty { return "passed (" + rules.map(\.verdict).joined(separator: "; ") + ")" }
        return "failed: " + failing.map(\.verdict).joined(separator: "; ")
    }
}

/// One gate rule applied to one version.
public struct GateRuleResult: Codable, Hashable, Sendable {
    /// The rule as written: `auc >= 0.75`, `auc beats production by 0.01`.
    public var rule: String
    public var metric: String
    /// The challenger's value; nil when the metrics lack it.
    public var value: Double?
    /// What the value was compared with: the constant, or the champion's value plus `by`.
    public var threshold: Double?
    public var passed: Bool
    /// For `beats`: the version the Model assigned the stage, as of the commit reconciled when the version was registered.
    public var champion: Int?
    /// For `beats` with a champion: whether both versions were measured on the same feature
    /// artifacts (when not, the comparison is across data and the verdict says so).
    public var sameFeatures: Bool?
    /// The verdict in words: `auc 0.83 >= 0.75`, `no version holds production yet: passes`.
    public var verdict: String

    public init(rule: String, metric: String, value: Double?, threshold: Double?, passed: Bool, champion: Int? = nil,
                sameFeatures: Bool? = nil, verdict: String) {
        self.rule = rule
        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.passed = passed
        self.champion = champion
        self.sameFeatures = sameFeatures
        self.verdict = verdict
    }
}

/// Where a version came from, back to the commit and the data.
public struct Lineage: Codable, Hashable, Sendable {
    /// The TrainingSchedule that trained it.
    public var schedule: String
    /// The commit of the tracked branch the training ran at (hex).
    public var sourceCommit: String
    public var runID: String
    /// The run key: the content key of everything the training's result depends on.
    public var runKey: String
    /// `inputs` (its key changed), `commit`, `schedule`, `manual`, `monitor`.
    public var trigger: String
    /// For a forced training (manual, a tick with `always`, a monitor): which request it was.
    public var triggerID: String?
    /// Why the run started, in words: for a monitor's retrain, the rule and the value that fired.
    public var reason: String?
    public var command: [String]
    /// Whether `command` was a script for /bin/sh -c (`shell: true`).
    public var shell: Bool?
    /// The params as canonical JSON (what the run got as CAIRN_PARAMS).
    public var params: String
    /// Names of the environment variables the run was given.
    public var environment: [String]
    /// The feature pipeline whose outputs it consumed, and those outputs by declared path.
    public var featurePipeline: String?
    public var features: [String: Artifact]
    /// The pipeline run that produced each feature artifact, by path (as the pipeline's status
    /// reported it when the training started).
    public var featureRuns: [String: String]?
    /// Repository files the key covered (declared deps and code found from the command), by path, with their SHA-256.
    public var code: [String: String]
    /// Files outside the repository the key covered, by absolute path, with their SHA-256.
    public var data: [String: String]
    /// The program `command[0]` resolved to, and its hash.
    public var program: String?
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The metrics file, as stored (for `reproduce` to compare too).
    public var metricsArtifact: Artifact?
    public var metricsPath: String?
    public var timeout: Double?

    public init(schedule: String, sourceCommit: String, runID: String, runKey: String, trigger: String, triggerID: String?,
                command: [String], params: String, environment: [String], featurePipeline: String?, features: [String: Artifact],
                code: [String: String], data: [String: String], program: String?, startedAt: Date?, finishedAt: Date?) {
        self.schedule = schedule
        self.sourceCommit = sourceCommit
        self.runID = runID
        self.runKey = runKey
        self.trigger = trigger
        self.triggerID = triggerID
        self.command = command
        self.params = params
        self.environment = environment
        self.featurePipeline = featurePipeline
        self.features = features
        self.code = code
        self.data = data
        self.program = program
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// Seconds between start and end, when both are known.
    public var duration: Double? {
        guard let startedAt, let finishedAt else { return nil }
        return finishedAt.timeIntervalSince(startedAt)
    }
}

/// The registry as controllers may read it.
public protocol ModelVersions {
    /// One version; nil when the model has no such version.
    func version(_ model: String, _ number: Int) throws -> ModelVersion?
    /// The version a run registered, if it registered one.
    func version(registeredBy runID: String) throws -> ModelVersion?
    /// The highest version number the model has been given; 0 when none.
    func latestVersionNumber(of model: String) throws -> Int
    /// The model's stages as accepted so far (empty when none was ever assigned).
    func stageMap(of model: String) throws -> StageMap
    /// How many changes of `stage` of `model` are recorded (the next one's ordinal is one more).
    func stageChangeCount(of model: String, stage: String) throws -> Int
}

/// What a controller keeps between passes about one object (a schedule's last tick, a
/// monitor's pending state), as opaque bytes it encodes itself; and the requests people made
/// of it with `cairn trigger` that are not handled yet.
public protocol ObjectMemory {
    func memory(of object: ObjectRef) throws -> Data?
    /// Pending manual triggers of the object, oldest first.
    func triggers(of object: ObjectRef) throws -> [TriggerRequest]
}

/// A request to run an object now: `cairn trigger` (whatever its key says), or a Monitor
/// (a retrain that trains only new inputs; a rollback of a deployment).
public struct TriggerRequest: Codable, Hashable, Sendable {
    /// Unique: `manual-<time>-<random>`. Recorded in the run it starts.
    public var id: String
    public var object: ObjectRef
    /// `manual` or `monitor`.
    public var source: String
    /// Why, in words (who asked, which rule fired).
    public var reason: String
    public var requestedAt: Date

    /// The source of a Monitor's requests (a retrain, a rollback).
    public static let monitorSource = "monitor"

    public init(id: String, object: ObjectRef, source: String, reason: String, requestedAt: Date) {
        self.id = id
        self.object = object
        self.source = source
        self.reason = reason
        self.requestedAt = requestedAt
    }
}

/// A registry and memory that hold nothing: for contexts made without a store (tests of
/// controllers that use neither).
public struct EmptyRecords: ModelVersions, ObjectMemory {
    public init() {}
    public func version(_ model: String, _ number: Int) throws -> ModelVersion? { nil }
    public func version(registeredBy runID: String) throws -> ModelVersion? { nil }
    public func latestVersionNumber(of model: String) throws -> Int { 0 }
    public func stageMap(of model: String) throws -> StageMap { StageMap() }
    public func stageChangeCount(of model: String, stage: String) throws -> Int { 0 }
    public func memory(of object: ObjectRef) throws -> Data? { nil }
    public func triggers(of object: ObjectRef) throws -> [TriggerRequest] { [] }
}
