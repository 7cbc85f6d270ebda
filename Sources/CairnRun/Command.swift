public import Foundation

/// A program to run: argv as a list (never a shell), its environment, working directory, where
/// its output goes and how long it may take.
///
/// Every process Cairn starts goes through this one runner. The child gets its own process
/// group, standard input from /dev/null, and both output streams drained while it runs, so a
/// chatty child never blocks on a full pipe. A timeout ends the whole group: SIGTERM, then
/// SIGKILL after `grace`. When the child exits, whatever is left in its group is killed, so a
/// grandchild holding the pipes cannot keep a reader waiting.
///
///     let outcome = try await Command("git", ["rev-parse", "HEAD"], workingDirectory: repo).run()
///     guard outcome.succeeded else { ... outcome.standardError.text ... }
public struct Command: Sendable, CustomStringConvertible {
    /// A path, or a bare name looked up on this process's PATH (as `execvp` does).
    public var executable: String
    /// The arguments after argv[0], passed verbatim: no word splitting, globbing or quoting.
    public var arguments: [String]
    /// The child's whole environment; nil inherits this process's.
    public var environment: [String: String]?
    /// Where the child starts; nil keeps this process's working directory.
    public var workingDirectory: URL?
    public var standardOutput: OutputDestination
    public var standardError: OutputDestination
    /// How long the child may run before its group gets SIGTERM; nil waits for ever.
    /// A file the child reads as its standard input; nil gives it /dev/null.
    public var standardInput: URL?
    public var timeout: Duration?
    /// How long after SIGTERM (a timeout, a cancelled task, `stop`) before SIGKILL. Also how
    /// long (at least 1 s) output is still read after the child exits, should a process that
    /// left its group hold the pipes open.
    public var grace: Duration

    public init(_ executable: String, _ arguments: [String] = [],
                environment: [String: String]? = nil, workingDirectory: URL? = nil,
                standardOutput: OutputDestination = .capture(),
                standardError: OutputDestination = .capture(),
                timeout: Duration? = nil, grace: Duration = .seconds(5)) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.timeout = timeout
        self.grace = grace
    }

    /// The command as a person would type it, for messages (arguments with spaces are quoted).
    public var description: String {
        ([executable] + arguments).map { argument in
            argument.isEmpty || argument.contains(where: { " \t\n\"'$;&|<>()*?\\`".contains($0) })
                ? "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'" : argument
        }.joined(separator: " ")
    }
}

/// Where one of the child's output streams goes.
public enum OutputDestination: Sendable, Hashable {
    /// Into memory, keeping at most the last `limit` bytes; `CapturedOutput.truncated` says
    /// whether the start was cut.
    case capture(limit: Int = OutputDestination.defaultLimit)
    /// To /dev/null.
    case discard
    /// To a file, created if missing, truncated unless `append`. The child writes it directly.
    case file(URL, append: Bool = false)
    /// To a descriptor this process holds open (a pipe it reads itself, say); the child gets
    /// a copy, and the caller keeps and closes its own. Both streams may name the same one.
    case descriptor(Int32)

    /// 16 MiB per stream.
    public static let defaultLimit = 16 << 20
}

extension Command {
    /// Runs the command to the end and returns how it ended. A non-zero exit is an outcome,
    /// not an error; only failing to start the child throws (a `RunError`).
    ///
    /// If the task is cancelled, the child's group gets SIGTERM, then SIGKILL after `grace`;
    /// once it is gone this throws `CancellationError`.
    public func run() async throws -> ProcessOutcome {
        let child = try start()
        let outcome = await withTaskCancellationHandler {
            await child.wait()
        } onCancel: {
            child.stop()
        }
        try Task.checkCancellation()
        return outcome
    }

    /// Runs the command to the end, blocking this thread; for the few callers that are not async.
    public func runSynchronously() throws -> ProcessOutcome {
        try start().waitUntilExit()
    }

    /// Starts the command and returns at once with a handle to the running child.
    public func start() throws -> RunningProcess {
        try RunningProcess(launching: self)
    }
}
