public import CairnCore
public import CairnManifests
public import CairnRun
public import Foundation

/// A `RunLedger` in memory, standing in for the metadata store. `failWrites` makes every
/// `record` throw, as a full disk or a read-only state directory would.
public final class InMemoryRunLedger: RunLedger, @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [String: RunRecord] = [:]
    private var order: [String] = []
    private var failing = false

    public init() {}

    public var failWrites: Bool {
        get { lock.withLock { failing } }
        set { lock.withLock { failing = newValue } }
    }

    public struct WriteError: Error, CustomStringConvertible {
        public var description: String { "the ledger's disk is full (a test double failing on purpose)" }
    }

    public func record(_ run: RunRecord) throws {
        try lock.withLock {
            if failing { throw WriteError() }
            if rows[run.id] == nil { order.append(run.id) }
            rows[run.id] = run
        }
    }

    public func run(id: String) throws -> RunRecord? { lock.withLock { rows[id] } }

    public func unfinishedRuns() throws -> [RunRecord] {
        lock.withLock { order.compactMap { rows[$0] }.filter { !$0.state.isFinal } }
    }

    public func runs(withKey key: String) throws -> [RunRecord] {
        lock.withLock { order.reversed().compactMap { rows[$0] }.filter { $0.key == key } }
    }

    public func runs(of object: ObjectRef, limit: Int) throws -> [RunRecord] {
        lock.withLock { Array(order.reversed().compactMap { rows[$0] }.filter { $0.object == object }.prefix(limit)) }
    }

    /// Every run recorded, oldest first.
    public var all: [RunRecord] { lock.withLock { order.compactMap { rows[$0] } } }
}

/// A `SourceCheckout` that writes a fixed set of files (path → text); paths ending in `.sh`
/// are made executable.
public struct FilesCheckout: SourceCheckout {
    public var files: [String: String]

    public init(_ files: [String: String]) {
        self.files = files
    }

    public func checkout(commit: String, into directory: URL) throws {
        for (path, text) in files {
            let target = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: target)
            if path.hasSuffix(".sh") {
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: target.path)
            }
        }
    }
}
