@testable import CairnServe
import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Logging
import Testing

/// A temporary state directory with an artifact store, a repository working directory and a
/// data root, and what the targets logged.
struct TargetFixture {
    let temporary: TemporaryDirectory
    let artifacts: ArtifactStore
    let logs = LogCapture()
    let changes = Changes()
    var notify: @Sendable (String) -> Void { { [changes] in changes.add($0) } }

    var state: URL { temporary.appending("state") }
    var serving: URL { temporary.appending("state/serving") }
    var repository: URL { temporary.appending("repository") }
    var data: URL { temporary.appending("data") }

    init() throws {
        temporary = try TemporaryDirectory("cairn-serve")
        artifacts = try ArtifactStore(root: temporary.appending("state/artifacts"))
        for folder in [temporary.appending("repository"), temporary.appending("data"), temporary.appending("state/serving")] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
    }

    func environment(files: [String: String] = [:], repositoryRoot: URL?? = .none, dataRoots: [String]? = nil) -> ServingEnvironment {
        let logs = self.logs
        return ServingEnvironment(directory: serving, artifacts: artifacts, source: FilesCheckout(files),
                                  repositoryRoot: repositoryRoot ?? repository, dataRoots: dataRoots ?? [data.path],
                                  processes: false, logger: Logger(label: "test", factory: { _ in logs }))
    }

    /// Stores `text` as the model file of `model@version`, written by the training at `path`.
    func version(_ version: Int, _ text: String, model: String = "churn", path: String = "out/model.bin") throws -> ServedVersion {
        let file = try temporary.write("trained/\(UUID().uuidString)/model.bin", text)
        return ServedVersion(model: model, version: version, artifact: try artifacts.store(file), artifactPath: path)
    }

    /// Stores a directory of files (relative path → text) as `model@version`.
    func directoryVersion(_ version: Int, _ files: [String: String], model: String = "churn") throws -> ServedVersion {
        let root = temporary.appending("trained/\(UUID().uuidString)")
        for (path, text) in files { try temporary.write("trained/\(root.lastPathComponent)/\(path)", text) }
        return ServedVersion(model: model, version: version, artifact: try artifacts.store(root), artifactPath: "out/model")
    }

    /// Waits for the next deployment a target reports changed, for at most `seconds` (generous:
    /// the machine is shared); nil when none came.
    func nextChange(within seconds: Double = 60) async -> String? {
        await changes.next(within: seconds)
    }
}

/// The deployments targets reported changed, kept until a test takes them. (An AsyncStream
/// would end for good the first time a waiting test gave up on it: cancelling its consumer
/// finishes it.)
final class Changes: @unchecked Sendable {
    private let lock = NSLock()
    private var buffered: [String] = []
    private var waiter: (id: UUID, continuation: CheckedContinuation<String?, Never>)?

    func add(_ name: String) {
        let waiting = lock.withLock { () -> CheckedContinuation<String?, Never>? in
            guard let waiter else {
                buffered.append(name)
                return nil
            }
            self.waiter = nil
            return waiter.continuation
        }
        waiting?.resume(returning: name)
    }

    /// The oldest change not taken yet, waiting up to `seconds` for one.
    func next(within seconds: Double) async -> String? {
        let id = UUID()
        return await withCheckedContinuation { continuation in
            let ready = lock.withLock { () -> String?? in
                if !buffered.isEmpty { return .some(buffered.removeFirst()) }
                waiter = (id, continuation)
                return .none
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                let expired = self.lock.withLock { () -> CheckedContinuation<String?, Never>? in
                    guard let waiter = self.waiter, waiter.id == id else { return nil }
                    self.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }
}

func text(of url: URL) -> String? { try? String(contentsOf: url, encoding: .utf8) }

/// Whether `body` threw a `ReconcileError` with this disposition and reason; the error, for more checks.
func reconcileError(_ disposition: ReconcileError.Disposition, _ reason: String,
                    _ body: () async throws -> some Any) async -> ReconcileError? {
    do {
        _ = try await body()
        Issue.record("expected \(reason), but nothing was thrown")
    } catch let error as ReconcileError {
        #expect(error.disposition == disposition && error.reason == reason, "\(error)")
        return error
    } catch {
        Issue.record("expected \(reason), got \(error)")
    }
    return nil
}

/// Keeps every message logged through it, for tests to read.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        lock.withLock { lines.append("\(message)") }
    }

    var messages: [String] { lock.withLock { lines } }
}

/// A wall clock a test moves by hand.
final class TestTime: @unchecked Sendable {
    private let lock = NSLock()
    private var offset: TimeInterval = 0

    func advance(by seconds: TimeInterval) { lock.withLock { offset += seconds } }

    var now: Date { lock.withLock { Date().addingTimeInterval(offset) } }
}
