import CairnCore
import CairnManifests
import Foundation

/// What each stage came to in one pass, and the one place that turns that into the
/// pipeline's outcome.
struct PipelineReport {
    enum StageState {
        /// Waits for upstream stages that have no outputs yet.
        case blocked(by: [String])
        /// Cannot be keyed or run as written.
        case problem(StageProblem)
        /// Its key succeeded (`ranAt`: in a run for this very commit); its outputs are stored.
        case upToDate(run: String, ranAt: Bool)
        case running(run: String, queued: Bool)
        case retrying(after: Date, failed: RunRecord)
        /// Failed, and its retries are used up.
        case failed(run: RunRecord)
    }

    var stages: [(name: String, state: StageState)] = []
    var effects: [StoreEffect] = []

    mutating func add(_ stage: String, _ state: StageState) {
        stages.append((stage, state))
    }

    /// How a failed run ended, with the last lines of its log (the executor redacted secrets).
    static func summary(of run: RunRecord) -> String {
        let ending: String
        if let signal = run.signal { ending = "killed by signal \(signal)" }
        else if let status = run.exitStatus { ending = "exit status \(status)" }
        else { ending = run.state.rawValue }
        let message = run.message.map { ": " + $0 } ?? ""
        return "\(ending) (run \(run.id))\(message)"
    }

    func outcome(schedule: CronSchedule?, now: Date) -> Outcome {
        var done: [String] = [], running: [String] = [], queued: [String] = [], blocked: [String] = []
        var problems: [StageProblem] = [], failed: [String] = [], retrying: [(String, Date)] = []
        var runs: [String] = []
        for (name, state) in stages {
            switch state {
            case .blocked: blocked.append(name)
            case .problem(let problem): problems.append(problem)
            case .upToDate(let run, _): done.append(name); runs.append(run)
            case .running(let run, let isQueued):
                if isQueued { queued.append(name) } else { running.append(name) }
                runs.append(run)
            case .retrying(let due, let last): retrying.append((name, due)); runs.append(last.id)
            case .failed(let run): failed.append("stage \(name) failed: \(Self.summary(of: run))"); runs.append(run.id)
            }
        }
        let total = stages.count
        var progress: [String] = []
        if !done.isEmpty { progress.append("\(done.count) of \(total) stages up to date (\(done.joined(separator: ", ")))") }
        if !running.isEmpty { progress.append("running " + running.joined(separator: ", ")) }
        if !queued.isEmpty { progress.append("queued " + queued.joined(separator: ", ")) }
        if !retrying.isEmpty {
            progress.append("retrying " + retrying.map { "\($0.0) at \(Self.time($0.1))" }.joined(separator: ", "))
        }
        if !blocked.isEmpty { progress.append("not run yet: " + blocked.joined(separator: ", ")) }
        let tail = progress.isEmpty ? "" : " (" + progress.joined(separator: "; ") + ")"
        var outcome: Outcome
        let underWay = !running.isEmpty || !queued.isEmpty || !retrying.isEmpty
        if !problems.isEmpty {
            outcome = .stalled(reason: problems[0].reason, message: problems.map(\.message).joined(separator: "; ") + tail)
        } else if !failed.isEmpty, !underWay {
            outcome = .stalled(reason: "StageFailed", message: failed.joined(separator: "; ") + tail)
        } else if underWay {
            let prefix = failed.isEmpty ? "" : failed.joined(separator: "; ") + "; "
            if let due = retrying.map(\.1).min(), running.isEmpty, queued.isEmpty {
                outcome = .reconciling(reason: "RetryScheduled", message: prefix + "waiting to retry" + tail,
                                       requeueAfter: .milliseconds(Int64(max(0, due.timeIntervalSince(now)) * 1000) + 10))
            } else {
                // Completions wake the engine; the requeue is a safety net should one be missed.
                outcome = .reconciling(reason: "Running", message: prefix + "stages are running" + tail, requeueAfter: .seconds(300))
            }
        } else {
            outcome = .ready(reason: "UpToDate", message: "all \(total) stages are up to date (\(done.joined(separator: ", "))); "
                             + "their outputs are in the artifact store")
            // On its schedule, external data is hashed again (unchanged files cost a stat).
            if let next = schedule?.nextMatchUTC(after: now) {
                outcome.requeueAfter = .milliseconds(Int64(max(0, next.timeIntervalSince(now)) * 1000))
            }
        }
        outcome.effects = effects
        outcome.runs = runs
        return outcome
    }

    private static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

extension CronSchedule {
    /// The first minute after `date` the schedule matches, read in UTC; nil when none within
    /// four years (a schedule for 30 February).
    func nextMatchUTC(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var minute = (date.timeIntervalSince1970 / 60).rounded(.down) + 1
        let limit = minute + 4 * 366 * 24 * 60
        while minute < limit {
            let candidate = Date(timeIntervalSince1970: minute * 60)
            let parts = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: candidate)
            guard months.contains(parts.month!) else {
                // Skip to the first minute of the next month.
                let start = calendar.date(from: calendar.dateComponents([.year, .month], from: candidate))!
                minute = calendar.date(byAdding: .month, value: 1, to: start)!.timeIntervalSince1970 / 60
                continue
            }
            let dayOfMonth = daysOfMonth.contains(parts.day!)
            let dayOfWeek = daysOfWeek.contains(parts.weekday! - 1)
            let day = dayFieldsBothRestricted ? (dayOfMonth || dayOfWeek) : (dayOfMonth && dayOfWeek)
            guard day else { minute = (minute / 1440).rounded(.down) * 1440 + 1440; continue }
            guard hours.contains(parts.hour!) else { minute = (minute / 60).rounded(.down) * 60 + 60; continue }
            if minutes.contains(parts.minute!) { return candidate }
            minute += 1
        }
        return nil
    }
}
