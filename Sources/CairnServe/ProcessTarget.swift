import AsyncHTTPClient
import CairnCore
import CairnManifests
import CairnRun
import Foundation
import Logging
import NIOCore

/// Supervised serving processes behind Cairn's own reverse proxy, one per deployment on its
/// public port. Each version runs as its own process on a port Cairn picks; a new version goes
/// out blue/green (start it, wait until healthy, switch the proxy, drain and stop the old
/// one), so no request fails during a switch. A process that crashes is restarted with
/// backoff; one that keeps crashing fails. `ensure` never waits: the work runs in tasks that
/// report back to this actor, which owns all state, and `notify` brings the deployment back.
actor ProcessTarget: ServingTarget {
    /// The timings and thresholds of supervision: production defaults, shorter in tests.
    struct Tuning: Sendable {
        /// How often a healthy process is checked.
        var checkInterval: Duration = .seconds(5)
        /// Failed checks in a row that count as a crash.
        var failedChecksForCrash = 3
        /// How long one health check may take.
        var checkTimeout: Duration = .seconds(2)
        /// While starting, checks begin this quickly and slow down to `startPollMax`.
        var startPollFirst: Duration = .milliseconds(20)
        var startPollMax: Duration = .milliseconds(250)
        /// How long a version may take to become healthy when its spec says nothing.
        var healthTimeout: Duration = .seconds(30)
        /// Delay before restarting a crashed process, by the number of restarts so far.
        var restartBackoff = Backoff(base: 1, factor: 2, maximum: 60, jitter: 0)
        /// This many crashes within `crashWindow`, without staying healthy for `stableAfter`
        /// in between, fail the version (`CrashLoop`).
        var crashLimit = 3
        var crashWindow: Duration = .seconds(300)
        var stableAfter: Duration = .seconds(60)
        /// How long an old version may take to finish its requests after a switch.
        var drainTimeout: Duration = .seconds(30)
        /// Between SIGTERM and SIGKILL.
        var stopGrace: Duration = .seconds(5)
        /// The most a serving log keeps (it is cut to its newer half beyond).
        var logCap = 8 << 20
        /// The most a request's or an answer's body may hold through the proxy.
        var bodyLimit = 16 << 20
        /// How long a serving process may take to answer a request.
        var upstreamTimeout: Duration = .seconds(300)

        init() {}
    }

    /// The environment variable that marks each serving process with its own token.
    static let tokenVariable = "CAIRN_SERVE_TOKEN"

    let environment: ServingEnvironment
    let tuning: Tuning
    let notify: @Sendable (String) -> Void
    let client: HTTPClient
    var logger: Logger { environment.logger }
    var deployments: [String: Deployment] = [:]
    /// Set when this target stops looking after its processes (shut down, or abandoned as a
    /// killed daemon would): late reports from its tasks change nothing then.
    var closed = false

    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void) throws {
        try self.init(environment: environment, notify: notify, tuning: Tuning())
    }

    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void, tuning: Tuning) throws {
        self.environment = environment
        self.notify = notify
        self.tuning = tuning
        client = Self.sharedClient
    }

    /// One client for every proxy and health check of the process, for its whole life: a
    /// keep-alive pool per upstream port, redirects relayed rather than followed. Never shut
    /// down, so it must outlive every target: AsyncHTTPClient traps when a client it was not
    /// told to shut down is freed (an engine dropped on an error path, or at exit).
    static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(2)), decompression: .disabled)
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        let version = request.version.version
        guard case .process(let command, let port, let health) = request.target else {
            return DeploymentObservation(phase: .refused, version: version, serving: nil, reason: "WrongTarget",
                                         message: "\(request.deployment) is not a process target")
        }
        guard environment.processes else {
            return DeploymentObservation(phase: .progressing, version: version, serving: nil, reason: "WaitingForDaemon",
                                         message: "process targets are served while `cairn run` runs; this pass starts nothing")
        }
        guard !command.isEmpty else {
            return DeploymentObservation(phase: .refused, version: version, serving: nil, reason: "EmptyCommand",
                                         message: "the process target of \(request.deployment) has an empty command")
        }
        let name = request.deployment
        if deployments[name] == nil { deployments[name] = try Deployment(name: name, directory: directory(of: name)) }
        if let problem = await bindProxy(name, port: port, version: version) { return problem }
        let wanted = Wanted(version: request.version, command: command, health: health, commit: request.sourceCommit,
                            codeKey: request.codeKey)
        let observation = try decide(name, wanted, retry: retry)
        return await checkingProxy(name, observation)
    }

    /// Serving is said only once the public port answers the health check through the proxy,
    /// as a client would reach the version. A proxy that does not answer at all is started
    /// again at the next look; one that answers, but not 2xx (the server behind it just died,
    /// say), is left alone while the server's own watch deals with the server.
    private func checkingProxy(_ name: String, _ observation: DeploymentObservation) async -> DeploymentObservation {
        guard observation.phase == .serving, let proxy = deployments[name]?.proxy, let serving = deployments[name]?.serving else {
            return observation
        }
        let path = serving.health?.path
        let status: UInt?
        if let path {
            let answer = try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(proxy.port)\(path)"),
                                                   timeout: .nanoseconds(Int64(tuning.checkTimeout.nanoseconds)))
            _ = try? await answer?.body.collect(upTo: 1 << 20)
            status = answer.map { UInt($0.status.code) }
        } else {
            status = Loopback.accepts(port: proxy.port) ? 200 : nil
        }
        if let status, (200..<300).contains(status) { return observation }
        guard status == nil else {
            // The server behind it died since `decide` looked: that is a crash, now.
            if let process = serving.process, !process.isAlive {
                exited(name, serving.token, process.termination)
                if let deployment = deployments[name] { return observe(deployment, serving.wanted) }
            }
            return DeploymentObservation(
                phase: .progressing, version: observation.version, serving: nil, reason: "WaitingForHealth",
                message: "\(name)'s proxy on 127.0.0.1:\(proxy.port) answered \(path ?? "/") with HTTP \(status ?? 0); looking again",
                recheckAfter: .seconds(1))
        }
        if deployments[name]?.proxy === proxy {
            deployments[name]?.proxy = nil
            await proxy.stop()
        }
        return DeploymentObservation(
            phase: .progressing, version: observation.version, serving: nil, reason: "ProxyNotAnswering",
            message: "\(name)'s proxy on 127.0.0.1:\(proxy.port) did not answer \(path ?? "a connection"); it is started again",
            recheckAfter: .seconds(1))
    }

    /// The step after the proxy listens: report on the version asked for, or start its rollout.
    private func decide(_ name: String, _ wanted: Wanted, retry: Bool) throws -> DeploymentObservation {
        guard var deployment = deployments[name] else { return gone(name, wanted) }
        if let failure = deployment.failure {
            if failure.version == wanted.version.version, !retry { return observe(deployment, wanted) }
            deployment.failure = nil
            deployment.crashes = []
            deployment.restarts = 0
        }
        deployments[name] = deployment
        // Serving is said only of a process that still lives: one that died since the last
        // report is a crash now, not on the next pass.
        if let serving = deployment.serving, let process = serving.process, !process.isAlive {
            exited(name, serving.token, process.termination)
            deployment = deployments[name] ?? deployment
        }
        if deployment.serving?.matches(wanted) == true || deployment.restarting?.matches(wanted) == true {
            // A rollback while another version starts: that one goes, this one keeps serving.
            if let candidate = deployment.candidate, !candidate.matches(wanted) { retire(name, candidate, reason: "rolled back") }
            return observe(deployments[name] ?? deployment, wanted)
        }
        if deployment.candidate?.matches(wanted) == true { return observe(deployment, wanted) }
        if let candidate = deployment.candidate { retire(name, candidate, reason: "replaced by \(wanted.version)") }
        deployments[name]?.drift = []
        deployments[name]?.crashes = []
        deployments[name]?.restarts = 0
        try startCandidate(name, wanted)
        return observe(deployments[name] ?? deployment, wanted)
    }

    /// Starts the proxy on the public port when it does not listen yet (or listens on another
    /// port than the spec's now); nil when it listens, else why not (`PortInUse`).
    private func bindProxy(_ name: String, port: Int?, version: Int) async -> DeploymentObservation? {
        guard let deployment = deployments[name] else { return nil }
        if let proxy = deployment.proxy, port == nil || proxy.port == port { return nil }
        let wanted = port ?? deployment.record.publicPort ?? 0
        let binding: Task<ReverseProxy, any Error>
        if let pending = deployment.binding {
            binding = pending
        } else {
            let previous = deployment.proxy
            let route = deployment.route
            let client = client
            let tuning = tuning
            let logger = logger
            binding = Task {
                await previous?.stop()
                return try await ReverseProxy.start(port: wanted, route: route, client: client, bodyLimit: tuning.bodyLimit,
                                                    timeout: .nanoseconds(Int64(tuning.upstreamTimeout.nanoseconds)), logger: logger)
            }
            deployments[name]?.proxy = nil
            deployments[name]?.binding = binding
        }
        do {
            let proxy = try await binding.value
            guard deployments[name] != nil, !closed else {
                await proxy.stop()
                return gone(name, version)
            }
            if deployments[name]?.binding == binding {
                deployments[name]?.binding = nil
                deployments[name]?.proxy = proxy
                deployments[name]?.record.publicPort = proxy.port
                persist(name)
            }
            return nil
        } catch {
            if deployments[name]?.binding == binding { deployments[name]?.binding = nil }
            let failure = error as? ReverseProxy.BindFailure
            let serving = deployments[name]?.serving?.version.version
            return DeploymentObservation(
                phase: .progressing, version: version, serving: nil, reason: failure?.inUse == false ? "ProxyFailed" : "PortInUse",
                message: "\(error); \(name)'s proxy cannot listen there, so no version is started until it can"
                    + (serving.map { " (version \($0) keeps running without it)" } ?? ""),
                recheckAfter: .seconds(5))
        }
    }

    func inFlight() async -> [String] {
        deployments.values.filter { $0.candidate != nil || $0.restarting != nil || !$0.retiring.isEmpty }.map(\.name).sorted()
    }

    func directory(of deployment: String) -> URL {
        environment.directory.appendingPathComponent(deployment, isDirectory: true)
    }

    /// Writes the deployment's record as the state now stands.
    func persist(_ name: String) {
        guard !closed, let deployment = deployments[name] else { return }
        var record = deployment.record
        record.serving = deployment.serving?.entry
        record.candidate = (deployment.candidate ?? deployment.restarting?.attempt)?.entry
        do {
            try record.write(to: directory(of: name))
            deployments[name]?.record = record
        } catch {
            logger.error("could not write the serving record of \(name): \(error)", metadata: ["cairn.deployment": "\(name)"])
        }
    }

    private func gone(_ name: String, _ wanted: Wanted) -> DeploymentObservation { gone(name, wanted.version.version) }

    private func gone(_ name: String, _ version: Int) -> DeploymentObservation {
        DeploymentObservation(phase: .progressing, version: version, serving: nil, reason: "Removed",
                              message: "\(name) was taken down while this request was under way")
    }
}

extension Duration {
    var nanoseconds: Double {
        Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9
    }
}
