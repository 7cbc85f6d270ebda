public import Foundation
public import CairnCore
public import CairnManifests
public import CairnRun
public import Logging

/// What every serving target needs from the daemon: where to keep its records, the artifact
/// store the versions come from, the repository's files, and what the daemon allows.
public struct ServingEnvironment: Sendable {
    /// `<state>/serving`: one directory per deployment, holding each target's record of it
    /// (`process.json`, `directory.json`, `command.json`) and, for a process target, each
    /// version's checkout and log.
    public var directory: URL
    public var artifacts: ArtifactStore
    /// Writes a commit's files into a directory (a process target runs in such a checkout).
    public var source: any SourceCheckout
    /// The tracked repository's working directory, when it has one (a local repository): a
    /// directory target's relative `path` is under it. Nil for a remote's bare mirror.
    public var repositoryRoot: URL?
    /// Absolute, normalized directories outside the repository a directory target may write under (`--data-root`).
    public var dataRoots: [String]
    /// Whether process targets may run here: only a process that stays (`cairn run`, the demo)
    /// can keep a proxy and its servers up; `reconcile --once` leaves them to the daemon.
    public var processes: Bool
    public var logger: Logger

    public init(directory: URL, artifacts: ArtifactStore, source: any SourceCheckout, repositoryRoot: URL?, dataRoots: [String],
                processes: Bool, logger: Logger) {
        self.directory = directory
        self.artifacts = artifacts
        self.source = source
        self.repositoryRoot = repositoryRoot
        self.dataRoots = dataRoots
        self.processes = processes
        self.logger = logger
    }
}

/// One kind of target behind the `Deployer`: each keeps its own deployments apart by name.
protocol ServingTarget: Sendable {
    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation
    /// Takes down what this target made for the deployment, if anything.
    func remove(deployment: String) async throws
    /// The deployments this target found left by a previous daemon (and took back).
    func recover() async throws -> [String]
    func inFlight() async -> [String]
}

/// The daemon's `Deployer`: sends each request to the target its spec names, and takes a
/// deployment off the target it leaves when its spec moves it to another kind of target.
public actor ServingDeployer: Deployer {
    public nonisolated let changes: AsyncStream<String>
    private let changed: AsyncStream<String>.Continuation
    private let processes: ProcessTarget
    private let directories: DirectoryTarget
    private let commands: CommandTarget
    private let directory: URL
    /// The kind of target each deployment was last sent to.
    private var targetOf: [String: TargetKind] = [:]

    enum TargetKind: Hashable { case process, directory, command }

    public init(environment: ServingEnvironment) throws {
        try FileManager.default.createDirectory(at: environment.directory, withIntermediateDirectories: true)
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        changes = stream
        changed = continuation
        directory = environment.directory
        let notify: @Sendable (String) -> Void = { continuation.yield($0) }
        processes = try ProcessTarget(environment: environment, notify: notify)
        directories = try DirectoryTarget(environment: environment, notify: notify)
        commands = try CommandTarget(environment: environment, notify: notify)
    }

    public func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        let kind = Self.kind(of: request.target)
        if let previous = targetOf[request.deployment], previous != kind {
            try await target(previous).remove(deployment: request.deployment)
        }
        targetOf[request.deployment] = kind
        return try await target(kind).ensure(request, retry: retry)
    }

    public func remove(deployment: String) async throws {
        for kind in [TargetKind.process, .directory, .command] { try await target(kind).remove(deployment: deployment) }
        targetOf[deployment] = nil
        // Each target removed its own files; the folder goes once nothing is left in it.
        let folder = directory.appendingPathComponent(deployment, isDirectory: true)
        if (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: folder)
        }
    }

    public func recover() async throws -> [String] {
        var found: [String] = []
        for kind in [TargetKind.process, .directory, .command] {
            for name in try await target(kind).recover() {
                targetOf[name] = kind
                found.append(name)
            }
        }
        return found
    }

    public func inFlight() async -> [String] {
        var names: [String] = []
        for kind in [TargetKind.process, .directory, .command] { names += await target(kind).inFlight() }
        return names
    }

    /// Stops everything this process serves (the demo's end, a test's): processes and proxies.
    /// A daemon that stops does not call this: its servers go on and the next one adopts them.
    public func shutdown() async {
        await processes.shutdown()
        changed.finish()
    }

    private func target(_ kind: TargetKind) -> any ServingTarget {
        switch kind {
        case .process: processes
        case .directory: directories
        case .command: commands
        }
    }

    static func kind(of target: ModelDeploymentSpec.Target) -> TargetKind {
        switch target {
        case .process: .process
        case .directory: .directory
        case .command: .command
        }
    }
}
