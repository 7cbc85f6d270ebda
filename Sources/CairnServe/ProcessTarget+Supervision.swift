import AsyncHTTPClient
import CairnCore
import CairnRun
import Foundation
import NIOCore

/// Starting, switching, watching and restarting: each piece of work runs in a task of its
/// own and reports back to the actor by the process's token, so a report about a process the
/// deployment has moved on from changes nothing.
extension ProcessTarget {
    /// Records the candidate (before anything is spawned, so a daemon killed in between
    /// leaves a token to find it by) and starts it in the background.
    func startCandidate(_ name: String, _ wanted: Wanted) throws {
        let instance = try newInstance(name, wanted)
        deployments[name]?.candidate = instance
        persist(name)
        launch(name, instance)
    }

    func newInstance(_ name: String, _ wanted: Wanted) throws -> Instance {
        let prefix = deployments[name]?.record.tokenPrefix ?? "cairn"
        let token = "\(prefix).\(UUID().uuidString.lowercased())"
        return Instance(wanted, token: token, port: try Loopback.freePort())
    }

    /// Checks out, spawns and waits for health, off the actor.
    func launch(_ name: String, _ instance: Instance) {
        let launch = Launch(
            deployment: name, version: instance.version, command: instance.command, commit: instance.commit,
            token: instance.token, port: instance.port,
            directory: directory(of: name).appendingPathComponent("\(instance.version.version)-\(instance.commit.prefix(12))"),
            modelPath: environment.artifacts.path(of: instance.version.artifact.digest).path)
        let source = environment.source
        let timeout = instance.health?.timeout.map(\.duration) ?? tuning.healthTimeout
        Task.detached { [self] in
            let process: ProcessHandle
            do {
                process = ProcessHandle(child: try launch.prepare(source: source).start())
            } catch {
                await failedToStart(name, instance.token, "could not start \(instance.version): \(error)")
                return
            }
            guard await spawned(name, instance.token, process, log: launch.log) else { return }
            Task.detached { [self] in
                let termination = await process.waitForExit()
                await exited(name, instance.token, termination)
            }
            if await waitUntilHealthy(instance, process, timeout: timeout) {
                await becameHealthy(name, instance.token)
            } else if process.isAlive {
                await neverHealthy(name, instance.token, after: timeout)
            }
        }
    }

