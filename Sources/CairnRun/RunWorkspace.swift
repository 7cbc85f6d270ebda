import CairnCore
import Foundation
import Glibc
import Logging

/// What every executor does with a run's directory, wherever the run then executes: make it
/// (the checkout, restored inputs, `params.json`, and `job.json` for the supervisor) and read
/// how it ended (`result.json`, and the declared outputs moved into the artifact store). The
/// local executor's runs and Slurm's jobs share both halves, so a run ends in the same record
/// whichever ran it.
struct RunWorkspace: Sendable {
    let artifacts: ArtifactStore
    let source: any SourceCheckout
    /// The daemon's environment, where passed variables' values come from.
    let daemonEnvironment: [String: String]
    let logCap: Int
    let grace: Duration

    /// Why `spec` may not run under the policy wherever it runs, in a sentence; nil when it may.
    static func refusal(of spec: JobSpec, policy: ExecutionPolicy) -> String? {
        if spec.command.isEmpty || spec.command[0].isEmpty { return "run \(spec.runID) has no command to run" }
        if spec.shell && !policy.allowShell {
            return "run \(spec.runID) asks for a shell (shell: true), which this daemon does not allow; start it with --allow-shell or give the command as a list"
        }
        let refused = spec.passEnvironment.filter { !policy.passEnvironment.contains($0) }
        if !refused.isEmpty {
            return "run \(spec.runID) asks for the environment variable\(refused.count == 1 ? "" : "s") \(refused.sorted().joined(separator: ", ")), "
                + "which the daemon does not pass on; allow \(refused.count == 1 ? "it" : "them") with --pass-env"
        }
        for path in spec.outputs where !ArtifactStore.isSafeRelativePath(path) {
            return "run \(spec.runID) declares the output \(path), which is not a relative path inside the repository"
        }
        for path in spec.inputs.keys where !ArtifactStore.isSafeRelativePath(path) {
            return "run \(spec.runID) restores an input at \(path), which is not a relative path inside the repository"
        }
        return nil
    }

    /// Makes the run's directory: the checkout, the restored inputs, params.json and job.json.
    /// `timeoutOnNode` false leaves the limit to the executor (Slurm's runs are ended by
    /// Cairn's `scancel`), so the supervisor does not race it.
    @discardableResult
    func prepare(_ spec: JobSpec, in directory: URL, timeoutOnNode: Bool = true) throws -> SupervisedJob {
        let manager = FileManager.default
        let work = directory.appendingPathComponent(RunFiles.work)
        do {
            if manager.fileExists(atPath: directory.path) { try manager.removeItem(at: directory) }
            try manager.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ExecutorError("could not create the run's directory \(directory.path): \(LocalExecutor.reason(error))")
        }
        do {
            try source.checkout(commit: spec.sourceCommit, into: work)
        } catch {
            throw ExecutorError("could not check out commit \(spec.sourceCommit.prefix(12)) into \(work.path): \(error)")
        }
        try removeDeclaredOutputs(spec, from: work)
        let root = try realPath(work)
        for (path, artifact) in spec.inputs.sorted(by: { $0.key < $1.key }) {
            let target = work.appendingPathComponent(path)
            if let link = LocalExecutor.symlinkAncestor(of: path, in: work) {
                throw ExecutorError("the input \(path) would be restored through \(link), which is a symlink in the checkout and may lead out of the run's directory; nothing was restored")
            }
            do {
                try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                let parent = try realPath(target.deletingLastPathComponent())
                guard parent == root || parent.hasPrefix(root + "/") else {
                    throw ExecutorError("the input \(path) would be restored at \(parent), which leaves the run's directory")
                }
                if (try? manager.attributesOfItem(atPath: target.path)) != nil { try manager.removeItem(at: target) }
                try artifacts.restore(artifact, to: target)
            } catch let error as ExecutorError {
                throw error
            } catch {
                throw ExecutorError("could not restore the input \(path) (\(artifact.digest)): \(error)")
            }
        }

        let paramsFile = directory.appendingPathComponent(RunFiles.params)
        var environment = [
            "CAIRN_RUN_ID": spec.runID,
            "CAIRN_OUTPUT_DIR": work.path,
            "CAIRN_PARAMS": spec.params,
            "CAIRN_PARAMS_FILE": paramsFile.path,
            "PATH": LocalExecutor.runPath,
            "HOME": directory.path,
            "LANG": "C.UTF-8",
        ]
        for name in spec.passEnvironment { environment[name] = daemonEnvironment[name] }
        let argv = spec.shell ? ["/bin/sh", "-c"] + spec.command : [try LocalExecutor.resolve(spec.command[0], in: work)] + spec.command.dropFirst()
        let job = SupervisedJob(argv: argv, environment: environment, workingDirectory: work.path,
                                timeoutSeconds: timeoutOnNode ? spec.timeout.map(LocalExecutor.seconds) : nil,
                                graceSeconds: LocalExecutor.seconds(grace),
                                logCap: logCap, secretNames: spec.passEnvironment.filter { daemonEnvironment[$0] != nil },
                                outputs: spec.outputs, cpus: max(1, spec.cpus))
        do {
            try RunFiles.writeAtomically(Data(spec.params.utf8), to: paramsFile)
            try RunFiles.writeAtomically(try RunFiles.encoder.encode(job),
                                         to: directory.appendingPathComponent(RunFiles.job), mode: 0o600)
        } catch {
            throw ExecutorError("could not write the run's files in \(directory.path): \(LocalExecutor.reason(error))")
        }
        return job
    }

