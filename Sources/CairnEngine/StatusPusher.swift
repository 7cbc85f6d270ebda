import Foundation
import CairnCore
import CairnGit
import Logging

/// Pushes the status branch and the notes ref to the remote, then the proposal branches, then
/// the registry's tags (with `--registry-tags`). Never forced: when the remote moved (a person, or another writer,
/// pushed), it fetches, rebuilds Cairn's own commits on the remote's new tip, and tries again,
/// a bounded number of times. Nothing of theirs or ours is lost; the tracked branch is never
/// touched, and no tag on the remote is ever moved.
final class StatusPusher {
    let repository: Repository
    let url: String
    let configuration: ReconcilerConfiguration
    let logger: Logger
    let fetch: Fetcher
    /// Told the status branch's new tip after a rebuild, so the writer knows it as its own.
    let rebuilt: (ObjectID) throws -> Void
    /// The registry's tags to push after the branches, when they are written.
    let tagger: RegistryTagger?
    static let attempts = 5

    init(repository: Repository, url: String, configuration: ReconcilerConfiguration, logger: Logger,
         fetch: @escaping Fetcher, tagger: RegistryTagger? = nil, rebuilt: @escaping (ObjectID) throws -> Void) {
        self.rebuilt = rebuilt
        self.tagger = tagger
        self.repository = repository
        self.url = url
        self.configuration = configuration
        self.logger = logger
        self.fetch = fetch
    }

    var remoteStatusRef: String { "refs/remotes/origin/\(configuration.statusBranch)" }
    var remoteNotesRef: String { "refs/remotes/origin-notes/" + configuration.notesRef.dropFirst("refs/notes/".count) }

    /// Proposal branches the remote refused, by name and the commit offered: logged once and
    /// not offered again (a person pushed to that branch name first).
    private var refusedProposals: [String: ObjectID] = [:]

    func push() async throws {
        try await pushBranches()
        try pushProposals()
        try tagger?.push { refspecs in try repository.push(to: url, refspecs: refspecs) }
    }

    /// Pushes each proposal branch the remote does not have yet, alone and never forced, so a
    /// refusal of one holds back neither the others nor the status. Once the remote has a
    /// proposal branch it is the remote's: people review it, push to it, merge and delete it,
    /// and Cairn's copy in its mirror is let go so that a deleted branch is not pushed again.
    private func pushProposals() throws {
        let prefix = "refs/heads/\(Proposal.branchPrefix)"
        let remote = try repository.references(withPrefix: "refs/remotes/origin/\(Proposal.branchPrefix)")
        for (name, tip) in try repository.references(withPrefix: prefix).sorted(by: { $0.key < $1.key }) {
            let branch = String(name.dropFirst("refs/heads/".count))
            let tracking = "refs/remotes/origin/" + branch
            guard refusedProposals[name] != tip else { continue }
            if let theirs = remote[tracking] {
                // The remote has ours (perhaps with people's commits on top): let ours go.
                if repository.isAncestor(tip, of: theirs) {
                    try repository.deleteReference(name, expected: tip)
                } else {
                    refused(name, tip, why: "the remote has another branch of that name")
                }
                continue
            }
            do {
                try repository.push(to: url, refspecs: ["\(name):\(name)"])
            } catch let error as GitError where error.code == .pushRejected {
                refused(name, tip, why: error.message)
                continue
            }
            try repository.updateReference(tracking, to: tip, expected: nil, logMessage: "cairn: pushed")
            try repository.deleteReference(name, expected: tip)
            logger.notice("pushed a proposal branch", metadata: ["cairn.branch": "\(branch)", "cairn.commit": "\(tip.short)"])
        }
    }

    /// Remembers a proposal branch the remote will not take, and says so once.
    private func refused(_ name: String, _ tip: ObjectID, why: String) {
        refusedProposals[name] = tip
        logger.warning("a proposal branch was not pushed; the remote's branch of that name is left as it is, and Cairn's stays in its mirror",
                       metadata: ["cairn.branch": "\(name.dropFirst("refs/heads/".count))", "cairn.commit": "\(tip.short)", "cairn.reason": "\(why)"])
    }

