public import CairnCore
import Foundation

extension SlurmExecutor {
    /// Slurm says the job is over (`entry` in a final state) or no longer knows it (nil):
    /// how the run ended is read from its directory, with Slurm's word where the files are
    /// silent (a job cancelled before it started, a node that failed, a script that could not
    /// start the supervisor).
    func over(_ runID: String, entry: SlurmQueueEntry?) async {
        guard var run = tracked[runID], let jobID = run.jobID else { return }
        let directory = runsDirectory.appendingPathComponent(runID)
        let hasResult = FileManager.default.fileExists(atPath: directory.appendingPathComponent(RunFiles.result).path)
        // A shared file system can show the result a little after Slurm reports the end; but a
        // job Cairn cancelled before it was ever seen running has none coming.
        if !hasResult, !(run.cancelRequested && run.runningSince == nil) {
            let since = run.overSince ?? Date()
            run.overSince = since
            tracked[runID] = run
            if Date().timeIntervalSince(since) < LocalExecutor.seconds(configuration.resultGrace) { return }
        }
        var state = entry?.state
        var details: SlurmJobDetails?
        // Slurm's details matter only where the files are silent or the end was not plain; a
        // job Cairn cancelled before it ran needs none (cancelling 200 costs no 200 scontrols).
        if (!hasResult || state != .completed) && !(run.cancelRequested && run.runningSince == nil) {
            details = try? await show(jobID)
            state = state ?? details?.state
            if state == nil { state = try? await accountedState(jobID) }
        }
        // Looked at again after the awaits: another poll, or a recovery, may have recorded it.
        guard let current = tracked[runID], current.final == nil else { return }
        run = current
        let cancelRequested = run.cancelRequested || exists(Files.cancelled, in: directory)
        let timedOut = run.timedOut || exists(Files.timedOut, in: directory)
        var base = run.record
        // The supervisor's start beats the poll that first saw the job running.
        if hasResult { base.startedAt = nil }
        var record = workspace.finished(base, in: directory, cancelRequested: cancelRequested,
                                        endedForTime: timedOut ? run.timeout.map(LocalExecutor.seconds) : nil)
        record.startedAt = record.startedAt ?? run.record.startedAt
        record.finishedAt = record.finishedAt ?? Date()
        explain(&record, jobID: jobID, state: state, stateText: entry?.stateText ?? details?["JobState"], details: details,
                hasResult: hasResult, cancelRequested: cancelRequested, timedOut: timedOut, directory: directory)
        run.final = record
        tracked[runID] = run
        self.record(runID)
    }

