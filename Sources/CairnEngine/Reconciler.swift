public import Foundation
public import CairnCore
public import CairnGit
public import CairnManifests
public import CairnStore
public import Logging

/// Where the desired state lives and where the observed state goes.
public struct ReconcilerConfiguration: Sendable {
    /// The branch whose tip is reconciled.
    public var branch: String
    /// The directory of manifests inside the repository; empty for all of it.
    public var path: String
    public var statusBranch: String
    public var notesRef: String
    public var author: Signature
    /// Read the branch as fetched into a mirror (`refs/remotes/origin/<branch>`), not as a local branch.
    public var remoteTracking: Bool
    /// What reading one commit's tree may cost (depth, entries).
    public var treeLimits: TreeLimits = .standard
    /// Also write the registry as annotated tags in GTO's grammar (`--registry-tags`).
    public var registryTags = false

    public init(branch: String = "main", path: String = "", statusBranch: String = "cairn/status",
                notesRef: String = "refs/notes/cairn", author: Signature = Signature(name: "Cairn", email: "cairn@localhost"),
                remoteTracking: Bool = false) {
        self.remoteTracking = remoteTracking
        self.branch = branch
        self.path = path
        self.statusBranch = statusBranch
        self.notesRef = notesRef
        self.author = author
    }

    public var statusRef: String { "refs/heads/\(statusBranch)" }
    public var trackedRef: String { remoteTracking ? "refs/remotes/origin/\(branch)" : "refs/heads/\(branch)" }
}

/// What one pass did, and where every object stands after it.
public struct PassOutcome: Sendable {
    public var commit: ObjectID
    /// False when the tip was already reconciled and nothing was due: the pass cost one ref read.
    public var ran: Bool
    public var changed: [ObjectRef]
    public var objects: Int
    public var ready: Int
    /// Objects that cannot make progress until their manifest (or git) changes.
    public var stalled: [ObjectRef]
    /// Objects on their way: reconciling, waiting for a dependency, suspended.
    public var waiting: [ObjectRef]
    /// Objects whose kind's work Cairn cannot do yet (Ready=Unknown, NotImplemented).
    public var notImplemented: Int
    /// When the engine should look again although nothing else happens (a requeue or backoff).
    public var nextDue: Date?
    /// The earliest time an object still on its way (Reconciling: a retry, a backoff, a run
    /// to look at again) is due; what `reconcile --once` waits for besides runs.
    public var retryDue: Date?
    /// The tip Cairn refused to reconcile (its signatures are not trusted), and why; `commit`
    /// is then the last trusted commit.
    public var refused: (commit: ObjectID, reason: String)?
    /// The objects this pass deleted (their manifests were removed).
    public var deleted: [ObjectRef] = []
    /// Manifest files that could not be read, each with its first problem.
    public var unreadableFiles: [String]

    /// Whether nothing is stalled, unreadable or refused: what `reconcile --once` exits 0 on.
    public var healthy: Bool { stalled.isEmpty && refused == nil && unreadableFiles.isEmpty }
}

/// The reconcile engine for one repository. Level-triggered: each pass compares the manifests
/// at the branch tip with the store, whatever event caused it. A pass is four steps: track
/// the manifests, select the work, evaluate the objects, record the pass.
///
/// Owned by one `Engine` actor, which runs one pass at a time; it holds the repository's
/// libgit2 handle and is never shared.
public final class Reconciler {
    public let repository: Repository
    public let store: Store
    public let configuration: ReconcilerConfiguration
    private let controllers: ControllerRegistry
    private let execution: Execution?
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// The commit `lastSet` describes; nil forces a full load.
    private var filesCommit: ObjectID?
    private var lastSet = ManifestSet(files: [])
    /// Objects someone asked to reconcile now (`cairn reconcile Kind/name`).
    private var requested: Set<ObjectRef> = []
    /// What controllers proposed in the pass under way, by object (written with their status).
    private var proposals: [ObjectRef: Proposal] = [:]
    /// Objects a controller asked to be looked at in the next pass (`Outcome.wake`).
    private var wakes: Set<ObjectRef> = []
    /// Woken objects not evaluated since: `reconcile --once` and the demo wait for them.
    private var woken: Set<ObjectRef> = []
    /// The store's object statuses and last reconciled commit, read once and kept in step.
    private var statuses: [ObjectRef: ObjectStatus] = [:]
    private var tally = StatusTally([])
    private var loaded = false
    /// Evaluate every object on the next pass, even at an unchanged tip.
    private var reevaluateAll = false
    /// When objects in backoff or waiting are due again.
    private var dueTimes: [ObjectRef: Date] = [:]
    private var lastReconciled: ObjectID?
    private let blobHashes = BlobHashes()
    private var sortedLists: (stalled: [ObjectRef], waiting: [ObjectRef])?
    /// Last good specs read from the store during this pass (objects whose manifest is broken).
    private var lastGood: [ObjectRef: Spec?] = [:]
    /// The manifest files the last pass could not read.
    private var unreadable: [String] = []
    /// Where ModelDeployments serve, when this process deploys.
    private let deployer: (any Deployer)?

