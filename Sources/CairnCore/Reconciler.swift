public import Foundation
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

/// What one pass did.
public struct PassOutcome: Sendable {
    public var commit: ObjectID
    /// False when the tip was already reconciled and nothing was due: the pass cost one ref read.
    public var ran: Bool
    public var changed: [ObjectRef]
    public var objects: Int
    public var notReady: [ObjectRef]

    public var allReady: Bool { notReady.isEmpty }
}

/// The reconcile engine for one repository. Level-triggered: each pass compares the manifests
/// at the branch tip with the store, whatever event caused it. Confine an instance to one
/// thread: it holds the repository's libgit2 handle.
public final class Reconciler {
    public let repository: Repository
    public let store: Store
    public let configuration: ReconcilerConfiguration
    private let controllers: [Kind: any Controller]
    private var logger: Logger
    private let now: () -> Date

    /// Parsed manifest files of the last reconciled commit, by path, with their blob ids.
    private var files: [String: (blob: ObjectID, parsed: ParsedFile)] = [:]
    private var filesCommit: ObjectID?
    private var lastSet: ManifestSet?
    /// Objects someone asked to reconcile now (`cairn reconcile Kind/name`).
    private var requested: Set<ObjectRef> = []
    /// The store's object statuses and last reconciled commit, read once and kept in step.
    private var statuses: [ObjectRef: ObjectStatus]?
    private var notReady: Set<ObjectRef> = []
    /// When objects in backoff or waiting are due again.
    private var dueTimes: [ObjectRef: Date] = [:]
    private var lastReconciled: ObjectID?

    public init(repository: Repository, store: Store, configuration: ReconcilerConfiguration,
                controllers: [any Controller] = Kind.allCases.map { ReferencesController(kind: $0) },
                logger: Logger, now: @escaping () -> Date = Date.init) {
        self.repository = repository
        self.store = store
        self.configuration = configuration
        self.controllers = Dictionary(uniqueKeysWithValues: controllers.map { ($0.kind, $0) })
        self.logger = logger
        self.now = now
    }

    /// The manifests of the last commit a pass loaded, with every finding about them.
    public var manifestSet: ManifestSet? { lastSet }

    /// Asks for `ref` to be reconciled on the next pass even if nothing changed.
    public func request(_ ref: ObjectRef) {
        requested.insert(ref)
    }

