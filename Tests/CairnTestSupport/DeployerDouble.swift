public import CairnCore
public import Foundation

/// A `Deployer` for controller tests: it serves nothing, records what it was asked, and
/// answers each version with the phase the test set for it (serving by default). The real
/// targets (processes, directories, commands) are tested in CairnServeTests.
public final class DeployerDouble: Deployer, @unchecked Sendable {
    public struct Call: Hashable, Sendable {
        public var version: Int
        public var retry: Bool

        public init(version: Int, retry: Bool) {
            self.version = version
            self.retry = retry
        }
    }

    private let lock = NSLock()
    private var phases: [Int: DeploymentObservation.Phase] = [:]
    private var _calls: [Call] = []
    private var _removed: [String] = []
    public let changes: AsyncStream<String>

    public init() {
        changes = AsyncStream { _ in }
    }

    /// How the target answers `version` from now on.
    public func answer(_ version: Int, with phase: DeploymentObservation.Phase) {
        lock.withLock { phases[version] = phase }
    }

    /// Every `ensure`, in order.
    public var calls: [Call] { lock.withLock { _calls } }
    public var removed: [String] { lock.withLock { _removed } }

    public func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        let version = request.version.version
        let phase = lock.withLock {
            _calls.append(Call(version: version, retry: retry))
            return phases[version] ?? .serving
        }
        let reason = switch phase {
        case .serving: "Serving"
        case .progressing: "WaitingForHealth"
        case .failed: "HealthCheckFailed"
        case .refused: "PathNotAllowed"
        }
        return DeploymentObservation(phase: phase, version: version, serving: phase == .serving ? version : nil, reason: reason,
                                     message: "\(request.version) \(phase.rawValue)")
    }

    public func remove(deployment: String) async throws {
        lock.withLock { _removed.append(deployment) }
    }

    public func recover() async throws -> [String] { [] }
    public func inFlight() async -> [String] { [] }
}