    private func pushBranches() async throws {
        for attempt in 1...Self.attempts {
            var refspecs: [String] = []
            if let local = try repository.referenceTarget(configuration.statusRef), local != (try repository.referenceTarget(remoteStatusRef)) {
                refspecs.append("\(configuration.statusRef):\(configuration.statusRef)")
            }
            if let local = try repository.referenceTarget(configuration.notesRef), local != (try repository.referenceTarget(remoteNotesRef)) {
                refspecs.append("\(configuration.notesRef):\(configuration.notesRef)")
            }
            guard !refspecs.isEmpty else { return }
            do {
                try repository.push(to: url, refspecs: refspecs)
                // Remember what the remote now has, so the next pass pushes only news.
                if let status = try repository.referenceTarget(configuration.statusRef) {
                    try? forceLocal(remoteStatusRef, to: status)
                }
                if let notes = try repository.referenceTarget(configuration.notesRef) {
                    try? forceLocal(remoteNotesRef, to: notes)
                }
                return
            } catch let error as GitError where error.code == .pushRejected && attempt < Self.attempts {
                logger.notice("push rejected; rebuilding on the remote's tip", metadata: ["cairn.attempt": "\(attempt)"])
                try await fetch(url, repository.gitDirectory)
                try rebuildStatus()
                try rebuildNotes()
            }
        }
    }

    private func forceLocal(_ name: String, to target: ObjectID) throws {
        let current = try repository.referenceTarget(name)
        try repository.updateReference(name, to: target, expected: current, logMessage: "cairn: pushed")
    }

    /// Replays the status commits the remote lacks on top of the remote's tip.
    private func rebuildStatus() throws {
        guard let local = try repository.referenceTarget(configuration.statusRef),
              let remote = try repository.referenceTarget(remoteStatusRef), !repository.isAncestor(remote, of: local) else { return }
        let base = repository.mergeBase(local, remote)
        var tip = remote
        for commit in try repository.firstParentChain(from: local, until: base).reversed() {
            var changes: [String: Data?] = [:]
            for change in try repository.diff(from: commit.parents.first, to: commit.id) {
                if change.kind == .renamed { changes[change.oldPath] = .some(nil) }
                changes[change.path] = try change.newBlob.map { try repository.blob($0) }
            }
            tip = try repository.createCommit(parent: tip, changes: changes, message: commit.message,
                                              author: commit.author, committer: commit.committer)
        }
        try repository.updateReference(configuration.statusRef, to: tip, expected: local, logMessage: "cairn: rebuilt on the remote's tip")
        try rebuilt(tip)
    }

    /// Re-attaches the notes the remote lacks on top of the remote's notes.
    private func rebuildNotes() throws {
        guard let local = try repository.referenceTarget(configuration.notesRef),
              let remote = try repository.referenceTarget(remoteNotesRef), !repository.isAncestor(remote, of: local) else { return }
        let base = repository.mergeBase(local, remote)
        var tip = remote
        for change in try repository.diff(from: base, to: local) where change.kind != .deleted {
            let annotated = change.path.replacingOccurrences(of: "/", with: "")
            guard let target = ObjectID(hex: annotated), let blob = change.newBlob else { continue }
            var text = String(decoding: try repository.blob(blob), as: UTF8.self)
            // Someone else annotated the same commit: keep their words above ours.
            if let theirs = try repository.note(on: target, notesRef: remoteNotesRef), theirs != text {
                text = theirs + "\n" + text
            }
            tip = try repository.notesCommitCreating(text, on: target, parent: tip, author: configuration.author)
        }
        try repository.updateReference(configuration.notesRef, to: tip, expected: local, logMessage: "cairn: notes rebuilt on the remote's")
    }
}
