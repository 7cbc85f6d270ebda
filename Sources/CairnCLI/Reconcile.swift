import ArgumentParser
import CairnCore
import CairnEngine
import CairnManifests
import CairnStore
import Foundation
import Logging
import Synchronization

extension Cairn {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reconcile",
            abstract: "Run one reconcile pass, or ask the running daemon to reconcile an object now.",
            discussion: """
            With --once: fetches (for a URL), runs one pass over the branch tip, writes status \
            commits to the status branch and a note on the commit. When the pass starts runs \
            (pipeline stages), it waits until they have finished and been recorded, passes \
            again, and so on until nothing is left to do, printing what it waits for; --timeout \
            bounds the wait and --no-wait returns after the first pass (running stages go on: \
            the next `cairn run` or `reconcile --once` takes them back, and starts again those \
            still queued). Exits 0 when nothing is \
            stalled (objects whose kind's work Cairn cannot do yet, NotImplemented, are counted \
            and shown but are not failures), 1 when an object is stalled, a manifest file cannot \
            be read, or the tip is refused under --verify-commits, 3 when the repository cannot \
            be read, 4 when --timeout ran out with runs still under way.

            With an object and no --once: queues it for the `cairn run` holding the same state \
            directory and wakes that daemon at once. Without a running daemon it says so and \
            exits 3.

            Examples:
              # inside a repository, such as one made by `cairn init churn && cd churn`
              cairn reconcile --once
              cairn reconcile --once --format json
              cairn reconcile --once --signing-key ~/.config/cairn/signing_ed25519
              cairn reconcile Model/churn                 # with `cairn run` going in this repository
              cairn reconcile --once --repo https://git.example.com/ml/churn.git --push   # your own URL
            """)

        @Argument(help: "An object to reconcile now, as Kind/name.")
        var object: String?

        @Flag(help: "Run one pass in this process, then exit.")
        var once = false

        @OptionGroup var options: EngineOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @Flag(help: "With --once: return after one pass, leaving the runs it started to go on.")
        var noWait = false

        @Option(help: "With --once: how long to wait for runs at most, such as 30m (default: as long as they take).")
        var timeout: String?

        @OptionGroup var runOptions: RunOptions

        @OptionGroup var signing: SigningOptions

        func validate() throws {
            if let object, ObjectRef(parsing: object) == nil {
                throw ValidationError(notKindName(object))
            }
            if object == nil, !once { throw ValidationError("give --once, or an object (Kind/name) to queue for the daemon") }
            try Self.checkTimeout(timeout)
        }

        func run() async throws {
            Logs.bootstrap(level: .warning)
            let ref = object.flatMap(ObjectRef.init(parsing:))
            if !once, let ref {
                try queue(ref)
                return
            }
            try await Self.once(options: options, runOptions: runOptions, signer: try signing.signer(), format: format, noWait: noWait,
                                timeout: timeout) { engine in
                if let ref { try engine.store.request(ref) }
            }
        }

        /// `--timeout` as `once` takes it: a positive duration such as 30s or 1h.
        static func checkTimeout(_ timeout: String?) throws {
            if let timeout, (try? ManifestDuration(parsing: timeout))?.milliseconds ?? 0 <= 0 {
                throw ValidationError("--timeout \(timeout) is not a duration such as 30s or 1h")
            }
        }

        /// One pass in this process (and, unless `noWait`, the passes until its runs are
        /// done), printed as a `PassReport`; `prepare` runs first, under the daemon lock.
        static func once(options: EngineOptions, runOptions: RunOptions, signer: SSHCommitSigner? = nil, format: OutputFormat, noWait: Bool,
                         timeout: String?, prepare: (Engine) throws -> Void) async throws {
            let engine = try options.makeEngine(logger: Logger(label: "cairn"), runs: runOptions, signer: signer)
            // The same lock as the daemon's: two processes reconciling one state directory would
            // each write what the other already wrote.
            let lock: DaemonLock
            do {
                lock = try DaemonLock(stateDirectory: options.stateDirectory)
            } catch {
                throw CairnExit.unreadable(error.description + "; `cairn reconcile Kind/name` (without --once) asks it to reconcile now")
            }
            defer { withExtendedLifetime(lock) {} }
            try prepare(engine)
            let mark = try engine.store.runMark()
            let outcome: PassOutcome
            var settled = true
            do {
                if noWait {
                    outcome = try await engine.reconcileOnce()
                } else {
                    let limit = timeout.flatMap { try? ManifestDuration(parsing: $0) }.map { Duration.milliseconds($0.milliseconds) }
                    let waiting = WaitingReporter(quiet: format == .json)
                    (outcome, settled) = try await engine.reconcileUntilSettled(timeout: limit) { outcome, runs in
                        waiting.report(outcome, runs)
                    }
                }
            } catch let error as CairnExit {
                throw error
            } catch let error as NoTrustedCommit {
                throw CairnExit.invalid("error: \(error)")
            } catch {
                throw CairnExit.unreadable(describe(error))
            }
            var report = PassReport(outcome)
            // The runs this invocation started or took back, and the stages it reused.
            let runs = try engine.store.runs(since: mark)
            report.runs = runs.map(PassReport.Run.init)
            report.versions = try runs.compactMap { try engine.store.version(registeredBy: $0.id) }.map(PassReport.Version.init)
            report.stateDirectory = options.stateDirectory.path
            print(format == .json ? report.jsonText() : report.text)
            if !settled {
                throw CairnExit(code: CairnExit.timedOut, message: "error: --timeout \(timeout ?? "") ran out with runs still under way; they go on, "
                                + "and the next `cairn run` or `cairn reconcile --once` takes them back (`cairn runs` lists them)")
            }
            if !outcome.healthy { throw CairnExit.invalid() }
        }

        /// Hands the object to the running daemon: a row in its store, then SIGUSR1 to wake it.
        private func queue(_ ref: ObjectRef) throws {
            let state = options.stateDirectory
            guard let pid = DaemonLock.holder(of: state) else {
                throw CairnExit.unreadable("no `cairn run` is running with state in \(state.path), so nothing would reconcile \(ref); "
                                           + "run `cairn reconcile \(ref) --once` with the same --repo to reconcile it now")
            }
            let store = try Store(directory: state)
            guard try store.object(ref) != nil else {
                throw CairnExit.invalid("error: \(ref) is not an object the daemon knows; `cairn status` lists them "
                                        + "(a new manifest is reconciled as soon as the daemon sees its commit)")
            }
            try store.request(ref)
            guard kill(pid, SIGUSR1) == 0 else {
                throw CairnExit.unreadable("could not wake the daemon (pid \(pid)): \(String(cString: strerror(errno))); "
                                           + "\(ref) is queued for its next pass")
            }
            print("queued \(ref) and woke the daemon (pid \(pid)); `cairn history \(ref)` shows what it did")
        }
    }
}

