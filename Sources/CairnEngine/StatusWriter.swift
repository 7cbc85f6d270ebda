public import Foundation
public import CairnGit
public import CairnStore
import CairnCore
import CairnManifests
public import Logging

/// The single writer that drains the store's outbox into git: one commit per status change on
/// the status branch, one note per reconciled source commit.
///
/// Crash-safe without a transaction spanning SQLite and git. Every status commit carries
/// `Cairn-Outbox: <store>/<id>`, and the store records the branch tip each drain left. After a
/// crash between moving the ref and clearing the outbox, the writer reads the exact ids on
/// the branch since that tip (people may have committed on top meanwhile) and skips those
/// entries: exact ids, never a high-water mark, so a forged trailer cannot hide real changes.
/// When the branch was deleted or reset behind that tip, the next drain restores every
/// object's file from the store. Notes are merged into what people wrote on the same commit.
public final class StatusWriter {
    let repository: Repository
    let store: Store
    let configuration: ReconcilerConfiguration
    private let logger: Logger
    /// The branch tip as Cairn last left it; read from the store once.
    private var knownTip: ObjectID?
    private var knownTipLoaded = false
    /// How far back a drain looks for its own entries when the branch moved without it.
    static let searchLimit = 100_000
    /// Writes the registry's tags after each drain, when the configuration asks for them.
    let tagger: RegistryTagger?
    /// Writes the proposals status entries carry on their own branches (signed with `sign`).
    let proposals: ProposalWriter

    /// With `sign`, the proposal commits carry its signature (`--signing-key`); status commits
    /// are Cairn's own record and stay unsigned.
    public init(repository: Repository, store: Store, configuration: ReconcilerConfiguration, logger: Logger,
                sign: CommitSigning? = nil) {
        self.repository = repository
        self.store = store
        self.configuration = configuration
        self.logger = logger
        proposals = ProposalWriter(repository: repository, configuration: configuration, sign: sign, logger: logger)
        tagger = configuration.registryTags
            ? RegistryTagger(repository: repository, store: store, configuration: configuration, logger: logger) : nil
    }

    /// Writes every pending outbox entry to git, then, with `registryTags`, the registry's
    /// tags (`RegistryTagger`); returns how many status commits it made. With nothing pending
    /// and the branch as Cairn left it, this costs one ref read (and one store read for tags).
    @discardableResult
    public func drain(now: Date = Date()) throws -> Int {
        let commits = try drainOutbox(now: now)
        try tagger?.sync()
        return commits
    }

    private func drainOutbox(now: Date) throws -> Int {
        if !knownTipLoaded {
            knownTip = try store.statusTip(of: configuration.statusRef).flatMap(ObjectID.init(hex:))
            knownTipLoaded = true
        }
        let startTip = try repository.referenceTarget(configuration.statusRef)
        let entries = try store.pendingOutbox()
        if entries.isEmpty, startTip == knownTip { return 0 }
        // A tip Cairn did not leave must be a Cairn status branch before anything is written on
        // it, restored or rebuilt (a work branch named by mistake, or made in its place).
        if let startTip, startTip != knownTip { try checkIsStatusBranch(startTip) }
        var signature = configuration.author
        signature.time = now

        var tip = startTip
        var commits = 0
        var written: Set<Int64> = []
        var restored = false
        switch try branchState(startTip, pending: entries) {
        case .asLeft:
            break
        case .movedOnTop(let ids):
            written = ids
        case .lost(let why):
            tip = try restore(onto: startTip, why: why, author: signature)
            restored = true
        }
        var notes: [(commit: String, text: String, previous: String)] = []
        for entry in entries {
            guard let id = entry.id else { continue }
            switch entry.kind {
            case .status, .removal:
                // Already on the branch: a crash came between moving the ref and clearing the outbox.
                guard !written.contains(id), let ref = entry.ref else { continue }
                // The proposal first, so the status commit can name its branch; a restore
                // (which wrote every object's current status) does not lose it either.
                let proposed = entry.proposal.map { writeProposal($0, carriedBy: entry, author: signature) }
                guard !restored else { continue }
                var changes: [String: Data?] = [StatusDocument.path(of: ref): entry.kind == .status ? Data(entry.body.utf8) : nil]
                for (path, body) in entry.files ?? [:] { changes[path] = Data(body.utf8) }
                if tip == nil { changes["README.md"] = Data(StatusDocument.readme(statusBranch: configuration.statusBranch, trackedBranch: configuration.branch).utf8) }
                let message = statusMessage(entry, ref: ref, id: id, proposed: proposed)
                tip = try repository.createCommit(parent: tip, changes: changes, message: message, author: signature)
                commits += 1
                if commits == 2 { FaultPoint.hit("between-status-commits") }
            case .note:
                // Notes are idempotent (rewritten only when the text differs), so never skipped.
                notes.append((entry.sourceCommit, entry.body, entry.detail))
            }
        }
        if let tip, tip != startTip {
            try repository.updateReference(configuration.statusRef, to: tip, expected: startTip,
                                           logMessage: "cairn: \(commits) status change(s)")
            logger.info("wrote status commits", metadata: ["cairn.commits": "\(commits)", "cairn.status": "\(tip.short)"])
            FaultPoint.hit("after-status-ref")
        }
        for note in notes {
            guard let id = ObjectID(hex: note.commit), repository.contains(id) else { continue }
            try writeNote(note.text, replacing: note.previous, on: id, author: signature)
        }
        FaultPoint.hit("after-notes")
        try store.markDrained(upTo: entries.last?.id, statusRef: configuration.statusRef, statusTip: tip?.hex)
        knownTip = tip
        return commits
    }

