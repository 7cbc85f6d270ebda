public import Foundation

/// What the start probe found: the job that wrote the nonce, and how long it took.
public struct SlurmProbeResult: Sendable {
    public var jobID: String
    public var elapsed: Duration
}

/// The check `cairn run --slurm-shared-dir` makes before its first pass.
public enum SlurmProbe {
    /// Checks that the nodes share `--slurm-shared-dir` with this machine, as runs need: a
    /// small job writes a random nonce into `probes/` there, and the daemon reads it back.
    /// Throws, saying what it saw, when the job ends without the file appearing or `limit`
    /// passes (the job is cancelled then).
    /// - Parameter override: where the job writes instead (a test's stand-in for a node that
    ///   sees another directory at that path); by default where the daemon reads.
    public static func run(_ configuration: SlurmConfiguration, commands: SlurmCommands, within limit: Duration,
                           writingTo override: URL? = nil) async throws -> SlurmProbeResult {
        let clock = ContinuousClock()
        let started = clock.now
        let probes = configuration.sharedDirectory.appendingPathComponent("probes")
        let nonce = (0..<4).map { _ in String(format: "%08x", UInt32.random(in: 0...UInt32.max)) }.joined()
        let target = probes.appendingPathComponent(nonce)
        let script = probes.appendingPathComponent("probe-\(nonce).sh")
        do {
            try FileManager.default.createDirectory(at: probes, withIntermediateDirectories: true)
            let body = "#!/bin/sh\n# Cairn's start probe: the daemon reads this nonce back from the shared directory.\n"
                + "printf '%s\\n' \(SlurmExecutor.shellQuoted(nonce)) > \(SlurmExecutor.shellQuoted((override ?? target).path))\n"
            try RunFiles.writeAtomically(Data(body.utf8), to: script, mode: 0o700)
        } catch {
            throw ExecutorError("could not write the Slurm probe in \(probes.path) (--slurm-shared-dir): \(LocalExecutor.reason(error))")
        }
        defer {
            try? FileManager.default.removeItem(at: script)
            try? FileManager.default.removeItem(at: target)
        }
        let jobID = try await commands.submit(["--job-name=cairn-probe-\(nonce.prefix(12))", "--chdir=/", "--output=/dev/null",
                                               "--error=/dev/null", "--export=NONE", "--no-requeue", "--time=1"]
                                              + configuration.sbatchOptions, script: script)
        var lastSeen: SlurmQueueEntry?
        var overAt: ContinuousClock.Instant?
        var lastLook = clock.now - .seconds(1)
        while clock.now - started < limit {
            if let text = try? String(contentsOf: target, encoding: .utf8), text.trimmingCharacters(in: .whitespacesAndNewlines) == nonce {
                return SlurmProbeResult(jobID: jobID, elapsed: clock.now - started)
            }
            if let overAt, clock.now - overAt > .seconds(3) {
                let how = lastSeen.map { "\($0.stateText)\($0.reason == "None" ? "" : ", \($0.reason)")" } ?? "gone from the queue"
                throw SlurmError(.refused, "the probe job \(jobID) ended (\(how)), but the nonce it was to write at \(target.path) never appeared here: "
                                 + "the nodes do not see --slurm-shared-dir \(configuration.sharedDirectory.path) at the same path, or cannot write "
                                 + "there. Mount it on every node at that path (as root or the daemon's user can write), or choose a directory they share")
            }
            if overAt == nil, clock.now - lastLook >= .seconds(1) {
                lastLook = clock.now
                if let entries = try? await commands.queue() {
                    let entry = entries.first { $0.jobID == jobID }
                    if let entry { lastSeen = entry }
                    if entry.map({ $0.state.isFinal }) ?? (clock.now - started > .seconds(3)) { overAt = clock.now }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        _ = try? await commands.run("scancel", [jobID])
        let how = lastSeen.map { "it was \($0.stateText)\($0.reason == "None" ? "" : " (\($0.reason))")" } ?? "Slurm did not list it"
        throw SlurmError(.refused, "the probe job \(jobID) did not write its nonce at \(target.path) within \(limit) (\(how)); it was cancelled. "
                         + "Is a node up in the partition (sinfo), and does it see --slurm-shared-dir?")
    }
}
