import CairnCore
import CairnRun
import Foundation

/// After a version is healthy: watching it, and bringing it back when it crashes (with
/// backoff), until it crashes too often and fails as a crash loop.
extension ProcessTarget {
    /// Watches a serving process: its health every `checkInterval`, and (for an adopted one,
    /// not a child) whether it still lives; also keeps its log within the cap.
    func monitor(_ name: String, _ instance: Instance) -> Task<Void, Never> {
        let tuning = tuning
        let log = instance.logURL ?? directory(of: name).appendingPathComponent("\(instance.version.version)-\(instance.commit.prefix(12))/log")
        return Task.detached { [self] in
            var failures = 0
            var last = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: min(tuning.checkInterval, .milliseconds(250)))
                guard !Task.isCancelled, let process = instance.process else { return }
                // A child's exit is reported by its own watcher, with its status.
                if !process.isChild, !process.isAlive {
                    await exited(name, instance.token, nil)
                    return
                }
                guard ContinuousClock.now - last >= tuning.checkInterval else { continue }
                last = .now
                ServingLog.cap(log, at: tuning.logCap)
                failures = await isHealthy(instance) ? 0 : failures + 1
                if failures >= tuning.failedChecksForCrash {
                    await unhealthy(name, instance.token, failures: failures)
                    return
                }
            }
        }
    }

    /// The serving process failed its checks too many times in a row: it is stopped and restarted.
    func unhealthy(_ name: String, _ token: String, failures: Int) {
        guard role(of: token, in: name) == .serving, let instance = deployments[name]?.serving else { return }
        deployments[name]?.serving = nil
        retire(name, instance, reason: "unhealthy")
        let check = instance.health.map { "failed \(failures) health checks of \($0.path) in a row" }
            ?? "stopped accepting connections (\(failures) checks in a row)"
        crashed(name, instance, what: "\(instance.version)'s process (pid \(instance.process?.pid ?? 0)) \(check); it was stopped")
    }

    /// After a crash: 503 meanwhile, then a restart after the backoff, or `CrashLoop` when the
    /// version keeps crashing.
    func crashed(_ name: String, _ instance: Instance, what: String) {
        guard var deployment = deployments[name] else { return }
        let now = ContinuousClock.now
        if let since = instance.healthySince, now - since >= tuning.stableAfter { deployment.crashes = [] }
        deployment.crashes = deployment.crashes.filter { now - $0 < tuning.crashWindow } + [now]
        deployment.route.switchTo(nil, reason: "\(instance.version) crashed and is being restarted")
        deployment.restarting?.timer?.cancel()
        if deployment.crashes.count >= tuning.crashLimit {
            deployment.restarting = nil
            deployment.drift.append("\(what); not restarted: \(deployment.crashes.count) crashes within \(tuning.crashWindow)")
            deployment.failure = Failure(
                version: instance.version.version, reason: "CrashLoop",
                message: "\(instance.version) crashed \(deployment.crashes.count) times within \(tuning.crashWindow) (last: \(what))"
                    + Self.logExcerpt(instance))
            deployment.route.switchTo(nil, reason: "\(instance.version) keeps crashing")
            deployments[name] = deployment
            persist(name)
            logger.warning("\(instance.version) keeps crashing; not restarted", metadata: ["cairn.deployment": "\(name)"])
            notify(name)
            return
        }
        deployment.restarts += 1
        let restarts = deployment.restarts
        deployment.drift.append("\(what); restarted (\(restarts) restart\(restarts == 1 ? "" : "s"))")
        let delay = Duration.seconds(tuning.restartBackoff.delay(afterFailures: restarts, random: 0.5))
        let timer = Task.detached { [self] in
            guard (try? await Task.sleep(for: delay)) != nil else { return }
            await restartNow(name)
        }
        deployment.restarting = Restarting(wanted: instance.wanted, attempt: nil, timer: timer, what: "crashed (\(what))")
        deployments[name] = deployment
        persist(name)
        logger.warning("\(what); restarting in \(delay)", metadata: ["cairn.deployment": "\(name)"])
        notify(name)
    }

    /// The backoff has passed: start the crashed version again.
    func restartNow(_ name: String) {
        guard !closed, let restarting = deployments[name]?.restarting, restarting.attempt == nil else { return }
        do {
            let instance = try newInstance(name, restarting.wanted)
            deployments[name]?.restarting?.attempt = instance
            persist(name)
            launch(name, instance)
        } catch {
            // No attempt was made, so no token plays the restart's role: fail the version here.
            deployments[name]?.restarting = nil
            deployments[name]?.failure = Failure(version: restarting.wanted.version.version, reason: "CouldNotStart",
                                                 message: "could not restart \(restarting.wanted.version): \(error)")
            persist(name)
            notify(name)
        }
    }
}