    /// `<Kind>/<name>: <Reason>`, the status in words, what became of a proposal, and the
    /// trailers that link the commit back (`Cairn-Proposal:` names the proposal's branch).
    private func statusMessage(_ entry: OutboxEntry, ref: ObjectRef, id: Int64, proposed: (Proposal, ProposalWriter.Written)?) -> String {
        var body = entry.detail
        var proposalTrailer = ""
        if case let (proposal, written)? = proposed {
            switch written {
            case .branch(let branch, _):
                body += "\n\nProposed on the branch \(branch): \(proposal.subject). Merge it (as a pull request) so that git "
                    + "says what serves; Cairn never commits to \(configuration.branch) itself."
                proposalTrailer = "Cairn-Proposal: \(branch)\n"
            case .skipped(let why):
                body += "\n\nThe proposal \"\(proposal.subject)\" was not written: \(why)."
            }
        }
        return "\(ref): \(entry.reason)\n\n\(body)\n\nCairn-Object: \(ref)\nCairn-Source-Commit: \(entry.sourceCommit)\n"
            + (entry.runs ?? []).map { "Cairn-Run: \($0)\n" }.joined()
            + (entry.versions ?? []).map { "Cairn-Model-Version: \($0)\n" }.joined()
            + (entry.stageChanges ?? []).map { "Cairn-Stage: \(Self.trailer($0))\n" }.joined()
            + proposalTrailer + "Cairn-Outbox: \(store.identity)/\(id)\n"
    }

    /// Writes (or finds written) the proposal an entry carries. Whatever goes wrong is said in
    /// the status commit and logged, never thrown: a proposal that cannot be written must not
    /// hold back every status change after it.
    private func writeProposal(_ proposal: Proposal, carriedBy entry: OutboxEntry, author: Signature) -> (Proposal, ProposalWriter.Written) {
        do {
            let written = try proposals.write(proposal, carriedBy: entry, store: store.identity, author: author,
                                              registry: .store(store, "the daemon's store"))
            if case .skipped(let why) = written {
                logger.warning("did not write a proposal", metadata: ["cairn.object": "\(entry.ref.map(\.description) ?? "")",
                                                                      "cairn.proposal": "\(proposal.slug)", "cairn.reason": "\(why)"])
            }
            return (proposal, written)
        } catch {
            logger.error("could not write a proposal", metadata: ["cairn.object": "\(entry.ref.map(\.description) ?? "")",
                                                                  "cairn.proposal": "\(proposal.slug)", "cairn.error": "\(error)"])
            return (proposal, .skipped("\(error)"))
        }
    }

    /// `churn production 2` (`churn production none` when unassigned): `git log --grep
    /// "Cairn-Stage: churn production"` is that stage's history.
    static func trailer(_ change: StageChange) -> String {
        "\(change.model) \(change.stage) \(change.version.map(String.init) ?? "none")"
    }

    /// Records a tip Cairn made itself elsewhere (the pusher rebuilding on a remote's tip).
    func adopt(tip: ObjectID) throws {
        try store.markDrained(upTo: nil, statusRef: configuration.statusRef, statusTip: tip.hex)
        knownTip = tip
        knownTipLoaded = true
    }

    // MARK: The branch

    enum BranchState {
        /// At the tip Cairn left (or Cairn never wrote one).
        case asLeft
        /// Commits were added on top of Cairn's tip: these outbox ids of this store are among them.
        case movedOnTop(Set<Int64>)
        /// Deleted, or reset behind Cairn's tip.
        case lost(String)
    }

    private func branchState(_ tip: ObjectID?, pending: [OutboxEntry]) throws -> BranchState {
        guard let known = knownTip else {
            // A store that never drained (new, or after a crash before its first drain):
            // its entries can only be on the branch if that crash moved the ref.
            guard let tip else { return .asLeft }
            return .movedOnTop(try written(pending, from: tip, until: nil, limit: pending.count + 1_000))
        }
        guard let tip else { return .lost("the status branch \(configuration.statusBranch) was deleted") }
        if tip == known { return .asLeft }
        guard repository.contains(known), repository.isAncestor(known, of: tip) else {
            return .lost("the status branch \(configuration.statusBranch) was reset behind the commit Cairn last wrote (\(known.short))")
        }
        return .movedOnTop(try written(pending, from: tip, until: known, limit: Self.searchLimit))
    }

