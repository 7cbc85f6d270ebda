public import CairnGit
public import CairnRun
public import Foundation

/// A run's checkout from the daemon's repository: the commit's tree written into the run's
/// `work/` directory. Each call opens its own `Repository` (libgit2 handles are not shared
/// across threads), which costs well under a millisecond.
public struct GitCheckout: SourceCheckout {
    public let repository: URL
    public let limits: TreeLimits

    public init(repository: URL, limits: TreeLimits = .standard) {
        self.repository = repository
        self.limits = limits
    }

    public func checkout(commit: String, into directory: URL) throws {
        guard let id = ObjectID(hex: commit) else {
            throw GitError(.invalidSpec, "'\(commit)' is not a full commit id", function: "checkout")
        }
        try Repository.open(at: repository).writeTree(of: id, into: directory, limits: limits)
    }
}
