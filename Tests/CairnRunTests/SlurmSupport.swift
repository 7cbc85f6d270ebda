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

/// The single-node cluster the Slurm half runs on: `Scripts/slurm-cluster start` makes it, and
/// `Scripts/test` starts it before the suite. Without it the Slurm tests fail, saying so,
/// rather than skip; `CAIRN_SLURM=off` leaves them out on purpose (a machine without root).
enum SlurmCluster {
    static let wanted = ProcessInfo.processInfo.environment["CAIRN_SLURM"] != "off"

    /// Throws, with what to do, unless `sinfo` answers with a node up.
    static func require() async throws {
        let result = try? await runAsync("/usr/bin/env", ["sinfo", "--noheader", "--format=%t"], check: false)
        guard let result, result.status == 0, !result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw FixtureError(description: "Slurm does not answer (sinfo: \(result?.stderr ?? "not found")). Start the single-node cluster with "
                               + "`eval \"export $(Scripts/slurm-cluster start)\"` (Scripts/test does), or set CAIRN_SLURM=off to leave the Slurm half out")
        }
    }

    /// The node's name, as `scontrol update nodename=` wants it.
    static func node() async throws -> String {
        let result = try await runAsync("/usr/bin/env", ["sinfo", "--noheader", "--format=%n"])
        return try #require(result.stdout.split(whereSeparator: \.isNewline).first.map(String.init))
    }

    static func scontrol(_ arguments: [String]) async throws {
        _ = try await runAsync("/usr/bin/env", ["scontrol"] + arguments)
    }

    /// The jobs squeue lists under `name`, in any state it still remembers.
    static func jobs(named name: String) async throws -> [String] {
        let result = try await runAsync("/usr/bin/env", ["squeue", "--me", "--noheader", "--states=all", "--name=\(name)", "--format=%i %T"])
        return result.stdout.split(whereSeparator: \.isNewline).map(String.init)
    }
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
