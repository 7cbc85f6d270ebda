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
    /// are detected by content similarity, as `git diff -M` does. A diff beyond
    /// `TreeLimits.standard` throws `.limitExceeded`; `boundedDiff` names what it refused instead.
    public func diff(from old: ObjectID?, to new: ObjectID, under path: String = "") throws -> [Change] {
        let result = try boundedDiff(from: old, to: new, under: path)
        if let first = result.refused.first {
            throw GitError(.limitExceeded, "the change to commit \(new.short) is too large to read: \(first)")
        }
        return result.changes
    }

    /// The diff within `limits`: a directory too deep or past the entry budget is refused by
    /// path, and renames are then not looked for (libgit2's search is not bounded).
    public func boundedDiff(from old: ObjectID?, to new: ObjectID, under path: String = "", limits: TreeLimits = .standard) throws -> TreeDiff {
        let prefix = path.split(separator: "/").joined(separator: "/")
        let oldTree = try old.map { try subtree(of: $0, at: prefix) } ?? nil
        let newTree = try subtree(of: new, at: prefix)
        var budget = TreeBudget(limits)
        var changes: [Change] = []
        try compareTrees(oldTree, newTree, prefix: prefix.isEmpty ? "" : prefix + "/", depth: prefix.split(separator: "/").count,
                         budget: &budget, into: &changes)
        // Renames pair an added path with a deleted one: only then is libgit2's similarity
        // search worth its cost (it reads and compares blob contents).
        if budget.refused.isEmpty, changes.contains(where: { $0.kind == .added }), changes.contains(where: { $0.kind == .deleted }) {
            return TreeDiff(changes: try diffDetectingRenames(from: old, to: new, prefix: prefix), refused: [])
        }
        return TreeDiff(changes: changes, refused: budget.refusals)
    }

    /// The id of the tree at `path` in `commit`, or nil when there is no directory there.
    private func subtree(of commit: ObjectID, at path: String) throws -> ObjectID? {
        guard !path.isEmpty else { return try self.commit(commit).tree }
        guard let (id, type) = try entry(at: path, in: commit), type == GIT_OBJECT_TREE else { return nil }
        return id
    }

    /// Walks two sorted trees side by side, descending only into subtrees whose ids differ,
    /// so a change costs what the changed directories hold, not what the repository holds.
    /// Entries are compared in place (raw ids, C names); Swift values are made only for
    /// changes. Iterative over an explicit stack, within the budget.
    private func compareTrees(_ old: ObjectID?, _ new: ObjectID?, prefix: String, depth: Int, budget: inout TreeBudget,
                              into changes: inout [Change]) throws {
        var pending: [(old: ObjectID?, new: ObjectID?, prefix: String, depth: Int)] = [(old, new, prefix, depth)]
        while let next = pending.popLast() {
            guard next.old != next.new else { continue }
            let directory = next.prefix.isEmpty ? "." : String(next.prefix.dropLast())
            guard budget.mayLoad(directory: directory, depth: next.depth) else { continue }
            var subtrees: [(ObjectID?, ObjectID?, String, Int)] = []
            try withTree(next.old) { oldTree in
                try withTree(next.new) { newTree in
                    let oldCount = oldTree.map(git_tree_entrycount) ?? 0
                    let newCount = newTree.map(git_tree_entrycount) ?? 0
                    guard budget.admit(directory: directory, depth: next.depth, entries: oldCount + newCount) else { return }
                    func emit(_ entry: OpaquePointer, as kind: Change.Kind) {
                        guard git_tree_entry_filemode(entry) != GIT_FILEMODE_COMMIT else { return }
                        let nameBytes = strlen(git_tree_entry_name(entry))
                        guard nameBytes <= TreeBudget.maxNameBytes, next.prefix.utf8.count + nameBytes <= TreeBudget.maxPathBytes else {
                            _ = budget.accepts(name: nameBytes, path: next.prefix + String(cString: git_tree_entry_name(entry)).prefix(64))
                            return
                        }
                        let path = next.prefix + String(cString: git_tree_entry_name(entry))
                        let id = ObjectID(git_tree_entry_id(entry))
                        if git_tree_entry_type(entry) == GIT_OBJECT_TREE {
                            subtrees.append((kind == .deleted ? id : nil, kind == .added ? id : nil, path + "/", next.depth + 1))
                        } else {
                            changes.append(Change(kind: kind, path: path, oldPath: path,
                                                  newBlob: kind == .added ? id : nil, oldBlob: kind == .deleted ? id : nil))
                        }
                    }
                    var i = 0, j = 0
                    while i < oldCount || j < newCount {
                        let a = i < oldCount ? git_tree_entry_byindex(oldTree, i) : nil
                        let b = j < newCount ? git_tree_entry_byindex(newTree, j) : nil
                        let order = compareEntries(a, b)
                        if order == 0, let a, let b {
                            i += 1; j += 1
                            let aTree = git_tree_entry_type(a) == GIT_OBJECT_TREE, bTree = git_tree_entry_type(b) == GIT_OBJECT_TREE
                            if git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b)) == 1 && aTree == bTree { continue }
                            let nameBytes = strlen(git_tree_entry_name(a))
                            guard nameBytes <= TreeBudget.maxNameBytes, next.prefix.utf8.count + nameBytes <= TreeBudget.maxPathBytes else {
                                _ = budget.accepts(name: nameBytes, path: next.prefix + String(cString: git_tree_entry_name(a)).prefix(64))
                                continue
                            }
                            let name = String(cString: git_tree_entry_name(a))
                            if aTree && bTree {
                                subtrees.append((ObjectID(git_tree_entry_id(a)), ObjectID(git_tree_entry_id(b)), next.prefix + name + "/",
                                                 next.depth + 1))
                            } else if !aTree && !bTree {
                                changes.append(Change(kind: .modified, path: next.prefix + name, oldPath: next.prefix + name,
                                                      newBlob: ObjectID(git_tree_entry_id(b)), oldBlob: ObjectID(git_tree_entry_id(a))))
                            } else {
                                emit(a, as: .deleted)
                                emit(b, as: .added)
                            }
                        } else if order < 0, let a {
                            i += 1
                            emit(a, as: .deleted)
                        } else if let b {
                            j += 1
                            emit(b, as: .added)
                        }
                    }
                }
            }
            pending.append(contentsOf: subtrees.reversed())
        }
    }

    func withTree<T>(_ id: ObjectID?, _ body: (OpaquePointer?) throws -> T) throws -> T {
        guard let id else { return try body(nil) }
        var oid = id.raw
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, handle, &oid), "git_tree_lookup")
        defer { git_tree_free(tree) }
        return try body(tree)
    }

    /// libgit2's own diff with rename detection, for the rare change that adds and deletes.
    private func diffDetectingRenames(from old: ObjectID?, to new: ObjectID, prefix: String) throws -> [Change] {
        try withOptionalTree(old) { oldTree in
            try withCommitTree(new) { newTree in
                var options = cairn_diff_options_init()
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

/// Orders two tree entries by name, with a missing entry after everything. Equal names
/// compare equal whatever their types, so a file replaced by a directory of the same name
/// meets itself in the walk.
private func compareEntries(_ a: OpaquePointer?, _ b: OpaquePointer?) -> Int32 {
    guard let a else { return 1 }
    guard let b else { return -1 }
    guard let left = git_tree_entry_name(a), let right = git_tree_entry_name(b) else { return 0 }
    let result = strcmp(left, right)
    if result == 0 { return 0 }
    // Git sorts directory names as if they ended in '/', which strcmp alone does not see.
    return git_tree_entry_cmp(a, b) < 0 ? -1 : 1
}

/// Calls `body` with a libgit2 string array that borrows `strings` for the call's duration.
func withPathspec<T>(_ strings: [String], _ body: (git_strarray) throws -> T) throws -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        try body(git_strarray(strings: buffer.baseAddress, count: buffer.count))
    }
}
