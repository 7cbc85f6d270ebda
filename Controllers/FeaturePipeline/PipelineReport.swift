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
        case problem(RunProblem)
        /// Its key succeeded; its outputs are stored.
        case upToDate(run: String)
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

    /// How a failed run ended, in the executor's words (which end with its log's last lines,
    /// secrets redacted), kept to the last 10 lines so a status stays readable.
    static func detail(of run: RunRecord) -> String {
        if let message = run.message, !message.isEmpty {
            let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
            let kept = lines.count > 11 ? [lines[0]] + ["…"] + lines.suffix(10) : lines
            return kept.joined(separator: "\n")
        }
        if let signal = run.signal { return "killed by signal \(signal)" }
        if let status = run.exitStatus { return "exit status \(status)" }
        return run.state.rawValue
    }

    func outcome(schedule: CronSchedule?, now: Date) -> Outcome {
        var done: [String] = [], running: [String] = [], queued: [String] = [], blocked: [String] = []
        var problems: [RunProblem] = [], failed: [String] = [], retrying: [(String, Date)] = []
        // The first failure's own words (multi-line: the end of its log) go last in the message.
        var firstFailure: String?
        var runs: [String] = []
        for (name, state) in stages {
            switch state {
            case .blocked: blocked.append(name)
            case .problem(let problem): problems.append(problem)
            case .upToDate(let run): done.append(name); runs.append(run)
            case .running(let run, let isQueued):
                if isQueued { queued.append(name) } else { running.append(name) }
                runs.append(run)
            case .retrying(let due, let last): retrying.append((name, due)); runs.append(last.id)
            case .failed(let run):
                failed.append("stage \(name) failed (run \(run.id))")
                if firstFailure == nil { firstFailure = "\nstage \(name): " + Self.detail(of: run) }
                runs.append(run.id)
            }
        }
        let total = stages.count
        // A status stays readable however many stages share a fate: a few in full, then a count.
        func first(_ items: [String], _ noun: String) -> String {
            items.prefix(3).joined(separator: "; ") + (items.count > 3 ? "; and \(items.count - 3) more \(noun) (`cairn runs` lists them)" : "")
        }
        func names(_ items: [String]) -> String {
            items.prefix(10).joined(separator: ", ") + (items.count > 10 ? " and \(items.count - 10) more" : "")
        }
        var progress: [String] = []
        if !done.isEmpty { progress.append("\(done.count) of \(total) stages up to date (\(names(done)))") }
        if !running.isEmpty { progress.append("running " + names(running)) }
        if !queued.isEmpty { progress.append("queued " + names(queued)) }
        if !retrying.isEmpty {
            progress.append("retrying " + names(retrying.map { "\($0.0) at \(Self.time($0.1))" }))
        }
        if !blocked.isEmpty { progress.append("not run yet: " + names(blocked)) }
        let tail = progress.isEmpty ? "" : " (" + progress.joined(separator: "; ") + ")"
        var outcome: Outcome
        let underWay = !running.isEmpty || !queued.isEmpty || !retrying.isEmpty
        // On its schedule, external data is hashed again (unchanged files cost a stat): a
        // pipeline stalled on missing or failed data looks again too, as does a Ready one.
        let nextTick = schedule?.nextMatchUTC(after: now).map { Duration.milliseconds(Int64(max(0, $0.timeIntervalSince(now)) * 1000)) }
        if !problems.isEmpty {
            outcome = .stalled(reason: problems[0].reason, message: first(problems.map(\.message), "problems") + tail)
            outcome.requeueAfter = nextTick
        } else if !failed.isEmpty, !underWay {
            outcome = .stalled(reason: "StageFailed", message: first(failed, "failed stages") + tail + (firstFailure ?? ""))
            outcome.requeueAfter = nextTick
        } else if underWay {
            let prefix = failed.isEmpty ? "" : first(failed, "failed stages") + "; "
            let suffix = firstFailure ?? ""
            if let due = retrying.map(\.1).min(), running.isEmpty, queued.isEmpty {
                outcome = .reconciling(reason: "RetryScheduled", message: prefix + "waiting to retry" + tail + suffix,
                                       requeueAfter: .milliseconds(Int64(max(0, due.timeIntervalSince(now)) * 1000) + 10))
            } else {
                // Completions wake the engine; the requeue is a safety net should one be missed.
                outcome = .reconciling(reason: "Running", message: prefix + "stages are running" + tail + suffix, requeueAfter: .seconds(300))
            }
        } else {
            outcome = .ready(reason: "UpToDate", message: "all \(total) stages are up to date (\(names(done))); "
                             + "their outputs are in the artifact store")
            outcome.requeueAfter = nextTick
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
        nextTick(after: date, in: .gmt)
    }
}