    public init(repository: Repository, store: Store, configuration: ReconcilerConfiguration, controllers: ControllerRegistry,
                execution: Execution? = nil, deployer: (any Deployer)? = nil, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.repository = repository
        self.store = store
        self.configuration = configuration
        self.controllers = controllers
        self.execution = execution
        self.deployer = deployer
        self.logger = logger
        self.now = now
    }

    /// The manifests of the last commit a pass loaded, with every finding about them.
    public var manifestSet: ManifestSet? { filesCommit == nil ? nil : lastSet }

    /// Asks for `ref` to be reconciled on the next pass even if nothing changed.
    public func request(_ ref: ObjectRef) {
        requested.insert(ref)
    }

    /// When the next object is due again, if any is.
    public var nextDue: Date? { dueTimes.values.min() }

    /// When the next object that is Reconciling is due again because its controller asked
    /// (a stage's retry), not a schedule and not the engine's backoff after an error: an
    /// error that persists must not keep `reconcile --once` waiting for ever.
    private var retryDue: Date? {
        dueTimes.filter { due in
            if woken.contains(due.key) { return true }
            guard let status = statuses[due.key] else { return false }
            return status.condition("Reconciling")?.status == .true && status.failures == 0
        }.values.min()
    }

    /// One pass over the branch tip. Writes the store (and its outbox) in one transaction; the
    /// caller drains the outbox into git with a `StatusWriter`. A pass that throws leaves
    /// nothing half-done: the next one reloads the commit in full.
    /// `commit` reconciles that commit instead of the branch tip (the last trusted one, when
    /// the tip is not).
    public func pass(at commit: ObjectID? = nil) async throws -> PassOutcome {
        let tip = try commit ?? trackedTip()
        let time = now()
        try loadStoredState()
        lastGood = [:]
        // The common case: nothing new, nothing due. One ref read, nothing else.
        if tip == lastReconciled, requested.isEmpty, !reevaluateAll, (nextDue ?? .distantFuture) > time {
            return outcome(tip, ran: false, changed: [])
        }
        do {
            let tracked = try trackManifests(at: tip)
            let work = selectWork(tracked, tip: tip, time: time)
            proposals = [:]
            wakes = []
            let evaluation = try await evaluateObjects(work, tracked: tracked, commit: tip, time: time)
            let outcome = try recordPass(evaluation, tracked: tracked, commit: tip, time: time)
            await prune(deleted: outcome.deleted.filter { $0.kind == .modelDeployment }, in: tracked.set)
            if tracked.fullLoad { Self.returnFreedMemory() }
            return outcome
        } catch {
            filesCommit = nil
            throw error
        }
    }

    /// Takes down what deleted deployments served (prune), once git records them deleted, and
    /// on the first pass what a previous daemon left serving for deployments that are gone.
    /// A failure is logged and tried again at each later pass, until it works or the
    /// deployment's manifest comes back.
    private func prune(deleted: [ObjectRef], in set: ManifestSet) async {
        guard let deployer else { return }
        var names = Set(deleted.map(\.name)).union(unpruned.filter { set.manifests[ObjectRef(.modelDeployment, $0)] == nil })
        unpruned = []
        if let recovered = recoveredDeployments {
            names.formUnion(recovered.filter { set.manifests[ObjectRef(.modelDeployment, $0)] == nil && set.broken[ObjectRef(.modelDeployment, $0)] == nil })
            recoveredDeployments = nil
        }
        for name in names.sorted() {
            do {
                try await deployer.remove(deployment: name)
                logger.info("Pruned", metadata: ["cairn.object": "\(ObjectRef(.modelDeployment, name))"])
            } catch {
                unpruned.insert(name)
                logger.error("could not take a deleted deployment down; trying again at the next pass", metadata: [
                    "cairn.object": "\(ObjectRef(.modelDeployment, name))", "cairn.error": "\(error)"])
            }
        }
    }

