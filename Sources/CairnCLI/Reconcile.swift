import ArgumentParser
import CairnCore
import CairnManifests
import CairnStore
import Foundation
import Logging

extension Cairn {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one reconcile pass, or ask a running daemon to reconcile an object now.",
            discussion: """
            With --once: fetches (for a URL), runs one pass over the branch tip, writes status \
            commits to the status branch and a note on the commit, and exits 0 when every object \
            is Ready, 1 when some are not, 3 when the repository cannot be read.

            With an object and no --once: queues it in the store; a running `cairn run` on the same \
            state directory reconciles it within a second, ahead of its interval.

            Examples:
              cairn reconcile --once --repo ~/src/churn
              cairn reconcile Model/churn --repo ~/src/churn
              cairn reconcile Model/churn --once --repo https://git.example.com/ml/churn.git --push
            """)

        @Argument(help: "An object to reconcile now, as Kind/name.")
        var object: String?

        @Flag(help: "Run one pass in this process, then exit.")
        var once = false

        @OptionGroup var options: EngineOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if let object, ObjectRef(parsing: object) == nil {
                throw ValidationError("\(object) is not Kind/name (kinds: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if object == nil, !once { throw ValidationError("give --once, or an object (Kind/name) to queue for the daemon") }
        }

        func run() async throws {
            Logs.bootstrap(level: .warning)
            let ref = object.flatMap(ObjectRef.init(parsing:))
            if !once, let ref {
                try Store(directory: options.stateDirectory).request(ref)
                print("queued \(ref): a running `cairn run` with state in \(options.stateDirectory.path) reconciles it within a second")
                return
            }
            let engine = try options.makeEngine(logger: Logger(label: "cairn"))
            if let ref { try engine.store.request(ref) }
            let outcome: PassOutcome
            do {
                outcome = try engine.reconcileOnce()
            } catch let error as CairnExit {
                throw error
            } catch {
                throw CairnExit.unreadable("\(error)")
            }
            let report = PassReport(outcome)
            print(format == .json ? report.jsonText() : report.text)
            if !outcome.allReady { throw CairnExit.invalid() }
        }
    }
}

struct PassReport: Encodable {
    var commit: String
    var ran: Bool
    var objects: Int
    var changed: [String]
    var notReady: [String]

    init(_ outcome: PassOutcome) {
        commit = outcome.commit.hex
        ran = outcome.ran
        objects = outcome.objects
        changed = outcome.changed.map(\.description)
        notReady = outcome.notReady.map(\.description)
    }

    var text: String {
        var lines = ["\(commit.prefix(12)): \(objects) objects, \(objects - notReady.count) Ready"
                     + (ran ? ", \(changed.count) changed" : ", already reconciled")]
        if !notReady.isEmpty { lines.append("not Ready: " + notReady.joined(separator: ", ")) }
        return lines.joined(separator: "\n")
    }
}
