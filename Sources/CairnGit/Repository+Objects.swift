public import Foundation
import CLibGit2

/// Who made a commit and when.
public struct Signature: Sendable, Hashable {
    public var name: String
    public var email: String
    public var time: Date

    public init(name: String, email: String, time: Date = Date()) {
        self.name = name
        self.email = email
        self.time = time
    }
}

/// A commit as read from the object database.
public struct Commit: Sendable, Hashable {
    public let id: ObjectID
    public let tree: ObjectID
    public let parents: [ObjectID]
    public let author: Signature
    public let committer: Signature
    public let message: String

    /// The first line of the message.
    public var subject: String { String(message.prefix { $0 != "\n" }) }
}

/// One file found by listing a tree.
public struct TreeEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case file, executable, symlink, submodule
    }
    /// The path from the repository root, `/`-separated.
    public let path: String
    public let blob: ObjectID
    public let kind: Kind
}

extension Repository {
    /// Reads a commit: id, tree, parents, author, committer and message.
    public func commit(_ id: ObjectID) throws -> Commit {
        try withCommit(id) { commit in
            var parents: [ObjectID] = []
            for index in 0..<git_commit_parentcount(commit) {
                if let parent = git_commit_parent_id(commit, index) { parents.append(ObjectID(parent)) }
            }
            let message = git_commit_message(commit).map { String(cString: $0) } ?? ""
            guard let tree = git_commit_tree_id(commit) else {
                throw GitError(.other, "commit \(id) has no tree", function: "git_commit_tree_id")
            }
            return Commit(
                id: id, tree: ObjectID(tree), parents: parents,
                author: Signature(git_commit_author(commit)),
                committer: Signature(git_commit_committer(commit)),
                message: message)
        }
    }

    /// Lists every file under `path` in the tree of `commit`, without a working tree. `path`
    /// is `/`-separated from the root; an empty path lists the whole tree. A path that does not
    /// exist in the commit throws `.notFound`; a path naming a file lists just that file. A tree
    /// beyond `TreeLimits.standard` throws `.limitExceeded`: callers that read trees pushed by
    /// others use `listTree`, which reads what it may and names what it refused.
    public func listFiles(in commit: ObjectID, under path: String = "") throws -> [TreeEntry] {
        let listing = try listTree(in: commit, under: path)
        if let first = listing.refused.first {
            throw GitError(.limitExceeded, "the tree of commit \(commit.short) is too large to read: \(first)")
        }
        return listing.entries
    }

    /// Lists the files under `path` that `include` accepts, walking iteratively within
    /// `limits`: a directory too deep, or past the entry budget, is refused by path and the
    /// rest is read.
    public func listTree(in commit: ObjectID, under path: String = "", limits: TreeLimits = .standard,
                         include: (String) -> Bool = { _ in true }) throws -> TreeListing {
        let prefix = path.split(separator: "/").joined(separator: "/")
        return try withCommitTree(commit) { root in
            var budget = TreeBudget(limits)
            var entries: [TreeEntry] = []
            guard !prefix.isEmpty else {
                try walk(root.flatMap { git_tree_id($0) }.map { ObjectID($0) }, prefix: "", depth: 0, budget: &budget,
                         include: include, into: &entries)
                return TreeListing(entries: entries, refused: budget.refusals)
            }
            var entry: OpaquePointer?
            try check(git_tree_entry_bypath(&entry, root, prefix), "git_tree_entry_bypath",
                      notFoundMessage: "path '\(prefix)' not found in commit \(commit.short)")
            defer { git_tree_entry_free(entry) }
            if git_tree_entry_type(entry) == GIT_OBJECT_TREE {
                try walk(ObjectID(git_tree_entry_id(entry)), prefix: prefix + "/", depth: prefix.split(separator: "/").count,
                         budget: &budget, include: include, into: &entries)
            } else if let file = TreeEntry(entry, path: prefix), include(prefix) {
                entries.append(file)
            }
            return TreeListing(entries: entries, refused: budget.refusals)
        }
    }

