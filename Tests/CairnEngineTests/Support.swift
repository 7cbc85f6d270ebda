import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnStore
import CairnTestSupport
import Foundation
import Logging

/// The example manifests (Manifests/*.yaml), by file name.
func exampleManifests() throws -> [String: String?] {
    let directory = packageRoot.appendingPathComponent("Manifests")
    var files: [String: String?] = [:]
    // Every file but the generated schemas: the manifests and the scripts their stages run.
    let walker = FileManager.default.enumerator(atPath: directory.path)
    while let name = walker?.nextObject() as? String {
        guard !name.hasPrefix("schema"), !name.contains("__pycache__") else { continue }
        let url = directory.appendingPathComponent(name)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
        files[name] = try String(contentsOf: url, encoding: .utf8)
    }
    return files
}

/// A git repository with the example manifests and an engine tracking it.
final class Setup {
    let repository: GitFixture
    let state: TemporaryDirectory
    var engine: Engine

    init(files: [String: String?]? = nil) throws {
        repository = try GitFixture()
        try repository.commit(try files ?? exampleManifests(), message: "manifests")
        state = try TemporaryDirectory("cairn-state")
        engine = try Setup.engine(repository.url, state.url)
    }

    static func engine(_ repository: URL, _ state: URL, controllers: [any Controller] = Controllers.all,
                       now: @escaping @Sendable () -> Date = Date.init) throws -> Engine {
        try Engine(source: .local(repository), stateDirectory: state, configuration: ReconcilerConfiguration(),
                   controllers: try ControllerRegistry(controllers), push: false,
                   logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), now: now) { _, _ in }
    }

    /// A fresh engine on the same state, as after a restart.
    func restart() throws {
        engine = try Setup.engine(repository.url, state.url)
    }

    func git(_ arguments: [String]) throws -> String { try repository.git(arguments) }

    /// Subjects on the status branch, oldest first.
    func statusSubjects() throws -> [String] {
        try git(["log", "--reverse", "--format=%s", "cairn/status"]).split(separator: "\n").map(String.init)
    }
}
