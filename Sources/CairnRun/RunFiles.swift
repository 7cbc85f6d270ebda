public import Foundation
import Glibc

/// What the executor hands the supervisor in `RUN_DIR/job.json`: everything needed to run the
/// command with no daemon around. It holds the passed variables' values, so it is written
/// readable by its owner only.
public struct SupervisedJob: Codable, Sendable, Hashable {
    /// The program as a path (already looked up on the runs' PATH) and its arguments.
    public var argv: [String]
    /// The child's whole environment.
    public var environment: [String: String]
    public var workingDirectory: String
    /// Seconds before the group gets SIGTERM; nil for no limit.
    public var timeoutSeconds: Double?
    /// Seconds between SIGTERM and SIGKILL.
    public var graceSeconds: Double
    /// Bytes of log kept at most; the tail is kept.
    public var logCap: Int
    /// Names of `environment` entries whose values are secret (redacted from messages).
    public var secretNames: [String]
    /// For the executor, not the supervisor: the declared outputs, collected when the run
    /// succeeds (also by a daemon that restarted meanwhile), and the slots the run takes.
    public var outputs: [String]
    public var cpus: Int

    public init(argv: [String], environment: [String: String], workingDirectory: String, timeoutSeconds: Double?,
                graceSeconds: Double, logCap: Int, secretNames: [String], outputs: [String] = [], cpus: Int = 1) {
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeoutSeconds = timeoutSeconds
        self.graceSeconds = graceSeconds
        self.logCap = logCap
        self.secretNames = secretNames
        self.outputs = outputs
        self.cpus = cpus
    }
}

/// How a supervised command ended, written by the supervisor to `RUN_DIR/result.json`
/// (temporary name, fsync, rename), so whoever looks later reads all of it or none.
public struct SupervisedResult: Codable, Sendable, Hashable {
    public var exitStatus: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    /// The supervisor was told to stop (SIGTERM or SIGINT) and ended the group.
    public var cancelled: Bool
    /// Why the command never started, when it did not.
    public var startError: String?
    public var startedAt: Date
    public var finishedAt: Date
    /// Bytes the command wrote to its log in all, and how many of the first were cut.
    public var logBytesWritten: Int
    public var logBytesCut: Int
    /// Why the log could not be written (a full disk, say), when it could not: the output
    /// after that was read and dropped.
    public var logError: String?

    public init(exitStatus: Int32?, signal: Int32?, timedOut: Bool, cancelled: Bool, startError: String?,
                startedAt: Date, finishedAt: Date, logBytesWritten: Int, logBytesCut: Int, logError: String? = nil) {
        self.exitStatus = exitStatus
        self.signal = signal
        self.timedOut = timedOut
        self.cancelled = cancelled
        self.startError = startError
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.logBytesWritten = logBytesWritten
        self.logBytesCut = logBytesCut
        self.logError = logError
    }
}

/// The files of one run directory, by name.
public enum RunFiles {
    public static let job = "job.json"
    public static let result = "result.json"
    public static let params = "params.json"
    public static let log = "log"
    public static let supervisorLog = "supervisor.log"
    /// The command's pid and start ticks, so an orphaned group can be ended after its
    /// supervisor died.
    public static let commandPID = "command.pid"
    /// The supervisor's own pid and start ticks, written before anything else it does, so a
    /// daemon that died before recording the run's handle can still find (and adopt) it.
    public static let supervisorPID = "supervisor.pid"
    public static let work = "work"

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }()

    static func read<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
            return try Date(text, strategy: .iso8601)
        }
        return try decoder.decode(type, from: Data(contentsOf: url))
    }

    /// Writes `data` at `url` through a temporary name in the same directory, fsynced, then
    /// renamed, and fsyncs the directory: a reader sees the whole file or none.
    public static func writeAtomically(_ data: Data, to url: URL, mode: mode_t = 0o644) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw fileError("could not create \(temporary.path)") }
        var failure: Int32 = 0
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        guard failure == 0 else {
            unlink(temporary.path)
            throw fileError("could not write \(url.path)", errno: failure)
        }
        guard rename(temporary.path, url.path) == 0 else {
            let number = errno
            unlink(temporary.path)
            throw fileError("could not put \(url.path) in place", errno: number)
        }
        let directory = open(url.deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Writes this process's pid and start ticks at `url` ("PID TICKS\n").
    static func writePID(_ pid: Int32, to url: URL) throws {
        let ticks = ProcessTable.startTicks(of: pid).map(String.init) ?? ""
        try writeAtomically(Data("\(pid) \(ticks)\n".utf8), to: url)
    }

    /// A pid file's pid and start ticks; nil when it is missing or unreadable.
    static func readPID(from url: URL) -> (pid: Int32, ticks: UInt64)? {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count > 1, let pid = Int32(fields[0]), pid > 0, let ticks = UInt64(fields[1]) else { return nil }
        return (pid, ticks)
    }

    static func fileError(_ what: String, errno number: Int32 = errno) -> ExecutorError {
        ExecutorError("\(what): \(String(cString: strerror(number)))")
    }
}

/// A process as /proc shows it: whether it lives and when it started, so a pid that the
/// kernel gave to another process since is never taken for the one recorded.
public enum ProcessTable {
    /// Field 22 of /proc/PID/stat: the start time in clock ticks since boot; nil when there
    /// is no such process.
    public static func startTicks(of pid: Int32) -> UInt64? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After the name in parentheses come fields 3, 4, …; field 22 is the 20th of them.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the process is a zombie (dead, not yet reaped), from field 3.
    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Whether `pid` is still the process that started at `ticks`, and has not exited.
    public static func isAlive(_ pid: Int32, startTicks ticks: UInt64?) -> Bool {
        guard let ticks, let now = startTicks(of: pid), now == ticks else { return false }
        return !isZombie(pid)
    }

    typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    static let pidfdOpen: PidfdOpen? = {
        guard let process = dlopen(nil, RTLD_NOW), let address = dlsym(process, "pidfd_open") else { return nil }
        return unsafeBitCast(address, to: PidfdOpen.self)
    }()

    /// Blocks until `pid` (not necessarily a child) has exited: through a pidfd when the
    /// system has them, else by looking at /proc once a second.
    static func waitForExit(of pid: Int32, startTicks ticks: UInt64?) {
        if let pidfdOpen {
            let descriptor = pidfdOpen(pid, 0)
            if descriptor >= 0 {
                defer { close(descriptor) }
                // Opened after the check the caller made; make sure it is still the same process.
                guard isAlive(pid, startTicks: ticks) else { return }
                var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                while true {
                    let ready = poll(&entry, 1, 1000)
                    if ready > 0 || (ready < 0 && errno != EINTR) { return }
                    if !isAlive(pid, startTicks: ticks) { return }
                }
            }
        }
        while isAlive(pid, startTicks: ticks) { sleep(1) }
    }
}

/// What the local executor refuses or fails at, in a sentence a person can act on.
public struct ExecutorError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