    /// The deployments a previous daemon left (from `Deployer.recover`): those whose manifest
    /// is gone are taken down after the next pass.
    public func recovered(deployments: [String]) {
        recoveredDeployments = (recoveredDeployments ?? []) + deployments
    }
    private var recoveredDeployments: [String]?
    /// Deleted deployments whose teardown failed, to try again.
    private var unpruned: Set<String> = []

    /// A full load parses every file on every core and frees the parse trees again; glibc
    /// keeps what was freed in each thread's arena. Handing it back once after a full load
    /// keeps an idle daemon's resident memory to what it holds.
    private static func returnFreedMemory() {
        // malloc.h is not part of Swift's Glibc module; look the function up instead.
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }

    private var readSettings: String {
        "path=\(configuration.path);maxTreeDepth=\(configuration.treeLimits.maxDepth);maxTreeEntries=\(configuration.treeLimits.maxEntries)"
    }

    /// The tip of the tracked branch.
    public func trackedTip() throws -> ObjectID {
        guard let tip = try repository.referenceTarget(configuration.trackedRef) else {
            throw TrackedBranchMissing(branch: configuration.branch, existing: try existingBranches())
        }
        return tip
    }

    /// The branches the tracked branch could have been, for the error that says it is missing.
    private func existingBranches() throws -> [String] {
        let prefix = configuration.remoteTracking ? "refs/remotes/origin/" : "refs/heads/"
        return try repository.references(withPrefix: prefix).keys.map { String($0.dropFirst(prefix.count)) }
            .filter { $0 != configuration.statusBranch && $0 != "HEAD" }.sorted()
    }

    private func loadStoredState() throws {
        guard !loaded else { return }
        let stored = try store.objects()
        statuses = Dictionary(uniqueKeysWithValues: stored.map { ($0.ref, $0) })
        tally = StatusTally(stored)
        dueTimes = Dictionary(uniqueKeysWithValues: stored.compactMap { status in status.nextAttempt.map { (status.ref, $0) } })
        // Work under way when the last process stopped is looked at on the first pass: that
        // process may have died after a run's end (whose request it had taken) and before the
        // pass that would have recorded what the run produced.
        // An object backing off after errors (failures > 0) keeps its backoff.
        for status in stored where status.condition("Reconciling")?.status == .true && status.failures == 0 {
            dueTimes[status.ref] = .distantPast
        }
        lastReconciled = try store.lastReconciledCommit().flatMap(ObjectID.init(hex:))
        unreadable = try store.invalidFiles()
        // Statuses written before generations were content keys were written by a Cairn whose
        // controllers said Ready without doing the work: evaluate everything once, now.
        reevaluateAll = stored.contains { !$0.generation.hasPrefix("sha256:") && !$0.generation.hasPrefix("invalid:") }
        // Read with other settings (another --path, other tree bounds): what was read before
        // says nothing about what these read, even at the same commit.
        if try store.meta("readSettings") != readSettings { reevaluateAll = true }
        loaded = true
    }

    // MARK: Step 1: track the manifests

    /// What the tip holds, and what changed since the commit last loaded.
    struct TrackedManifests {
        var set: ManifestSet
        /// Objects the change touches (every object after a full load).
        var touched: Set<ObjectRef>
        var fullLoad: Bool
        /// Whether the previously reconciled commit is not an ancestor of the tip.
        var rewritten: Bool
    }

    /// Diffs the tip against the commit loaded last and re-parses only the changed files; with
    /// nothing loaded (the first pass, or after a failed one), reads every manifest.
    private func trackManifests(at tip: ObjectID) throws -> TrackedManifests {
        if !reevaluateAll, let loadedCommit = filesCommit, repository.contains(loadedCommit) {
            filesCommit = nil  // until this step finishes, the caches are not a commit's
            var updates: [(path: String, file: ParsedFile?)] = []
            let diff = try repository.boundedDiff(from: loadedCommit, to: tip, under: configuration.path, limits: configuration.treeLimits)
            // A change too large to diff within the limits: read the commit whole, which
            // reads what the limits allow and reports each refused directory by its path.
            guard diff.refused.isEmpty else { return try loadAll(at: tip) }
            for change in diff.changes {
                for path in Set([change.path, change.oldPath]) where lastSet.contains(file: path) {
                    updates.append((path, nil))
                }
                if change.kind != .deleted, let blob = change.newBlob, ManifestLoader.isManifestPath(change.path) {
                    // The diff carries no file mode; a symlink must be reported, never parsed.
                    let symlink = try repository.listFiles(in: tip, under: change.path).first?.kind == .symlink
                    let parsed = keepingUnreadObjects(try ManifestLoader.parse(from: repository, path: change.path, blob: blob, symlink: symlink))
                    updates.append((change.path, parsed))
                }
            }
            let touched = lastSet.update(updates)
            filesCommit = tip
            return TrackedManifests(set: lastSet, touched: touched, fullLoad: false,
                                    rewritten: !repository.isAncestor(loadedCommit, of: tip))
        }
        return try loadAll(at: tip)
    }

