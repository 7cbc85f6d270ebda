public import CairnCore
import Foundation
import Glibc

extension LocalExecutor {
    /// After a restart: each unfinished run of this executor in the ledger is adopted when its
    /// supervisor still runs (the same pid with the same start time), recorded as it ended
    /// when it left `result.json`, or else marked interrupted (and whatever is left of its
    /// command's group ended). Nothing is ever started again here: a run never gets two
    /// supervisors.
    public func recover() async throws -> RecoveryReport {
        let unfinished: [RunRecord]
        do {
            unfinished = try ledger.unfinishedRuns()
        } catch {
            throw ExecutorError("could not read the unfinished runs from the ledger: \(Self.reason(error))")
        }
        var report = RecoveryReport()
        var failures: [String] = []
        for var record in unfinished {
            if active[record.id] != nil || queue.contains(where: { $0.record.id == record.id }) { continue }
            if let handle = record.handle, handle.executor != name { continue }
            let directory = runsDirectory.appendingPathComponent(record.id)

            if let handle = record.handle, let pid = Int32(handle.id), ProcessTable.isAlive(pid, startTicks: handle.startTicks) {
                let cpus = (try? RunFiles.read(SupervisedJob.self, from: directory.appendingPathComponent(RunFiles.job)))?.cpus ?? 1
                active[record.id] = Active(record: record, handle: handle, slots: cpus)
                usedSlots += cpus
                watch(pid: pid, startTicks: handle.startTicks, runID: record.id)
                report.adopted.append(record.id)
                continue
            }
            let final: RunRecord
            if record.handle != nil, FileManager.default.fileExists(atPath: directory.appendingPathComponent(RunFiles.result).path) {
                final = finished(record, cancelRequested: false)
            } else {
                Self.killCommandGroup(in: directory)
                record.state = .interrupted
                record.finishedAt = Date()
                record.message = record.handle == nil
                    ? "interrupted: the daemon stopped before the run started"
                    : "interrupted: its supervisor (pid \(record.handle?.id ?? "?")) is gone and left no result; the daemon or the machine stopped while it ran"
                final = record
            }
            if write(final) {
                removeCheckout(of: final.id)
                if final.state == .interrupted { report.interrupted.append(final.id) } else { report.finished.append(final.id) }
                completed.yield(final.handle ?? placeholder(final.id))
            } else {
                failures.append(final.id)
            }
        }
        if !failures.isEmpty {
            throw ExecutorError("could not record how runs \(failures.joined(separator: ", ")) ended in the ledger; they stay as last recorded")
        }
        return report
    }

    /// Watches a supervisor that is not our child (adopted after a restart) on a thread of its
    /// own, through a pidfd where there are some, and records the run when it exits.
    func watch(pid: Int32, startTicks: UInt64?, runID: String) {
        let thread = Thread { [weak self] in
            ProcessTable.waitForExit(of: pid, startTicks: startTicks)
            Task { await self?.supervisorEnded(runID) }
        }
        thread.name = "cairn-run-watch-\(pid)"
        thread.start()
    }
}
