/// The grammar of GTO's git tags (iterative.ai's Git Tag Ops), as GTO 1.10 writes and reads
/// them, so that `gto show`, `gto history` and CI that reacts to tags can read Cairn's registry.
///
/// What GTO's source says, and Cairn follows:
/// - `gto/constants.py`, `tag_re`: a tag is `<artifact>@v<semver>` (a registration),
///   `<artifact>#<stage>` (an assignment), either with `!` after it (a deregistration, an
///   unassignment), or `<artifact>@deprecated`; any of them may end in `#<counter>`.
/// - `gto/tag.py`, `name_tag`: the counter of a new tag is one more than the highest counter of
///   *every* tag of the same artifact in the repository, whatever its stage or action; it is
///   not counted per stage. `gto/api.py` gives `register` no counter (`simple=True`) and
///   `assign` and `unassign` one (`simple=False`).
/// - `gto/registry.py`: `register` points the tag at the commit the version was made from;
///   `assign` at the commit of the version it assigns (`find_commit`); `unassign` at the
///   commit of the version that leaves the stage. Its default messages are the ones below.
/// - `gto/tag.py`, `find` and `index_tag`: GTO reads only annotated tags, orders a model's
///   events by the tag's time (whole seconds in git), and knows a version by its commit: one
///   version per commit (`register` refuses a second one, `VersionExistsForCommit`).
public enum GTOTag {
    public enum Action: String, Sendable {
        case register, deregister, assign, unassign, deprecate, create
    }

    /// A tag name as GTO reads it.
    public struct Parsed: Hashable, Sendable {
        /// The artifact's name (`=` in the tag stands for GTO's `:`).
        public var artifact: String
        public var action: Action
        /// `v1.0.0` for a registration or deregistration.
        public var version: String?
        public var stage: String?
        public var counter: Int?

        public init(artifact: String, action: Action, version: String? = nil, stage: String? = nil, counter: Int? = nil) {
            self.artifact = artifact
            self.action = action
            self.version = version
            self.stage = stage
            self.counter = counter
        }
    }

    /// Cairn's version `n` as GTO's semantic version: `v<n>.0.0`. Every Cairn version is a new
    /// model (numbers only grow), so the major number carries it.
    public static func semver(_ version: Int) -> String { "v\(version).0.0" }

    /// `churn@v3.0.0`.
    public static func registration(model: String, version: Int) -> String { "\(model)@\(semver(version))" }

    /// `churn#production#4`, or `churn#production!#5` for an unassignment.
    public static func stage(model: String, stage: String, assigned: Bool, counter: Int) -> String {
        "\(model)#\(stage)\(assigned ? "" : "!")#\(counter)"
    }

    /// `gto register`'s message.
    public static func registrationMessage(model: String, version: Int) -> String {
        "Registering artifact \(model) version \(semver(version))"
    }

    /// `gto assign`'s message.
    public static func assignmentMessage(model: String, stage: String, version: Int) -> String {
        "Assigning stage \(stage) to artifact \(model) version \(semver(version))"
    }

    /// `gto deprecate MODEL VERSION STAGE`'s (an unassignment's) message, quotes and all.
    public static func unassignmentMessage(model: String, stage: String, version: Int) -> String {
        "Unassigning stage '\(stage)' to artifact '\(model)' version '\(semver(version))'"
    }

    /// Whether GTO accepts `text` as an artifact or stage name (`name_re`): letters, digits,
    /// `-`, `_` and `/`, starting and ending with a letter or digit.
    public static func isValidName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "/") }
    }

    /// What GTO reads from a tag name; nil for a tag GTO ignores.
    public static func parse(_ name: String) -> Parsed? {
        guard let split = name.firstIndex(where: { $0 == "@" || $0 == "#" }) else { return nil }
        let artifact = String(name[..<split])
        guard isArtifactInTag(artifact) else { return nil }
        var rest = Substring(name[split...])
        var counter: Int?
        // A trailing `#<digits>` is the counter, unless what is left would then not parse
        // (`churn#7` is the stage 7, not a counter).
        if let hash = rest.lastIndex(of: "#"), hash != rest.startIndex {
            let digits = rest[rest.index(after: hash)...]
            if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) {
                counter = value
                rest = rest[..<hash]
            }
        }
        guard var parsed = parseAction(rest) else { return nil }
        parsed.artifact = artifact.replacingOccurrences(of: "=", with: ":")
        parsed.counter = counter
        return parsed
    }

    /// `@v<semver>[!]`, `#<stage>[!]`, `@deprecated`, `@created`.
    private static func parseAction(_ text: Substring) -> Parsed? {
        let cancel = text.hasSuffix("!")
        let body = cancel ? text.dropLast() : text
        if body.hasPrefix("#") {
            let stage = String(body.dropFirst())
            guard isValidName(stage) else { return nil }
            return Parsed(artifact: "", action: cancel ? .unassign : .assign, stage: stage)
        }
        guard body.hasPrefix("@") else { return nil }
        let word = body.dropFirst()
        if !cancel, word == "deprecated" { return Parsed(artifact: "", action: .deprecate) }
        if !cancel, word == "created" { return Parsed(artifact: "", action: .create) }
        guard word.hasPrefix("v"), isSemanticVersion(word.dropFirst()) else { return nil }
        return Parsed(artifact: "", action: cancel ? .deregister : .register, version: String(word))
    }

    /// GTO's artifact in a tag: an optional `<dirname>=` and a name.
    private static func isArtifactInTag(_ text: String) -> Bool {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return isValidName(text)
        case 2:
            let directory = parts[0].utf8
            return !directory.isEmpty && directory.allSatisfy { isAlphanumeric($0) || "-_./".utf8.contains($0) }
                && isValidName(String(parts[1]))
        default: return false
        }
    }

    /// Semantic versioning 2.0.0: `1.2.3`, `1.2.3-rc.1`, `1.2.3+build.5`.
    static func isSemanticVersion(_ text: Substring) -> Bool {
        var core = text
        var build: Substring?
        if let plus = core.firstIndex(of: "+") {
            build = core[core.index(after: plus)...]
            core = core[..<plus]
        }
        var prerelease: Substring?
        if let dash = core.firstIndex(of: "-") {
            prerelease = core[core.index(after: dash)...]
            core = core[..<dash]
        }
        let numbers = core.split(separator: ".", omittingEmptySubsequences: false)
        guard numbers.count == 3, numbers.allSatisfy(isNumber) else { return false }
        if let prerelease {
            let identifiers = prerelease.split(separator: ".", omittingEmptySubsequences: false)
            guard identifiers.allSatisfy({ isNumber($0) || (isIdentifier($0) && !$0.allSatisfy { $0.isASCII && $0.isNumber }) })
            else { return false }
        }
        if let build {
            guard build.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isIdentifier) else { return false }
        }
        return true
    }

    /// `0` or digits without a leading zero.
    private static func isNumber(_ text: Substring) -> Bool {
        guard let first = text.first, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        return first != "0" || text.count == 1
    }

    private static func isIdentifier(_ text: Substring) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
