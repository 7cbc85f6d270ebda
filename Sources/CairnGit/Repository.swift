public import Foundation
import CLibGit2

/// One git repository, opened through libgit2. It owns its handle and frees it in `deinit`.
///
/// libgit2 objects of one repository must not be used from two threads at once: confine a
/// `Repository` to one actor or serial executor. It is deliberately not `Sendable`.
public final class Repository {
    let handle: OpaquePointer
    /// The repository's git directory (for a bare repository, the repository itself).
    public let gitDirectory: URL
    public let isBare: Bool

    private init(handle: OpaquePointer) {
        self.handle = handle
        let path = git_repository_path(handle).map { String(cString: $0) } ?? ""
        self.gitDirectory = URL(fileURLWithPath: path, isDirectory: true)
        self.isBare = git_repository_is_bare(handle) == 1
    }

    deinit {
        git_repository_free(handle)
    }

    /// Opens an existing repository, bare or with a working tree, at exactly `path` (no
    /// search upwards through parent directories).
    public static func open(at path: URL) throws -> Repository {
        LibGit2.ensureInitialised()
        var handle: OpaquePointer?
        let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
        try check(
            git_repository_open_ext(&handle, path.path, flags, nil), "git_repository_open_ext",
            notFoundMessage: "no git repository at \(path.path)")
        guard let handle else { throw GitError(.other, "libgit2 returned no repository", function: "git_repository_open_ext") }
        return Repository(handle: handle)
    }

    /// Creates a new repository (or reopens one that exists) at `path`.
    public static func create(at path: URL, bare: Bool) throws -> Repository {
        LibGit2.ensureInitialised()
        var handle: OpaquePointer?
        try check(git_repository_init(&handle, path.path, bare ? 1 : 0), "git_repository_init")
        guard let handle else { throw GitError(.other, "libgit2 returned no repository", function: "git_repository_init") }
        return Repository(handle: handle)
    }

    /// Resolves a branch, tag, commit id (full or abbreviated) or any revision expression to
    /// the commit it names; annotated tags are peeled.
    public func resolveCommit(_ revision: String) throws -> ObjectID {
        guard !revision.isEmpty, !revision.hasPrefix("-") else {
            throw GitError(.invalidSpec, "'\(revision)' is not a revision", function: "resolveCommit")
        }
        var object: OpaquePointer?
        var candidates = [revision]
        if !revision.hasPrefix("refs/") {
            // A branch fetched into a mirror lives under refs/heads; a remote-tracking one under refs/remotes/origin.
            candidates += ["refs/remotes/origin/\(revision)"]
        }
        var lastError: (any Error)?
        for candidate in candidates {
            do {
                try check(git_revparse_single(&object, handle, candidate), "git_revparse_single",
                          notFoundMessage: "revision '\(revision)' not found in \(gitDirectory.path)")
                lastError = nil
                break
            } catch {
                lastError = lastError ?? error
            }
        }
        if let lastError { throw lastError }
        guard let object else { throw GitError(.notFound, "revision '\(revision)' not found", function: "git_revparse_single") }
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        try check(git_object_peel(&peeled, object, GIT_OBJECT_COMMIT), "git_object_peel",
                  notFoundMessage: "revision '\(revision)' does not name a commit")
        defer { git_object_free(peeled) }
        guard let id = git_object_id(peeled) else { throw GitError(.other, "peeled object has no id", function: "git_object_id") }
        return ObjectID(id)
    }
}
