public import Foundation
import Glibc
import Synchronization

/// Slurm's command-line tools as the executor uses them: `sbatch`, `squeue`, `scontrol`,
/// `scancel` and `sacct`, each run as argv (never through a shell) with a time limit, their
/// calls counted and timed (the benchmark shows one `squeue` per pass, whatever the number of
/// jobs, and takes the time spent in Slurm's tools out of what Cairn adds per job).
public final class SlurmCommands: Sendable {
    /// Where the tools are: a directory, or nil to look them up on this process's PATH.
    public let directory: String?
    /// How long one call may take before it is ended and reported.
    public let timeout: Duration
    private let tally = Mutex<(calls: [String: Int], time: [String: Duration])>(([:], [:]))

    public init(directory: String? = nil, timeout: Duration = .seconds(30)) {
        self.directory = directory
        self.timeout = timeout
    }

    /// How many times each tool was run.
    public var calls: [String: Int] { tally.withLock { $0.calls } }

    /// How long each tool's runs took in all, from starting the process until it was reaped
    /// (a failed or timed-out run included).
    public var time: [String: Duration] { tally.withLock { $0.time } }

    /// The path `tool` runs from, or why it cannot run.
    func path(of tool: String) throws(SlurmError) -> String {
        if let directory {
            let path = "\(directory)/\(tool)"
            guard access(path, X_OK) == 0 else {
                throw SlurmError(.missing, "\(tool) was not found in \(directory) (--slurm-bin); install Slurm's client commands (Debian: slurm-client) there")
            }
            return path
        }
        let search = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for entry in search.split(separator: ":") where access("\(entry)/\(tool)", X_OK) == 0 {
            return "\(entry)/\(tool)"
        }
        throw SlurmError(.missing, "\(tool) was not found on the daemon's PATH (\(search)); install Slurm's client commands (Debian: slurm-client), or give their directory with --slurm-bin")
    }

    /// Runs `tool` and returns its standard output; a tool that is missing, fails, or takes
    /// longer than `timeout` throws a `SlurmError` that says which and what it printed.
    func run(_ tool: String, _ arguments: [String]) async throws(SlurmError) -> String {
        let executable = try path(of: tool)
        tally.withLock { $0.calls[tool, default: 0] += 1 }
        let started = ContinuousClock.now
        let outcome: ProcessOutcome
        do {
            defer {
                let elapsed = ContinuousClock.now - started
                tally.withLock { $0.time[tool, default: .zero] += elapsed }
            }
            outcome = try await Command(executable, arguments, standardOutput: .capture(limit: 8 << 20),
                                        standardError: .capture(limit: 64 << 10), timeout: timeout, grace: .seconds(2)).run()
        } catch {
            throw SlurmError(.unreachable, "could not run \(tool): \(error)")
        }
        if outcome.timedOut {
            throw SlurmError(.noAnswer, "\(tool) did not answer within \(timeout) (is slurmctld up?)")
        }
        guard outcome.termination == .exited(0) else {
            let said = outcome.standardError.text.trimmingCharacters(in: .whitespacesAndNewlines)
            throw SlurmError(Self.refusal(said) ? .refused : .unreachable,
                             "\(Command(tool, arguments)) \(outcome.termination)\(said.isEmpty ? "" : ": \(said)")")
        }
        return outcome.standardOutput.text
    }

    /// Whether what a tool printed says the controller answered and refused (an account, a
    /// partition, resources it cannot give), rather than that it could not be reached.
    static func refusal(_ said: String) -> Bool {
        let transient = ["Unable to contact", "timed out", "temporarily", "Connection refused", "connect failure", "Zero Bytes were transmitted",
                         "Communication connection failure"]
        return said.contains("submission failed") && !transient.contains { said.localizedCaseInsensitiveContains($0) }
    }

    /// `sbatch --parsable ARGUMENTS SCRIPT`: the new job's id.
    func submit(_ arguments: [String], script: URL) async throws(SlurmError) -> String {
        let output = try await run("sbatch", ["--parsable"] + arguments + [script.path])
        // --parsable prints "ID" or "ID;CLUSTER".
        guard let line = output.split(whereSeparator: \.isNewline).last,
              let id = line.split(separator: ";").first, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SlurmError(.unreachable, "sbatch printed no job id but \"\(output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))\"")
        }
        return String(id)
    }
}

extension SlurmCommands {
    /// The jobs Slurm knows of this user, finished ones included while it remembers them:
    /// one `squeue` call, whatever their number.
    func queue() async throws(SlurmError) -> [SlurmQueueEntry] {
        SlurmQueueEntry.parse(try await run("squeue", ["--me", "--noheader", "--states=all", "--format=\(SlurmQueueEntry.format)"]))
    }
}

