import Foundation
import CairnCore

/// A TF Serving layout directory. (Being built.)
actor DirectoryTarget: ServingTarget {
    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void) throws {}
    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        DeploymentObservation(phase: .refused, version: request.version.version, serving: nil, reason: "NotBuilt", message: "directory targets are being built")
    }
    func remove(deployment: String) async throws {}
    func recover() async throws -> [String] { [] }
    func inFlight() async -> [String] { [] }
}
