import CLibGit2
public import Foundation

/// Signs a commit: given the commit object's bytes, returns the armored signature to store in
/// its `gpgsig` header (for SSH, what `ssh-keygen -Y sign -n git` prints). Kept a closure, so
/// that this module, the only one that touches libgit2, runs no programs.
public typealias CommitSigning = (Data) throws -> String

/// A commit's signature and the bytes it signs, as git verifies them.
public struct CommitSignature: Sendable, Hashable {
    /// The armored signature (`-----BEGIN PGP SIGNATURE-----` or `-----BEGIN SSH SIGNATURE-----`).
    public let signature: Data
    /// The commit object without its `gpgsig` header: what was signed.
    public let signedData: Data

    public var isSSH: Bool { signature.starts(with: Data("-----BEGIN SSH SIGNATURE-----".utf8)) }
}

extension Repository {
    /// The signature in a commit's `gpgsig` header, or nil when the commit is not signed.
    public func signature(of commit: ObjectID) throws -> CommitSignature? {
        var oid = commit.raw
        var signature = git_buf()
        var signed = git_buf()
        defer {
            git_buf_dispose(&signature)
            git_buf_dispose(&signed)
        }
        let result = git_commit_extract_signature(&signature, &signed, handle, &oid, nil)
        if result == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try check(result, "git_commit_extract_signature")
        func bytes(_ buffer: git_buf) -> Data {
            guard let pointer = buffer.ptr, buffer.size > 0 else { return Data() }
            return Data(bytes: pointer, count: buffer.size)
        }
        return CommitSignature(signature: bytes(signature), signedData: bytes(signed))
    }

    /// Commits reachable from `tip` but not from `hidden`, newest first, at most `limit`
    /// (every parent, not only the first: a merged-in commit counts too).
    public func commits(from tip: ObjectID, hiding hidden: ObjectID?, limit: Int) throws -> [ObjectID] {
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, handle), "git_revwalk_new")
        defer { git_revwalk_free(walk) }
        var tipOID = tip.raw
        try check(git_revwalk_push(walk, &tipOID), "git_revwalk_push")
        if let hidden, contains(hidden) {
            var hiddenOID = hidden.raw
            try check(git_revwalk_hide(walk, &hiddenOID), "git_revwalk_hide")
        }
        var result: [ObjectID] = []
        var next = git_oid()
        while result.count < limit {
            let code = git_revwalk_next(&next, walk)
            if code == GIT_ITEROVER.rawValue {
                git_error_clear()
                break
            }
            try check(code, "git_revwalk_next")
            result.append(ObjectID(next))
        }
        return result
    }
}
