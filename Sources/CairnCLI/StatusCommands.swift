import ArgumentParser
import CairnCore
import CairnEngine
import CairnManifests
import CairnStore
import Foundation

/// Where `status` and `history` read from: the store of a state directory.
struct StateOptions: ParsableArguments {
    @Option(help: "The repository the daemon tracks, to find its default state directory (default: the repository that holds the current directory).")
    var repo: String?

    @Option(help: "The state directory (overrides --repo).")
    var stateDir: String?

    func validate() throws {
        if repo == nil, stateDir == nil, enclosingRepository() == nil {
            throw ValidationError("the current directory is not inside a git repository; give --repo (as given to cairn run) or --state-dir")
        }
    }

    /// The state directory these options name.
    var directory: URL {
        stateDir.map { URL(fileURLWithPath: $0) } ?? EngineOptions.defaultStateDirectory(for: repo ?? enclosingRepository() ?? "")
    }

    func openStore() throws -> Store {
        let repo = self.repo ?? enclosingRepository()
        let directory = self.directory
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("cairn.sqlite").path) else {
            if let repo, stateDir == nil {
                throw CairnExit.unreadable("no Cairn state for --repo \(repo) (looked in \(directory.path)); "
                                           + "run `cairn reconcile --once --repo \(repo)` or `cairn run --repo \(repo)` first, "
                                           + "or give --state-dir where they keep it")
            }
            throw CairnExit.unreadable("no Cairn state in \(directory.path); run `cairn reconcile --once` or `cairn run` with "
                                       + "--state-dir \(directory.path) first")
        }
        do {
            return try Store(readingFrom: directory)
        } catch {
            throw CairnExit.unreadable("cannot read the Cairn state in \(directory.path): \(describe(error))")
        }
    }
}

extension Cairn {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show every object's status (or one object's) from the store.",
            discussion: """
            The same is readable with plain git, no Cairn needed: \
            git show cairn/status:Model/churn.yaml, git log cairn/status.

            Exit code 0 when no object shown is stalled; 1 when one is (its manifest is invalid, \
            or its controller found it cannot work as written), when a manifest file could not be \
            read, when the branch tip was refused under --verify-commits, or when the object asked \
            for is not known. Objects whose kind's work Cairn cannot \
            do yet show READY Unknown, reason NotImplemented, and do not fail the command.

            Examples:
              # inside a repository Cairn has reconciled
              cairn status
              cairn status Model/churn --format json
            """)

        @Argument(help: "One object, as Kind/name.")
        var object: String?

        @OptionGroup var state: StateOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func run() async throws {
            let store = try state.openStore()
            var objects = try store.objects()
            let unreadable = try store.invalidFiles()
            let refusal = try store.refusal()
            if let object {
                guard let ref = ObjectRef(parsing: object) else { throw CairnExit.usage(notKindName(object)) }
                objects = objects.filter { $0.ref == ref }
                if objects.isEmpty { throw CairnExit.invalid("\(object) is not known; `cairn status` lists the objects") }
            }
            if format == .json {
                // The status API answers with the same functions.
                if let object, let ref = ObjectRef(parsing: object) {
                    print(try StatusJSON.one(ref, in: store) ?? "[]")
                } else {
                    print(try StatusJSON.all(store))
                }
            } else {
                let rows = objects.map { [$0.ref.description, $0.ready.rawValue, $0.reason, String($0.observedCommit.prefix(12)), $0.primaryMessage] }
                print(table(header: ["OBJECT", "READY", "REASON", "COMMIT", "MESSAGE"], rows: rows))
                let stalled = objects.filter(\.isStalled).count
                let notImplemented = objects.filter(\.isNotImplemented).count
                var summary = "\(objects.count) object(s): \(objects.filter(\.isReady).count) Ready, \(stalled) stalled"
                if notImplemented > 0 { summary += ", \(notImplemented) awaiting work Cairn cannot do yet (NotImplemented)" }
                print("\n" + summary)
                if object == nil, let refusal {
                    print("The branch tip \(refusal.commit.prefix(12)) was not reconciled: \(refusal.reason); Cairn stays on the last trusted commit.")
                }
                if object == nil, !unreadable.isEmpty {
                    print("\(unreadable.count) manifest file(s) could not be read (their objects keep their last good spec):")
                    for line in unreadable { print("  \(line)") }
                }
                if object == nil { try printRegistryTagProblems(store) }
            }
            if objects.contains(where: \.isStalled) || (object == nil && (!unreadable.isEmpty || refusal != nil)) { throw CairnExit.invalid() }
        }

        /// Registry tags (`--registry-tags`) that are not where Cairn means them: held, skipped,
        /// or refused by the remote. Reported, never failing the command: the registry is fine.
        private func printRegistryTagProblems(_ store: Store) throws {
            let problems = try store.registryTagProblems()
            // Held and refused tags want a person; skipped ones are for ever, so only counted.
            let actionable = problems.filter { $0.state != .skipped }
            if !actionable.isEmpty {
                print("\(actionable.count) registry tag(s) are not written as Cairn means them (--registry-tags):")
                for tag in actionable.prefix(20) {
                    print("  \(tag.label) (\(tag.state == .held ? "held" : "not pushed")): \(tag.problem ?? "")")
                }
                if actionable.count > 20 { print("  ... and \(actionable.count - 20) more") }
            }
            if let first = problems.first(where: { $0.state == .skipped }) {
                let count = problems.count - actionable.count
                print("\(count) registry tag(s) were skipped, as GTO could not read them as meant; the first: \(first.label): \(first.problem ?? "")")
            }
        }
    }
}

extension Cairn {
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Show what happened to one object, newest first, from the store.",
            discussion: """
            From git alone: git log cairn/status -- Model/churn.yaml

            Example:
              # inside a repository Cairn has reconciled
              cairn history Model/churn
            """)

        @Argument(help: "The object, as Kind/name.")
        var object: String

        @OptionGroup var state: StateOptions

        @Option(help: "How many events to show.")
        var limit: Int = 50

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if ObjectRef(parsing: object) == nil { throw ValidationError(notKindName(object)) }
        }

        func run() async throws {
            guard let ref = ObjectRef(parsing: object) else { return }
            let events = try state.openStore().history(ref, limit: limit)
            if format == .json {
                print(events.jsonText())
                return
            }
            if events.isEmpty { throw CairnExit.invalid("no history for \(ref)") }
            let formatter = ISO8601DateFormatter()
            print(table(header: ["TIME", "REASON", "COMMIT", "MESSAGE"],
                        rows: events.map { [formatter.string(from: $0.time), $0.reason, String($0.sourceCommit.prefix(12)), $0.message] }))
        }
    }
}

/// What is wrong with a Kind/name argument, with the kinds spelled as Cairn knows them.
func notKindName(_ text: String) -> String {
    "\(text) is not Kind/name; kinds are " + Kind.allCases.map(\.rawValue).joined(separator: ", ")
        + " (case matters), and names are DNS labels, such as Model/churn"
}

/// What `cairn status --format json` prints, and the status API answers.
enum StatusJSON {
    static func all(_ store: Store) throws -> String { try store.objects().jsonText() }

    /// One object's, as a list of one (as `cairn status Kind/name --format json`); nil when not known.
    static func one(_ ref: ObjectRef, in store: Store) throws -> String? {
        try store.object(ref).map { [$0].jsonText() }
    }
}
