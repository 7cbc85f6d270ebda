public import CairnRun
public import Foundation

/// What a finished child process left behind.
public struct ProcessResult: Sendable {
    /// The exit status, or 128 + the signal that ended it (as a shell's `$?`).
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// How long it ran.
    public let elapsed: TimeInterval
    /// Exit status and signal apart.
    public let termination: Termination
}

public struct SubprocessError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs a program to completion (argv, no shell), with standard input closed, through the
/// runner Cairn itself uses. Both streams are read while it runs, so a chatty child never
/// blocks on a full pipe.
@discardableResult
public func run(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                environment: [String: String]? = nil, check: Bool = true) throws -> ProcessResult {
    let outcome = try Command(executable, arguments, environment: environment, workingDirectory: directory).runSynchronously()
    return try ProcessResult(outcome, of: executable, arguments, check: check)
}

/// `run`, awaiting the child instead of blocking a thread: for async tests that start many
/// processes or slow ones, so that they do not hold threads of the cooperative pool that
/// every other test shares.
@discardableResult
public func runAsync(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                     environment: [String: String]? = nil, check: Bool = true) async throws -> ProcessResult {
    let outcome = try await Command(executable, arguments, environment: environment, workingDirectory: directory).run()
    return try ProcessResult(outcome, of: executable, arguments, check: check)
}

extension ProcessResult {
    init(_ outcome: ProcessOutcome, of executable: String, _ arguments: [String], check: Bool) throws {
        let (seconds, attoseconds) = outcome.elapsed.components
        self.init(status: outcome.termination.shellStatus, stdout: outcome.standardOutput.text, stderr: outcome.standardError.text,
                  elapsed: TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18, termination: outcome.termination)
        if check, outcome.termination != .exited(0) {
            throw SubprocessError(description: "\(executable) \(arguments.joined(separator: " ")) \(outcome.termination): \(stderr)")
        }
    }
}

/// The full path of a program on PATH.
public func which(_ name: String) throws -> String {
    do {
        return try ExecutableSearch.path(for: name)
    } catch {
        throw SubprocessError(description: "\(name) is not on PATH")
    }
}

/// A long-running child (such as `cairn run`) whose standard error goes to a file the test
/// reads. Killed, with its process group, if the test lets go of it while it runs.
public final class BackgroundProcess: Sendable {
    public let process: RunningProcess
    private let log: URL

    public init(_ executable: String, _ arguments: [String], logTo log: URL, environment: [String: String]? = nil) throws {
        self.log = log
        process = try Command(executable, arguments, environment: environment, standardOutput: .discard, standardError: .file(log)).start()
    }

    deinit {
        if process.terminate(signal: SIGKILL) {
            _ = process.waitUntilExit()
        }
    }

    /// What it has written to standard error so far.
    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// How it ended; nil while it runs.
    public var termination: Termination? { process.outcome?.termination }

    /// Waits until its output contains `text`; false after `seconds`, or as soon as it has
    /// exited without writing it.
    public func waitFor(_ text: String, seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(100_000)
        }
        return false
    }

    /// Sends SIGTERM and waits; returns the exit status (128 + the signal if one ended it).
    public func terminate() -> Int32 {
        process.terminate(signal: SIGTERM)
        return process.waitUntilExit().termination.shellStatus
    }
}
