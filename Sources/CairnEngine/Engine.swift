public import Foundation
public import CairnCore
public import CairnGit
public import CairnManifests
public import CairnStore
public import Logging

/// Where the tracked repository is.
public enum RepositorySource: Sendable {
    /// A repository on this machine, read in place; the status branch and notes are written into it.
    case local(URL)
    /// A URL, fetched into a bare mirror under the state directory before each pass.
    case remote(String)
}

/// Fetches a remote's branches into a mirror directory (Cairn runs it in a helper process
/// with a deadline).
public typealias Fetcher = @Sendable (_ url: String, _ mirror: URL) async throws -> Void

/// The composition of one tracked repository: fetch, pass, drain, push. An actor, so that one
/// pass runs at a time and the repository's libgit2 handle never crosses threads at once.
public actor Engine {
    public nonisolated let store: Store
    public nonisolated let source: RepositorySource
    public nonisolated let configuration: ReconcilerConfiguration
    private let repository: Repository
    private let reconciler: Reconciler
    private let writer: StatusWriter
    private let fetch: Fetcher
    private let pusher: StatusPusher?
    private let mirror: URL?

    /// With `push`, the status branch and notes are pushed to the remote after each pass.
    public init(source: RepositorySource, stateDirectory: URL, configuration: ReconcilerConfiguration, controllers: ControllerRegistry,
                executor: (any JobExecutor)? = nil, push: Bool, logger: Logger, now: @escaping @Sendable () -> Date = Date.init,
                fetch: @escaping Fetcher) throws {
        var configuration = configuration
        if case .remote = source { configuration.remoteTracking = true }
        self.source = source
        self.configuration = configuration
        self.fetch = fetch
        pushConfigured = push
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
        reconciler = Reconciler(repository: repository, store: store, configuration: configuration, controllers: controllers,
                                executor: executor, logger: logger, now: now)
        writer = StatusWriter(repository: repository, store: store, configuration: configuration, logger: logger)
        if push, case .remote(let url) = source {
            pusher = StatusPusher(repository: repository, url: url, configuration: configuration, logger: logger, fetch: fetch,
                                  rebuilt: { [writer] tip in try writer.adopt(tip: tip) })
        } else {
            pusher = nil
        }
    }

    /// Whether status is pushed to a remote.
    public nonisolated var pushes: Bool { if case .remote = source { pushConfigured } else { false } }
    private nonisolated let pushConfigured: Bool

    /// Fetches (for a remote), takes manual requests, runs one pass, writes the outbox to git
    /// and, with `push`, pushes. A failure to fetch throws before anything changes: the last
    /// known state stays. The daemon passes `push: false` and leaves pushing to its
    /// `StatusPushService`, so a remote that refuses pushes does not fail passes.
    @discardableResult
    public func reconcileOnce(push: Bool = true) async throws -> PassOutcome {
        if case .remote(let url) = source, let mirror {
            try await fetch(url, mirror)
        }
        if try store.hasRequests() {
            for ref in try store.takeRequests() { reconciler.request(ref) }
        }
        // Entries left by a pass whose drain was interrupted go out first.
        try writer.drain()
        let outcome = try await reconciler.pass()
        if outcome.ran { try writer.drain() }
        if push { try await pusher?.push() }
        return outcome
    }

    /// Pushes the status branch and notes (rebuilding on the remote's tip when it moved).
    /// Runs on this actor, so it never interleaves with a drain of the outbox.
    public func pushStatus() async throws {
        try await pusher?.push()
    }

    /// One pass without the git side, for measuring the two apart (`drain` writes the rest).
    public func passWithoutDrain() async throws -> PassOutcome {
        try await reconciler.pass()
    }

    /// Writes the outbox to git; returns how many status commits it made.
    @discardableResult
    public func drain() throws -> Int {
        try writer.drain()
    }

    /// The manifests the last pass loaded.
    public var manifestSet: ManifestSet? { reconciler.manifestSet }
}
