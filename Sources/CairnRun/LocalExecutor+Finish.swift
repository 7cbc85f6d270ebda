import CairnCore
import Foundation
import Glibc

extension LocalExecutor {
    /// The supervisor of `runID` has exited: record how the run ended, free its slots, start
    /// what waits, and tell the engine.
    ///
    /// Until the final record is in the ledger the run stays in flight with its checkout and
    /// slots, and the write is tried again after 1 s, 2 s, 4 s, … (at most 60 s apart): a
    /// ledger that fails for a while loses neither the run's end nor its outputs.
    func supervisorEnded(_ runID: String) {
        guard !detached, var run = active[runID] else { return }
        let record = run.final ?? finished(run.record, cancelRequested: run.cancelRequested)
        guard write(record) else {
            run.final = record
            run.failedWrites += 1
            active[runID] = run
            let delay = min(60, 1 << min(run.failedWrites - 1, 6))
            logger.error("run \(runID) ended \(record.state.rawValue) but the ledger would not take it (attempt \(run.failedWrites)); it stays in flight with its checkout, trying again in \(delay) s",
                         metadata: ["cairn.run": "\(runID)"])
            Task { [weak self] in
                try? await Task.sleep(for: .seconds(delay))
                await self?.supervisorEnded(runID)
            }
            return
        }
        active.removeValue(forKey: runID)
        usedSlots -= run.slots
        removeCheckout(of: runID)
        completed.yield(run.handle)
        pump()
    }

    /// Removes the run's `work/`, once its end (and its outputs) are in the ledger.
    func removeCheckout(of runID: String) {
        try? FileManager.default.removeItem(at: runsDirectory.appendingPathComponent(runID).appendingPathComponent(RunFiles.work))
    }

    /// The run's final record, from the supervisor's `result.json` (and, when it succeeded,
    /// the outputs it wrote, now in the store). The checkout stays: the caller removes it once
    /// the record is written.
    func finished(_ record: RunRecord, cancelRequested: Bool) -> RunRecord {
        var record = record
        let directory = runsDirectory.appendingPathComponent(record.id)
        let jobFile = try? RunFiles.read(SupervisedJob.self, from: directory.appendingPathComponent(RunFiles.job))
        let secrets = jobFile.map { file in file.secretNames.compactMap { file.environment[$0] } } ?? []
        record.finishedAt = Date()
        guard let result = try? RunFiles.read(SupervisedResult.self, from: directory.appendingPathComponent(RunFiles.result)) else {
            record.state = cancelRequested ? .cancelled : .interrupted
            record.message = (cancelRequested ? "cancelled; " : "")
                + "its supervisor ended without writing \(RunFiles.result), so how the command ended is unknown"
                + logExcerpt(directory, secrets: secrets)
            return record
        }
        record.startedAt = record.startedAt ?? result.startedAt
        record.finishedAt = result.finishedAt
        record.exitStatus = result.exitStatus
        record.signal = result.signal
        if let startError = result.startError {
            record.state = result.cancelled ? .cancelled : .failed
            record.message = "could not start: \(redact(startError, secrets))"
            return record
        }
        let logNote = result.logError.map { "; its log could not be written (\($0)), so it lacks what came after" } ?? ""
        let excerpt = { logNote + self.logExcerpt(directory, secrets: secrets) }
        let how = result.signal.map { "was killed by \(signalName($0))" } ?? "exited with status \(result.exitStatus ?? -1)"
        if result.cancelled || cancelRequested {
            record.state = .cancelled
            record.message = "cancelled; it \(how)" + excerpt()
        } else if result.timedOut {
            let limit = jobFile?.timeoutSeconds.map { " of \(Self.format($0))" } ?? ""
            record.state = .failed
            record.message = "timed out: it ran past its timeout\(limit) and \(how)" + excerpt()
        } else if result.exitStatus != 0 {
            record.state = .failed
            record.message = "it \(how)" + excerpt()
        } else {
            do {
                record.outputs = try collectOutputs(jobFile?.outputs ?? [], in: directory.appendingPathComponent(RunFiles.work))
                record.state = .succeeded
                record.message = "succeeded" + (record.outputs.isEmpty ? "" : "; stored \(record.outputs.count) output\(record.outputs.count == 1 ? "" : "s")")
                    + logNote
            } catch {
                record.state = .failed
                record.message = "it exited with status 0 but \(error)" + excerpt()
            }
        }
        return record
    }