    private func loadAll(at tip: ObjectID) throws -> TrackedManifests {
        filesCommit = nil
        let parsed = try ManifestLoader.parseAll(from: repository, commit: tip, path: configuration.path, limits: configuration.treeLimits)
        lastSet = ManifestSet(files: parsed.map { keepingUnreadObjects($0.parsed) }.sorted { $0.path < $1.path })
        filesCommit = tip
        let rewritten = lastReconciled.map { !repository.contains($0) || !repository.isAncestor($0, of: tip) } ?? false
        return TrackedManifests(set: lastSet, touched: Set(lastSet.manifests.keys).union(lastSet.broken.keys).union(statuses.keys),
                                fullLoad: true, rewritten: rewritten)
    }

    // MARK: Step 2: select the work

    /// The objects to evaluate, in order: what the change touched, what is due or was asked
    /// for, and everything that depends on those; broken objects first (their status depends
    /// on nothing), then the valid ones in dependency order.
    private func selectWork(_ tracked: TrackedManifests, tip: ObjectID, time: Date) -> [ObjectRef] {
        let set = tracked.set
        var start = tracked.touched.union(requested)
        // A run's key covers files anywhere in the repository (code, data, lockfiles), not
        // only manifests: at a new commit every object that runs things computes its keys
        // again, which costs hashing what changed (blob hashes are cached) and runs nothing
        // whose inputs are the same.
        if tip != lastReconciled {
            start.formUnion(set.manifests.keys.lazy.filter { Self.keyedByRepositoryFiles.contains($0.kind) })
            // strictOrder counts commits: a promotion refused because its version has held the
            // stage before only since this commit is allowed at the next, whatever that one
            // touches. A stalled Model is judged again (a few registry reads) at each new commit.
            start.formUnion(statuses.lazy.filter { $0.key.kind == .model && $0.value.isStalled }.map(\.key))
        }
        // A schedule whose file broke or went has no edges left: the Model its last good spec
        // trained is touched too, so it is held back, or released.
        for ref in tracked.touched where ref.kind == .trainingSchedule {
            if let model = trainedModel(by: ref) { start.insert(ObjectRef(.model, model)) }
        }
        start.formUnion(dueTimes.filter { $0.value <= time }.keys)
        let evaluate = tracked.fullLoad ? start : set.graph.reachable(from: start)
        return evaluate.filter { set.manifests[$0] == nil && set.broken[$0] != nil }.sorted()
            + set.graph.order(of: evaluate.filter { set.manifests[$0] != nil })
    }

    /// The kinds whose run keys (or, for a deployment, the code its commands run) read
    /// repository files beyond their manifest.
    static let keyedByRepositoryFiles: Set<Kind> = [.featurePipeline, .trainingSchedule, .modelDeployment]

    // MARK: Step 3: evaluate the objects

    struct Evaluation {
        var results: [ObjectRef: ObjectStatus] = [:]
        var changes = PassChanges()
    }

