import ArgumentParser
import CairnCore
import CairnStore
import Foundation

/// Issue 12's second figure: which version held each stage of a model on a given day, over a
/// stage history of 1,000 changes, as `cairn models NAME --at DAY` and as the store's query.
struct StagesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "Time cairn models NAME --at DATE over a model with a long stage history.",
        discussion: """
        Fills a fresh state directory with one model's registered versions and --changes stage \
        changes, through the store's public API as trainings register versions and the Model \
        controller records accepted changes: each version that passed its gate goes to staging, \
        then to production, 8 h 45 min apart from 2026-01-01 (1,000 changes span a year).

        Then times, --repeats times each after one warm-up, interleaved:
          process     cairn models NAME --at DATE --state-dir D --format json (target < 10 ms)
          in process  the store's queries for that answer, as the command makes them: the change \
        that put each stage where it stood at the day's start, and the changes during the day (target < 10 ms)
          open        Store(readingFrom:), opening the state directory read-only as the command does
          start-up    cairn --version
        Every answer is checked against the fixture's own history.

        --export FILE writes the versions and changes as JSON, from which Scripts/bench-stages \
        writes the same history as GTO's git tags.

        Example:
          cairn-bench stages --repeats 50 --keep
        """)

    @Option(help: "How many stage changes the model gets.")
    var changes: Int = 1_000

    @Option(help: "The model's name.")
    var model: String = "churn"

    @Option(help: "The day asked about, as YYYY-MM-DD (UTC).")
    var at: String = "2026-10-01"

    @Option(help: "Write the fixture's versions and changes to this file, as JSON.")
    var export: String?

    @OptionGroup var options: FixtureOptions

    func validate() throws {
        if changes < 2 { throw ValidationError("--changes must be at least 2") }
        if Self.day(at) == nil { throw ValidationError("--at \(at) is not a day such as 2026-10-01") }
    }

    static func day(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return text.count == 10 ? formatter.date(from: text) : nil
    }

    func run() throws {
        let binary = try Sampling.cairnBinary(options.cairn)
        let (state, kept) = try options.folder("stages", marker: "cairn.sqlite")
        defer { if !kept { try? FileManager.default.removeItem(at: state) } }
        let fixture = StagesFixture(model: model, changes: changes)
        progress("stages: recording \(fixture.versions.count) versions and \(changes) stage changes of \(model) in \(state.path)")
        let started = ContinuousClock.now
        try fixture.populate(Store(directory: state))
        let filled = (ContinuousClock.now - started).seconds
        if let export {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            try encoder.encode(Export(model: model, versions: fixture.versions, changes: fixture.changes))
                .write(to: URL(fileURLWithPath: export))
        }
        progress(String(format: "stages: filled in %.1f s", filled))
        let report = try measure(fixture, state: state, cairn: binary, kept: kept)
        if kept { progress("stages: kept the state directory \(state.path); rerun: \(report.command)") }
        try report.emit(format: options.format)
    }

    struct Export: Encodable {
        var model: String
        var versions: [StagesFixture.Version]
        var changes: [StageChange]
    }

    func measure(_ fixture: StagesFixture, state: URL, cairn: String, kept: Bool) throws -> BenchReport<StagesAnswer> {
        guard let start = Self.day(at) else { throw ValidationError("--at \(at) is not a day") }
        let expected = fixture.answer(atDay: start)
        let arguments = ["models", model, "--at", at, "--state-dir", state.path, "--format", "json"]
        func check(_ found: StagesAnswer, _ what: String) throws {
            guard found == expected else { throw ValidationError("\(what) answered \(found); the history says \(expected)") }
        }
        var store = try Store(readingFrom: state)

        var report = BenchReport(title: "\(model) with \(fixture.changes.count) stage changes (\(fixture.versions.count) versions), its stages on \(at)",
                                 repeats: options.repeats, answer: expected, fixture: kept ? state.path : nil,
                                 command: "cairn " + arguments.joined(separator: " "))
        try report.measure([
            .init(key: "process", label: "cairn models \(model) --at \(at), as a command", target: 0.010) {
                let run = try Sampling.process(cairn, arguments).expect()
                try check(try StagesAnswer(json: run.outcome.standardOutput.data), "cairn models --at")
                return run.seconds
            },
            .init(key: "query", label: "the store's queries, in process", target: 0.010) {
                // What `cairn models NAME --at DAY` asks the store (StageText.stages).
                let started = ContinuousClock.now
                let held = try store.stageChanges(of: model, asOf: start)
                let during = try store.stageChanges(of: model, after: start, through: start.addingTimeInterval(86_400 - 0.001))
                let seconds = (ContinuousClock.now - started).seconds
                var holders: [String: Int] = [:]
                for change in held { holders[change.stage] = change.version }
                try check(StagesAnswer(holders: holders, changesThatDay: during.map(StagesAnswer.describe)), "the store")
                return seconds
            },
            .init(key: "open", label: "opening the store read-only, in process") {
                let started = ContinuousClock.now
                store = try Store(readingFrom: state)
                return (ContinuousClock.now - started).seconds
            },
            .init(key: "startUp", label: "reference: cairn --version (start-up alone)") {
                try Sampling.process(cairn, ["--version"]).expect().seconds
            },
        ], name: "stages")
        return report
    }
}

extension StagesAnswer {
    /// What `cairn models NAME --at DAY --format json` printed.
    init(json: Data) throws {
        struct Printed: Decodable {
            struct Row: Decodable { var stage: String; var version: Int? }
            var stages: [String: Row]
            var changesThatDay: [Row]?
        }
        let printed = try JSONDecoder().decode(Printed.self, from: json)
        self.init(holders: printed.stages.compactMapValues(\.version),
                  changesThatDay: (printed.changesThatDay ?? []).map { Self.describe(stage: $0.stage, version: $0.version) })
    }
}
