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
    private var _requests: [DeploymentRequest] = []
    private var _removed: [String] = []
    private var busy: Set<String> = []
    private var leftovers: [String] = []
    public let changes: AsyncStream<String>
    private let changed: AsyncStream<String>.Continuation

    public init() {
        (changes, changed) = AsyncStream.makeStream(of: String.self)
    }

    /// Says `deployment` has work under way (`inFlight`) until `finish` is called.
    public func startWork(_ deployment: String) {
        lock.withLock { _ = busy.insert(deployment) }
    }

    /// Ends `deployment`'s work: its versions answer as set, and the engine hears of the change.
    public func finish(_ deployment: String) {
        lock.withLock { _ = busy.remove(deployment) }
        changed.yield(deployment)
    }

    /// What `recover` reports, as a previous daemon would have left it.
    public func leave(_ deployments: [String]) {
        lock.withLock { leftovers = deployments }
    }

    /// How the target answers `version` from now on.
    public func answer(_ version: Int, with phase: DeploymentObservation.Phase) {
        lock.withLock { phases[version] = phase }
    }

    /// Every `ensure`, in order.
    public var calls: [Call] { lock.withLock { _calls } }
    public var removed: [String] { lock.withLock { _removed } }
    /// Every request `ensure` was given, in order.
    public var requests: [DeploymentRequest] { lock.withLock { _requests } }

    public func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        let version = request.version.version
        let phase = lock.withLock {
            _calls.append(Call(version: version, retry: retry))
            _requests.append(request)
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

    public func recover() async throws -> [String] { lock.withLock { leftovers } }
    public func inFlight() async -> [String] { lock.withLock { busy.sorted() } }
}