    /// Stores each declared output into the artifact store; throws (a sentence) when one is
    /// missing or leaves the run's directory.
    func collectOutputs(_ outputs: [String], in work: URL) throws -> [String: Artifact] {
        let root = try realPath(work)
        var stored: [String: Artifact] = [:]
        for path in outputs {
            let url = work.appendingPathComponent(path)
            var info = stat()
            guard lstat(url.path, &info) == 0 else { throw ExecutorError("did not write its declared output \(path)") }
            guard info.st_mode & S_IFMT != S_IFLNK else {
                throw ExecutorError("its declared output \(path) is a symlink, which leaves the run's directory")
            }
            let resolved = try realPath(url)
            guard resolved.hasPrefix(root + "/") else {
                throw ExecutorError("its declared output \(path) resolves to \(resolved), which leaves the run's directory")
            }
            do {
                // work/ is given up once the outputs are stored: they are moved in, not copied.
                stored[path] = try artifacts.store(url, consuming: true)
            } catch {
                throw ExecutorError("its declared output \(path) could not be stored: \(error)")
            }
        }
        return stored
    }

    /// "; the last lines of its log:" and up to 20 lines, secrets replaced by `***`.
    func logExcerpt(_ directory: URL, secrets: [String]) -> String {
        let lines = Self.lastLines(of: directory.appendingPathComponent(RunFiles.log), count: 20)
        guard !lines.isEmpty else { return "; its log is empty" }
        return "; the last lines of its log:\n" + redact(lines.joined(separator: "\n"), secrets)
    }

    static func lastLines(of url: URL, count: Int) -> [String] {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > 16_384 ? size - 16_384 : 0
        try? handle.seek(toOffset: start)
        guard let data = try? handle.readToEnd() else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if start > 0, !lines.isEmpty { lines.removeFirst() }  // Cut in the middle.
        return Array(lines.suffix(count))
    }

    func redact(_ text: String, _ secrets: [String]) -> String {
        // Longest first, so a secret containing another is replaced whole.
        secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }.reduce(text) { $0.replacingOccurrences(of: $1, with: "***") }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }

    // MARK: - Cancelling

    public func cancel(runID: String) async throws {
        if let index = queue.firstIndex(where: { $0.record.id == runID }) {
            var record = queue.remove(at: index).record
            if prepared.remove(runID) != nil { try? FileManager.default.removeItem(at: runsDirectory.appendingPathComponent(runID)) }
            record.state = .cancelled
            record.finishedAt = Date()
            record.message = "cancelled before it started"
            guard write(record) else { throw ExecutorError("could not record run \(runID) as cancelled in the ledger") }
            completed.yield(placeholder(runID))
            pump()
            return
        }
        guard var run = active[runID] else {
            if let record = try ledger.run(id: runID), record.state.isFinal { return }
            throw ExecutorError("run \(runID) is not in flight here; nothing to cancel")
        }
        if run.final != nil { return }  // It has ended; only its record waits for the ledger.
        run.cancelRequested = true
        active[runID] = run
        if let pid = Int32(run.handle.id), ProcessTable.isAlive(pid, startTicks: run.handle.startTicks) {
            kill(pid, SIGTERM)
        }
        let wait = grace + .seconds(2)
        Task { [weak self] in
            try? await Task.sleep(for: wait)
            await self?.escalate(runID)
        }
    }

    /// The supervisor did not end the group within its grace: SIGKILL for it and the group.
    func escalate(_ runID: String) {
        guard let run = active[runID] else { return }
        logger.warning("run \(runID) did not end within its grace after SIGTERM; killing its supervisor and process group",
                       metadata: ["cairn.run": "\(runID)"])
        Self.killCommandGroup(in: runsDirectory.appendingPathComponent(runID))
        if let pid = Int32(run.handle.id), ProcessTable.isAlive(pid, startTicks: run.handle.startTicks) {
            kill(-pid, SIGKILL)
        }
    }

    /// SIGKILL for the command's group, if the process the supervisor recorded still lives.
    static func killCommandGroup(in directory: URL) {
        guard let (pid, ticks) = RunFiles.readPID(from: directory.appendingPathComponent(RunFiles.commandPID)),
              ProcessTable.startTicks(of: pid) == ticks else { return }
        kill(-pid, SIGKILL)
    }
}