    private func evaluateObjects(_ work: [ObjectRef], tracked: TrackedManifests, commit: ObjectID, time: Date) async throws -> Evaluation {
        var evaluation = Evaluation()
        var logger = self.logger
        logger[metadataKey: "cairn.commit"] = "\(commit.short)"
        let files = GitSourceFiles(repository: repository, commit: commit, hashes: blobHashes)
        let author = try repository.commit(commit).author
        let sourceAuthor = CommitAuthor(name: "\(author.name) <\(author.email)>", time: author.time)
        FaultPoint.pause("evaluate")
        // Versions registered by objects earlier in this pass, by model: later ones number after them.
        var registered: [String: Int] = [:]
        for ref in work {
            var objectLogger = logger
            objectLogger[metadataKey: "cairn.object"] = "\(ref)"
            let (status, effects) = await evaluate(ref, in: tracked.set, results: evaluation.results, files: files,
                                                   commit: commit, author: sourceAuthor, time: time, registered: registered,
                                                   logger: objectLogger)
            evaluation.results[ref] = status
            evaluation.changes.effects += effects
            let versions = effects.compactMap { effect -> ModelVersion? in
                if case .registerVersion(let version) = effect { return version }
                return nil
            }
            for version in versions { registered[version.model] = max(registered[version.model] ?? 0, version.version) }
            let stageChanges = effects.compactMap { effect -> StageChange? in
                if case .changeStage(let change) = effect { return change }
                return nil
            }
            let previous = statuses[ref]
            if let manifest = tracked.set.manifests[ref], tracked.set.broken[ref] == nil, status.generation != previous?.generation {
                evaluation.changes.accepted.append((ref, manifest.spec))
            }
            // A registered version is always written, with the status that tells of it (and a proposal).
            guard status.differsInSubstance(from: previous) || !versions.isEmpty || !stageChanges.isEmpty || proposals[ref] != nil else {
                if status.failures != previous?.failures || status.nextAttempt != previous?.nextAttempt { evaluation.changes.upserts.append(status) }
                continue
            }
            objectLogger.info("\(status.reason)", metadata: ["cairn.ready": "\(status.ready)"])
            evaluation.changes.upserts.append(status)
            evaluation.changes.events.append(Event(ref: ref, time: time, reason: status.reason, message: status.primaryMessage,
                                                   sourceCommit: commit.hex))
            var entry = OutboxEntry(kind: .status, ref: ref, reason: status.reason, body: StatusDocument.render(status, statusBranch: configuration.statusBranch),
                                    detail: status.primaryMessage, sourceCommit: commit.hex, createdAt: time, runs: status.runs)
            if !versions.isEmpty {
                entry.files = Dictionary(versions.map { (VersionDocument.path(of: $0), VersionDocument.render($0, statusBranch: configuration.statusBranch)) },
                                         uniquingKeysWith: { first, _ in first })
                entry.versions = versions.map(\.name)
            }
            if !stageChanges.isEmpty {
                entry.stageChanges = stageChanges
                entry.detail = stageChanges.map { "\($0.summary) (commit \($0.sourceCommit.prefix(10)) by \($0.author))" }
                    .joined(separator: "\n") + "\n\n" + entry.detail
            }
            entry.proposal = proposals[ref]
            evaluation.changes.outbox.append(entry)
        }
        return evaluation
    }

