import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// The executors the conformance suite runs against.
enum ExecutorKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case local, slurm
    var testDescription: String { rawValue }

    /// Both, unless `CAIRN_SLURM=off` leaves Slurm out on purpose.
    static let tested: [ExecutorKind] = SlurmCluster.wanted ? allCases : [.local]
}

extension ExecutorFixture {
    var shared: URL { directory.appending("shared") }

    /// A Slurm executor with quick polls, on a shared directory inside the fixture.
    func slurmExecutor(files: [String: String] = [:], policy: ExecutionPolicy = ExecutionPolicy(maxRuns: 4),
                       environment: [String: String] = [:], grace: Duration = .seconds(1),
                       commands: SlurmCommands = SlurmCommands()) throws -> SlurmExecutor {
        try SlurmExecutor(configuration: SlurmConfiguration(sharedDirectory: shared, pollInterval: .milliseconds(200), resultGrace: .seconds(2)),
                          commands: commands, ledger: ledger, artifacts: artifacts, source: FilesCheckout(files), policy: policy,
                          supervisor: [try cairnExecutable(), "_supervise"], environment: environment, logCap: 1 << 20, grace: grace)
    }

    /// The executor of `kind` over this fixture (a Slurm one fails the test when Slurm is not up).
    func executor(_ kind: ExecutorKind, files: [String: String] = [:], environment: [String: String] = [:]) async throws -> any JobExecutor {
        switch kind {
        case .local: return try executor(files: files, environment: environment)
        case .slurm:
            try await SlurmCluster.require()
            return try slurmExecutor(files: files, environment: environment)
        }
    }

    func runDirectory(_ runID: String, _ kind: ExecutorKind) -> URL {
        kind == .local ? runDirectory(runID) : shared.appendingPathComponent("runs/\(runID)")
    }
}

/// Stops watching, as a daemon killed with SIGKILL would: its runs go on without it.
func detach(_ executor: any JobExecutor) async {
    if let local = executor as? LocalExecutor { await local.detach() }
    if let slurm = executor as? SlurmExecutor { await slurm.detach() }
}
