import CairnCore
import CairnManifests
import CairnRun
import Foundation

/// A version as a request asks for it: a process of the same version started from another
/// command or health check is a different thing to serve.
struct Wanted: Sendable {
    var version: ServedVersion
    var command: [String]
    var health: ModelDeploymentSpec.Health?
    var commit: String
    /// The hash of the files the command depends on (`DeploymentRequest.codeKey`): a process
    /// started from other code is not the one wanted, whatever its commit.
    var codeKey: String?

    /// Whether a process started for `self` is the one `other` asks for: the same version,
    /// command, health check and code. The commit is not part of it.
    func sameServer(as other: Wanted) -> Bool {
        version == other.version && command == other.command && health == other.health && codeKey == other.codeKey
    }
}

/// One process of a version: started here or adopted.
struct Instance: Sendable {
    var version: ServedVersion
    var command: [String]
    var health: ModelDeploymentSpec.Health?
    var commit: String
    var codeKey: String?
    var token: String
    var port: Int
    var process: ProcessHandle?
    var healthySince: ContinuousClock.Instant?
    /// The health loop of a serving process (and the exit watch of an adopted one).
    var monitor: Task<Void, Never>?
    var logURL: URL?

    init(_ wanted: Wanted, token: String, port: Int) {
        version = wanted.version
        command = wanted.command
        health = wanted.health
        commit = wanted.commit
        codeKey = wanted.codeKey
        self.token = token
        self.port = port
    }

    init(entry: ProcessRecord.Entry, process: ProcessHandle) {
        version = entry.version
        command = entry.command
        health = entry.health
        commit = entry.commit
        codeKey = entry.codeKey
        token = entry.token
        port = entry.port
        self.process = process
    }

    func matches(_ wanted: Wanted) -> Bool { self.wanted.sameServer(as: wanted) }

    var wanted: Wanted { Wanted(version: version, command: command, health: health, commit: commit, codeKey: codeKey) }

    var entry: ProcessRecord.Entry {
        ProcessRecord.Entry(version: version, command: command, health: health, commit: commit, codeKey: codeKey, token: token,
                            port: port, pid: process?.pid, startTicks: process?.startTicks)
    }

    /// `pid 1234 on port 40123`.
    var placement: String { process.map { "pid \($0.pid) on port \(port)" } ?? "port \(port)" }

    /// `healthy at /healthz`, or `accepting connections`.
    var healthText: String { health.map { "healthy at \($0.path)" } ?? "accepting connections" }
}

/// A serving version that crashed and is being brought back.
struct Restarting: Sendable {
    var wanted: Wanted
    /// The process started again, once the backoff has passed.
    var attempt: Instance?
    var timer: Task<Void, Never>?
    /// What happened to it, for messages: `crashed (churn@2's process (pid 123) exited …)`.
    var what: String

    func matches(_ wanted: Wanted) -> Bool { self.wanted.sameServer(as: wanted) }
}

/// A version that failed here and is not tried again until asked with `retry`.
struct Failure: Sendable {
    var version: Int
    var reason: String
    var message: String
}

/// All the target knows about one deployment.
struct Deployment: Sendable {
    let name: String
    var record: ProcessRecord
    let route = ProxyRoute()
    var proxy: ReverseProxy?
    var binding: Task<ReverseProxy, any Error>?
    /// The version behind the proxy, healthy when last checked.
    var serving: Instance?
    /// A version being started to replace it (blue/green).
    var candidate: Instance?
    /// The serving version, crashed and coming back.
    var restarting: Restarting?
    /// Old versions finishing their requests before they are stopped.
    var retiring: [String: Instance] = [:]
    var failure: Failure?
    /// What happened by itself since the last change (crashes and restarts), for the status.
    var drift: [String] = []
    var crashes: [ContinuousClock.Instant] = []
    var restarts = 0

    /// The deployment as its record says, or new. A record that cannot be read is an error,
    /// never a fresh start: a new record would forget the tokens of the processes the old
    /// one names, and nothing could find them again.
    init(name: String, directory: URL) throws {
        self.name = name
        let prefix = "cairn-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        do {
            record = try ProcessRecord.load(from: directory) ?? ProcessRecord(publicPort: nil, tokenPrefix: prefix)
        } catch {
            let path = directory.appendingPathComponent(ProcessRecord.fileName).path
            throw ReconcileError(.transient, reason: "ServingRecordUnreadable",
                                 message: "\(path) cannot be read (\(error)); nothing is started for \(name) until it can, so the "
                                     + "processes it names are not lost: fix the file, or stop those processes and delete it")
        }
    }

    init(name: String, record: ProcessRecord) {
        self.name = name
        self.record = record
    }

    var publicAddress: String { "127.0.0.1:\(proxy?.port ?? record.publicPort ?? 0)" }
}

extension ProcessTarget {
    /// Where the deployment stands for the version asked for, in words for the status.
    func observe(_ deployment: Deployment, _ wanted: Wanted) -> DeploymentObservation {
        let version = wanted.version.version
        let serving = deployment.serving?.version.version
        let keeps = deployment.serving.map { "; \($0.version) keeps serving at \(deployment.publicAddress)" } ?? ""
        if let failure = deployment.failure, failure.version == version {
            return DeploymentObservation(phase: .failed, version: version, serving: serving, reason: failure.reason,
                                         message: failure.message + keeps, drift: deployment.drift)
        }
        if let instance = deployment.serving, instance.matches(wanted) {
            return DeploymentObservation(
                phase: .serving, version: version, serving: version, reason: "Serving",
                message: "\(instance.version) serves at \(deployment.publicAddress) (\(instance.placement), \(instance.healthText))",
                drift: deployment.drift)
        }
        if let restarting = deployment.restarting, restarting.matches(wanted) {
            let attempt = restarting.attempt.map { "started again (\($0.placement)), waiting for it to be healthy" }
                ?? "waiting to start it again"
            return DeploymentObservation(
                phase: .progressing, version: version, serving: nil, reason: "Restarting",
                message: "\(restarting.wanted.version) \(restarting.what); \(attempt); the proxy at \(deployment.publicAddress) answers 503 meanwhile",
                drift: deployment.drift)
        }
        if let candidate = deployment.candidate, candidate.matches(wanted) {
            guard candidate.process != nil else {
                return DeploymentObservation(phase: .progressing, version: version, serving: serving, reason: "Starting",
                                             message: "starting \(candidate.version) on port \(candidate.port)" + keeps,
                                             drift: deployment.drift)
            }
            let check = candidate.health.map { "to answer \($0.path)" } ?? "to accept connections"
            return DeploymentObservation(
                phase: .progressing, version: version, serving: serving, reason: "WaitingForHealth",
                message: "\(candidate.version) started (\(candidate.placement)), waiting for it \(check)" + keeps,
                drift: deployment.drift)
        }
        return DeploymentObservation(phase: .progressing, version: version, serving: serving, reason: "Starting",
                                     message: "\(wanted.version) is not started yet" + keeps, drift: deployment.drift)
    }
}
