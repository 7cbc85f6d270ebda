import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// One executor over a temporary state directory, with the pieces tests look at.
struct ExecutorFixture {
    let directory: TemporaryDirectory
    let ledger: InMemoryRunLedger
    let artifacts: ArtifactStore
    var state: URL { directory.appending("state") }

    init(ledger: InMemoryRunLedger = InMemoryRunLedger()) throws {
        directory = try TemporaryDirectory("cairn-exec")
        self.ledger = ledger
        artifacts = try ArtifactStore(root: directory.appending("state/artifacts"))
    }

    /// Another fixture on the same state and ledger: a restarted daemon.
    init(sharing other: ExecutorFixture) {
        directory = other.directory
        ledger = other.ledger
        artifacts = other.artifacts
    }

    func executor(files: [String: String] = [:], policy: ExecutionPolicy = ExecutionPolicy(maxRuns: 4),
                  environment: [String: String] = [:], logCap: Int = 1 << 20, grace: Duration = .seconds(1),
                  source: (any SourceCheckout)? = nil) throws -> LocalExecutor {
        try LocalExecutor(stateDirectory: state, ledger: ledger, artifacts: artifacts, source: source ?? FilesCheckout(files),
                          policy: policy, supervisor: [try cairnExecutable(), "_supervise"], environment: environment,
                          logCap: logCap, grace: grace)
    }

    func runDirectory(_ runID: String) -> URL { state.appendingPathComponent("runs/\(runID)") }

    /// Waits until the run's row is final (generous: the machine is shared); the row.
    func final(_ runID: String, within seconds: Double = 90) async throws -> RunRecord {
        try await until(runID, within: seconds) { $0.state.isFinal }
    }

    /// Waits until the run's row satisfies `check`.
    func until(_ runID: String, within seconds: Double = 90, _ check: (RunRecord) -> Bool) async throws -> RunRecord {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let record = try ledger.run(id: runID), check(record) { return record }
            try await Task.sleep(for: .milliseconds(25))
        }
        let last = try ledger.run(id: runID)
        throw FixtureError(description: "run \(runID) did not get there within \(seconds) s; last recorded: \(String(describing: last?.state)) \(last?.message ?? "")")
    }

    /// Waits until a file exists.
    func waitForFile(_ url: URL, within seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !FileManager.default.fileExists(atPath: url.path) {
            guard Date() < deadline else { throw FixtureError(description: "\(url.path) never appeared") }
            try await Task.sleep(for: .milliseconds(25))
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}


/// A job running `command` in a checkout, with a fresh run id and key unless given.
func job(_ command: [String], id: String? = nil, key: String? = nil, outputs: [String] = [], passEnvironment: [String] = [],
         shell: Bool = false, cpus: Int = 1, timeout: Duration? = nil, params: String = #"{"lr":0.1}"#) -> JobSpec {
    let runID = id ?? "run-\(UUID().uuidString.prefix(8).lowercased())"
    return JobSpec(runID: runID, key: key ?? "key-\(runID)", object: ObjectRef(.featurePipeline, "features"), stage: "build",
                   reason: "inputs changed", sourceCommit: String(repeating: "a", count: 40), command: command, shell: shell,
                   passEnvironment: passEnvironment, params: params, outputs: outputs, keyInputs: ["params": "p"], cpus: cpus,
                   timeout: timeout)
}

/// The pid of a run's command, as its supervisor wrote it.
func commandPID(in directory: URL) -> pid_t? {
    guard let text = try? String(contentsOf: directory.appendingPathComponent("command.pid"), encoding: .utf8) else { return nil }
    return text.split(separator: " ").first.flatMap { pid_t($0) }
}
