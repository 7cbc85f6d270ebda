public import CairnCore
import Foundation
import Glibc

extension LocalExecutor {
    /// After a restart: each unfinished run of this executor in the ledger is adopted when its
    /// supervisor still runs (the same pid with the same start time, from the ledger's handle
    /// or, when the daemon died before recording one, from the `supervisor.pid` it wrote
    /// first), recorded as it ended when it left `result.json`, or else marked interrupted
    /// (and whatever is left of its command's group ended). A run that never started keeps no
    /// start time and says so. Nothing is ever started again here: a run never gets two
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
            let pidFile = directory.appendingPathComponent(RunFiles.supervisorPID)

            var handle = record.handle
            if handle == nil || record.state == .submitted, let (pid, ticks) = RunFiles.readPID(from: pidFile) {
                // The daemon died between starting the supervisor and recording its handle.
                handle = JobHandle(executor: name, id: String(pid), runID: record.id, startTicks: ticks)
            }
            if let handle, let pid = Int32(handle.id), ProcessTable.isAlive(pid, startTicks: handle.startTicks) {
                if record.handle != handle || record.state != .running {
                    record.handle = handle
                    record.state = .running
                    record.startedAt = record.startedAt
                        ?? ((try? FileManager.default.attributesOfItem(atPath: pidFile.path))?[.modificationDate] as? Date) ?? Date()
                    write(record)  // A failure is logged; the end is recorded all the same.
                }
                let cpus = (try? RunFiles.read(SupervisedJob.self, from: directory.appendingPathComponent(RunFiles.job)))?.cpus ?? 1
                active[record.id] = Active(record: record, handle: handle, slots: cpus)
                usedSlots += cpus
                watch(pid: pid, startTicks: handle.startTicks, runID: record.id)
                report.adopted.append(record.id)
                continue
            }
            let final: RunRecord
            if let handle, FileManager.default.fileExists(atPath: directory.appendingPathComponent(RunFiles.result).path) {
                record.handle = handle
                final = finished(record, cancelRequested: false)
            } else {
                Self.killCommandGroup(in: directory)
                record.state = .interrupted
                record.finishedAt = Date()
                if let handle {
                    record.message = "interrupted: its supervisor (pid \(handle.id)) is gone and left no result; the daemon or the machine stopped while it ran"
                } else {
                    record.startedAt = nil
                    record.message = Self.neverStarted
                }
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

    /// The message of a run that was queued and never started (no supervisor ever ran it).
    public static let neverStarted = "never started (the process that queued it stopped first)"

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