    /// Breadth first over a queue (never the call stack); the result is in path order.
    private func walk(_ tree: ObjectID?, prefix: String, depth: Int, budget: inout TreeBudget,
                      include: (String) -> Bool, into result: inout [TreeEntry]) throws {
        guard let tree else { return }
        var queue: [(tree: ObjectID, prefix: String, depth: Int)] = [(tree, prefix, depth)]
        var head = 0
        while head < queue.count {
            let next = queue[head]
            head += 1
            if head > 4096 {
                // Drop what was read, so the queue holds only what is still to read.
                queue.removeFirst(head)
                head = 0
            }
            let directory = next.prefix.isEmpty ? "." : String(next.prefix.dropLast())
            guard budget.mayLoad(directory: directory, depth: next.depth) else { continue }
            try withTree(next.tree) { handle in
                let count = git_tree_entrycount(handle)
                guard budget.admit(directory: directory, depth: next.depth, entries: count) else { return }
                for index in 0..<count {
                    guard let entry = git_tree_entry_byindex(handle, index), let namePointer = git_tree_entry_name(entry) else { continue }
                    let nameBytes = strlen(namePointer)
                    guard nameBytes <= TreeBudget.maxNameBytes, next.prefix.utf8.count + nameBytes <= TreeBudget.maxPathBytes else {
                        _ = budget.accepts(name: nameBytes, path: next.prefix + String(cString: namePointer).prefix(64))
                        continue
                    }
                    let path = next.prefix + String(cString: namePointer)
                    if git_tree_entry_type(entry) == GIT_OBJECT_TREE {
                        queue.append((ObjectID(git_tree_entry_id(entry)), path + "/", next.depth + 1))
                    } else if include(path), let file = TreeEntry(entry, path: path) {
                        result.append(file)
                    }
                }
            }
        }
        result.sort { $0.path < $1.path }
    }

    /// Reads a blob's bytes.
    public func blob(_ id: ObjectID) throws -> Data {
        var oid = id.raw
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, handle, &oid), "git_blob_lookup", notFoundMessage: "blob \(id) not found")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let bytes = git_blob_rawcontent(blob) else { return Data() }
        return Data(bytes: bytes, count: size)
    }

    /// The size of a blob in bytes, read from its header without loading a loose object whole.
    public func blobSize(_ id: ObjectID) throws -> Int {
        var oid = id.raw
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, handle), "git_repository_odb")
        defer { git_odb_free(odb) }
        var size = 0
        var type = GIT_OBJECT_ANY
        try check(git_odb_read_header(&size, &type, odb, &oid), "git_odb_read_header", notFoundMessage: "blob \(id) not found")
        return size
    }

    /// Reads the file at `path` in `commit`, or nil when there is none.
    public func file(at path: String, in commit: ObjectID) throws -> Data? {
        guard let (id, type) = try entry(at: path, in: commit), type == GIT_OBJECT_BLOB else { return nil }
        return try blob(id)
    }

    /// The id and type of what stands at `path` in `commit`, or nil when nothing does.
    func entry(at path: String, in commit: ObjectID) throws -> (ObjectID, git_object_t)? {
        try withCommitTree(commit) { root in
            var entry: OpaquePointer?
            let result = git_tree_entry_bypath(&entry, root, path)
            if result == GIT_ENOTFOUND.rawValue {
                git_error_clear()
                return nil
            }
            try check(result, "git_tree_entry_bypath")
            defer { git_tree_entry_free(entry) }
            guard let id = git_tree_entry_id(entry) else { return nil }
            return (ObjectID(id), git_tree_entry_type(entry))
        }
    }

    func withCommit<T>(_ id: ObjectID, _ body: (OpaquePointer?) throws -> T) throws -> T {
        var oid = id.raw
        var commit: OpaquePointer?
        try check(git_commit_lookup(&commit, handle, &oid), "git_commit_lookup", notFoundMessage: "commit \(id) not found")
        defer { git_commit_free(commit) }
        return try body(commit)
    }

    func withCommitTree<T>(_ id: ObjectID, _ body: (OpaquePointer?) throws -> T) throws -> T {
        try withCommit(id) { commit in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commit), "git_commit_tree")
            defer { git_tree_free(tree) }
            return try body(tree)
        }
    }
}

extension TreeEntry {
    init?(_ entry: OpaquePointer?, path: String) {
        guard let id = git_tree_entry_id(entry) else { return nil }
        let kind: Kind
        switch git_tree_entry_filemode(entry) {
        case GIT_FILEMODE_BLOB: kind = .file
        case GIT_FILEMODE_BLOB_EXECUTABLE: kind = .executable
        case GIT_FILEMODE_LINK: kind = .symlink
        case GIT_FILEMODE_COMMIT: kind = .submodule
        default: return nil
        }
        self.init(path: path, blob: ObjectID(id), kind: kind)
    }
}

extension Signature {
    init(_ pointer: UnsafePointer<git_signature>?) {
        guard let signature = pointer?.pointee else {
            self.init(name: "", email: "", time: Date(timeIntervalSince1970: 0))
            return
        }
        self.init(
            name: signature.name.map { String(cString: $0) } ?? "",
            email: signature.email.map { String(cString: $0) } ?? "",
            time: Date(timeIntervalSince1970: TimeInterval(signature.when.time)))
    }

    /// Calls `body` with a libgit2 signature that lives for the duration of the call.
    func withGitSignature<T>(_ body: (UnsafePointer<git_signature>?) throws -> T) throws -> T {
        var signature: UnsafeMutablePointer<git_signature>?
        let offset = Int32(TimeZone.current.secondsFromGMT(for: time) / 60)
        try check(git_signature_new(&signature, name, email, git_time_t(time.timeIntervalSince1970), offset), "git_signature_new")
        defer { git_signature_free(signature) }
        return try body(signature)
    }
}
