import Glibc

/// A child process that could not be started: what was wrong, in words a person can act on,
/// the system error behind it if any, and which call failed.
///
/// A child that starts and then fails is not a `RunError`: that is a `ProcessOutcome` whose
/// termination says how it ended.
///
/// `code` is a struct over a private enum so new codes can be added without breaking callers
/// that switch over the ones they care about.
public struct RunError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notFound, notExecutable, workingDirectory, invalidArgument, output, spawn
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// No such file at the path, or no program of that name on PATH.
        public static let notFound = Code(.notFound)
        /// The file exists but cannot be executed (permissions, a directory, not a program).
        public static let notExecutable = Code(.notExecutable)
        /// The working directory does not exist or is not a directory.
        public static let workingDirectory = Code(.workingDirectory)
        /// An argument or environment entry cannot be passed (it holds a NUL byte).
        public static let invalidArgument = Code(.invalidArgument)
        /// A pipe or an output file could not be opened.
        public static let output = Code(.output)
        /// posix_spawn itself failed (out of processes, out of memory, ...).
        public static let spawn = Code(.spawn)

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// The whole message: "could not start <program>: <reason>".
    public let message: String
    /// What was wrong, without the program: "no such file on PATH".
    public let reason: String
    /// The program as the caller named it.
    public let executable: String
    /// The errno behind it, when a system call failed.
    public let systemError: Int32?
    /// The system call or runner step that failed.
    public let function: String

    init(_ code: Code, _ executable: String, _ reason: String, systemError: Int32? = nil, function: String = #function) {
        self.code = code
        self.executable = executable
        self.systemError = systemError
        self.function = function
        self.reason = reason
        message = "could not start \(executable): \(reason)"
    }

    /// An error from a failed system call, in the system's words.
    static func system(_ code: Code, _ executable: String, _ what: String, errno number: Int32,
                       function: String = #function) -> RunError {
        RunError(code, executable, "\(what): \(String(cString: strerror(number)))", systemError: number, function: function)
    }

    public var description: String { message }
}
