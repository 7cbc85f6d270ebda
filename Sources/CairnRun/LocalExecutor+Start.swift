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
            if prepared.remove(spec.runID) == nil { try workspace.prepare(spec, in: directory) }
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
