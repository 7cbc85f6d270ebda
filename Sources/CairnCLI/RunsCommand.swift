import ArgumentParser
import CairnCore
import CairnManifests
import CairnStore
import Foundation

extension Cairn {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runs",
            abstract: "List the recent runs, newest first, or show one run in detail.",
            discussion: """
            Each run shows its id, object (and pipeline stage), state (with the exit status or \
            signal it ended with), when it was submitted, how long it ran, what triggered it and \
            why: the inputs that changed, or for a skipped run the key that matched and the run \
            whose outputs it reused.

            With RUN-ID (a full id, or the start of one that no other run shares) it shows that run: \
            its command, key, inputs and their hashes, outputs with their SHA-256 and size, log \
            file and message. `--format json` prints the run records (ISO-8601 dates, sorted keys).

            Exit code 0 when the runs were shown (an empty list too); 1 when RUN-ID matches no run, \
            or starts the ids of several; 2 usage error; 3 when the state cannot be read.

            Examples:
              cairn runs
              cairn runs --object FeaturePipeline/churn-features --limit 5
              cairn runs --state failed --format json
              cairn runs 3f2a9c            # one run, by the start of its id
            """)

        @Argument(help: "One run to show in detail: its id, or the start of it.")
        var runID: String?

        @Option(help: "Only the runs of this object, as Kind/name, or of one pipeline stage, as Kind/name/stage (as the OBJECT column shows it).")
        var object: String?

        /// `--object` split into the object and, for `Kind/name/stage`, the stage.
        var objectFilter: (ref: ObjectRef, stage: String?)? {
            guard let object else { return nil }
            if let ref = ObjectRef(parsing: object) { return (ref, nil) }
            guard let slash = object.lastIndex(of: "/"), let ref = ObjectRef(parsing: String(object[..<slash])) else { return nil }
            let stage = String(object[object.index(after: slash)...])
            return stage.isEmpty ? nil : (ref, stage)
        }

        @Option(name: .customLong("state"), help: "Only runs in this state (submitted, running, succeeded, failed, interrupted, cancelled, skipped); repeatable.")
        var states: [String] = []

        @Option(help: "How many runs to list.")
        var limit: Int = 20

        @OptionGroup var location: StateOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if let object, objectFilter == nil { throw ValidationError(notKindName(object) + " (or Kind/name/stage for one pipeline stage)") }
            for state in states where RunRecord.State(rawValue: state) == nil {
                throw ValidationError("\(state) is not a run state; states are submitted, running, succeeded, failed, interrupted, cancelled, skipped")
            }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
            if runID != nil, object != nil || !states.isEmpty {
                throw ValidationError("give RUN-ID to show one run, or --object/--state to filter the list, not both")
            }
        }

        func run() async throws {
            let store = try location.openStore()
            if let runID {
                let record = try RunText.find(runID, in: store)
                print(format == .json ? record.jsonText() : Self.detail(record))
                return
            }
            let ref = objectFilter?.ref
            let runs = try store.recentRuns(of: ref, stage: objectFilter?.stage, in: Set(states.compactMap(RunRecord.State.init(rawValue:))),
                                            limit: limit)
            if format == .json {
                print(runs.jsonText())
                return
            }
            if runs.isEmpty {
                print(ref.map { "no runs of \($0) yet" } ?? "no runs yet")
                return
            }
            print(RunText.list(runs))
        }

        /// One run, field by field.
        static func detail(_ run: RunRecord) -> String {
            var lines: [(String, String)] = [
                ("run", run.id),
                ("object", run.object.description + (run.stage.map { ", stage \($0)" } ?? "")),
                ("state", RunText.state(run) + (run.attempt > 1 ? ", attempt \(run.attempt)" : "")),
                ("trigger", run.trigger),
                ("why", RunText.why(run)),
                ("commit", run.sourceCommit),
                ("submitted", RunText.when(run.submittedAt)),
                ("started", RunText.when(run.startedAt)),
                ("finished", RunText.when(run.finishedAt) + (run.startedAt != nil && run.finishedAt != nil ? " (ran \(RunText.duration(run)))" : "")),
                ("command", run.command.isEmpty ? "-" : RunText.commandLine(run.command)),
                ("key", run.key),
            ]
            if let reused = run.reused { lines.append(("reused", reused)) }
            if let handle = run.handle { lines.append(("handle", "\(handle.executor) \(handle.id)")) }
            lines.append(("log", run.logPath ?? "-"))
            var text = lines.map { $0.0.padding(toLength: 10, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
            text += "\ninputs" + (run.inputs.isEmpty ? "    -" : "")
            let inputWidth = run.inputs.keys.map(\.count).max() ?? 0
            for (name, hash) in run.inputs.sorted(by: { $0.key < $1.key }) {
                text += "\n  " + name.padding(toLength: inputWidth, withPad: " ", startingAt: 0) + "  " + hash
            }
            text += "\noutputs" + (run.outputs.isEmpty ? "   -" : "")
            let outputWidth = run.outputs.keys.map(\.count).max() ?? 0
            for (path, artifact) in run.outputs.sorted(by: { $0.key < $1.key }) {
                text += "\n  " + path.padding(toLength: outputWidth, withPad: " ", startingAt: 0)
                    + "  \(artifact.digest)  \(RunText.bytes(Int64(artifact.size)))" + (artifact.kind == .directory ? " (directory)" : "")
            }
            if let message = run.message, !message.isEmpty {
                text += "\nmessage\n" + message.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
            }
            return text
        }
    }
}
