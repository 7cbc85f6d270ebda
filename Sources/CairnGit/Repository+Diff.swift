import Foundation
import CLibGit2

/// One path that differs between two commits' trees.
public struct Change: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case added, modified, deleted, renamed
    }
    public let kind: Kind
    /// The path in the new tree (for a deletion, the path that was removed).
    public let path: String
    /// The path in the old tree; differs from `path` only for a rename.
    public let oldPath: String
    /// The blob in the new tree, or nil for a deletion.
    public let newBlob: ObjectID?
    /// The blob in the old tree, or nil for an addition.
    public let oldBlob: ObjectID?
}

extension Repository {
    /// Diffs the trees of two commits. `from` may be nil (everything is added). Only paths under
    /// `path` (a `/`-separated directory from the root, empty for all) are compared, and renames
    /// are detected by content similarity, as `git diff -M` does.
    public func diff(from old: ObjectID?, to new: ObjectID, under path: String = "") throws -> [Change] {
        try withOptionalTree(old) { oldTree in
            try withCommitTree(new) { newTree in
                var options = cairn_diff_options_init()
                let prefix = path.split(separator: "/").joined(separator: "/")
                return try withPathspec(prefix.isEmpty ? [] : [prefix + "/"]) { pathspec in
                    options.pathspec = pathspec
                    var diff: OpaquePointer?
                    try check(git_diff_tree_to_tree(&diff, handle, oldTree, newTree, &options), "git_diff_tree_to_tree")
                    defer { git_diff_free(diff) }
                    var find = cairn_diff_find_options_init()
                    find.flags = GIT_DIFF_FIND_RENAMES.rawValue
                    try check(git_diff_find_similar(diff, &find), "git_diff_find_similar")
                    var changes: [Change] = []
                    for index in 0..<git_diff_num_deltas(diff) {
                        guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
                        if let change = Change(delta) { changes.append(change) }
                    }
                    return changes
                }
            }
        }
    }

    private func withOptionalTree<T>(_ commit: ObjectID?, _ body: (OpaquePointer?) throws -> T) throws -> T {
        guard let commit else { return try body(nil) }
        return try withCommitTree(commit, body)
    }
}

extension Change {
    init?(_ delta: git_diff_delta) {
        let newPath = delta.new_file.path.map { String(cString: $0) } ?? ""
        let oldPath = delta.old_file.path.map { String(cString: $0) } ?? newPath
        let newBlob = ObjectID(delta.new_file.id)
        let oldBlob = ObjectID(delta.old_file.id)
        switch delta.status {
        case GIT_DELTA_ADDED:
            self.init(kind: .added, path: newPath, oldPath: newPath, newBlob: newBlob, oldBlob: nil)
        case GIT_DELTA_DELETED:
            self.init(kind: .deleted, path: oldPath, oldPath: oldPath, newBlob: nil, oldBlob: oldBlob)
        case GIT_DELTA_MODIFIED, GIT_DELTA_TYPECHANGE:
            self.init(kind: .modified, path: newPath, oldPath: oldPath, newBlob: newBlob, oldBlob: oldBlob)
        case GIT_DELTA_RENAMED:
            self.init(kind: .renamed, path: newPath, oldPath: oldPath, newBlob: newBlob, oldBlob: oldBlob)
        default:
            return nil
        }
    }
}

/// Calls `body` with a libgit2 string array that borrows `strings` for the call's duration.
func withPathspec<T>(_ strings: [String], _ body: (git_strarray) throws -> T) throws -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        try body(git_strarray(strings: buffer.baseAddress, count: buffer.count))
    }
}