    /// One pass over the branch tip. Writes the store (and its outbox) in one transaction; the
    /// caller drains the outbox into git with a `StatusWriter`.
    public func pass() throws -> PassOutcome {
        guard let tip = try repository.referenceTarget(configuration.trackedRef) else {
            throw GitError(.notFound, "the branch \(configuration.branch) does not exist (\(configuration.trackedRef))", function: "Reconciler.pass")
        }
        let time = now()
        if statuses == nil {
            let loaded = try store.objects()
            statuses = Dictionary(uniqueKeysWithValues: loaded.map { ($0.ref, $0) })
            notReady = Set(loaded.filter { !$0.isReady }.map(\.ref))
            dueTimes = Dictionary(uniqueKeysWithValues: loaded.compactMap { status in status.nextAttempt.map { (status.ref, $0) } })
            lastReconciled = try store.lastReconciledCommit().flatMap(ObjectID.init(hex:))
        }
        let last = lastReconciled
        // The common case: nothing new, nothing due. One ref read, nothing else.
        if tip == last, requested.isEmpty, (dueTimes.values.min() ?? .distantFuture) > time {
            return PassOutcome(commit: tip, ran: false, changed: [], objects: statuses?.count ?? 0, notReady: notReady.sorted())
        }
        let due = Set(dueTimes.filter { $0.value <= time }.keys)
        var logger = self.logger
        logger[metadataKey: "cairn.commit"] = "\(tip.short)"

        var touched: Set<ObjectRef> = due.union(requested)
        var rewritten = false
        var fullLoad = false
        // Take the set out of `self` so that updating it mutates in place instead of copying.
        // Until this pass succeeds, nothing is loaded: an error half-way leaves the caches to
        // be rebuilt by a full load on the next pass, never a half-updated set.
        var set = lastSet ?? ManifestSet(files: [])
        let loadedCommit = filesCommit
        lastSet = nil
        filesCommit = nil
        if let loaded = loadedCommit, repository.contains(loaded), !files.isEmpty {
            rewritten = !repository.isAncestor(loaded, of: tip)
            var updates: [(path: String, file: ParsedFile?)] = []
            for change in try repository.diff(from: loaded, to: tip, under: configuration.path) {
                for path in Set([change.path, change.oldPath]) where files[path] != nil {
                    files[path] = nil
                    updates.append((path, nil))
                }
                if change.kind != .deleted, let blob = change.newBlob, ManifestLoader.isManifestPath(change.path) {
                    // The diff carries no file mode; a symlink must be reported, never parsed.
                    let symlink = try repository.listFiles(in: tip, under: change.path).first?.kind == .symlink
                    let parsed = try ManifestLoader.parse(from: repository, path: change.path, blob: blob, symlink: symlink)
                    files[change.path] = (blob, parsed)
                    updates.append((change.path, parsed))
                }
            }
            touched.formUnion(set.update(updates))
        } else {
            rewritten = last.map { !repository.contains($0) || !repository.isAncestor($0, of: tip) } ?? false
            files = [:]
            for (path, blob, parsed) in try ManifestLoader.parseAll(from: repository, commit: tip, path: configuration.path) {
                files[path] = (blob, parsed)
            }
            set = ManifestSet(files: files.values.map(\.parsed).sorted { $0.path < $1.path })
            fullLoad = true
        }
        // Taken out of `self` (it is put back at the end): the updates below then change the
        // dictionary in place instead of copying ten thousand statuses on every pass.
        var stored = statuses ?? [:]
        statuses = nil
        var evaluate: Set<ObjectRef>
        if fullLoad {
            evaluate = Set(set.manifests.keys).union(set.broken.keys)
        } else {
            // What the change touches: the objects of changed files and whoever names or reads
            // them (from the set's update), and everything that depends on those now.
            evaluate = set.graph.reachable(from: touched)
        }
        func isPresent(_ ref: ObjectRef) -> Bool { set.manifests[ref] != nil || set.broken[ref] != nil }

        var changes = PassChanges()
        var results: [ObjectRef: ObjectStatus] = [:]
        // Broken objects first: their status depends on nothing else, and what names them waits on it.
        let order = set.broken.keys.filter { set.manifests[$0] == nil && evaluate.contains($0) }.sorted()
            + set.graph.order(of: evaluate.filter { set.manifests[$0] != nil })
        for ref in order {
            var objectLogger = logger
            objectLogger[metadataKey: "cairn.object"] = "\(ref)"
            let status = evaluateObject(ref, in: set, previous: stored[ref], results: results, stored: stored, commit: tip, time: time)
            results[ref] = status
            guard status.differsInSubstance(from: stored[ref]) else {
                if status.failures != stored[ref]?.failures || status.nextAttempt != stored[ref]?.nextAttempt { changes.upserts.append(status) }
                continue
            }
            objectLogger.info("\(status.reason)", metadata: ["cairn.ready": "\(status.isReady)"])
            changes.upserts.append(status)
            changes.events.append(Event(ref: ref, time: time, reason: status.reason, message: status.primaryMessage, sourceCommit: tip.hex))
            changes.outbox.append(OutboxEntry(kind: .status, ref: ref, reason: status.reason, body: StatusDocument.render(status),
                                              detail: status.primaryMessage, sourceCommit: tip.hex, createdAt: time))
        }
        // Gone: in a full load, whatever the store has that the commit lacks; otherwise only
        // objects of the changed files can have gone.
        let gone = (fullLoad ? Set(stored.keys) : touched.filter { stored[$0] != nil }).filter { !isPresent($0) }
        for ref in gone.sorted() {
            logger.info("Deleted", metadata: ["cairn.object": "\(ref)"])
            changes.deletions.append(ref)
            changes.events.append(Event(ref: ref, time: time, reason: "Deleted", message: "its manifest was removed", sourceCommit: tip.hex))
            changes.outbox.append(OutboxEntry(kind: .removal, ref: ref, reason: "Deleted", body: "",
                                              detail: "its manifest was removed from the tracked branch", sourceCommit: tip.hex, createdAt: time))
        }
        if rewritten {
            logger.warning("HistoryRewritten", metadata: ["cairn.previous": "\(last?.short ?? "?")"])
        }
        var nextNotReady = notReady
        for (ref, status) in results {
            stored[ref] = status
            if status.isReady { nextNotReady.remove(ref) } else { nextNotReady.insert(ref) }
        }
        for ref in gone {
            stored[ref] = nil
            nextNotReady.remove(ref)
        }
        if tip != last || !changes.outbox.isEmpty {
            changes.reconciledCommit = tip.hex
            changes.summary = summary(total: stored.count, notReady: nextNotReady.compactMap { stored[$0] },
                                      changes: changes, rewritten: rewritten, previous: last)
            changes.outbox.append(OutboxEntry(kind: .note, ref: nil, reason: "Reconciled", body: changes.summary ?? "",
                                              sourceCommit: tip.hex, createdAt: time))
        }
        FaultPoint.hit("before-store-apply")
        try store.apply(changes, now: time)
        FaultPoint.hit("after-store-apply")
        requested = []
        filesCommit = tip
        lastSet = set
        statuses = stored
        notReady = nextNotReady
        for (ref, status) in results { dueTimes[ref] = status.nextAttempt }
        for ref in gone { dueTimes[ref] = nil }
        if changes.reconciledCommit != nil { lastReconciled = tip }
        return PassOutcome(commit: tip, ran: true, changed: changes.events.map(\.ref), objects: stored.count,
                           notReady: nextNotReady.sorted())
    }


