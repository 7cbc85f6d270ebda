import Foundation
import CairnCore

/// apply and remove commands. (Being built.)
actor CommandTarget: ServingTarget {
    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void) throws {}
    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        DeploymentObservation(phase: .refused, version: request.version.version, serving: nil, reason: "NotBuilt", message: "command targets are being built")
    }
    func remove(deployment: String) async throws {}
    func recover() async throws -> [String] { [] }
    func inFlight() async -> [String] { [] }
}
