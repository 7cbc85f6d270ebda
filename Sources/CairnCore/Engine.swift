public import Foundation
public import CairnGit
public import CairnStore
public import Logging

/// Where the tracked repository is.
public enum RepositorySource: Sendable {
    /// A repository on this machine, read in place; the status branch and notes are written into it.
    case local(URL)
    /// A URL, fetched into a bare mirror under the state directory before each pass.
    case remote(String)
}

/// The composition of one tracked repository: fetch, pass, drain, push.
public final class Engine {
    public let repository: Repository
    public let store: Store
    public let reconciler: Reconciler
    public let writer: StatusWriter
    public let source: RepositorySource
    private let fetch: (String, URL) throws -> Void
    private let pusher: StatusPusher?
    private let mirror: URL?
    private var logger: Logger

    /// `fetch(url, mirrorDirectory)` brings the remote's branches into the mirror (Cairn runs
    /// it in a helper process with a deadline). With `push`, the status branch and notes are
    /// pushed to the remote after each pass.
    public init(source: RepositorySource, stateDirectory: URL, configuration: ReconcilerConfiguration, push: Bool,
                logger: Logger, fetch: @escaping (String, URL) throws -> Void) throws {
        var configuration = configuration
        if case .remote = source { configuration.remoteTracking = true }
        self.source = source
        self.fetch = fetch
        self.logger = logger
        store = try Store(directory: stateDirectory)
        switch source {
        case .local(let path):
            repository = try Repository.open(at: path)
            mirror = nil
        case .remote:
            // Created empty here; the first pass fetches into it.
            let directory = stateDirectory.appendingPathComponent("mirror.git")
            repository = try Repository.create(at: directory, bare: true)
            mirror = directory
        }
        reconciler = Reconciler(repository: repository, store: store, configuration: configuration, logger: logger)
        writer = StatusWriter(repository: repository, store: store, configuration: configuration, logger: logger)
        if push, case .remote(let url) = source {
            pusher = StatusPusher(repository: repository, url: url, configuration: configuration, logger: logger, fetch: fetch)
        } else {
            pusher = nil
        }
    }

    /// Fetches (for a remote), takes manual requests, runs one pass, writes the outbox to git
    /// and pushes. A failure to fetch throws before anything changes: the last known state stays.
    @discardableResult
    public func reconcileOnce() throws -> PassOutcome {
        if case .remote(let url) = source, let mirror {
            try fetch(url, mirror)
        }
        if try store.hasRequests() {
            for ref in try store.takeRequests() { reconciler.request(ref) }
        }
        // Entries left by a pass whose drain was interrupted go out first.
        try writer.drain()
        let outcome = try reconciler.pass()
        if outcome.ran { try writer.drain() }
        try pusher?.push()
        return outcome
    }
}
