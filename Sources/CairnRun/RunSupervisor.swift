import Dispatch
public import Foundation
import Glibc

/// The process that stands between the daemon and a run (`cairn _supervise RUN_DIR`), so a
/// run outlives a daemon crash and its end is always written down.
///
/// It reads `job.json`, starts the command through `Command` (own process group, standard
/// input /dev/null), drains standard output and error itself into `log`, keeping the tail
/// within the cap, enforces the timeout (SIGTERM to the group, grace, SIGKILL), passes a
/// SIGTERM or SIGINT it receives on to the group (that is how a run is cancelled), ends
/// whatever is left of the group when the command exits, and finally writes `result.json`
/// (temporary name, fsync, rename). It holds no pipe to the daemon.
public enum RunSupervisor {
    /// Runs the job in `runDirectory`; returns the supervisor's exit status: 0 once
    /// `result.json` is written (whatever the command did), non-zero when it could not be.
    public static func main(runDirectory: URL) -> Int32 {
        // First of all, so a daemon that dies before recording this run's handle finds us.
        do {
            try RunFiles.writePID(getpid(), to: runDirectory.appendingPathComponent(RunFiles.supervisorPID))
        } catch {
            report("cannot write \(RunFiles.supervisorPID): \(error)")
        }
        let job: SupervisedJob
        do {
            job = try RunFiles.read(SupervisedJob.self, from: runDirectory.appendingPathComponent(RunFiles.job))
        } catch {
            report("cannot read \(runDirectory.appendingPathComponent(RunFiles.job).path): \(error)")
            return 3
        }
        let started = Date()
        let grace = Duration.milliseconds(Int64(job.graceSeconds * 1000))
        let running = Guarded<(process: RunningProcess?, cancelled: Bool)>((nil, false))

        // Signals arrive as events on a queue rather than through a handler, so the reaction
        // may lock and spawn timers.
        let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue(label: "cairn.supervise.signal"))
            source.setEventHandler {
                let process = running.withLock { state -> RunningProcess? in
                    state.cancelled = true
                    return state.process
                }
                report("received \(signalName(number)); ending the command's process group")
                process?.stop(grace: grace)
            }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        var log: CappedLog
        do {
            log = try CappedLog(url: runDirectory.appendingPathComponent(RunFiles.log), cap: job.logCap)
        } catch {
            return finish(runDirectory, SupervisedResult(exitStatus: nil, signal: nil, timedOut: false, cancelled: false,
                                                         startError: "\(error)", startedAt: started, finishedAt: Date(),
                                                         logBytesWritten: 0, logBytesCut: 0))
        }
        guard case .success(let pipe) = GNUExtensions.makePipe(), let program = job.argv.first else {
            log.finish()
            return finish(runDirectory, SupervisedResult(exitStatus: nil, signal: nil, timedOut: false, cancelled: false,
                                                         startError: job.argv.isEmpty ? "the command is empty" : "could not make a pipe for its output",
                                                         startedAt: started, finishedAt: Date(), logBytesWritten: 0, logBytesCut: 0))
        }
        let command = Command(program, Array(job.argv.dropFirst()), environment: job.environment,
                              workingDirectory: URL(fileURLWithPath: job.workingDirectory),
                              standardOutput: .descriptor(pipe.write), standardError: .descriptor(pipe.write),
                              timeout: job.timeoutSeconds.map { .milliseconds(Int64($0 * 1000)) }, grace: grace)
        let process: RunningProcess
        do {
            // Started under the lock, so a signal either comes before (and nothing starts) or finds the process.
            process = try running.withLock { state -> RunningProcess in
                if state.cancelled { throw ExecutorError("cancelled before it started") }
                let process = try command.start()
                state.process = process
                return process
            }
        } catch {
            close(pipe.write)
            close(pipe.read)
            log.finish()
            let cancelled = running.withLock { $0.cancelled }
            return finish(runDirectory, SupervisedResult(exitStatus: nil, signal: nil, timedOut: false, cancelled: cancelled,
                                                         startError: "\(error)", startedAt: started, finishedAt: Date(),
                                                         logBytesWritten: 0, logBytesCut: 0))
        }
        close(pipe.write)
        try? RunFiles.writePID(process.processID, to: runDirectory.appendingPathComponent(RunFiles.commandPID))

        drain(pipe.read, into: &log, while: process, linger: max(grace, .seconds(1)))
        close(pipe.read)
        let outcome = process.waitUntilExit()
        log.finish()
        var exitStatus: Int32?
        var signal: Int32?
        switch outcome.termination {
        case .exited(let status): exitStatus = status
        case .signaled(let number): signal = number
        }
        return finish(runDirectory, SupervisedResult(exitStatus: exitStatus, signal: signal, timedOut: outcome.timedOut,
                                                     cancelled: running.withLock { $0.cancelled }, startError: nil,
                                                     startedAt: started, finishedAt: Date(),
                                                     logBytesWritten: log.written, logBytesCut: log.cut, logError: log.error))
    }

    /// Reads the pipe into the log until every writer has closed it, or, once the command has
    /// exited, `linger` later (a process that left the group may hold it open, and keep
    /// writing, for ever). The deadline is looked at before every read, however busy the pipe.
    private static func drain(_ descriptor: Int32, into log: inout CappedLog, while process: RunningProcess, linger: Duration) {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 1)
        defer { chunk.deallocate() }
        var deadline: ContinuousClock.Instant?
        while true {
            var wait: Int32 = 200
            if deadline == nil, !process.isRunning { deadline = .now + linger }
            if let deadline {
                let left = deadline - .now
                if left <= .zero { return }
                let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
                wait = Int32(max(1, min(200, milliseconds)))
            }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, wait)
            if ready < 0 && errno != EINTR { return }
            if ready > 0 {
                let count = read(descriptor, chunk.baseAddress, chunk.count)
                if count > 0 {
                    // Appended even after a write error: the log then drops it, and the pipe keeps draining.
                    log.append(UnsafeRawBufferPointer(rebasing: chunk[..<count]))
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    return
                }
            }
        }
    }

    private static func finish(_ runDirectory: URL, _ result: SupervisedResult) -> Int32 {
        do {
            try RunFiles.writeAtomically(try RunFiles.encoder.encode(result), to: runDirectory.appendingPathComponent(RunFiles.result))
            return 0
        } catch {
            report("cannot write the result: \(error)")
            return 1
        }
    }

    /// A line on standard error (supervisor.log); `write(2)`, so a full disk loses the line
    /// and never traps.
    private static func report(_ line: String) {
        var bytes = Array("cairn _supervise: \(line)\n".utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return }
            bytes = bytes.dropFirst(count)
        }
    }
}