    /// One object: stalled when its manifest is broken, paused when suspended, waiting while
    /// something it depends on is not accepted, and otherwise whatever its controller finds.
    private func evaluate(_ ref: ObjectRef, in set: ManifestSet, results: [ObjectRef: ObjectStatus], files: GitSourceFiles,
                          commit: ObjectID, author: CommitAuthor, time: Date, registered: [String: Int],
                          logger: Logger) async -> (ObjectStatus, [StoreEffect]) {
        let previous = statuses[ref]
        var builder = StatusBuilder(ref: ref, previous: previous, commit: commit.hex, time: time)
        if let problems = set.broken[ref] {
            let first = problems.first { $0.severity == .error } ?? problems[0]
            builder.manifestPath = first.location.file
            // The last good spec's generation stays: fixing the file back changes nothing it manages.
 let lastGood = previous?.generation.hasPrefix("sha256:") == true ? previous?.generation : nil
            builder.generation = lastGood ?? "invalid:" + ((try? ContentKey.of(problems.map(\.description), kind: "diagnostics"))?.hex.prefix(12) ?? "")
            return (builder.stalled(reason: ConditionReason.invalidManifest, message: "\(first.location): \(first.message)"
                                    + (problems.count > 1 ? " (and \(problems.count - 1) more; run cairn validate)" : "")), [])
        }
        guard let manifest = set.manifests[ref] else { return (builder.stalled(reason: "Missing", message: "no manifest"), []) }
        builder.manifestPath = manifest.location.file
        do {
            builder.generation = try Self.generation(of: manifest)
        } catch {
            return (builder.stalled(reason: "Unkeyable", message: "the spec cannot be keyed (\(error)); please report this, it is a bug in Cairn"), [])
        }
        if manifest.spec.suspended {
            return (builder.notReady(reason: ConditionReason.suspended,
                                     message: "spec.suspend is true; Cairn leaves this object as it is", reconciling: false), [])
        }
        var dependencies: [ObjectRef: ObjectStatus] = [:]
        var relatedManifests: [ObjectRef: Manifest] = [:]
        var notAccepted: [String] = []
        for dependency in self.dependencies(of: manifest, in: set).sorted() {
            let status = results[dependency] ?? statuses[dependency]
            if let status { dependencies[dependency] = status }
            relatedManifests[dependency] = set.manifests[dependency]
            if set.broken[dependency] != nil || set.manifests[dependency] == nil || status?.isStalled == true {
                notAccepted.append("\(dependency) (\(status?.reason ?? "not valid"))")
            }
        }
        if !notAccepted.isEmpty {
            return (builder.notReady(reason: ConditionReason.dependencyNotAccepted,
                                     message: "waiting for " + notAccepted.joined(separator: ", ") + " to be fixed", reconciling: true), [])
        }
        var context = ReconcileContext(object: ref, sourceCommit: commit.hex, files: files, dependencies: dependencies,
                                       previous: previous, runs: store, versions: PassVersions(store: store, registered: registered),
                                       memory: store, relatedManifests: relatedManifests, execution: execution, now: time, logger: logger)
        context.sourceAuthor = author
        context.deployer = deployer
        let stored = statuses
        context.manifest = { set.broken[$0] == nil ? set.manifests[$0] : nil }
        context.status = { results[$0] ?? stored[$0] }
        do {
            let outcome = try await controllers.controller(for: ref.kind).reconcile(manifest, in: context)
            if let proposal = outcome.proposal { proposals[ref] = proposal }
            wakes.formUnion(outcome.wake)
            return (builder.status(for: outcome), outcome.effects)
        } catch let error as ReconcileError where error.disposition == .terminal {
            return (builder.stalled(reason: error.reason, message: error.message), [])
        } catch {
            let failures = (previous?.failures ?? 0) + 1
            let delay = Backoff().delay(afterFailures: failures)
            let (reason, message) = (error as? ReconcileError).map { ($0.reason, $0.message) } ?? ("ReconcileFailed", "\(error)")
            logger.warning("\(reason)", metadata: ["cairn.error": "\(message)", "cairn.retry": "\(String(format: "%.1f", delay))s"])
            return (builder.retrying(reason: reason, message: message, failures: failures, after: delay), [])
        }
    }

    /// What an object depends on: the objects the graph says it depends on, plus the broken
    /// objects it names, and, for a Model, the broken TrainingSchedules whose last valid spec
    /// trained it. Per object: a broken schedule of another model is not a dependency.
    private func dependencies(of manifest: Manifest, in set: ManifestSet) -> Set<ObjectRef> {
        var result = set.graph.dependencies[manifest.ref] ?? []
        let named: [ObjectRef]
        switch manifest.spec {
        case .featurePipeline: named = []
        case .trainingSchedule(let spec): named = spec.features.map { [ObjectRef(.featurePipeline, $0)] } ?? []
        case .model:
            named = set.broken.keys.filter { $0.kind == .trainingSchedule && trainedModel(by: $0) == manifest.ref.name }
        case .modelDeployment(let spec): named = [ObjectRef(.model, spec.model)]
        case .monitor(let spec): named = [ObjectRef(.modelDeployment, spec.deployment)]
        }
        result.formUnion(named.filter { set.broken[$0] != nil && set.manifests[$0] == nil })
        return result
    }

    /// The model a TrainingSchedule trains, by its last good spec when its manifest is broken.
    private func trainedModel(by schedule: ObjectRef) -> String? {
        if case .trainingSchedule(let spec)? = lastGood(of: schedule) { return spec.model }
        return nil
    }

    private func lastGood(of ref: ObjectRef) -> Spec? {
        if let known = lastGood[ref] { return known }
        let spec = try? store.lastGoodSpec(of: ref)
        lastGood[ref] = .some(spec)
        return spec
    }

    /// A file that cannot be read at all (not YAML, a tab, too deep) names none of its objects,
    /// yet they are not gone: each object Cairn last saw in that file gets a finding of its own,
    /// so it stalls (InvalidManifest) with its last good spec instead of being deleted.
    private func keepingUnreadObjects(_ file: ParsedFile) -> ParsedFile {
        guard let problem = file.failures.lazy.filter({ $0.ref == nil }).flatMap(\.diagnostics).first(where: { $0.severity == .error })
        else { return file }
        let defined = file.refs
        var kept = file
        for status in statuses.values where status.manifestPath == file.path && !defined.contains(status.ref) {
            let diagnostic = Diagnostic(at: problem.location, object: status.ref.description,
                                        "the file could not be read (\(problem.message)), so \(status.ref) keeps its last good spec",
                                        hint: problem.hint ?? "fix the file; nothing is deleted while it cannot be read")
            kept.failures.append(ManifestFailure(ref: status.ref, location: problem.location, diagnostics: [diagnostic]))
        }
        return kept
    }