    /// Removes what the checkout holds at each declared output (file, directory or symlink,
    /// never followed), so only what the command writes counts as produced, and makes the
    /// directory each output goes in (`touch out/x.txt` needs `out/`), as people expect.
    private func removeDeclaredOutputs(_ spec: JobSpec, from work: URL) throws {
        for path in spec.outputs {
            if let link = LocalExecutor.symlinkAncestor(of: path, in: work) {
                throw ExecutorError("the declared output \(path) lies under \(link), which is a symlink in the checkout; outputs must be written at real paths inside the run's directory")
            }
            let target = work.appendingPathComponent(path)
            var info = stat()
            guard lstat(target.path, &info) == 0 else { continue }
            do {
                if info.st_mode & S_IFMT == S_IFDIR {
                    try FileManager.default.removeItem(at: target)
                } else if unlink(target.path) != 0 {
                    throw RunFiles.fileError("could not remove \(target.path)")
                }
            } catch {
                throw ExecutorError("could not remove the declared output \(path) that the commit holds from \(work.path): \(error is ExecutorError ? "\(error)" : LocalExecutor.reason(error))")
            }
        }
        for path in spec.outputs {
            // No ancestor is a symlink (checked above), so this stays inside work/.
            let parent = work.appendingPathComponent(path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            } catch {
                throw ExecutorError("could not make the directory of the declared output \(path): \(LocalExecutor.reason(error))")
            }
        }
    }

    /// The run's final record, from the supervisor's `result.json` (and, when it succeeded,
    /// the outputs it wrote, now in the store). The checkout stays: the caller removes it once
    /// the record is written.
    /// `endedForTime` is the limit (in seconds) after which the executor ended the run itself
    /// (Slurm's runs, by `scancel`): a run that was cancelled then ran past its timeout.
    func finished(_ record: RunRecord, in directory: URL, cancelRequested: Bool, endedForTime: Double? = nil) -> RunRecord {
        var record = record
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
        if let limit = endedForTime, !cancelRequested, result.cancelled || result.exitStatus != 0 {
            record.state = .failed
            record.message = "timed out: it ran past its timeout of \(LocalExecutor.format(limit)) and \(how)" + excerpt()
        } else if result.cancelled || cancelRequested {
            record.state = .cancelled
            record.message = "cancelled; it \(how)" + excerpt()
        } else if result.timedOut {
            let limit = jobFile?.timeoutSeconds.map { " of \(LocalExecutor.format($0))" } ?? ""
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
        let lines = RunWorkspace.lastLines(of: directory.appendingPathComponent(RunFiles.log), count: 20)
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
}

extension LocalExecutor {
    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }
}

extension RunLedger {
    /// Records `record` for an executor; a failure is logged and leaves the ledger as it was
    /// (the caller keeps the record and tries again).
    @discardableResult
    func write(_ record: RunRecord, logger: Logger) -> Bool {
        do {
            try self.record(record)
            return true
        } catch {
            logger.error("could not record run \(record.id) as \(record.state.rawValue) in the ledger: \(LocalExecutor.reason(error)); it stays as last recorded",
                         metadata: ["cairn.run": "\(record.id)"])
            return false
        }
    }
}

extension JobSpec {
    /// The run's first ledger row, as every executor writes it before anything starts.
    func submittedRecord(logPath: String, at date: Date) -> RunRecord {
        var record = RunRecord(id: runID, key: key, object: object, stage: stage, state: .submitted, trigger: trigger, reason: reason,
                               sourceCommit: sourceCommit, command: command, inputs: keyInputs, attempt: attempt, submittedAt: date)
        record.logPath = logPath
        record.triggerID = triggerID
        record.params = params
        if !inputs.isEmpty { record.consumed = inputs }
        if !producers.isEmpty { record.producers = producers }
        if !annotations.isEmpty { record.annotations = annotations }
        return record
    }
}
