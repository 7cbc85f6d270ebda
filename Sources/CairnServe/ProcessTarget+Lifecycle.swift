import CairnCore
import CairnRun
import Foundation

/// Taking back what a previous daemon left, taking a deployment down, and stopping.
extension ProcessTarget {
    /// For each deployment's record: the serving process, if it still lives (same pid and
    /// start time) and answers its health check, is adopted behind a new proxy on the same
    /// public port; every other process carrying one of the deployment's tokens (the candidate
    /// of an interrupted switch, one spawned but never recorded, an old version not yet
    /// drained) is stopped. Exactly one version serves afterwards, and no orphan is left.
    func recover() async throws -> [String] {
        // A process that does not stay (`reconcile --once`) neither adopts nor stops servers:
        // the daemon that next starts does.
        guard environment.processes else { return [] }
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: environment.directory.path) else { return [] }
        var found: [String] = []
        for name in names.sorted() where deployments[name] == nil {
            let record: ProcessRecord
            do {
                guard let loaded = try ProcessRecord.load(from: directory(of: name)) else { continue }
                record = loaded
            } catch {
                // Unreadable is not empty: leave its processes alone rather than kill what may serve.
                logger.error("could not read the serving record of \(name): \(error); its processes were left as they are",
                             metadata: ["cairn.deployment": "\(name)"])
                continue
            }
            await recover(name, record)
            found.append(name)
        }
        return found
    }

    private func recover(_ name: String, _ record: ProcessRecord) async {
        var adopted: Instance?
        if let entry = record.serving, let pid = entry.pid, ProcessTable.isAlive(pid, startTicks: entry.startTicks) {
            var instance = Instance(entry: entry, process: ProcessHandle(adopting: pid, startTicks: entry.startTicks))
            if await answers(instance) {
                instance.healthySince = .now
                instance.logURL = directory(of: name).appendingPathComponent("\(entry.version.version)-\(entry.commit.prefix(12))/log")
                adopted = instance
            }
        }
        await stopLeftovers(of: record, keeping: adopted?.token)
        var deployment = Deployment(name: name, record: record)
        if var instance = adopted {
            deployment.route.switchTo(instance.port)
            instance.monitor = monitor(name, instance)
            deployment.serving = instance
            deployment.drift = ["\(instance.version)'s process (\(instance.placement)) was adopted after a daemon restart"]
        }
        deployments[name] = deployment
        persist(name)
        if adopted != nil, let port = record.publicPort {
            // Listening again at once; a port taken meanwhile is reported by the next `ensure`.
            _ = await bindProxyForRecovery(name, port: port)
        }
        let outcome = adopted.map { "\($0.version) adopted (\($0.placement))" } ?? "nothing serving"
        logger.info("recovered \(name): \(outcome)",
                    metadata: ["cairn.deployment": "\(name)"])
    }

    /// A few quick health checks: a process just restarted with the daemon gets a moment.
    private func answers(_ instance: Instance) async -> Bool {
        for attempt in 0..<5 {
            if await isHealthy(instance) { return true }
            try? await Task.sleep(for: .milliseconds(100 * (attempt + 1)))
        }
        return false
    }

    private func bindProxyForRecovery(_ name: String, port: Int) async -> Bool {
        guard let route = deployments[name]?.route else { return false }
        do {
            let proxy = try await ReverseProxy.start(port: port, route: route, client: client, bodyLimit: tuning.bodyLimit,
                                                     timeout: .nanoseconds(Int64(tuning.upstreamTimeout.nanoseconds)), logger: logger)
            guard deployments[name] != nil, deployments[name]?.proxy == nil else {
                await proxy.stop()
                return false
            }
            deployments[name]?.proxy = proxy
            return true
        } catch {
            logger.warning("\(name)'s proxy could not listen again: \(error)", metadata: ["cairn.deployment": "\(name)"])
            return false
        }
    }

    /// Stops every process whose token belongs to the deployment, except `keeping`'s, and the
    /// recorded candidate by pid (should its environment be unreadable).
    func stopLeftovers(of record: ProcessRecord, keeping: String?) async {
        var targets: [(pid: Int32, ticks: UInt64?)] = TokenScan.processes(withTokenPrefix: record.tokenPrefix + ".")
            .filter { $0.token != keeping }.map { ($0.pid, $0.startTicks) }
        for entry in [record.serving, record.candidate].compactMap({ $0 }) where entry.token != keeping {
            if let pid = entry.pid, !targets.contains(where: { $0.pid == pid }) { targets.append((pid, entry.startTicks)) }
        }
        await withTaskGroup(of: Void.self) { group in
            for target in targets {
                group.addTask { await ProcessHandle.stop(pid: target.pid, startTicks: target.ticks, grace: self.tuning.stopGrace) }
            }
        }
    }

    /// Stops the proxy and every process of the deployment, and deletes what this target kept
    /// of it (its record and each version's checkout and log). The deployment's folder also
    /// holds the other targets' records, which they remove themselves.
    func remove(deployment name: String) async throws {
        let record = deployments[name]?.record ?? (try? ProcessRecord.load(from: directory(of: name)))
        await takeDown(name)
        if let record { await stopLeftovers(of: record, keeping: nil) }
        let directory = directory(of: name)
        let manager = FileManager.default
        for entry in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? [] where Self.isOwn(entry) {
            try manager.removeItem(at: directory.appendingPathComponent(entry))
        }
    }

    /// Whether `entry` of a deployment's folder is this target's: its record (and the
    /// temporary file it is written through), or a version's folder, `<version>-<commit>`.
    static func isOwn(_ entry: String) -> Bool {
        if entry == ProcessRecord.fileName || entry == ".\(ProcessRecord.fileName).tmp" { return true }
        guard let dash = entry.firstIndex(of: "-"), Int(entry[..<dash]) != nil else { return false }
        let commit = entry[entry.index(after: dash)...]
        return !commit.isEmpty && commit.allSatisfy(\.isHexDigit)
    }

    /// Stops the deployment's proxy and processes and forgets it; returns once they are gone.
    private func takeDown(_ name: String) async {
        guard let deployment = deployments.removeValue(forKey: name) else { return }
        deployment.binding?.cancel()
        deployment.restarting?.timer?.cancel()
        deployment.route.switchTo(nil, reason: "\(name) is being taken down")
        let instances = [deployment.serving, deployment.candidate, deployment.restarting?.attempt].compactMap { $0 }
            + Array(deployment.retiring.values)
        for instance in instances { instance.monitor?.cancel() }
        await deployment.proxy?.stop()
        if let binding = deployment.binding, let proxy = try? await binding.value { await proxy.stop() }
        let grace = tuning.stopGrace
        await withTaskGroup(of: Void.self) { group in
            for instance in instances { group.addTask { await instance.process?.stop(grace: grace) } }
        }
    }

    /// Stops every proxy and process (the demo's end, a test's), keeping the records and logs.
    func shutdown() async {
        for name in deployments.keys.sorted() {
            let record = deployments[name]?.record
            await takeDown(name)
            if var record {
                record.serving = nil
                record.candidate = nil
                try? record.write(to: directory(of: name))
            }
        }
        closed = true
    }

    /// What a daemon killed with SIGKILL leaves behind, for tests of `recover`: the proxies
    /// go (they lived in the daemon), the serving processes and the records stay, and this
    /// target takes no further part.
    func abandon() async {
        closed = true
        for deployment in deployments.values {
            deployment.restarting?.timer?.cancel()
            for instance in [deployment.serving, deployment.candidate].compactMap({ $0 }) { instance.monitor?.cancel() }
            await deployment.proxy?.stop()
        }
        deployments = [:]
    }
}
