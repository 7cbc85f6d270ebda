public import Foundation
import CLibGit2

extension Repository {
    /// Writes a commit built from `changes` on top of `parent`, without any working tree or
    /// index: each key is a `/`-separated path from the root, each value the file's new bytes,
    /// or nil to delete it. Directories left empty disappear. The commit is only written to
    /// the object database; no reference moves (see `updateReference`).
    public func createCommit(
        parent: ObjectID?,
        changes: [String: Data?],
        message: String,
        author: Signature,
        committer: Signature? = nil,
        sign: CommitSigning? = nil
    ) throws -> ObjectID {
        var edits: [[Substring]: Data?] = [:]
        for (path, data) in changes {
            let components = path.split(separator: "/", omittingEmptySubsequences: true)
            guard !components.isEmpty, !components.contains(where: { $0 == "." || $0 == ".." || $0 == ".git" }) else {
                throw GitError(.invalidSpec, "'\(path)' is not a path inside a repository", function: "createCommit")
            }
            edits[components] = data
        }
        let baseTree = try parent.map { try commit($0).tree }
        let tree = try editTree(baseTree, edits: edits) ?? emptyTree()
        return try writeCommit(tree: tree, parents: parent.map { [$0] } ?? [], message: message,
                               author: author, committer: committer ?? author, sign: sign)
    }

    /// Writes a commit object with the given tree and parents; with `sign`, the commit carries
    /// the signature `sign` makes of it in a `gpgsig` header, as `git commit -S` writes it.
    public func writeCommit(
        tree: ObjectID, parents: [ObjectID], message: String, author: Signature, committer: Signature,
        sign: CommitSigning? = nil
    ) throws -> ObjectID {
        var treeOID = tree.raw
        var treeObject: OpaquePointer?
        try check(git_tree_lookup(&treeObject, handle, &treeOID), "git_tree_lookup")
        defer { git_tree_free(treeObject) }
        var parentObjects: [OpaquePointer?] = []
        defer { parentObjects.forEach { git_commit_free($0) } }
        for parent in parents {
            var oid = parent.raw
            var object: OpaquePointer?
            try check(git_commit_lookup(&object, handle, &oid), "git_commit_lookup", notFoundMessage: "parent commit \(parent) not found")
            parentObjects.append(object)
        }
        var out = git_oid()
        try author.withGitSignature { authorSignature in
            try committer.withGitSignature { committerSignature in
                try parentObjects.withUnsafeMutableBufferPointer { buffer in
                    guard let sign else {
                        try check(git_commit_create(
                            &out, handle, nil, authorSignature, committerSignature, "UTF-8", message, treeObject,
                            buffer.count, buffer.baseAddress), "git_commit_create")
                        return
                    }
                    let content = try commitBuffer(author: authorSignature, committer: committerSignature, message: message,
                                                   tree: treeObject, parents: buffer)
                    out = try writeSigned(content, signature: try sign(Data(content.utf8)))
                }
            }
        }
        return ObjectID(out)
    }

    /// The commit object's text as it would be written: what a signature signs.
    private func commitBuffer(author: UnsafePointer<git_signature>?, committer: UnsafePointer<git_signature>?, message: String,
                              tree: OpaquePointer?, parents: UnsafeMutableBufferPointer<OpaquePointer?>) throws -> String {
        var content = git_buf()
        defer { git_buf_dispose(&content) }
        try check(git_commit_create_buffer(&content, handle, author, committer, "UTF-8", message, tree,
                                           parents.count, parents.baseAddress), "git_commit_create_buffer")
        guard let pointer = content.ptr else { throw GitError(.other, "libgit2 made an empty commit buffer", function: "git_commit_create_buffer") }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: content.size), as: UTF8.self)
    }

    /// Writes `content` with `signature` in its `gpgsig` header. libgit2 ends the header's last
    /// line itself, so the signature's own final line break goes (git writes it that way too,
    /// and a stray ` ` line would make the commit differ from git's).
    private func writeSigned(_ content: String, signature: String) throws -> git_oid {
        var armored = Substring(signature)
        while armored.hasSuffix("\n") { armored = armored.dropLast() }
        guard !armored.isEmpty else { throw GitError(.invalidSpec, "the commit signature is empty", function: "writeSigned") }
        var out = git_oid()
        try check(git_commit_create_with_signature(&out, handle, content, String(armored), "gpgsig"), "git_commit_create_with_signature")
        return out
    }

    /// Applies edits to a tree, rebuilding only the subtrees they touch. Returns nil when the
    /// result is empty.
    private func editTree(_ base: ObjectID?, edits: [[Substring]: Data?]) throws -> ObjectID? {
        var baseTree: OpaquePointer?
        if let base {
            var oid = base.raw
            try check(git_tree_lookup(&baseTree, handle, &oid), "git_tree_lookup")
        }
        defer { git_tree_free(baseTree) }
        var builder: OpaquePointer?
        try check(git_treebuilder_new(&builder, handle, baseTree), "git_treebuilder_new")
        defer { git_treebuilder_free(builder) }

        var byChild: [Substring: [[Substring]: Data?]] = [:]
        for (components, data) in edits {
            let name = components[0]
            if components.count == 1 {
                if let data {
                    var blobOID = git_oid()
                    try data.withUnsafeBytes { bytes in
                        try check(git_blob_create_from_buffer(&blobOID, handle, bytes.baseAddress, bytes.count), "git_blob_create_from_buffer")
                    }
                    try check(git_treebuilder_insert(nil, builder, String(name), &blobOID, GIT_FILEMODE_BLOB), "git_treebuilder_insert")
                } else if git_treebuilder_get(builder, String(name)) != nil {
                    try check(git_treebuilder_remove(builder, String(name)), "git_treebuilder_remove")
                }
            } else {
                byChild[name, default: [:]][Array(components.dropFirst())] = data
            }
        }
        for (name, childEdits) in byChild {
            var childBase: ObjectID?
            if let existing = git_treebuilder_get(builder, String(name)) {
                if git_tree_entry_type(existing) == GIT_OBJECT_TREE, let id = git_tree_entry_id(existing) {
                    childBase = ObjectID(id)
                }
            }
            if let child = try editTree(childBase, edits: childEdits) {
                var childOID = child.raw
                try check(git_treebuilder_insert(nil, builder, String(name), &childOID, GIT_FILEMODE_TREE), "git_treebuilder_insert")
            } else if git_treebuilder_get(builder, String(name)) != nil {
                try check(git_treebuilder_remove(builder, String(name)), "git_treebuilder_remove")
            }
        }
        guard git_treebuilder_entrycount(builder) > 0 else { return nil }
        var out = git_oid()
        try check(git_treebuilder_write(&out, builder), "git_treebuilder_write")
        return ObjectID(out)
    }

    private func emptyTree() throws -> ObjectID {
        var builder: OpaquePointer?
        try check(git_treebuilder_new(&builder, handle, nil), "git_treebuilder_new")
        defer { git_treebuilder_free(builder) }
        var out = git_oid()
        try check(git_treebuilder_write(&out, builder), "git_treebuilder_write")
        return ObjectID(out)
    }
}
