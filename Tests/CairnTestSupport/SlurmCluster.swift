public import Foundation

/// The single-node cluster the Slurm tests run on: `Scripts/slurm-cluster start` makes it, and
/// `Scripts/test` starts it before the suite. Without it the Slurm tests fail, saying so,
/// rather than skip; `CAIRN_SLURM=off` leaves them out on purpose (a machine without root).
public enum SlurmCluster {
    public static let wanted = ProcessInfo.processInfo.environment["CAIRN_SLURM"] != "off"

    /// Throws, with what to do, unless `sinfo` answers.
    public static func require() async throws {
        let result = try? await runAsync("/usr/bin/env", ["sinfo", "--noheader", "--format=%t"], check: false)
        guard let result, result.status == 0, !result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SlurmUnavailable(description: "Slurm does not answer (sinfo: \(result?.stderr ?? "not found")). Start the single-node cluster with "
                                   + "`eval \"export $(Scripts/slurm-cluster start)\"` (Scripts/test does), or set CAIRN_SLURM=off to leave the Slurm half out")
        }
    }

    /// The node's name, as `scontrol update nodename=` wants it.
    public static func node() async throws -> String {
        let result = try await runAsync("/usr/bin/env", ["sinfo", "--noheader", "--format=%n"])
        guard let node = result.stdout.split(whereSeparator: \.isNewline).first else {
            throw SlurmUnavailable(description: "sinfo lists no node")
        }
        return String(node)
    }

    public static func scontrol(_ arguments: [String]) async throws {
        _ = try await runAsync("/usr/bin/env", ["scontrol"] + arguments)
    }

    /// The jobs squeue lists under `name`, in any state it still remembers: "ID STATE" each.
    public static func jobs(named name: String) async throws -> [String] {
        let result = try await runAsync("/usr/bin/env", ["squeue", "--me", "--noheader", "--states=all", "--name=\(name)", "--format=%i %T"])
        return result.stdout.split(whereSeparator: \.isNewline).map(String.init)
    }

    /// Runs `body` while no other test holding this takes the node down or depends on it
    /// staying up. The Slurm tests of one suite are serialized already; this keeps those of
    /// other suites (other test targets, in the same process) out of their way.
    public static func exclusively<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await NodeLock.shared.lock()
        do {
            let value = try await body()
            await NodeLock.shared.unlock()
            return value
        } catch {
            await NodeLock.shared.unlock()
            throw error
        }
    }
}

public struct SlurmUnavailable: Error, CustomStringConvertible {
    public let description: String
}

/// A first-come, first-served lock for tasks.
actor NodeLock {
    static let shared = NodeLock()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func unlock() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