    /// The pending entries already on the first-parent chain from `tip` back to `base`: a
    /// commit counts for an entry only when its `Cairn-Outbox` trailer names this store and
    /// the entry's exact id, and its tree holds exactly what the entry writes. A forged
    /// trailer can therefore hide nothing: at most it says what Cairn would have said.
    private func written(_ pending: [OutboxEntry], from tip: ObjectID, until base: ObjectID?, limit: Int) throws -> Set<Int64> {
        let byID = Dictionary(pending.compactMap { entry in entry.id.map { ($0, entry) } }, uniquingKeysWith: { first, _ in first })
        var ids: Set<Int64> = []
        for commit in try repository.firstParentChain(from: tip, until: base, limit: limit) {
            guard let id = Self.outboxID(in: commit.message, store: store.identity), let entry = byID[id], let ref = entry.ref else { continue }
            let file = try repository.file(at: StatusDocument.path(of: ref), in: commit.id)
            let holds = entry.kind == .removal ? file == nil : file == Data(entry.body.utf8)
            if holds { ids.insert(id) }
        }
        return ids
    }

    /// The outbox id of this store that a status commit says it carries.
    static func outboxID(in message: String, store: String) -> Int64? {
        for line in message.split(separator: "\n").reversed() where line.hasPrefix("Cairn-Outbox: ") {
            let value = line.dropFirst("Cairn-Outbox: ".count).split(separator: "/")
            guard value.count == 2, value[0] == store else { return nil }
            return Int64(value[1])
        }
        return nil
    }

    /// Refuses to write on a branch Cairn did not create as a status branch (such as a work
    /// branch named by mistake with --status-branch).
    private func checkIsStatusBranch(_ tip: ObjectID) throws {
        let readme = try repository.file(at: "README.md", in: tip).map { String(decoding: $0, as: UTF8.self) }
        guard readme?.hasPrefix("# Cairn status") == true else {
            throw StatusBranchError(
                "the branch \(configuration.statusBranch) exists and is not a Cairn status branch (its README.md is not Cairn's); "
                + "Cairn writes status only on a branch it created: give --status-branch a new name, "
                + "or delete that branch if it is an old status branch")
        }
    }

    /// One commit on top of what is there (or a new root) that writes every object's current
    /// status from the store and removes files of objects the store no longer has.
    private func restore(onto tip: ObjectID?, why: String, author: Signature) throws -> ObjectID {
        var changes: [String: Data?] = ["README.md": Data(StatusDocument.readme(statusBranch: configuration.statusBranch, trackedBranch: configuration.branch).utf8)]
        var present: Set<String> = []
        for status in try store.objects() {
            let path = StatusDocument.path(of: status.ref)
            present.insert(path)
            changes[path] = Data(StatusDocument.render(status, statusBranch: configuration.statusBranch).utf8)
        }
        // The registry: every version's file, as it was written when registered.
        for version in try store.allVersions() {
            let path = VersionDocument.path(of: version)
            present.insert(path)
            changes[path] = Data(VersionDocument.render(version, statusBranch: configuration.statusBranch).utf8)
        }
        if let tip {
            // Bounded like any tree a person may push to: what lies beyond the bounds stays as it is.
            for entry in try repository.listTree(in: tip, include: { $0.hasSuffix(".yaml") }).entries where !present.contains(entry.path) {
                let kind = entry.path.split(separator: "/").first.map(String.init) ?? ""
                if Kind(rawValue: kind) != nil || kind == "ModelVersion" { changes[entry.path] = .some(nil) }
            }
        }
        logger.warning("restoring the status branch", metadata: ["cairn.reason": "\(why)", "cairn.objects": "\(present.count)"])
        let message = "Cairn: restored \(present.count) status file(s)\n\n\(why); every object's status is written again from Cairn's store.\n\nCairn-Restore: \(store.identity)\n"
        return try repository.createCommit(parent: tip, changes: changes, message: message, author: author)
    }

    // MARK: Notes

    /// Puts Cairn's text into the note on `commit`, keeping what others wrote there: the text
    /// Cairn wrote before is replaced in place, and otherwise Cairn's is appended. Retries when
    /// someone else moves the notes ref between the read and the write.
    private func writeNote(_ text: String, replacing previous: String, on commit: ObjectID, author: Signature) throws {
        for attempt in 1...5 {
            let tip = try repository.referenceTarget(configuration.notesRef)
            let existing = try repository.note(on: commit, notesRef: configuration.notesRef)
            let merged = Self.merge(note: existing, ours: text, previous: previous)
            if merged == existing { return }
            do {
                try repository.setNote(merged, on: commit, notesRef: configuration.notesRef, author: author, expectedTip: .some(tip))
                return
            } catch let error as GitError where error.code == .refMoved && attempt < 5 {
                continue
            }
        }
    }

    static func merge(note existing: String?, ours: String, previous: String) -> String {
        guard let existing, !existing.isEmpty else { return ours }
        if existing.contains(ours) { return existing }
        if !previous.isEmpty, let range = existing.range(of: previous) {
            return existing.replacingCharacters(in: range, with: ours)
        }
        return existing.hasSuffix("\n") ? existing + "\n" + ours : existing + "\n\n" + ours
    }
}

/// Cairn will not write where it was told to.
public struct StatusBranchError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
