import ArgumentParser
import CairnRun
import Foundation

/// How the subcommands time what they time: a call in this process after a warm-up, and a
/// command as a fresh process, the way a person or a script meets it.
enum Sampling {
    /// Calls `body` once to warm up (SQLite's page cache, a decoder's first use), then
    /// `repeats` times, and returns the seconds of each timed call.
    static func inProcess(repeats: Int, _ body: () throws -> Void) rethrows -> [Double] {
        try body()
        return try (0..<repeats).map { _ in
            let started = ContinuousClock.now
            try body()
            return (ContinuousClock.now - started).seconds
        }
    }

    /// A finished process: its wall time, from before it was started until it was reaped, and how it ended.
    struct Run {
        var seconds: Double
        var outcome: ProcessOutcome

        var output: String { outcome.standardOutput.text }

        /// Throws unless it exited with `status`, quoting the end of what it said.
        @discardableResult
        func expect(status: Int32 = 0) throws -> Run {
            guard outcome.termination == .exited(status), !outcome.timedOut else {
                let said = (outcome.standardError.text + outcome.standardOutput.text).suffix(600)
                throw ValidationError("\(outcome.command) \(outcome.termination), expected exit \(status); it said: \(said)")
            }
            return self
        }
    }

    /// Runs `executable` with `arguments` to its end, output captured, and times it.
    static func process(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> Run {
        let command = Command(executable, arguments, workingDirectory: directory, timeout: .seconds(600))
        let started = ContinuousClock.now
        let outcome = try command.runSynchronously()
        return Run(seconds: (ContinuousClock.now - started).seconds, outcome: outcome)
    }

    /// The `cairn` binary built beside this `cairn-bench` (`swift build` builds both), or `given`.
    static func cairnBinary(_ given: String?) throws -> String {
        if let given { return given }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("cairn")
        guard FileManager.default.isExecutableFile(atPath: beside.path) else {
            throw ValidationError("no cairn binary beside cairn-bench at \(beside.path); build both (swift build -c release) or give --cairn")
        }
        return beside.path
    }
}

/// The options of the subcommands that make a fixture and time commands over it (`plan`, `stages`).
struct FixtureOptions: ParsableArguments {
    @Option(help: "How many rounds: each command and call is timed once a round, after one warm-up of each.")
    var repeats: Int = 10

    @Option(help: "text or json.")
    var format: String = "text"

    @Flag(help: "Keep the fixture and print where it is, with the command to rerun over it.")
    var keep = false

    @Option(help: "Make the fixture in this new directory and keep it (implies --keep).")
    var directory: String?

    @Option(help: "The cairn binary (default: the one beside cairn-bench).")
    var cairn: String?

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
    }

    /// Where the fixture goes (--directory, or a new temporary directory named for `name`) and
    /// whether it stays; refuses a directory that holds `marker`, a fixture made before.
    func folder(_ name: String, marker: String) throws -> (url: URL, kept: Bool) {
        let url = directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-\(name)-\(UUID().uuidString.prefix(8))")
        if FileManager.default.fileExists(atPath: url.appendingPathComponent(marker).path) {
            throw ValidationError("\(url.path) holds a fixture already; give a new --directory")
        }
        return (url, keep || directory != nil)
    }
}

/// A report a subcommand prints: as JSON (the default for scripts) or as text for people.
protocol TextReport: Encodable { var text: String { get } }

extension TextReport {
    func emit(format: String) throws {
        if format == "text" { print(text); return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}

/// A progress line on stderr, so a long step is never silent and stdout stays the report.
func progress(_ message: String) {
    FileHandle.standardError.write(Data("[cairn-bench] \(message)\n".utf8))
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// `12.34 ms`, or `1.234 s` from a tenth of a second.
func milliseconds(_ seconds: Double) -> String {
    seconds < 0.1 ? String(format: "%.2f ms", seconds * 1000) : String(format: "%.3f s", seconds)
}

/// What one benchmark measured: a row of samples for each thing timed, beside what every
/// timed call answered (each answer was checked).
struct BenchReport<Answer: Encodable & CustomStringConvertible>: TextReport {
    struct Row: Encodable {
        var key: String
        var label: String
        /// Seconds; nil for a reference without a target.
        var target: Double?
        var samples: [Double] = []
    }

    /// One thing to time: one call of `measure` returns the seconds of one sample.
    struct Measurement {
        var key: String
        var label: String
        var target: Double? = nil
        var measure: () throws -> Double
    }

    var title: String
    var machine = Machine.current
    var repeats: Int
    var answer: Answer
    /// Where the fixture was kept, and the command timed as a process, to rerun it there.
    var fixture: String?
    var command: String
    var rows: [Row] = []

    /// Calls each measurement once to warm up, then `repeats` rounds of all of them
    /// interleaved, so a busy moment of the machine falls on each alike.
    mutating func measure(_ measurements: [Measurement], name: String) throws {
        progress("\(name): one warm-up of each, then \(repeats) rounds of: " + measurements.map(\.key).joined(separator: ", "))
        rows = measurements.map { Row(key: $0.key, label: $0.label, target: $0.target) }
        for measurement in measurements { _ = try measurement.measure() }
        for round in 1...repeats {
            for (index, measurement) in measurements.enumerated() { rows[index].samples.append(try measurement.measure()) }
            if round == repeats || round.isMultiple(of: 10) {
                progress("\(name): round \(round)/\(repeats), medians so far: "
                         + rows.prefix(2).map { "\($0.key) \(milliseconds(median($0.samples)))" }.joined(separator: ", "))
            }
        }
    }

    var text: String {
        var lines = ["\(title); median of \(repeats) after one warm-up (\(machine.build))", "answer, checked each time: \(answer)"]
        for row in rows {
            let figure = milliseconds(median(row.samples))
            lines.append("  " + row.label.padding(toLength: 58, withPad: " ", startingAt: 0)
                         + String(repeating: " ", count: max(0, 11 - figure.count)) + figure
                         + (row.target.map { String(format: "   target < %.0f ms (%.0f%% of it)", $0 * 1000, median(row.samples) / $0 * 100) } ?? ""))
        }
        if let fixture { lines.append("fixture kept in \(fixture); rerun: \(command)") }
        return lines.joined(separator: "\n")
    }
}
