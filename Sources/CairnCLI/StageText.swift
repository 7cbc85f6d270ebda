import CairnEngine
import CairnCore
import CairnStore
import Foundation

/// `cairn models NAME --history` and `--at DATE`: the stage history, and the stages at a time.
enum StageText {
    /// A time as people write it: `2026-10-01` (that day in UTC, as its first instant and its
    /// length) or RFC 3339 (`2026-10-01T12:00:00Z`, `2026-10-01T14:00:00+02:00`).
    /// Each form has its own strict formatter, made only when a text has that form's length
    /// (setting one up costs milliseconds, a good part of the command's time).
    static func instant(_ text: String) -> (start: Date, day: Bool)? {
        func formatter(_ options: ISO8601DateFormatter.Options) -> ISO8601DateFormatter {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            return formatter
        }
        if text.count == 10 {
            return formatter([.withFullDate]).date(from: text).map { ($0, true) }
        }
        if let date = formatter(.withInternetDateTime).date(from: text) { return (date, false) }
        return formatter([.withInternetDateTime, .withFractionalSeconds]).date(from: text).map { ($0, false) }
    }

    struct Row: Encodable {
        var stage: String
        var version: Int?
        var previous: Int?
        var commit: String
        var author: String
        var committedAt: Date
        var appliedAt: Date

        init(_ change: StageChange) {
            stage = change.stage
            version = change.version
            previous = change.previous
            commit = change.sourceCommit
            author = change.author
            committedAt = change.committedAt
            appliedAt = change.appliedAt
        }
    }

    static func history(of model: String, in store: Store, limit: Int, format: OutputFormat) throws {
        let changes = try store.stageHistory(of: model, limit: limit)
        if changes.isEmpty { try requireKnown(model, in: store) }
        if format == .json { print(changes.map(Row.init).jsonText()); return }
        guard !changes.isEmpty else {
            print("no stage of \(model) has been assigned yet; a commit that sets spec.assignments in its Model manifest does that")
            return
        }
        print(table(header: ["APPLIED", "STAGE", "CHANGE", "COMMIT", "AUTHOR"], rows: changes.map { change in
            [RunText.when(change.appliedAt), change.stage, "\(text(change.previous)) → \(text(change.version))",
             String(change.sourceCommit.prefix(10)), change.author]
        }))
    }

    struct AtTime: Encodable {
        var model: String
        var at: Date
        var stages: [String: Row]
        /// For a day: the changes during it, oldest first.
        var changesThatDay: [Row]?
        var note: String?
    }

    static func stages(of model: String, at instant: (start: Date, day: Bool), in store: Store, format: OutputFormat) throws {
        var answer = AtTime(model: model, at: instant.start, stages: [:])
        for change in try store.stageChanges(of: model, asOf: instant.start) where change.version != nil {
            answer.stages[change.stage] = Row(change)
        }
        if instant.day {
            answer.changesThatDay = try store.stageChanges(of: model, after: instant.start, through: instant.start.addingTimeInterval(86_400 - 0.001))
                .map(Row.init)
        }
        if answer.stages.isEmpty {
            answer.note = try before(model, instant.start, in: store)
        }
        if format == .json { print(answer.jsonText()); return }
        let when = RunText.when(instant.start)
        if let note = answer.note {
            print(note)
        } else {
            print("\(model) at \(when):")
            print(table(header: ["STAGE", "VERSION", "SINCE", "COMMIT", "AUTHOR"], rows: answer.stages.keys.sorted().compactMap { stage in
                answer.stages[stage].map { row in
                    [stage, "\(model)@\(row.version ?? 0)", RunText.when(row.appliedAt), String(row.commit.prefix(10)), row.author]
                }
            }))
        }
        if let changes = answer.changesThatDay, !changes.isEmpty {
            print("\nchanged later that day (UTC):")
            for change in changes {
                print("  \(RunText.when(change.appliedAt))  \(change.stage): \(text(change.previous)) → \(text(change.version))  "
                      + "(commit \(change.commit.prefix(10)) by \(change.author))")
            }
        }
    }

    /// Why nothing held a stage at `date`: the model did not exist yet, or had no stage yet.
    private static func before(_ model: String, _ date: Date, in store: Store) throws -> String {
        let first = try store.version(model, 1)  // numbers start at 1 and only grow
        let firstChange = try store.firstStageChange(of: model)
        let when = RunText.when(date)
        if let first, date < first.registeredAt {
            return "\(model) did not exist yet at \(when): its first version was registered at \(RunText.when(first.registeredAt))"
                + (firstChange.map { ", and its first stage change was at \(RunText.when($0.appliedAt))" } ?? "")
        }
        if let firstChange, date < firstChange.appliedAt {
            return "no stage of \(model) was assigned yet at \(when): its first stage change was at \(RunText.when(firstChange.appliedAt))"
        }
        if firstChange == nil, first == nil { try requireKnown(model, in: store) }
        return "no stage of \(model) was assigned at \(when)"
    }

    /// A model with neither a version nor a stage change is one Cairn has never heard of: an
    /// error (exit 1, on standard error) in every form, JSON too, never an empty answer.
    private static func requireKnown(_ model: String, in store: Store) throws {
        if try store.latestVersionNumber(of: model) == 0, try store.firstStageChange(of: model) == nil {
            throw CairnExit.invalid("error: model \(model) has no registered version and no stage history; `cairn models` lists those that do")
        }
    }

    private static func text(_ version: Int?) -> String { version.map(String.init) ?? "none" }
}
