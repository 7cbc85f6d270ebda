import CairnCLI
import CairnCore
import CairnEngine
import CairnGit
import CairnStore
import CairnTestSupport
import Foundation
import Logging

/// The example repository's files (manifests and the scripts they run), by path.
func exampleManifests() throws -> [String: String?] {
    try exampleRepositoryFiles().mapValues { Optional($0) }
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
