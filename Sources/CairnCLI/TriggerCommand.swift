import ArgumentParser
import CairnCore
import CairnEngine
import CairnManifests
import CairnStore
import Foundation

extension Cairn {
    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trigger",
            abstract: "Train a TrainingSchedule now, or try a ModelDeployment's held version again.",
            discussion: """
            For a TrainingSchedule: records a manual trigger and starts the training: a forced \
            run, which never reuses an earlier run of the same key, and whose run and registered \
            version record the trigger's id (lineage trigger `manual`). The schedule's \
            concurrencyPolicy applies: under Forbid it starts when the run under way ends.

            For a ModelDeployment: a version that failed on its target is held (not tried again, \
            the last healthy version serving instead) until git assigns another version; a \
            trigger asks Cairn to try the held version once more, after its problem was fixed \
            outside git (a port freed, a disk remounted).

            With a `cairn run` holding the state directory, the daemon is woken and trains; \
            otherwise this process runs the pass itself and waits for the training, as \
            `cairn reconcile --once` does (--no-wait returns at once; --timeout bounds the wait).

            Exit code 0 when the trigger was handed over or its training ran; 1 when the object \
            is not a TrainingSchedule or ModelDeployment Cairn knows, or the pass left something stalled; 3 when \
            the state or repository cannot be read; 4 when --timeout ran out.

            Examples:
              cairn trigger TrainingSchedule/churn-weekly
              cairn trigger TrainingSchedule/churn-weekly --reason "new labels landed"
              cairn trigger ModelDeployment/churn-prod --reason "GPU driver fixed"
            """)

        @Argument(help: "The TrainingSchedule to train, as TrainingSchedule/NAME, or the ModelDeployment to retry, as ModelDeployment/NAME.")
        var object: String

        @Option(help: "Why, in words; recorded as the run's reason (`cairn runs`, `cairn lineage`); the version records the trigger's id.")
        var reason: String?

        @OptionGroup var options: EngineOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @Flag(help: "Without a daemon: return after the first pass, leaving the training to go on.")
        var noWait = false

        @Option(help: "Without a daemon: how long to wait for the training at most, such as 30m.")
        var timeout: String?

        @OptionGroup var runOptions: RunOptions

        var ref: ObjectRef? { ObjectRef(parsing: object) }

        func validate() throws {
            guard let ref else { throw ValidationError(notKindName(object)) }
            guard ref.kind == .trainingSchedule || ref.kind == .modelDeployment else {
                throw ValidationError("only a TrainingSchedule or a ModelDeployment can be triggered; \(object) is a \(ref.kind.rawValue)")
            }
            try Reconcile.checkTimeout(timeout)
        }

        func run() async throws {
            Logs.bootstrap(level: .warning)
            guard let ref else { return }
            let request = TriggerRequest(id: Self.newID(), object: ref, source: "manual",
                                         reason: reason ?? "cairn trigger by \(ProcessInfo.processInfo.environment["USER"] ?? "a user")",
                                         requestedAt: Date())
            let state = options.stateDirectory
            if let pid = DaemonLock.holder(of: state) {
                let store = try Store(directory: state)
                try Self.requireKnown(ref, in: store)
                try store.addTrigger(request)
                guard kill(pid, SIGUSR1) == 0 else {
                    throw CairnExit.unreadable("recorded trigger \(request.id), but could not wake the daemon (pid \(pid)): "
                                               + "\(String(cString: strerror(errno))); it acts on it at its next pass")
                }
                print(format == .json ? ["trigger": request.id, "daemon": "\(pid)"].jsonText()
                      : "recorded trigger \(request.id) for \(ref) and woke the daemon (pid \(pid)); "
                        + (ref.kind == .trainingSchedule ? "`cairn runs --object \(ref)` shows the training" : "`cairn status \(ref)` shows the deployment"))
                return
            }
            try await Reconcile.once(options: options, runOptions: runOptions, format: format, noWait: noWait, timeout: timeout) { engine in
                try Self.requireKnown(ref, in: engine.store)
                try engine.store.addTrigger(request)
            }
        }

        static func requireKnown(_ ref: ObjectRef, in store: Store) throws {
            guard try store.object(ref) != nil else {
                throw CairnExit.invalid("error: \(ref) is not an object Cairn has reconciled; `cairn status` lists them "
                                        + "(a new manifest is known after the first pass that sees its commit: `cairn reconcile --once`)")
            }
        }

        /// `manual-20261126T151203Z-3fa2`: sortable, unique enough for requests made by hand.
        static func newID() -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
            let stamp = formatter.string(from: Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
            return "manual-\(stamp)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        }
    }
}
