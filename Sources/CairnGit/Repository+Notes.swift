import CLibGit2

extension Repository {
    /// The note attached to `object` under `notesRef` (such as `refs/notes/cairn`), or nil.
    public func note(on object: ObjectID, notesRef: String) throws -> String? {
        var oid = object.raw
        var note: OpaquePointer?
        let result = git_note_read(&note, handle, notesRef, &oid)
        if result == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try check(result, "git_note_read")
        defer { git_note_free(note) }
        return git_note_message(note).map { String(cString: $0) }
    }

    /// Attaches (or replaces) the note on `object` under `notesRef`. The notes ref moves by
    /// compare-and-swap from `expectedTip` (nil: read it now); if someone else moved it in the
    /// meantime, `GitError.refMoved` is thrown and nothing changes. Returns the new notes commit.
    @discardableResult
    public func setNote(
        _ message: String, on object: ObjectID, notesRef: String, author: Signature, expectedTip: ObjectID?? = nil
    ) throws -> ObjectID {
        let tip: ObjectID? = try expectedTip ?? referenceTarget(notesRef)
        let notesCommit = try notesCommitCreating(message, on: object, parent: tip, author: author)
        try updateReference(notesRef, to: notesCommit, expected: tip, logMessage: "cairn: note on \(object.short)")
        return notesCommit
    }

    /// Builds a notes commit on `parent` that attaches `message` to `object`, without moving
    /// any reference. Used to rebuild notes on a remote's newer tip before a push.
    public func notesCommitCreating(_ message: String, on object: ObjectID, parent: ObjectID?, author: Signature) throws -> ObjectID {
        var parentCommit: OpaquePointer?
        if let parent {
            var parentOID = parent.raw
            try check(git_commit_lookup(&parentCommit, handle, &parentOID), "git_commit_lookup")
        }
        defer { git_commit_free(parentCommit) }
        var target = object.raw
        var commitOut = git_oid()
        var blobOut = git_oid()
        try author.withGitSignature { signature in
            try check(git_note_commit_create(&commitOut, &blobOut, handle, parentCommit, signature, signature, &target, message, 1),
                      "git_note_commit_create")
        }
        return ObjectID(commitOut)
    }
}
