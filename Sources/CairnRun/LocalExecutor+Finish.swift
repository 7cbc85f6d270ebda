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

    /// The run's final record, read from its directory (see `RunWorkspace.finished`).
    func finished(_ record: RunRecord, cancelRequested: Bool) -> RunRecord {
        workspace.finished(record, in: runsDirectory.appendingPathComponent(record.id), cancelRequested: cancelRequested)
    }

    /// Removes the run's `work/`, once its end (and its outputs) are in the ledger.
    func removeCheckout(of runID: String) {
        try? FileManager.default.removeItem(at: runsDirectory.appendingPathComponent(runID).appendingPathComponent(RunFiles.work))
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
