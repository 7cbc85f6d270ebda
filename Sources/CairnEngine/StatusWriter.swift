public import Foundation
public import CairnGit
public import CairnStore
import CairnManifests
public import Logging

/// The single writer that drains the store's outbox into git: one commit per status change on
/// the status branch, one note per reconciled source commit. Crash-safe without a transaction
/// spanning SQLite and git: every status commit carries `Cairn-Outbox: <store>/<id>`, so after a crash
/// between moving the ref and clearing the outbox, the entries the branch tip already holds
/// are recognised and not committed again. Notes are rewritten only when their text differs.
public final class StatusWriter {
    let repository: Repository
    let store: Store
    let configuration: ReconcilerConfiguration
    private let logger: Logger

    public init(repository: Repository, store: Store, configuration: ReconcilerConfiguration, logger: Logger) {
        self.repository = repository
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Writes every pending outbox entry to git; returns how many status commits it made.
    @discardableResult
    public func drain(now: Date = Date()) throws -> Int {
        let entries = try store.pendingOutbox()
        guard let lastID = entries.last?.id else { return 0 }
        let statusRef = configuration.statusRef
        let startTip = try repository.referenceTarget(statusRef)
        let written = try startTip.map { try Self.outboxMark(in: repository.commit($0).message, store: store.identity) } ?? 0
        var tip = startTip
        var commits = 0
        var notes: [(String, String)] = []
        var signature = configuration.author
        signature.time = now
        for entry in entries {
            guard let id = entry.id else { continue }
            switch entry.kind {
            case .status, .removal:
                // Already on the branch: a crash came between moving the ref and clearing the outbox.
                guard id > written, let ref = entry.ref else { continue }
                var changes: [String: Data?] = [StatusDocument.path(of: ref): entry.kind == .status ? Data(entry.body.utf8) : nil]
                if tip == nil { changes["README.md"] = Data(StatusDocument.readme.utf8) }
                let message = "\(ref): \(entry.reason)\n\n\(entry.detail)\n\nCairn-Object: \(ref)\nCairn-Source-Commit: \(entry.sourceCommit)\nCairn-Outbox: \(store.identity)/\(id)\n"
                tip = try repository.createCommit(parent: tip, changes: changes, message: message, author: signature)
                commits += 1
                if commits == 2 { FaultPoint.hit("between-status-commits") }
            case .note:
                // Notes are idempotent (rewritten only when the text differs), so never skipped.
                notes.append((entry.sourceCommit, entry.body))
            }
        }
        if let tip, tip != startTip {
            try repository.updateReference(statusRef, to: tip, expected: startTip, logMessage: "cairn: \(commits) status change(s)")
            logger.info("wrote status commits", metadata: ["cairn.commits": "\(commits)", "cairn.status": "\(tip.short)"])
            FaultPoint.hit("after-status-ref")
        }
        for (commit, text) in notes {
            guard let id = ObjectID(hex: commit), repository.contains(id) else { continue }
            try writeNote(text, on: id, author: signature)
        }
        FaultPoint.hit("after-notes")
        try store.markDrained(upTo: lastID)
        return commits
    }

    /// Attaches a note unless the same text is already there; retries if someone else moves
    /// the notes ref between our read and our write.
    private func writeNote(_ text: String, on commit: ObjectID, author: Signature) throws {
        for attempt in 1...5 {
            if try repository.note(on: commit, notesRef: configuration.notesRef) == text { return }
            do {
                let tip = try repository.referenceTarget(configuration.notesRef)
                try repository.setNote(text, on: commit, notesRef: configuration.notesRef, author: author, expectedTip: .some(tip))
                return
            } catch let error as GitError where error.code == .refMoved && attempt < 5 {
                continue
            }
        }
    }

    /// The highest outbox id of this store that a status commit says it carries; 0 when the
    /// commit came from another store (or none).
    static func outboxMark(in message: String, store: String) -> Int64 {
        for line in message.split(separator: "\n").reversed() where line.hasPrefix("Cairn-Outbox: ") {
            let value = line.dropFirst("Cairn-Outbox: ".count).split(separator: "/")
            guard value.count == 2, value[0] == store else { return 0 }
            return Int64(value[1]) ?? 0
        }
        return 0
    }
}
