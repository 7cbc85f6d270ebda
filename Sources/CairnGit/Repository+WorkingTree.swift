import CLibGit2

extension Repository {
    /// Points HEAD at `refs/heads/<branch>`, which need not exist yet.
    public func setHead(branch: String) throws {
        try check(git_repository_set_head(handle, "refs/heads/\(branch)"), "git_repository_set_head")
    }

    /// Makes the index match `commit`'s tree, so that `git status` in a working tree whose
    /// files already match that commit shows nothing to commit.
    public func resetIndex(to commit: ObjectID) throws {
        var index: OpaquePointer?
        try check(git_repository_index(&index, handle), "git_repository_index")
        defer { git_index_free(index) }
        try withCommitTree(commit) { tree in
            try check(git_index_read_tree(index, tree), "git_index_read_tree")
        }
        try check(git_index_write(index), "git_index_write")
    }
}
