import CairnEngine
import CairnCore
import CairnStore
import Foundation

/// How `runs`, `logs` and `gc` speak of runs: finding one by id or prefix, and the words and
/// numbers they print.
enum RunText {
    /// The run whose id is `text`, or the only one whose id starts with it.
    static func find(_ text: String, in store: Store) throws -> RunRecord {
        if let exact = try store.run(id: text) { return exact }
        let matches = try store.runs(withIDPrefix: text, limit: 6)
        switch matches.count {
        case 0:
            throw CairnExit.invalid("error: no run has an id starting with \(text); `cairn runs` lists the recent runs")
        case 1:
            return matches[0]
        default:
            let shown = matches.prefix(5).map(\.id).joined(separator: ", ")
            throw CairnExit.invalid("error: \(text) is ambiguous: it starts the ids of \(matches.count > 5 ? "more than 5" : "\(matches.count)") runs "
                                    + "(\(shown)\(matches.count > 5 ? ", …" : "")); give more of the id")
        }
    }

    /// `Kind/name`, and `/stage` for a pipeline stage.
    /// The runs as `cairn runs` lists them: one row each, newest first as given.
    static func list(_ runs: [RunRecord], now: Date = Date()) -> String {
        table(header: ["RUN", "OBJECT", "STATE", "SUBMITTED", "DURATION", "TRIGGER", "WHY"], rows: runs.map { run in
            [run.id, subject(run), state(run), when(run.submittedAt), duration(run, now: now), run.trigger, why(run)]
        })
    }

    static func subject(_ run: RunRecord) -> String {
        run.object.description + (run.stage.map { "/\($0)" } ?? "")
    }

    /// The state, with how the process ended when it says more: `failed (exit 2)`.
    static func state(_ run: RunRecord) -> String {
        var text = run.state.rawValue
        if let signal = run.signal {
            text += " (signal \(signal))"
        } else if let status = run.exitStatus, run.state != .succeeded {
            text += " (exit \(status))"
        }
        return text
    }

    /// Why it ran, or for a skipped run which key matched and whose outputs it reused.
    static func why(_ run: RunRecord) -> String {
        guard run.state == .skipped else { return run.reason ?? "-" }
        var text = "key \(shortKey(run.key)) matched"
        text += run.reused.map { " run \($0), whose outputs it reused" } ?? " an earlier run"
        // The controller's reason says all of that and from which commit; older records may lack it.
        if let reason = run.reason, !reason.isEmpty { return reason }
        return text
    }

    static func shortKey(_ key: String) -> String {
        let hex = key.hasPrefix("sha256:") ? String(key.dropFirst("sha256:".count)) : key
        return String(hex.prefix(12))
    }

    static func when(_ date: Date?) -> String {
        guard let date else { return "-" }
        return ISO8601DateFormatter().string(from: date)
    }

    /// How long it ran (so far, for a run not over yet).
    static func duration(_ run: RunRecord, now: Date = Date()) -> String {
        guard let start = run.startedAt else { return "-" }
        let seconds = (run.finishedAt ?? now).timeIntervalSince(start)
        return duration(seconds) + (run.finishedAt == nil && !run.state.isFinal ? "+" : "")
    }

    static func duration(_ seconds: TimeInterval) -> String {
        if seconds < 1 { return "\(Int((max(seconds, 0) * 1000).rounded()))ms" }
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole % 3600 / 60))m"
    }

    /// Bytes in binary units: `3.4 MiB`.
    static func bytes(_ count: Int64) -> String {
        if count < 1024 { return "\(count) B" }
        var value = Double(count)
        for unit in ["KiB", "MiB", "GiB", "TiB"] {
            value /= 1024
            if value < 1024 || unit == "TiB" { return String(format: "%.1f", value) + " " + unit }
        }
        return "\(count) B"
    }

    /// An argv as a person would type it in a shell.
    static func commandLine(_ argv: [String]) -> String {
        argv.map { argument in
            let plain = !argument.isEmpty && argument.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@+%".contains($0) }
            return plain ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