/// What Slurm or its tools answered that stops an operation, in a sentence, and of which kind.
public struct SlurmError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The tool is not installed where it was looked for.
        case missing
        /// The controller could not be reached, or the tool failed without a verdict.
        case unreachable
        /// No answer in time: what was asked may have been done all the same.
        case noAnswer
        /// The controller answered and refused (sbatch's "Batch job submission failed: …").
        case refused
    }

    public let kind: Kind
    public let description: String
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// A job's state as `squeue -o %T` and `scontrol show job` spell it.
enum SlurmJobState: Hashable, Sendable {
    case pending, running, completing, suspended
    case completed, failed, cancelled, timeout, nodeFail, outOfMemory, preempted, bootFail, deadline
    /// A state this code does not know (a newer Slurm); treated as still under way.
    case other(String)

    init(_ text: Substring) {
        switch text {
        case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING", "RESIZING": self = .pending
        case "RUNNING", "STAGE_OUT", "SIGNALING": self = .running
        case "COMPLETING": self = .completing
        case "SUSPENDED", "STOPPED": self = .suspended
        case "COMPLETED": self = .completed
        case "FAILED", "SPECIAL_EXIT": self = .failed
        case "CANCELLED": self = .cancelled
        case "TIMEOUT": self = .timeout
        case "NODE_FAIL": self = .nodeFail
        case "OUT_OF_MEMORY": self = .outOfMemory
        case "PREEMPTED": self = .preempted
        case "BOOT_FAIL": self = .bootFail
        case "DEADLINE": self = .deadline
        default: self = .other(String(text))
        }
    }

    /// Over: the job's processes are gone (COMPLETING is not: its processes are being ended).
    var isFinal: Bool {
        switch self {
        case .completed, .failed, .cancelled, .timeout, .nodeFail, .outOfMemory, .preempted, .bootFail, .deadline: true
        default: false
        }
    }
}

/// One line of `squeue -h -t all -o '%i|%T|%r|%j'`: a job as the controller knows it. The name
/// comes last: another job of the same user may have any name, `|` included.
struct SlurmQueueEntry: Hashable, Sendable {
    static let format = "%i|%T|%r|%j"

    var jobID: String
    var name: String
    var state: SlurmJobState
    var stateText: String
    /// Why it waits or how it ended (`Resources`, `ReqNodeNotAvail`, `None`).
    var reason: String

    /// Parses squeue's output; lines without the four fields are skipped.
    static func parse(_ output: String) -> [SlurmQueueEntry] {
        output.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, !fields[0].isEmpty else { return nil }
            return SlurmQueueEntry(jobID: String(fields[0]), name: String(fields[3]), state: SlurmJobState(fields[1]),
                                   stateText: String(fields[1]), reason: String(fields[2]))
        }
    }
}

/// `scontrol show job -o ID`: one line of `Key=Value` pairs, read for the fields that say how
/// a job ended (JobState, Reason, ExitCode, NodeList).
struct SlurmJobDetails: Hashable, Sendable {
    var fields: [String: String]

    init(_ line: String) {
        var fields: [String: String] = [:]
        // Values can hold spaces (Reason=..., Command=...); a key starts where a space is
        // followed by `Key=`. Keys are letters, digits, ':' and '/' (TRES=cpu=1,...).
        var key: Substring?
        var start = line.startIndex
        var index = line.startIndex
        func flush(upTo end: String.Index) {
            guard let key else { return }
            let value = line[start..<end].trimmingCharacters(in: .whitespaces)
            fields[String(key)] = value
        }
        while index < line.endIndex {
            let atWordStart = index == line.startIndex || line[line.index(before: index)] == " "
            if atWordStart, let equals = line[index...].firstIndex(of: "="),
               line[index..<equals].allSatisfy({ $0.isLetter || $0.isNumber || $0 == ":" || $0 == "/" }), equals > index {
                flush(upTo: index)
                key = line[index..<equals]
                start = line.index(after: equals)
                index = start
                continue
            }
            index = line.index(after: index)
        }
        flush(upTo: line.endIndex)
        self.fields = fields
    }

    subscript(_ key: String) -> String? { fields[key] }

    var state: SlurmJobState? { fields["JobState"].map { SlurmJobState(Substring($0)) } }

    /// `StartTime=2026-11-27T13:22:46`, in the controller's local time; nil when `Unknown`.
    var startTime: Date? {
        guard let text = fields["StartTime"] else { return nil }
        var style = Date.ISO8601FormatStyle(timeZone: .current)
        style = style.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon)
        return try? Date(text, strategy: style)
    }

    /// `ExitCode=S:N`: the script's exit status and the signal that ended it (0 when none).
    var exitCode: (status: Int32, signal: Int32)? {
        guard let text = fields["ExitCode"] else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let status = Int32(parts[0]), let signal = Int32(parts[1]) else { return nil }
        return (status, signal)
    }
}
