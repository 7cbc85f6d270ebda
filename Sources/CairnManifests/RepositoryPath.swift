/// A path relative to the repository root that cannot leave it: not absolute, no `..` that
/// climbs above the root, no `.git`, no NUL. Stored normalised (`./a//b` becomes `a/b`).
public struct RepositoryPath: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let value: String

    public init(_ raw: String) throws(ValueError) {
        guard !raw.isEmpty else { throw ValueError("a path must not be empty") }
        guard !raw.hasPrefix("/"), !raw.hasPrefix("~") else {
            throw ValueError("\(quote(raw)) is absolute; paths are relative to the repository root")
        }
        guard !raw.utf8.contains(0), !raw.utf8.contains(UInt8(ascii: "\\")) else {
            throw ValueError("\(quote(raw)) contains a NUL or a backslash")
        }
        // Most paths are already normal: no empty, ".", ".." or ".git" component.
        if !Self.needsNormalising(raw) {
            self.value = raw
            return
        }
        var parts: [Substring] = []
        for part in raw.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { throw ValueError("\(quote(raw)) leaves the repository through '..'") }
                parts.removeLast()
            case ".git": throw ValueError("\(quote(raw)) points into .git")
            default: parts.append(part)
            }
        }
        guard !parts.isEmpty else { throw ValueError("\(quote(raw)) names the repository root itself, not a file or directory in it") }
        self.value = parts.joined(separator: "/")
    }

    /// Whether some `/`-separated component of `raw` is empty, ".", ".." or ".git".
    private static func needsNormalising(_ raw: String) -> Bool {
        var length = 0
        var dots = 0
        var matchesGit = true
        for byte in raw.utf8 {
            if byte == UInt8(ascii: "/") {
                if length == 0 || length == dots && dots <= 2 || length == 4 && matchesGit { return true }
                (length, dots, matchesGit) = (0, 0, true)
                continue
            }
            if byte == UInt8(ascii: "."), dots == length { dots += 1 }
            if matchesGit {
                switch length {
                case 0: matchesGit = byte == UInt8(ascii: ".")
                case 1: matchesGit = byte == UInt8(ascii: "g")
                case 2: matchesGit = byte == UInt8(ascii: "i")
                case 3: matchesGit = byte == UInt8(ascii: "t")
                default: matchesGit = false
                }
            }
            length += 1
        }
        return length == 0 || length == dots && dots <= 2 || length == 4 && matchesGit
    }

    /// For values already checked by the shape checker; never for user input.
    init(unchecked value: String) {
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: RepositoryPath, rhs: RepositoryPath) -> Bool { lhs.value < rhs.value }

    /// The directories above this path, nearest first: `a/b/c` has `a/b` and `a`.
    public var ancestors: [String] {
        var result: [String] = []
        var current = Substring(value)
        while let slash = current.lastIndex(of: "/") {
            current = current[..<slash]
            result.append(String(current))
        }
        return result
    }

    /// Whether `other` is this path or lies below it.
    public func contains(_ other: RepositoryPath) -> Bool {
        other.value == value || other.value.hasPrefix(value + "/")
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