/// What `reconcile --once` prints.
struct PassReport: Encodable {
    var commit: String
    var ran: Bool
    var objects: Int
    var ready: Int
    var changed: [String]
    var stalled: [String]
    var waiting: [String]
    var notImplemented: Int
    /// The tip that was not reconciled because its signatures are not trusted, and why.
    var refused: Refusal?
    /// Manifest files that could not be read (their objects are kept, stalled).
    var unreadableFiles: [String]
    /// The runs this invocation started, took back or reused, oldest first.
    var runs: [Run] = []
    /// The model versions those runs registered.
    var versions: [Version] = []

    struct Version: Encodable {
        var name: String
        var run: String
        var metrics: [String: Double]
        var gatePassed: Bool
        var gate: String

        init(_ version: ModelVersion) {
            name = version.name
            run = version.lineage.runID
            metrics = version.metrics
            gatePassed = version.gate.passed
            gate = version.gate.summary
        }
    }
    var stateDirectory: String?

    struct Run: Encodable {
        var id: String
        var object: String
        var stage: String?
        var state: String
        var reason: String?

        init(_ record: RunRecord) {
            id = record.id
            object = record.object.description
            stage = record.stage
            state = record.state.rawValue
            reason = record.reason
        }
    }

    struct Refusal: Encodable {
        var commit: String
        var reason: String
    }

    init(_ outcome: PassOutcome) {
        commit = outcome.commit.hex
        ran = outcome.ran
        objects = outcome.objects
        ready = outcome.ready
        changed = outcome.changed.map(\.description)
        stalled = outcome.stalled.map(\.description)
        waiting = outcome.waiting.map(\.description)
        notImplemented = outcome.notImplemented
        refused = outcome.refused.map { Refusal(commit: $0.commit.hex, reason: $0.reason) }
        unreadableFiles = outcome.unreadableFiles
    }

    var text: String {
        var lines: [String] = []
        if let refused {
            lines.append("refused \(refused.commit.prefix(12)), the branch tip: \(refused.reason); "
                         + "reconciled the last trusted commit \(commit.prefix(12)) instead")
        }
        lines.append("\(commit.prefix(12)): \(objects) objects, \(ready) Ready"
                     + (ran ? ", \(changed.count) with a new status" : ", already reconciled"))
        for run in runs {
            let what = run.state == "skipped" ? "reused" : run.state == "succeeded" ? "ran" : run.state
            lines.append("  \(what) \(run.object)\(run.stage.map { "/" + $0 } ?? "") (run \(run.id)): \(run.reason ?? "")")
        }
        for version in versions {
            lines.append("  registered \(version.name) (run \(version.run)): \(ModelText.metrics(version.metrics)); gate \(version.gate)")
        }
        if !runs.isEmpty, let stateDirectory {
            lines.append("  (`cairn runs --state-dir \(stateDirectory)` and `cairn logs RUN` tell more)")
        }
        if !stalled.isEmpty { lines.append("stalled: " + stalled.joined(separator: ", ")) }
        if !unreadableFiles.isEmpty { lines.append("could not read: " + unreadableFiles.joined(separator: "; ")) }
        if !waiting.isEmpty { lines.append("waiting: " + waiting.joined(separator: ", ")) }
        if notImplemented > 0 {
            lines.append("\(notImplemented) object(s) await work Cairn cannot do yet (NotImplemented); `cairn status` says what each lacks")
        }
        return lines.joined(separator: "\n")
    }
}

/// Says on standard error what `reconcile --once` is waiting for, when that changes.
final class WaitingReporter: Sendable {
    private let quiet: Bool
    private let last = Mutex<[String]>([])

    init(quiet: Bool) { self.quiet = quiet }

    func report(_ outcome: PassOutcome, _ runs: [RunRecord]) {
        let names = runs.map { "\($0.object)\($0.stage.map { "/" + $0 } ?? "") (\($0.state == .running ? "running" : "queued"), run \($0.id))" }
        let changed = last.withLock { previous in
            defer { previous = names }
            return previous != names
        }
        guard changed, !names.isEmpty else { return }
        FileHandle.standardError.write(Data(("waiting for \(names.count) run(s): " + names.joined(separator: ", ") + "\n").utf8))
    }
}