    /// Writes the final record of `runID`; once the ledger has it, the run is no longer
    /// watched, its checkout goes and the engine is told. Otherwise the next poll tries again.
    func record(_ runID: String, announce: Bool = true) {
        guard let run = tracked[runID], let final = run.final else { return }
        guard write(final) else { return }
        tracked.removeValue(forKey: runID)
        let directory = runsDirectory.appendingPathComponent(runID)
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(RunFiles.work))
        Self.forgetSecrets(in: directory)
        if announce { completed.yield(final.handle ?? placeholder(runID)) }
    }

    /// Once the run is recorded, the values of its passed variables leave `job.json`: the
    /// shared file system is not the daemon's disk, and nothing reads them again.
    static func forgetSecrets(in directory: URL) {
        let file = directory.appendingPathComponent(RunFiles.job)
        guard var job = try? RunFiles.read(SupervisedJob.self, from: file), !job.secretNames.isEmpty else { return }
        for name in job.secretNames where job.environment[name] != nil { job.environment[name] = "***" }
        try? RunFiles.writeAtomically(try RunFiles.encoder.encode(job), to: file, mode: 0o600)
    }

    /// Puts Slurm's view into the record where the supervisor's result does not tell it all.
    func explain(_ record: inout RunRecord, jobID: String, state: SlurmJobState?, stateText: String?, details: SlurmJobDetails?,
                 hasResult: Bool, cancelRequested: Bool, timedOut: Bool, directory: URL) {
        let said = stateText.map { " (\($0)\(details?["Reason"].flatMap { $0 == "None" ? nil : ", \($0)" } ?? ""))" } ?? ""
        if hasResult {
            // Slurm signals every process of a job it ends, so the command may die of that
            // SIGTERM before its supervisor hears of it: "killed by SIGTERM" reads the same as
            // the supervisor's "cancelled". Either way, when Slurm says it ended the job and
            // Cairn did not ask, Slurm's word is the story.
            let endedBySlurm = [SlurmJobState.cancelled, .nodeFail, .preempted, .timeout, .deadline].contains { $0 == state }
            let stopped = record.state == .cancelled || (record.state == .failed && record.signal != nil)
            if stopped, endedBySlurm || record.state == .cancelled, !cancelRequested, !timedOut {
                let rest = (record.message ?? "").replacingOccurrences(of: "cancelled; ", with: "")
                if state == .nodeFail || state == .preempted {
                    // Its node went away (or a job of a higher priority took it): not the
                    // run's fault, so it is run again by the retry policy, as a local run is
                    // after a crash.
                    record.state = .interrupted
                    record.message = "interrupted: Slurm ended job \(jobID)\(said) when its node failed or it was preempted; \(rest)"
                    return
                }
                // An operator's scancel, Slurm's own time limit.
                record.state = .failed
                record.message = "Slurm ended job \(jobID)\(said) without Cairn asking; \(rest)"
            }
            if state == .outOfMemory {
                record.state = .failed
                record.message = "Slurm job \(jobID) ran out of the memory it asked for (OUT_OF_MEMORY); raise resources.memory. "
                    + (record.message ?? "")
            }
            return
        }
        if let code = details?.exitCode {
            record.exitStatus = record.exitStatus ?? code.status
            if code.signal != 0 { record.signal = record.signal ?? code.signal }
        }
        let started = record.startedAt != nil
        let why: String
        switch state {
        case _ where cancelRequested:
            record.state = .cancelled
            why = started ? "cancelled; Slurm job \(jobID) ended before its supervisor wrote a result" : "cancelled before it started (Slurm job \(jobID))"
        case _ where timedOut:
            record.state = .failed
            why = "timed out: Cairn cancelled Slurm job \(jobID) at its timeout, and it ended before its supervisor wrote a result"
        case .nodeFail?, .bootFail?:
            record.state = .interrupted
            // It did start on a node: counted as an interruption, not as never started.
            record.startedAt = record.startedAt ?? details?.startTime ?? record.finishedAt
            why = "Slurm job \(jobID)'s node \(details?["NodeList"].map { "\($0) " } ?? "")failed\(said); it left no result, so it is run again by the retry policy"
        case .preempted?:
            record.state = .interrupted
            record.startedAt = record.startedAt ?? details?.startTime ?? record.finishedAt
            why = "Slurm preempted job \(jobID)\(said); it left no result, so it is run again by the retry policy"
        case .cancelled?:
            record.state = .failed
            why = "Slurm cancelled job \(jobID)\(said) without Cairn asking, before its supervisor wrote a result"
        case .timeout?:
            record.state = .failed
            why = "Slurm ended job \(jobID) at its time limit\(said) before its supervisor wrote a result"
        case .outOfMemory?:
            record.state = .failed
            why = "Slurm job \(jobID) ran out of the memory it asked for (OUT_OF_MEMORY); raise resources.memory"
        case nil:
            record.state = .interrupted
            why = "Slurm no longer knows job \(jobID), and it left no result in \(directory.path)"
        default:
            record.state = .failed
            let status = (try? String(contentsOf: directory.appendingPathComponent(Files.exitStatus), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            why = "Slurm job \(jobID) ended\(said) without a result from its supervisor"
                + (status.map { " (the job script saw exit status \($0); is cairn at \(supervisor.first ?? "?") on the node?)" } ?? "")
        }
        record.message = why + slurmLogExcerpt(directory)
    }

    /// "; Slurm's error file ends with:" and its last lines, or the output file's.
    func slurmLogExcerpt(_ directory: URL) -> String {
        for (file, label) in [(Files.error, "error"), (Files.output, "output")] {
            let lines = RunWorkspace.lastLines(of: directory.appendingPathComponent(file), count: 10)
            if !lines.isEmpty { return "; the job's \(label) file (\(file)) ends with:\n" + lines.joined(separator: "\n") }
        }
        return ""
    }

    func exists(_ file: String, in directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path)
    }

    /// `scontrol show job -o ID`, while the controller remembers the job (MinJobAge).
    func show(_ jobID: String) async throws -> SlurmJobDetails {
        let output = try await commands.run("scontrol", ["show", "job", "--oneliner", jobID])
        guard let line = output.split(whereSeparator: \.isNewline).first else { throw SlurmError(.unreachable, "scontrol printed nothing for job \(jobID)") }
        return SlurmJobDetails(String(line))
    }

    /// The job's state from `sacct`, where the cluster keeps accounting; nil where it does not.
    func accountedState(_ jobID: String) async throws -> SlurmJobState? {
        let output = try await commands.run("sacct", ["--noheader", "--parsable2", "--jobs=\(jobID)", "--format=State"])
        guard let first = output.split(whereSeparator: \.isNewline).first else { return nil }
        // "CANCELLED by 0" names who cancelled.
        return SlurmJobState(first.split(separator: " ").first ?? first)
    }

    // MARK: - After a restart

    /// Every unfinished run of this executor in the ledger: a job still queued or running is
    /// found (by its id, or by its name when the daemon died before writing the id down) and
    /// watched again; one that ended meanwhile is recorded from its files; one that never
    /// reached Slurm is marked never started. Nothing is ever submitted here.
    public func recover() async throws -> RecoveryReport {
        let unfinished: [RunRecord]
        do {
            unfinished = try ledger.unfinishedRuns().filter { $0.handle?.executor == name && tracked[$0.id] == nil }
        } catch {
            throw ExecutorError("could not read the unfinished runs from the ledger: \(LocalExecutor.reason(error))")
        }
        guard !unfinished.isEmpty else { return RecoveryReport() }
        let entries: [SlurmQueueEntry]?
        do {
            entries = try await queue()
        } catch {
            // Local work must not wait for Slurm: the runs are watched, and the polls settle
            // them once Slurm answers.
            logger.warning("could not ask Slurm about \(unfinished.count) unfinished run(s) the last daemon left: \(error); looking again at each poll")
            entries = nil
        }
        var report = RecoveryReport()
        for record in unfinished {
            let directory = runsDirectory.appendingPathComponent(record.id)
            let file = try? RunFiles.read(JobFile.self, from: directory.appendingPathComponent(Files.state))
            let jobName = file?.jobName ?? Self.jobName(runID: record.id)
            let knownID = record.handle.flatMap { $0.id.isEmpty ? nil : $0.id }
            var run = Tracked(record: record, jobName: jobName, jobID: knownID,
                              timeout: file?.timeoutSeconds.map { .milliseconds(Int64($0 * 1000)) })
            run.cancelRequested = exists(Files.cancelled, in: directory)
            run.timedOut = exists(Files.timedOut, in: directory)
            if record.state == .running { run.runningSince = record.startedAt ?? Date() }
            guard let entries else {
                if knownID == nil { run.unanswered = Date() }
                tracked[record.id] = run
                report.adopted.append(record.id)
                continue
            }
            // By its id; by its name (this run's alone) only when the id was never written down.
            let entry = knownID.map { id in entries.first { $0.jobID == id } } ?? entries.last { $0.name == jobName }
            // Files in its directory mean it ran, even if Slurm has forgotten it since.
            let ran = [RunFiles.result, Files.exitStatus].contains { exists($0, in: directory) }
            guard let jobID = entry?.jobID ?? knownID ?? (ran ? "(id not recorded)" : nil) else {
                // No job of that name and nothing in its directory: sbatch never took it.
                tracked[record.id] = run
                end(record.id, .interrupted, message: LocalExecutor.neverStarted)
                if tracked[record.id] == nil { report.interrupted.append(record.id) }
                continue
            }
            run.jobID = jobID
            run.record.handle = JobHandle(executor: name, id: jobID, runID: record.id)
            if let entry, !entry.state.isFinal {
                run.state = entry.state
                tracked[record.id] = run
                if knownID != jobID { write(run.record) }
                report.adopted.append(record.id)
                continue
            }
            // It ended while no daemon watched: its files say how, at once.
            run.overSince = Date.distantPast
            tracked[record.id] = run
            await over(record.id, entry: entry)
            if tracked[record.id] == nil, let final = try? ledger.run(id: record.id) {
                if final.state == .interrupted { report.interrupted.append(record.id) } else { report.finished.append(record.id) }
            }
        }
        if !tracked.isEmpty { ensurePolling() }
        let stuck = unfinished.map(\.id).filter { tracked[$0]?.final != nil }
        if !stuck.isEmpty {
            throw ExecutorError("could not record how runs \(stuck.joined(separator: ", ")) ended in the ledger; they stay as last recorded, tried again at each poll")
        }
        return report
    }
}