    private func evaluateObject(_ ref: ObjectRef, in set: ManifestSet, previous: ObjectStatus?, results: [ObjectRef: ObjectStatus],
                                stored: [ObjectRef: ObjectStatus], commit: ObjectID, time: Date) -> ObjectStatus {
        var builder = StatusBuilder(ref: ref, previous: previous, commit: commit.hex, time: time)
        if let problems = set.broken[ref] {
            let first = problems.first { $0.severity == .error } ?? problems[0]
            let path = first.location.file
            builder.manifestPath = path
            builder.generation = "invalid:" + Repository.blobID(of: Data(problems.map(\.description).joined().utf8)).short
            return builder.stalled(reason: "InvalidManifest", message: "\(first.location): \(first.message)"
                                   + (problems.count > 1 ? " (and \(problems.count - 1) more; run cairn validate)" : ""))
        }
        guard let manifest = set.manifests[ref] else { return builder.stalled(reason: "Missing", message: "no manifest") }
        builder.manifestPath = manifest.location.file
        builder.generation = Self.generation(of: manifest)
        if manifest.spec.suspended {
            return builder.notReady(reason: "Suspended", message: "spec.suspend is true; Cairn leaves this object as it is", reconciling: false)
        }
        let waitingOn = dependencies(of: manifest, in: set).filter { dependency in
            let status = results[dependency] ?? stored[dependency]
            return status?.isReady != true
        }
        if !waitingOn.isEmpty {
            return builder.notReady(reason: "DependencyNotReady",
                                    message: "waiting for " + waitingOn.sorted().map(\.description).joined(separator: ", ") + " to be Ready",
                                    reconciling: true)
        }
        do {
            let result = try (controllers[ref.kind] ?? ReferencesController(kind: ref.kind)).reconcile(manifest)
            return builder.ready(reason: result.reason, message: result.message)
        } catch {
            switch error.disposition {
            case .terminal:
                return builder.stalled(reason: error.reason, message: error.message)
            case .transient:
                let failures = (previous?.failures ?? 0) + 1
                let delay = Backoff().delay(afterFailures: failures)
                return builder.retrying(reason: error.reason, message: error.message, failures: failures, after: delay)
            case .waiting(let seconds):
                return builder.retrying(reason: error.reason, message: error.message, failures: 0, after: seconds)
            }
        }
    }

    /// What an object waits for: the valid objects it depends on in the graph, and the
    /// objects it names whose manifests are broken.
    private func dependencies(of manifest: Manifest, in set: ManifestSet) -> Set<ObjectRef> {
        var result = set.graph.dependencies[manifest.ref] ?? []
        let named: [ObjectRef]
        switch manifest.spec {
        case .featurePipeline: named = []
        case .trainingSchedule(let spec): named = spec.features.map { [ObjectRef(.featurePipeline, $0)] } ?? []
        case .model: named = set.broken.keys.filter { $0.kind == .trainingSchedule }
        case .modelDeployment(let spec): named = [ObjectRef(.model, spec.model)]
        case .monitor(let spec): named = [ObjectRef(.modelDeployment, spec.deployment)]
        }
        result.formUnion(named.filter { set.broken[$0] != nil && set.manifests[$0] == nil })
        return result
    }

    /// The spec's content key, `sha256:…` (Docs/content-keys.md). A valid manifest always has
    /// one (its numbers are finite); "unkeyable" would mean a bug in the encoding.
    public static func generation(of manifest: Manifest) -> String {
        (try? ContentKey.generation(of: manifest.spec))?.description ?? "unkeyable"
    }

    private func summary(total: Int, notReady: [ObjectStatus], changes: PassChanges, rewritten: Bool, previous: ObjectID?) -> String {
        let ready = total - notReady.count
        var byReason: [String: Int] = [:]
        for status in notReady { byReason[status.reason, default: 0] += 1 }
        var lines = ["Cairn reconciled this commit: \(total) objects, \(ready) Ready"
                     + byReason.sorted { $0.key < $1.key }.map { ", \($0.value) \($0.key)" }.joined() + "."]
        if rewritten { lines.append("History was rewritten: the previously reconciled commit \(previous?.short ?? "?") is not an ancestor.") }
        let changed = changes.outbox.compactMap { entry in entry.ref.map { "  \($0): \(entry.reason)" } }
        if !changed.isEmpty { lines.append("Changed:"); lines += changed.prefix(50) }
        if changed.count > 50 { lines.append("  ... and \(changed.count - 50) more") }
        return lines.joined(separator: "\n") + "\n"
    }
}
