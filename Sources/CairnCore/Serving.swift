public import Foundation
public import CairnManifests

/// A registered version as a serving target receives it.
public struct ServedVersion: Codable, Sendable, Hashable, CustomStringConvertible {
    public var model: String
    public var version: Int
    /// The model file (or directory) in the artifact store; its SHA-256 names it.
    public var artifact: Artifact
    /// The path the training wrote it to (`outputs.model`, such as `model.bin`): a directory
    /// target names the file after its last component.
    public var artifactPath: String

    public init(model: String, version: Int, artifact: Artifact, artifactPath: String) {
        self.model = model
        self.version = version
        self.artifact = artifact
        self.artifactPath = artifactPath
    }

    public init(_ version: ModelVersion) {
        self.init(model: version.model, version: version.version, artifact: version.artifact, artifactPath: version.artifactPath)
    }

    /// `churn@3`.
    public var description: String { "\(model)@\(version)" }
}

/// What a ModelDeployment asks of its target: serve this version there.
public struct DeploymentRequest: Sendable, Hashable {
    /// The ModelDeployment's name; a target keeps one deployment's things apart from another's by it.
    public var deployment: String
    public var version: ServedVersion
    public var target: ModelDeploymentSpec.Target
    /// The commit of the tracked branch the request comes from (hex): a process target runs
    /// its command in a checkout of it.
    public var sourceCommit: String
    /// The SHA-256 of the repository files the target's commands depend on (those they name
    /// and the Python modules those import, as for a run's key), or nil when none. A process
    /// or command target rolls the same version out again when it changes: a fix to serve.py
    /// is deployed, a README edit is not.
    public var codeKey: String?

    public init(deployment: String, version: ServedVersion, target: ModelDeploymentSpec.Target, sourceCommit: String,
                codeKey: String? = nil) {
        self.deployment = deployment
        self.version = version
        self.target = target
        self.sourceCommit = sourceCommit
        self.codeKey = codeKey
    }
}

/// Where a deployment stands, as its target was last checked.
public struct DeploymentObservation: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable, Codable {
        /// The target was checked and serves the requested version: the proxy answers and the
        /// process is healthy, the directory holds the artifact with the right hash, `apply`
        /// exited 0 and `check` agrees.
        case serving
        /// Work is under way: a process starting or waiting to be healthy, a restart after a
        /// crash (with backoff), an `apply` running. A change brings the object back.
        case progressing
        /// The requested version failed on this target (it never became healthy, it kept
        /// crashing, `apply` failed) and is not tried again until asked with `retry`.
        case failed
        /// The target cannot work as written, whatever happens outside (a directory outside
        /// the allowed roots): the object stalls until its spec changes.
        case refused
    }

    public var phase: Phase
    /// The version this observation is about (the one requested).
    public var version: Int
    /// The version the target serves now, checked, if any: during a blue/green switch the old
    /// one, after a failed start the one that kept serving.
    public var serving: Int?
    /// A condition reason: `Serving`, `Starting`, `WaitingForHealth`, `Restarting`,
    /// `Applying`, `HealthCheckFailed`, `Crashed`, `PortInUse`, `ApplyFailed`, `PathNotAllowed`…
    public var reason: String
    /// What was found, in words, for the status: names the version, the port or the path.
    public var message: String
    /// What Cairn found changed by hand since the last observation and put back (a process
    /// killed and restarted, a directory edited and replaced), in words; the status records it.
    public var drift: [String]
    /// When to check the target again even if nothing happens (a directory or a `check`
    /// command cannot tell Cairn when someone edits it).
    public var recheckAfter: Duration?

    public init(phase: Phase, version: Int, serving: Int?, reason: String, message: String, drift: [String] = [],
                recheckAfter: Duration? = nil) {
        self.phase = phase
        self.version = version
        self.serving = serving
        self.reason = reason
        self.message = message
        self.drift = drift
        self.recheckAfter = recheckAfter
    }
}

/// The seam between the ModelDeployment controller and the targets that serve. Like a job
/// executor, it never makes the controller wait: `ensure` starts what is needed and says
/// where things stand; when something changes by itself (a process became healthy or
/// crashed, an `apply` ended) the deployment's name comes out of `changes` and the engine
/// looks at it again.
public protocol Deployer: Sendable {
    /// Makes the target serve `request.version`, idempotently: the first call for a new
    /// version starts its rollout (blue/green for a process), later calls report on it. A
    /// version that failed on the target stays failed, and is not tried again, until a call
    /// with `retry` (git changed, or a person asked).
    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation
    /// Takes down everything the deployment made (its processes and proxy, its directory's
    /// versions, `remove` for a command target). Idempotent; a deployment it does not know is
    /// nothing to do.
    func remove(deployment: String) async throws
    /// After a restart: takes back what a previous daemon left serving (processes still alive
    /// and healthy are adopted, never started twice; leftovers of an interrupted switch are
    /// stopped). Returns the deployments it found.
    func recover() async throws -> [String]
    /// Deployments with work under way (a switch, an `apply`): `reconcile --once` waits for them.
    func inFlight() async -> [String]
    /// The name of each deployment whose state changed by itself.
    var changes: AsyncStream<String> { get }
}
