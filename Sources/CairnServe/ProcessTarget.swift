import Foundation
import CairnCore

/// Supervised serving processes behind Cairn's own reverse proxy. (Being built.)
actor ProcessTarget: ServingTarget {
    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void) throws {}
    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        DeploymentObservation(phase: .refused, version: request.version.version, serving: nil, reason: "NotBuilt", message: "process targets are being built")
    }
    func remove(deployment: String) async throws {}
    func recover() async throws -> [String] { [] }
    func inFlight() async -> [String] { [] }
    func shutdown() async {}
}
