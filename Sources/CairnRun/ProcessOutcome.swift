public import Foundation

/// How a child process ended: its own exit, or a signal. The two are never folded into one
/// number, so "exit 15" and "killed by SIGTERM" stay different things.
public enum Termination: Sendable, Hashable, CustomStringConvertible {
    /// The child called exit with this status (0–255). -1 if the status was lost because
    /// something else in this process reaped the child first.
    case exited(Int32)
    /// A signal ended the child (SIGKILL is 9, SIGTERM 15).
    case signaled(Int32)

    /// The number a shell would report in `$?`: the exit status, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let status): status
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .signaled(let signal): "killed by \(signalName(signal))"
        }
    }

    /// Reads a status word from `waitpid`.
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        // Without WUNTRACED, waitpid reports only exits (low 7 bits zero) and deaths by signal.
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}

/// "SIGTERM" for 15, or "signal 42" for one without a common name.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV",
        SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
    ]
    return names[signal] ?? "signal \(signal)"
}

/// What a finished child left behind.
public struct ProcessOutcome: Sendable, CustomStringConvertible {
    /// The command as given, for messages.
    public let command: String
    public let processID: Int32
    public let termination: Termination
    /// Whether the runner ended it because its timeout passed (the termination then says which
    /// signal finally did it).
    public let timedOut: Bool
    /// From the start until the child was reaped.
    public let elapsed: Duration
    /// Empty unless the stream was captured.
    public let standardOutput: CapturedOutput
    public let standardError: CapturedOutput

    /// Exited with status 0 within its time.
    public var succeeded: Bool { termination == .exited(0) && !timedOut }

    public var description: String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return "\(command): \(termination) after \(String(format: "%.3f", seconds))s" + (timedOut ? ", having timed out" : "")
    }
}

/// The bytes a child wrote to one stream: all of them, or the last `limit` when it wrote more.
public struct CapturedOutput: Sendable, Hashable {
    /// What was kept: the tail of the stream.
    public let bytes: [UInt8]
    /// How many bytes the child wrote in all.
    public let totalBytes: Int

    public init(bytes: [UInt8], totalBytes: Int) {
        self.bytes = bytes
        self.totalBytes = totalBytes
    }

    public static let empty = CapturedOutput(bytes: [], totalBytes: 0)

    /// Whether the start was cut to stay within the limit.
    public var truncated: Bool { totalBytes > bytes.count }

    /// The bytes as UTF-8; a character split by the cut reads as U+FFFD.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var data: Data { Data(bytes) }
}
