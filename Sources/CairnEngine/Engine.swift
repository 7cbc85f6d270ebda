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
    private let logger: Logger
    private let pusher: StatusPusher?
    private let mirror: URL?
    private let verifier: CommitVerifier
    /// Where runs go, when this process may start them.
    public nonisolated let execution: Execution?
    /// Where ModelDeployments serve, when this process deploys.
    public nonisolated let deployer: (any Deployer)?
    /// What the engine and the daemon's services count.
    public nonisolated let metrics: EngineMetrics
    /// Whether the runs a previous process left unfinished have been taken back.
    private var recovered = false
    /// One wake per run that ended (the newest kept), after its object was queued: what the
    /// daemon turns into a `jobFinished` trigger and what `reconcileUntilSettled` waits for.
    public nonisolated let runEndings: AsyncStream<Void>
    private nonisolated let runEnded: AsyncStream<Void>.Continuation
    private var watchingRuns = false
    /// The last trusted commit (read from the store once), and verdicts already reached.
    private var trustedTip: ObjectID?
    private var trustLoaded = false
    private var verdicts: [ObjectID: String?] = [:]
    /// One operation at a time: a pass and a push both await (a fetch, a controller), and the
    /// actor alone would let one start while the other waits.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// With `push`, the status branch and notes (and proposal branches) are pushed to the remote
    /// after each pass; with `signer`, proposal commits are signed.
    /// `store` shares one metadata store with the executor (its ledger); by default the
    /// engine opens its own in `stateDirectory`.
    public init(source: RepositorySource, stateDirectory: URL, configuration: ReconcilerConfiguration, controllers: ControllerRegistry,
                execution: Execution? = nil, deployer: (any Deployer)? = nil, store existing: Store? = nil, trust: CommitTrust = .off,
                signer: SSHCommitSigner? = nil, push: Bool, logger: Logger, metrics: EngineMetrics = EngineMetrics(),
                now: @escaping @Sendable () -> Date = Date.init, fetch: @escaping Fetcher) throws {
        var configuration = configuration
        if case .remote = source { configuration.remoteTracking = true }
        self.source = source
        self.configuration = configuration
        self.fetch = fetch
        self.logger = logger
        verifier = CommitVerifier(trust: trust)
        pushConfigured = push
        self.execution = execution
        self.deployer = deployer
        self.metrics = metrics
        metrics.prime()
        (runEndings, runEnded) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The repository first: a path that is no repository leaves no state directory behind.
        switch source {
        case .local(let path):
            repository = try Repository.open(at: path)
            store = try existing ?? Store(directory: stateDirectory)
            mirror = nil
        case .remote:
            // Created empty here; the first pass fetches into it.
            store = try existing ?? Store(directory: stateDirectory)
            let directory = stateDirectory.appendingPathComponent("mirror.git")
            repository = try Repository.create(at: directory, bare: true)
            mirror = directory
        }
        reconciler = Reconciler(repository: repository, store: store, configuration: configuration, controllers: controllers,
                                execution: execution, deployer: deployer, logger: logger, now: now)
        let sign: CommitSigning? = signer.map { signer in { data in try signer.sign(data) } }
        writer = StatusWriter(repository: repository, store: store, configuration: configuration, logger: logger, sign: sign)
        if push, case .remote(let url) = source {
            pusher = StatusPusher(repository: repository, url: url, configuration: configuration, logger: logger, fetch: fetch,
                                  tagger: writer.tagger, rebuilt: { [writer] tip in try writer.adopt(tip: tip) })
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
        try await exclusively { try await reconcile(push: push) }
    }

    private func reconcile(push: Bool) async throws -> PassOutcome {
        if case .remote(let url) = source, let mirror {
            do {
                try await fetch(url, mirror)
            } catch {
                metrics.fetchFailed()
                throw error
            }
        }
        if try store.hasRequests() {
            for ref in try store.takeRequests() { reconciler.request(ref) }
        }
        // Entries left by a pass whose drain was interrupted go out first.
        try writer.drain()
        watchRuns()
        try await recoverRuns()
        let (commit, refusal) = try await trustedCommit()
        var outcome = try await reconciler.pass(at: commit)
        outcome.refused = refusal
        if outcome.ran || refusal != nil { try writer.drain() }
        if push { try await pushCounted() }
        return outcome
    }

    /// Before the first pass: runs a previous process left unfinished are adopted, recorded as
    /// they ended, or marked interrupted, and their objects are looked at again.
    private func recoverRuns() async throws {
        guard !recovered else { return }
        if let deployer {
            let found = try await deployer.recover()
            reconciler.recovered(deployments: found)
            for name in found { reconciler.request(ObjectRef(.modelDeployment, name)) }
        }
        guard let executor = execution?.executor else {
            recovered = true
            return
        }
        let report = try await executor.recover()
        for id in report.adopted + report.finished + report.interrupted {
            if let run = try store.run(id: id) { reconciler.request(run.object) }
        }
        if report != RecoveryReport() {
            logger.notice("took back unfinished runs", metadata: [
                "cairn.adopted": "\(report.adopted.count)", "cairn.finished": "\(report.finished.count)",
                "cairn.interrupted": "\(report.interrupted.count)"])
        }
        recovered = true
    }

    /// Listens to the executor's completions for the engine's whole life: the executor's
    /// stream has one consumer, and it is this one.
    private func watchRuns() {
        guard !watchingRuns else { return }
        watchingRuns = true
        if let deployer {
            // A deployment changed by itself (healthy, crashed, applied): looked at on the next pass.
            Task { [self] in
                for await name in deployer.changes {
                    do {
                        try store.request(ObjectRef(.modelDeployment, name))
                    } catch {
                        logger.error("could not queue a deployment that changed", metadata: ["cairn.deployment": "\(name)", "cairn.error": "\(error)"])
                    }
                    runEnded.yield()
                }
            }
        }
        guard let executor = execution?.executor else { return }
        Task { [self] in
            for await handle in executor.completions {
                queueObject(of: handle)
                runEnded.yield()
            }
        }
    }

    /// A run ended (and its executor recorded it): its object is looked at on the next pass.
    private nonisolated func queueObject(of handle: JobHandle) {
        do {
            if let run = try store.run(id: handle.runID) {
                try store.request(run.object)
                metrics.runFinished(run)
            }
        } catch {
            logger.error("could not queue the object of a finished run; the next pass that evaluates it sees the run",
                         metadata: ["cairn.run": "\(handle.runID)", "cairn.error": "\(error)"])
        }
    }

    /// What to reconcile under `--verify-commits`: the tip when every commit that must be
    /// signed is signed by a trusted key; otherwise the last trusted commit, with the refusal
    /// (recorded once per refused tip, with a note on it saying why). nil: the tip, unchecked.
    private func trustedCommit() async throws -> (ObjectID?, (commit: ObjectID, reason: String)?) {
        let trust = verifier.trust
        guard trust.mode != .off else { return (nil, nil) }
        if !trustLoaded {
            trustedTip = try store.trustedCommit(keys: verifier.fingerprint()).flatMap(ObjectID.init(hex:))
            trustLoaded = true
        }
        let tip = try reconciler.trackedTip()
        if tip == trustedTip { return (tip, nil) }
        var problem: String?
        // `all` checks every commit since the last trusted one; with none yet (the first
        // start), history from before Cairn watched is not judged: the tip alone decides.
        let candidates = trust.mode == .head || trustedTip == nil ? [tip]
            : try repository.commits(from: tip, hiding: trustedTip, limit: CommitTrust.maximumCommits + 1)
        if candidates.count > CommitTrust.maximumCommits {
            problem = "more than \(CommitTrust.maximumCommits) commits since the last trusted one would need checking; "
                + "use --verify-commits head, or start from a trusted commit"
        } else {
            for candidate in candidates.reversed() {
                if verdicts[candidate] == nil {
                    if verdicts.count > 50_000 { verdicts = [:] }
                    verdicts[candidate] = .some(try await verifier.problem(with: candidate, in: repository))
                }
                if let found = verdicts[candidate] ?? nil {
                    problem = found
                    break
                }
            }
        }
        guard let problem else {
            trustedTip = tip
            try store.recordTrusted(tip.hex, keys: try verifier.fingerprint())
            return (tip, nil)
        }
        if try store.refusal()?.commit != tip.hex {
            let fallback = trustedTip.map { "Cairn stays on \($0.short), the last trusted commit, until a commit signed by a trusted key is pushed." }
                ?? "Nothing is reconciled until a commit signed by a trusted key is pushed."
            let note = OutboxEntry(kind: .note, ref: nil, reason: "Refused",
                                   body: "Cairn did not reconcile this commit: \(problem).\n\(fallback)\n",
                                   sourceCommit: tip.hex, createdAt: Date())
            try store.recordRefusal(of: tip.hex, reason: problem, note: note)
            logger.warning("refused an untrusted commit", metadata: ["cairn.commit": "\(tip.short)", "cairn.reason": "\(problem)"])
        }
        guard let trustedTip else {
            try writer.drain()
            throw NoTrustedCommit("\(problem); there is no earlier trusted commit, so nothing is reconciled")
        }
        return (trustedTip, (tip, problem))
    }

    /// Passes until nothing is left to do: after each pass, waits while runs it started are
    /// under way (or a retry is due) and passes again when one ends. Returns the last pass's
    /// outcome and whether everything settled before `timeout`. `progress` hears, after each
    /// pass, the runs still under way.
    public func reconcileUntilSettled(timeout: Duration?, progress: @Sendable (PassOutcome, [RunRecord]) -> Void = { _, _ in })
        async throws -> (outcome: PassOutcome, settled: Bool) {
        let executor = execution?.executor
        guard executor != nil || deployer != nil else { return (try await reconcileOnce(), true) }
        let deadline = timeout.map { Date().addingTimeInterval($0.seconds) }
        var iterator = runEndings.makeAsyncIterator()
        // What changed over all the passes, not only the last one.
        var changed: [ObjectRef] = []
        var seen: Set<ObjectRef> = []
        while true {
            let mark = try store.runMark()
            var outcome = try await reconcileOnce()
            for ref in outcome.changed where seen.insert(ref).inserted { changed.append(ref) }
            outcome.changed = changed
            let inFlight = await executor?.inFlight() ?? []
            progress(outcome, inFlight.compactMap { try? store.run(id: $0) })
            let retry = outcome.retryDue
            // A deployment switching versions, or applying, ends with a change that wakes this loop.
            let deploying = await deployer?.inFlight() ?? []
            if inFlight.isEmpty, retry == nil, deploying.isEmpty {
                // A run this pass started and that is over already has not been looked at: its
                // end reaches the engine on another task, possibly after this check, so its
                // object is asked for here and one more pass sees it. (A run of an earlier pass
                // was in flight at that pass's check, and its end woke this loop after its
                // object was queued.)
                let ended = try store.runs(since: mark).filter(\.state.isFinal)
                if ended.isEmpty { return (outcome, true) }
                for run in ended { try store.request(run.object) }
                if let deadline, Date() >= deadline { return (outcome, false) }
                continue
            }
            if let deadline, Date() >= deadline { return (outcome, false) }
            // Wake on a run's end, a retry that falls due, or the deadline.
            let alarm = [retry, deadline].compactMap { $0 }.min()
            let timer = alarm.map { at in
                Task { [runEnded] in
                    guard (try? await Task.sleep(for: .milliseconds(Int64(max(0, at.timeIntervalSinceNow) * 1000) + 5))) != nil else { return }
                    runEnded.yield()
                }
            }
            _ = await iterator.next()
            timer?.cancel()
        }
    }

    /// Pushes the status branch and notes (rebuilding on the remote's tip when it moved). Never
    /// while a pass runs: the two share the mirror and the status ref.
    public func pushStatus() async throws {
        try await exclusively { try await pushCounted() }
    }

    private func pushCounted() async throws {
        do {
            try await pusher?.push()
        } catch {
            metrics.pushFailed()
            throw error
        }
    }

    /// Runs `body` when no other pass or push is under way, in arrival order.
    private func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        if busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
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