    /// The spec's content key: SHA-256 over its canonical encoding (Docs/content-keys.md).
    public static func generation(of manifest: Manifest) throws -> String {
        // Every valid spec has a key (the checker refuses numbers a double cannot hold).
        try ContentKey.generation(of: manifest.spec).description
    }

    // MARK: Step 4: record the pass

    /// Deletes what the commit no longer defines, writes the note, applies everything to the
    /// store in one transaction, and only then updates what the reconciler keeps in memory.
    private func recordPass(_ evaluation: Evaluation, tracked: TrackedManifests, commit: ObjectID, time: Date) throws -> PassOutcome {
        var evaluation = evaluation
        let set = tracked.set
        // Gone: only touched objects can have gone (after a full load, every stored one is touched).
        var gone = tracked.touched.filter { statuses[$0] != nil && set.manifests[$0] == nil && set.broken[$0] == nil }
        // Where part of the tree could not be read within its bounds, a missing object may be
        // one that was not read: nothing is deleted, the missing objects stall as they were.
        if set.hasRefusedDirectories {
            for ref in gone.sorted() { keepUnread(ref, commit: commit, time: time, into: &evaluation) }
            gone = []
        }
        var changes = evaluation.changes
        for ref in gone.sorted() {
            logger.info("Deleted", metadata: ["cairn.object": "\(ref)", "cairn.commit": "\(commit.short)"])
            changes.deletions.append(ref)
            changes.events.append(Event(ref: ref, time: time, reason: "Deleted", message: "its manifest was removed", sourceCommit: commit.hex))
            changes.outbox.append(OutboxEntry(kind: .removal, ref: ref, reason: "Deleted", body: "",
                                              detail: "its manifest was removed from the tracked branch", sourceCommit: commit.hex, createdAt: time))
        }
        if tracked.rewritten {
            logger.warning("HistoryRewritten", metadata: ["cairn.previous": "\(lastReconciled?.short ?? "?")", "cairn.commit": "\(commit.short)"])
        }
        var tally = self.tally
        for (ref, status) in evaluation.results { tally.replace(statuses[ref], with: status) }
        for ref in gone { tally.replace(statuses[ref], with: nil) }
        if tracked.fullLoad, try store.meta("readSettings") != readSettings { changes.readSettings = readSettings }
        let unreadableNow = set.unreadableFiles
        if unreadableNow != unreadable { changes.invalidFiles = unreadableNow }
        if commit != lastReconciled || !changes.outbox.isEmpty {
            changes.reconciledCommit = commit.hex
            changes.summary = Self.summary(tally, changes: changes, unreadable: unreadableNow, rewritten: tracked.rewritten,
                                           previous: lastReconciled)
            // The note's detail is the text Cairn wrote on this commit before, which the
            // writer replaces inside whatever else the note holds (people write notes too).
            changes.outbox.append(OutboxEntry(kind: .note, ref: nil, reason: "Reconciled", body: changes.summary ?? "",
                                              detail: try store.noteText(on: commit.hex) ?? "", sourceCommit: commit.hex, createdAt: time))
        }
        FaultPoint.hit("before-store-apply")
        // A training's run has ended (its executor recorded it) and its version is not registered yet.
        if changes.effects.contains(where: { if case .registerVersion = $0 { true } else { false } }) { FaultPoint.hit("before-registration") }
        try store.apply(changes, now: time)
        FaultPoint.hit("after-store-apply")
        requested = []
        self.tally = tally
        for (ref, status) in evaluation.results {
            statuses[ref] = status
            dueTimes[ref] = status.nextAttempt
        }
        for ref in gone {
            statuses[ref] = nil
            dueTimes[ref] = nil
        }
        // Asked for by another object's controller: due at once, so the next pass comes now.
        woken.subtract(evaluation.results.keys)
        woken.formUnion(wakes)
        for ref in wakes { dueTimes[ref] = time }
        if changes.reconciledCommit != nil { lastReconciled = commit }
        if tracked.fullLoad { reevaluateAll = false }
        unreadable = unreadableNow
        var result = outcome(commit, ran: true, changed: changes.events.map(\.ref))
        result.deleted = changes.deletions
        return result
    }