    /// Checks quickly, then less often, until healthy (true), the process exits or the time is up (false).
    nonisolated func waitUntilHealthy(_ instance: Instance, _ process: ProcessHandle, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var delay = tuning.startPollFirst
        while process.isAlive {
            if await isHealthy(instance) { return true }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: min(delay, deadline - ContinuousClock.now))
            delay = min(delay * 1.5, tuning.startPollMax)
        }
        return false
    }

    /// One check: GET the health path answers 2xx, or (with none) the port accepts a connection.
    nonisolated func isHealthy(_ instance: Instance) async -> Bool {
        guard let health = instance.health else { return Loopback.accepts(port: instance.port) }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(instance.port)\(health.path)")
        request.method = .GET
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(tuning.checkTimeout.nanoseconds)))
            _ = try? await response.body.collect(upTo: 1 << 20)
            return (200..<300).contains(response.status.code)
        } catch {
            return false
        }
    }

    /// The role the token plays in the deployment now.
    enum Role { case candidate, restart, serving, retiring }

    func role(of token: String, in name: String) -> Role? {
        guard !closed, let deployment = deployments[name] else { return nil }
        if deployment.candidate?.token == token { return .candidate }
        if deployment.restarting?.attempt?.token == token { return .restart }
        if deployment.serving?.token == token { return .serving }
        if deployment.retiring[token] != nil { return .retiring }
        return nil
    }

    /// Records the spawned process's pid; false (and the process stopped) when the deployment
    /// no longer wants it.
    func spawned(_ name: String, _ token: String, _ process: ProcessHandle, log: URL) async -> Bool {
        switch role(of: token, in: name) {
        case .candidate:
            deployments[name]?.candidate?.process = process
            deployments[name]?.candidate?.logURL = log
        case .restart:
            deployments[name]?.restarting?.attempt?.process = process
            deployments[name]?.restarting?.attempt?.logURL = log
        default:
            if !closed { await process.stop(grace: tuning.stopGrace) }
            return false
        }
        persist(name)
        return true
    }

    func failedToStart(_ name: String, _ token: String, _ message: String) {
        switch role(of: token, in: name) {
        case .candidate:
            guard let candidate = deployments[name]?.candidate else { return }
            deployments[name]?.candidate = nil
            deployments[name]?.failure = Failure(version: candidate.version.version, reason: "CouldNotStart", message: message)
        case .restart:
            guard let restarting = deployments[name]?.restarting else { return }
            deployments[name]?.restarting = nil
            deployments[name]?.failure = Failure(version: restarting.wanted.version.version, reason: "CouldNotStart", message: message)
        default: return
        }
        persist(name)
        notify(name)
    }

    /// A candidate or a restart answers its health check: the proxy switches to it, and the
    /// version it replaces drains and stops.
    func becameHealthy(_ name: String, _ token: String) {
        guard let role = role(of: token, in: name), role == .candidate || role == .restart,
              var deployment = deployments[name],
              var instance = role == .candidate ? deployment.candidate : deployment.restarting?.attempt else { return }
        instance.healthySince = .now
        let previous = deployment.serving
        // A new version healthy while the old one was being restarted: the restart is moot.
        let moot = role == .candidate ? deployment.restarting?.attempt : nil
        deployment.restarting?.timer?.cancel()
        deployment.restarting = nil
        if role == .candidate { deployment.candidate = nil }
        deployment.route.switchTo(instance.port)
        instance.monitor = monitor(name, instance)
        deployment.serving = instance
        deployments[name] = deployment
        if let previous { retire(name, previous, reason: "replaced by \(instance.version)") }
        if let moot { retire(name, moot, reason: "replaced by \(instance.version)") }
        persist(name)
        logger.info("\(instance.version) serves at \(deployment.publicAddress)", metadata: ["cairn.deployment": "\(name)"])
        notify(name)
    }

    func neverHealthy(_ name: String, _ token: String, after timeout: Duration) {
        let role = role(of: token, in: name)
        guard role == .candidate || role == .restart, let deployment = deployments[name],
              let instance = role == .candidate ? deployment.candidate : deployment.restarting?.attempt else { return }
        let check = instance.health.map { "did not answer \($0.path) with 2xx" } ?? "did not accept connections"
        let what = "\(instance.version)'s process (\(instance.placement)) \(check) within \(timeout)"
        if role == .restart {
            retire(name, instance, reason: "never healthy")
            deployments[name]?.restarting?.attempt = nil
            crashed(name, instance, what: what)
            return
        }
        retire(name, instance, reason: "never healthy")
        deployments[name]?.candidate = nil
        deployments[name]?.failure = Failure(version: instance.version.version, reason: "HealthCheckFailed",
                                             message: what + "; it was stopped" + Self.logExcerpt(instance))
        persist(name)
        notify(name)
    }

    /// A process ended: before it was healthy the version fails; after, it is a crash.
    func exited(_ name: String, _ token: String, _ termination: Termination?) {
        guard let role = role(of: token, in: name), let deployment = deployments[name] else { return }
        let how = termination.map(Self.describe) ?? "exited"
        switch role {
        case .retiring:
            // Its exit seen before the retiring task's own end: whichever removes it says so,
            // or a `reconcile` waiting on the switch would wait for a change that never comes.
            deployments[name]?.retiring[token] = nil
            notify(name)
        case .candidate:
            guard let instance = deployment.candidate else { return }
            deployments[name]?.candidate = nil
            deployments[name]?.failure = Failure(
                version: instance.version.version, reason: "ExitedBeforeHealthy",
                message: "\(instance.version)'s process (\(instance.placement)) \(how) before it was healthy" + Self.logExcerpt(instance))
            persist(name)
            notify(name)
        case .restart:
            guard let instance = deployment.restarting?.attempt else { return }
            deployments[name]?.restarting?.attempt = nil
            crashed(name, instance, what: "\(instance.version)'s process (pid \(instance.process?.pid ?? 0)) \(how) while restarting")
        case .serving:
            guard let instance = deployment.serving else { return }
            instance.monitor?.cancel()
            deployments[name]?.serving = nil
            crashed(name, instance, what: "\(instance.version)'s process (pid \(instance.process?.pid ?? 0)) \(how)")
        }
    }

    /// Takes `instance` out of service: once no request is in flight on it (bounded by the
    /// drain timeout), its process group is stopped.
    func retire(_ name: String, _ instance: Instance, reason: String) {
        instance.monitor?.cancel()
        if deployments[name]?.candidate?.token == instance.token { deployments[name]?.candidate = nil }
        guard let route = deployments[name]?.route else { return }
        deployments[name]?.retiring[instance.token] = instance
        let tuning = tuning
        Task.detached { [self] in
            let deadline = ContinuousClock.now + tuning.drainTimeout
            while route.inFlight(on: instance.port) > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
            await instance.process?.stop(grace: tuning.stopGrace)
            await retired(name, instance.token)
        }
    }

    func retired(_ name: String, _ token: String) {
        guard deployments[name]?.retiring.removeValue(forKey: token) != nil else { return }
        notify(name)
    }

    /// `exited with status 3`, `exited on signal 9 (SIGKILL)`.
    static func describe(_ termination: Termination) -> String {
        switch termination {
        case .exited(let status): "exited with status \(status)"
        case .signaled(let signal): "exited on signal \(signal) (\(signalName(signal)))"
        }
    }

    /// The last lines of the process's log, to end a failure's message.
    static func logExcerpt(_ instance: Instance) -> String {
        guard let log = instance.logURL else { return "" }
        let tail = ServingLog.tail(log)
        return tail.isEmpty ? "; its log (\(log.path)) is empty" : "; the end of its log (\(log.path)):\n\(tail)"
    }
}
