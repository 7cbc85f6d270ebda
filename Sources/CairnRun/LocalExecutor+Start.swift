import CairnCore
public import Foundation
import Glibc

extension LocalExecutor {
    /// Takes the run's slots, prepares its directory and starts its supervisor; a run that
    /// cannot start is recorded failed with the reason.
    func start(_ queued: Queued) {
        let spec = queued.spec
        let slots = slots(of: spec)
        usedSlots += slots
        var record = queued.record
        let directory = runsDirectory.appendingPathComponent(spec.runID)
        do {
            if prepared.remove(spec.runID) == nil { try prepare(spec, in: directory) }
            let logPath = directory.appendingPathComponent(RunFiles.supervisorLog).path
            let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard log >= 0 else { throw RunFiles.fileError("could not open \(logPath)") }
            defer { close(log) }
            // A minimal environment: the job's own is in job.json, and the daemon's (tokens and
            // all) must not be readable by the run through /proc/$PPID/environ.
            let process = try Command(supervisor[0], Array(supervisor.dropFirst()) + [directory.path],
                                      environment: ["PATH": Self.runPath, "LANG": "C.UTF-8", "HOME": directory.path],
                                      workingDirectory: directory, standardOutput: .descriptor(log), standardError: .descriptor(log))
                .start()
            let handle = JobHandle(executor: name, id: String(process.processID), runID: spec.runID,
                                   startTicks: ProcessTable.startTicks(of: process.processID))
            record.state = .running
            record.handle = handle
            record.startedAt = Date()
            write(record)
            active[spec.runID] = Active(record: record, handle: handle, slots: slots)
            Task { [weak self] in
                _ = await process.wait()
                await self?.supervisorEnded(spec.runID)
            }
        } catch {
            usedSlots -= slots
            record.state = .failed
            record.finishedAt = Date()
            record.message = "could not start: \(error is ExecutorError ? "\(error)" : Self.reason(error))"
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(RunFiles.work))
            if write(record) { completed.yield(placeholder(spec.runID)) }
        }
    }

    /// Makes the run's directory: the checkout, the restored inputs, params.json and job.json.
    @discardableResult
    func prepare(_ spec: JobSpec, in directory: URL) throws -> SupervisedJob {
        let manager = FileManager.default
        let work = directory.appendingPathComponent(RunFiles.work)
        do {
            if manager.fileExists(atPath: directory.path) { try manager.removeItem(at: directory) }
            try manager.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ExecutorError("could not create the run's directory \(directory.path): \(Self.reason(error))")
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
            if let link = Self.symlinkAncestor(of: path, in: work) {
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
            "PATH": Self.runPath,
            "HOME": directory.path,
            "LANG": "C.UTF-8",
        ]
        for name in spec.passEnvironment { environment[name] = daemonEnvironment[name] }
        let argv = spec.shell ? ["/bin/sh", "-c"] + spec.command : [try Self.resolve(spec.command[0], in: work)] + spec.command.dropFirst()
        let job = SupervisedJob(argv: argv, environment: environment, workingDirectory: work.path,
                                timeoutSeconds: spec.timeout.map(Self.seconds), graceSeconds: Self.seconds(grace),
                                logCap: logCap, secretNames: spec.passEnvironment.filter { daemonEnvironment[$0] != nil },
                                outputs: spec.outputs, cpus: slots(of: spec))
        do {
            try RunFiles.writeAtomically(Data(spec.params.utf8), to: paramsFile)
            try RunFiles.writeAtomically(try RunFiles.encoder.encode(job),
                                         to: directory.appendingPathComponent(RunFiles.job), mode: 0o600)
        } catch {
            throw ExecutorError("could not write the run's files in \(directory.path): \(Self.reason(error))")
        }
        return job
    }

    /// Removes what the checkout holds at each declared output (file, directory or symlink,
    /// never followed), so only what the command writes counts as produced, and makes the
    /// directory each output goes in (`touch out/x.txt` needs `out/`), as people expect.
    private func removeDeclaredOutputs(_ spec: JobSpec, from work: URL) throws {
        for path in spec.outputs {
            if let link = Self.symlinkAncestor(of: path, in: work) {
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
                throw ExecutorError("could not remove the declared output \(path) that the commit holds from \(work.path): \(error is ExecutorError ? "\(error)" : Self.reason(error))")
            }
        }
        for path in spec.outputs {
            // No ancestor is a symlink (checked above), so this stays inside work/.
            let parent = work.appendingPathComponent(path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            } catch {
                throw ExecutorError("could not make the directory of the declared output \(path): \(Self.reason(error))")
            }
        }
    }

    /// The first ancestor of the relative `path` (every component but the last) that is a
    /// symlink in `root`, looked at with lstat, never followed; nil when none is (the walk
    /// stops at the first that does not exist).
    static func symlinkAncestor(of path: String, in root: URL) -> String? {
        var prefix = ""
        for component in path.split(separator: "/").dropLast() {
            prefix = prefix.isEmpty ? String(component) : "\(prefix)/\(component)"
            var info = stat()
            guard lstat(root.appendingPathComponent(prefix).path, &info) == 0 else { return nil }
            if info.st_mode & S_IFMT == S_IFLNK { return prefix }
        }
        return nil
    }

    /// The program `name` means for a run: a path (relative to the checkout) when it holds a
    /// slash, else the first executable of that name on the runs' PATH. (Serving commands
    /// find their programs the same way.)
    public static func resolve(_ name: String, in work: URL) throws -> String {
        if name.contains("/") {
            let path = name.hasPrefix("/") ? name : work.appendingPathComponent(name).path
            guard access(path, X_OK) == 0 else {
                throw ExecutorError("the command \(name) was not found or is not executable (\(path))")
            }
            return path
        }
        for directory in runPath.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT != S_IFDIR, access(candidate, X_OK) == 0 { return candidate }
        }
        throw ExecutorError("the command \(name) was not found on the runs' PATH (\(runPath)); name a program in the repository with a path, like ./\(name)")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The path with every symlink resolved.
func realPath(_ url: URL) throws -> String {
    guard let resolved = realpath(url.path, nil) else { throw RunFiles.fileError("could not resolve \(url.path)") }
    defer { free(resolved) }
    return String(cString: resolved)
}
