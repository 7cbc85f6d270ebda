import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import Synchronization

/// The Model file a rollback edits, with a comment the proposal must keep.
let proposalModels = """
    apiVersion: cairn/v1
    kind: Model
    metadata:
      name: churn
    spec:
      stages: [staging, production]
      assignments:
        staging: 3
        production: 3   # promoted by Ana on Monday
      policy: {requireGate: false, strictOrder: false}

    """

/// A repository holding `models.yaml`, a store, and a way to put a status entry carrying a
/// rollback proposal into the store's outbox, as a pass of the ModelDeployment controller does.
final class ProposalSetup {
    let repository: GitFixture
    let state: TemporaryDirectory
    let store: Store
    let base: String
    let logs = RecordedLogs()

    init() throws {
        repository = try GitFixture()
        base = try repository.commit(["models.yaml": proposalModels, "README.md": "the churn model\n"], message: "manifests")
        state = try TemporaryDirectory("cairn-state")
        store = try Store(directory: state.url)
    }

    var logger: Logger { Logger(label: "test", factory: { [logs] _ in RecordingLogHandler(logs) }) }

    func writer(sign: CommitSigning? = nil) throws -> StatusWriter {
        StatusWriter(repository: try Repository.open(at: repository.url), store: store, configuration: ReconcilerConfiguration(),
                     logger: logger, sign: sign)
    }

    /// The rollback of churn production from 3 to 2, at the base commit.
    func proposal(expected: String = "3") -> Proposal {
        let edit = ManifestEdit(file: "models.yaml", object: ObjectRef(.model, "churn"), field: ["spec", "assignments", "production"],
                                expected: expected, value: "2")
        return Proposal(slug: "churn-rollback", baseCommit: base, edits: [edit], subject: "Roll back churn production to churn@2",
                        body: "churn@3 failed its health check; Cairn serves churn@2.")
    }

    /// A status entry of the deployment carrying `proposal`, written to the outbox in one pass.
    func queue(_ proposal: Proposal, createdAt: Date = Date(timeIntervalSince1970: 1_700_000_500)) throws {
        var entry = OutboxEntry(kind: .status, ref: ObjectRef(.modelDeployment, "churn-prod"), reason: "RolledBack",
                                body: "kind: ModelDeployment\nreason: RolledBack\n", detail: "churn@3 failed; rolled back to churn@2",
                                sourceCommit: base, createdAt: createdAt)
        entry.proposal = proposal
        var changes = PassChanges()
        changes.outbox = [entry]
        try store.apply(changes)
    }

    func git(_ arguments: [String]) throws -> String { try repository.git(arguments) }

    /// The proposal branches, short names, sorted.
    func proposalBranches(in fixture: GitFixture? = nil) throws -> [String] {
        try (fixture ?? repository).git(["for-each-ref", "--format=%(refname:short)", "refs/heads/cairn/proposals/"])
            .split(separator: "\n").map(String.init)
    }
}

/// What a test logger recorded, one line per message.
final class RecordedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func count(_ text: String) -> Int { all.filter { $0.contains(text) }.count }
}

struct RecordingLogHandler: LogHandler {
    let logs: RecordedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(_ logs: RecordedLogs) { self.logs = logs }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let fields = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        logs.append("\(level) \(message) \(fields)")
    }
}
