@testable import CairnServe
import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// The deployer as the controller uses it: removing a deployment takes down what each kind
/// of target made, through the one `remove` the engine calls.
@Suite struct ServingDeployerTests {
    let fixture: TargetFixture
    let commit = "c0ffee" + String(repeating: "0", count: 34)

    init() throws {
        fixture = try TargetFixture()
    }

    @Test func removeTakesDownADirectoryDeploymentsVersions() async throws {
        let deployer = try ServingDeployer(environment: fixture.environment())
        let base = fixture.data.appendingPathComponent("churn")
        let request = DeploymentRequest(deployment: "churn-files", version: try fixture.version(3, "weights v3"),
                                        target: .directory(path: base.path, layout: "tfserving", keep: 2), sourceCommit: commit)
        #expect(try await deployer.ensure(request, retry: true).phase == .serving)
        #expect(FileManager.default.fileExists(atPath: base.appendingPathComponent("3/model.bin").path))

        try await deployer.remove(deployment: "churn-files")
        #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent("3").path), "the placed version stayed")
        #expect(!FileManager.default.fileExists(atPath: fixture.serving.appendingPathComponent("churn-files").path))
    }

    @Test func removeRunsACommandDeploymentsRemove() async throws {
        let system = fixture.temporary.appending("system")
        try FileManager.default.createDirectory(at: system, withIntermediateDirectories: true)
        let scripts = ["apply.sh": "echo \"$CAIRN_MODEL_VERSION\" > \"$1/served\"\n", "remove.sh": "rm -f \"$1/served\"; touch \"$1/removed\"\n"]
        let deployer = try ServingDeployer(environment: fixture.environment(files: scripts))
        let request = DeploymentRequest(deployment: "churn-cluster", version: try fixture.version(2, "weights v2"),
                                        target: .command(apply: ["/bin/sh", "apply.sh", system.path], remove: ["/bin/sh", "remove.sh", system.path],
                                                         check: [], timeout: nil),
                                        sourceCommit: commit)
        var changes = deployer.changes.makeAsyncIterator()
        var observation = try await deployer.ensure(request, retry: true)
        for _ in 0..<4 where observation.phase == .progressing {
            #expect(await changes.next() == "churn-cluster")
            observation = try await deployer.ensure(request, retry: false)
        }
        #expect(observation.phase == .serving, "\(observation.message)")
        #expect(text(of: system.appendingPathComponent("served")) == "2\n")

        try await deployer.remove(deployment: "churn-cluster")
        #expect(FileManager.default.fileExists(atPath: system.appendingPathComponent("removed").path), "remove did not run")
        #expect(text(of: system.appendingPathComponent("served")) == nil)
        #expect(!FileManager.default.fileExists(atPath: fixture.serving.appendingPathComponent("churn-cluster").path))
    }
}