    private func keepUnread(_ ref: ObjectRef, commit: ObjectID, time: Date, into evaluation: inout Evaluation) {
        guard let previous = statuses[ref] else { return }
        var builder = StatusBuilder(ref: ref, previous: previous, commit: commit.hex, time: time)
        builder.generation = previous.generation
        let status = builder.stalled(reason: ConditionReason.invalidManifest,
                                     message: "part of the commit's tree could not be read within its bounds (the note lists what), "
                                         + "so \(ref) is kept with its last good spec")
        evaluation.results[ref] = status
        guard status.differsInSubstance(from: previous) else { return }
        evaluation.changes.upserts.append(status)
        evaluation.changes.events.append(Event(ref: ref, time: time, reason: status.reason, message: status.primaryMessage, sourceCommit: commit.hex))
        evaluation.changes.outbox.append(OutboxEntry(kind: .status, ref: ref, reason: status.reason, body: StatusDocument.render(status, statusBranch: configuration.statusBranch),
                                                     detail: status.primaryMessage, sourceCommit: commit.hex, createdAt: time))
    }

    private func outcome(_ commit: ObjectID, ran: Bool, changed: [ObjectRef]) -> PassOutcome {
        // Sorted once per pass that changed the tally, not on every idle pass.
        if ran || sortedLists == nil { sortedLists = (tally.stalled.sorted(), tally.waiting.sorted()) }
        return PassOutcome(commit: commit, ran: ran, changed: changed, objects: tally.total, ready: tally.ready,
                    stalled: sortedLists?.stalled ?? [], waiting: sortedLists?.waiting ?? [], notImplemented: tally.notImplemented,
                    nextDue: nextDue, retryDue: retryDue, refused: nil, unreadableFiles: unreadable)
    }

    private static func summary(_ tally: StatusTally, changes: PassChanges, unreadable: [String], rewritten: Bool,
                                previous: ObjectID?) -> String {
        var lines = ["Cairn reconciled this commit: \(tally.total) objects, \(tally.ready) Ready"
                     + tally.notReadyByReason.sorted { $0.key < $1.key }.map { ", \($0.value) \($0.key)" }.joined() + "."]
        if tally.notImplemented > 0 {
            lines.append("\(tally.notImplemented) object(s) await work Cairn cannot do yet (NotImplemented).")
        }
        if !unreadable.isEmpty {
            lines.append("Files that could not be read (their objects keep their last good spec and are stalled):")
            lines += unreadable.prefix(20).map { "  \($0)" }
            if unreadable.count > 20 { lines.append("  ... and \(unreadable.count - 20) more") }
        }
        if rewritten { lines.append("History was rewritten: the previously reconciled commit \(previous?.short ?? "?") is not an ancestor.") }
        let changed = changes.outbox.compactMap { entry in entry.ref.map { "  \($0): \(entry.reason)" } }
        if !changed.isEmpty { lines.append("Changed:"); lines += changed.prefix(50) }
        if changed.count > 50 { lines.append("  ... and \(changed.count - 50) more") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The tracked branch is not there (yet): a typo in --branch, or a repository still empty.
public struct TrackedBranchMissing: Error, CustomStringConvertible, Sendable {
    public let branch: String
    public let existing: [String]

    public var description: String {
        let listed = existing.prefix(20).joined(separator: ", ") + (existing.count > 20 ? ", …" : "")
        return "the branch \(branch) does not exist; "
            + (existing.isEmpty ? "the repository has no branches yet" : "the repository has: \(listed) (choose one with --branch)")
    }
}

/// The registry as one object of a pass sees it: the store, plus the version numbers objects
/// before it in the same pass registered (written with the pass, so not in the store yet).
struct PassVersions: ModelVersions {
    let store: Store
    let registered: [String: Int]

    func version(_ model: String, _ number: Int) throws -> ModelVersion? { try store.version(model, number) }
    func version(registeredBy runID: String) throws -> ModelVersion? { try store.version(registeredBy: runID) }
    func latestVersionNumber(of model: String) throws -> Int {
        max(try store.latestVersionNumber(of: model), registered[model] ?? 0)
    }
    func stageMap(of model: String) throws -> StageMap { try store.stageMap(of: model) }
    func stageChangeCount(of model: String, stage: String) throws -> Int { try store.stageChangeCount(of: model, stage: stage) }
}
