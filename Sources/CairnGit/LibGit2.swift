import CLibGit2

/// Process-wide libgit2 setup, done once before the first call.
enum LibGit2 {
    private static let initialised: Bool = {
        git_libgit2_init()
        // The user's and system's git configuration must not change what Cairn reads:
        // empty search paths keep ~/.gitconfig and /etc/gitconfig out.
        for level in [GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL] {
            _ = cairn_opts_set_search_path(Int32(level.rawValue), "")
        }
        // Cairn opens repositories it created itself under its state directory, and ones the
        // operator names explicitly; ownership checks only get in the way of containers.
        _ = cairn_opts_set_owner_validation(0)
        return true
    }()

    static func ensureInitialised() {
        _ = initialised
    }
}

extension Repository {
    /// Keeps trees of up to 1 MiB in libgit2's object cache, for the rest of the process
    /// (libgit2 caches none over 4 KiB by default, so a directory of thousands of manifests is
    /// inflated and parsed again at every path looked up under it). For one-shot commands that
    /// look up many paths in a few commits, such as `cairn plan`; the daemon keeps the default,
    /// so that what it caches stays small over months of commits.
    public static func cacheLargeTrees() {
        LibGit2.ensureInitialised()
        _ = cairn_opts_set_cache_object_limit(GIT_OBJECT_TREE, 1 << 20)
    }
}

/// Turns a libgit2 return code into a thrown `GitError`, reading `git_error_last()` right away
/// on the same thread (libgit2 keeps its last error per thread).
@discardableResult
func check(_ result: Int32, _ function: String = #function, notFoundMessage: String? = nil) throws -> Int32 {
    guard result < 0 else { return result }
    var message = "libgit2 error \(result)"
    var errorClass: Int32 = 0
    if let last = git_error_last() {
        errorClass = last.pointee.klass
        if let text = last.pointee.message { message = String(cString: text) }
    }
    git_error_clear()
    let code: GitError.Code
    switch git_error_code(rawValue: result) {
    case GIT_ENOTFOUND: code = .notFound
    case GIT_EEXISTS: code = .alreadyExists
    case GIT_EMODIFIED: code = .refMoved
    case GIT_ENONFASTFORWARD: code = .pushRejected
    case GIT_EAMBIGUOUS: code = .ambiguous
    case GIT_EINVALIDSPEC: code = .invalidSpec
    case GIT_ELOCKED: code = .locked
    case GIT_EAUTH: code = .authentication
    default:
        code = errorClass == Int32(GIT_ERROR_NET.rawValue) || errorClass == Int32(GIT_ERROR_SSH.rawValue)
            ? .network : .other
    }
    if code == .notFound, let notFoundMessage { message = notFoundMessage }
    throw GitError(code, message, function: function)
}
