/// What reading one commit's tree may cost. Anyone who can push chooses the tree, and a few
/// objects can name a billion paths (a "git bomb": one subtree referenced many times at each
/// level) or nest fifty thousand directories deep. Walks are iterative, never recursive,
/// breadth first (so shallow directories are read before a bomb's deep levels use up the
/// budget), and stop at these bounds; what lies beyond is refused by path, and the rest is read.
public struct TreeLimits: Sendable, Hashable {
    /// Directory levels below the root.
    public var maxDepth: Int
    /// Tree entries (files and directories) visited in one walk.
    public var maxEntries: Int

    public init(maxDepth: Int = 128, maxEntries: Int = 1_000_000) {
        self.maxDepth = maxDepth
        self.maxEntries = maxEntries
    }

    public static let standard = TreeLimits()
}

/// A part of a tree a walk did not read because it exceeded the bounds.
public struct TreeRefusal: Sendable, Hashable, CustomStringConvertible {
    /// The directory (or, for the entry budget, the first directory) not read.
    public let path: String
    public let reason: String

    public var description: String { "\(path): \(reason)" }
}

/// A walk's running cost, checked before each step.
struct TreeBudget {
    let limits: TreeLimits
    private(set) var visited = 0
    private(set) var refused: [TreeRefusal] = []
    /// Directories refused beyond the ones named (a bomb refuses millions).
    private var unnamed = 0
    private static let named = 20

    init(_ limits: TreeLimits) {
        self.limits = limits
    }

    /// The longest name and path a walk accepts, as file systems do (NAME_MAX, PATH_MAX):
    /// counting entries alone, a few long names would still cost gigabytes of paths.
    static let maxNameBytes = 255
    static let maxPathBytes = 4096

    /// Whether a directory may be loaded at all, checked before its tree object is read.
    mutating func mayLoad(directory path: String, depth: Int) -> Bool {
        if depth > limits.maxDepth {
            refuse(path, "nested more than \(limits.maxDepth) directories deep; not read (--max-tree-depth sets the limit)")
            return false
        }
        if visited >= limits.maxEntries {
            refuse(path, "the commit's tree has more than \(limits.maxEntries) entries; this directory was not read "
                   + "(--max-tree-entries sets the limit)")
            return false
        }
        return true
    }

    /// Whether an entry's name and path are short enough to be read; records why not.
    mutating func accepts(name: Int, path: String) -> Bool {
        if name > Self.maxNameBytes || path.utf8.count > Self.maxPathBytes {
            refuse(String(path.prefix(200)), "a name longer than \(Self.maxNameBytes) bytes or a path longer than \(Self.maxPathBytes); not read")
            return false
        }
        return true
    }

    /// Whether a directory at `depth` levels, holding `entries`, may be read; records why not.
    mutating func admit(directory path: String, depth: Int, entries: Int) -> Bool {
        if depth > limits.maxDepth {
            refuse(path, "nested more than \(limits.maxDepth) directories deep; not read (--max-tree-depth sets the limit)")
            return false
        }
        if visited + entries > limits.maxEntries {
            refuse(path, "the commit's tree has more than \(limits.maxEntries) entries; this directory was not read "
                   + "(--max-tree-entries sets the limit)")
            visited = limits.maxEntries
            return false
        }
        visited += entries
        return true
    }

    private mutating func refuse(_ path: String, _ reason: String) {
        if refused.count < Self.named { refused.append(TreeRefusal(path: path, reason: reason)) } else { unnamed += 1 }
    }

    /// What was refused, with one line for those beyond the named ones.
    var refusals: [TreeRefusal] {
        guard unnamed > 0, let last = refused.last else { return refused }
        return refused + [TreeRefusal(path: last.path, reason: "and \(unnamed) more directories were not read for the same reasons")]
    }
}

/// The files of a tree that a bounded walk read, and what it refused.
public struct TreeListing: Sendable {
    public var entries: [TreeEntry]
    public var refused: [TreeRefusal]
}

/// The changes a bounded diff found, and what it refused.
public struct TreeDiff: Sendable {
    public var changes: [Change]
    public var refused: [TreeRefusal]
}
