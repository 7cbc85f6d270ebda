/// What a command reads: a path in the repository, or an absolute path outside it.
///
/// Data outside the repository is reached only under the daemon's `--data-root` directories;
/// whether an external path lies under one is checked when a run is prepared, not here, since
/// the manifest does not know the daemon's configuration. Here an external path is only
/// checked to be absolute and normal: no `.` or `..` component, no empty component (`//`), no
/// trailing slash, no NUL or other control character, so that comparing it with a root
/// textually is the same as comparing the places on disk (symbolic links aside).
///
/// Codable as the plain string written in the manifest, so specs stored before external paths
/// existed decode as they are, and content keys of repository paths did not change.
public enum DependencyPath: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    case repository(RepositoryPath)
    /// An absolute, normalised path, such as `/mnt/data/raw.csv`.
    case external(String)

    /// A path starting with `/` is external and must be normal; anything else is a repository path.
    public init(_ raw: String) throws(ValueError) {
        if raw.hasPrefix("/") {
            try Self.checkExternal(raw)
            self = .external(raw)
        } else {
            self = .repository(try RepositoryPath(raw))
        }
    }

    /// The repository path, or nil for an external one.
    public var repositoryPath: RepositoryPath? {
        if case .repository(let path) = self { path } else { nil }
    }

    public var description: String {
        switch self {
        case .repository(let path): path.value
        case .external(let path): path
        }
    }

    /// Repository paths first, then external ones, each in text order.
    public static func < (lhs: DependencyPath, rhs: DependencyPath) -> Bool {
        switch (lhs, rhs) {
        case (.repository(let a), .repository(let b)): a < b
        case (.external(let a), .external(let b)): a < b
        case (.repository, .external): true
        case (.external, .repository): false
        }
    }

    private static func checkExternal(_ raw: String) throws(ValueError) {
        if let control = raw.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            let what = control.value == 0 ? "a NUL character" : "a control character (U+\(String(control.value, radix: 16, uppercase: true)))"
            throw ValueError("\(quote(raw)) contains \(what)")
        }
        guard raw != "/" else { throw ValueError("\"/\" names the whole file system, not a file or directory") }
        guard !raw.hasSuffix("/") else { throw ValueError("\(quote(raw)) ends with '/'; write the directory without it") }
        for component in raw.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            switch component {
            case "": throw ValueError("\(quote(raw)) has an empty component ('//')")
            case ".": throw ValueError("\(quote(raw)) has a '.' component; write the path without it")
            case "..": throw ValueError("\(quote(raw)) has a '..' component; write the absolute path it leads to")
            default: continue
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Array where Element == DependencyPath {
    /// The repository paths among these dependencies, in order.
    public var repositoryPaths: [RepositoryPath] { compactMap(\.repositoryPath) }
    /// The external (absolute) paths among these dependencies, in order.
    public var externalPaths: [String] {
        compactMap { if case .external(let path) = $0 { path } else { nil } }
    }
}
