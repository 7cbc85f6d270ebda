import Foundation
import CairnRun

/// What a directory target placed for one deployment, in `<state>/serving/<deployment>/directory.json`.
///
/// It is how Cairn tells its own version directories from anyone else's: only what is
/// listed here is ever pruned or removed, and a listed version that no longer holds its
/// artifact was changed by hand (drift) rather than found occupied. `target` keeps it apart
/// from another kind of target's record for the same deployment name.
struct DirectoryRecord: Codable, Equatable {
    struct Placement: Codable, Equatable {
        var version: Int
        /// The artifact's digest (hex), for messages and for a record read without the request.
        var digest: String
    }

    var target = DirectoryRecord.kind
    /// The absolute base path the versions were placed under.
    var base: String
    var layout: DirectoryLayout
    /// The versions Cairn placed and has not removed, by version.
    var placed: [Placement]
    /// The version last checked to be served.
    var serving: Int?

    static let kind = "directory"
    static let fileName = "directory.json"

    init(base: String, layout: DirectoryLayout) {
        self.base = base
        self.layout = layout
        placed = []
    }

    func holds(_ version: Int) -> Bool { placed.contains { $0.version == version } }

    mutating func add(_ version: Int, digest: String) {
        placed.removeAll { $0.version == version }
        placed.append(Placement(version: version, digest: digest))
        placed.sort { $0.version < $1.version }
    }

    mutating func drop(_ version: Int) { placed.removeAll { $0.version == version } }

    /// The record in `folder`, if there is one and it is a directory target's. A record that
    /// cannot be read is an error: treating it as absent would forget what Cairn placed.
    static func load(from folder: URL) throws -> DirectoryRecord? {
        let url = folder.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try Data(contentsOf: url)
        struct Kind: Decodable { var target: String? }
        guard (try? JSONDecoder().decode(Kind.self, from: data))?.target == kind else { return nil }
        return try JSONDecoder().decode(DirectoryRecord.self, from: data)
    }

    func save(in folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try RunFiles.writeAtomically(try encoder.encode(self), to: folder.appendingPathComponent(Self.fileName))
    }

    /// Deletes the record if it is a directory target's (another target's is left alone).
    static func delete(in folder: URL) throws {
        guard try load(from: folder) != nil else { return }
        try FileManager.default.removeItem(at: folder.appendingPathComponent(fileName))
        // The folder goes too when nothing else (another target's files) is in it.
        _ = rmdir(folder.path)
    }
}

/// How versions sit under a directory target's base path.
///
/// - `tfserving`: `<base>/<version>/`, the layout TensorFlow Serving (and Triton's model
///   repository) watch; several versions side by side, the newest `keep` kept.
/// - `plain`: `<base>` holds one version, for a server that loads a fixed path. `<base>` is a
///   symlink Cairn owns, pointing at a hidden version directory beside it
///   (`.<name>.cairn-<version>`); a switch makes a new symlink under a temporary name and
///   renames it over `<base>`, which rename(2) does atomically, so a reader opening
///   `<base>/model.bin` finds the old version or the new one, never a mix or nothing. (Swapping
///   a real directory could not be atomic: rename(2) will not replace a non-empty directory.)
enum DirectoryLayout: String, Codable, Sendable {
    case tfserving
    case plain
}

/// Where each thing of one directory target lives.
struct DirectoryPaths {
    let base: URL
    let layout: DirectoryLayout

    /// The directory new versions are staged in and renamed from: the same file system as
    /// their final place, so the rename is atomic.
    var staging: URL { layout == .tfserving ? base : base.deletingLastPathComponent() }

    /// The hidden prefix of staging names. TF Serving ignores names that are not integers,
    /// and Cairn removes what a crash left under this prefix.
    var stagingPrefix: String { layout == .tfserving ? ".cairn-staging-" : ".\(base.lastPathComponent).cairn-staging-" }

    private var hiddenPrefix: String { ".\(base.lastPathComponent).cairn-" }

    /// Where a version's files are: `<base>/3`, or for `plain` the hidden `.<name>.cairn-3` beside `<base>`.
    func directory(of version: Int) -> URL {
        switch layout {
        case .tfserving: base.appendingPathComponent(String(version))
        case .plain: staging.appendingPathComponent("\(hiddenPrefix)\(version)")
        }
    }

    /// The symlink text that makes `<base>` serve `version` (`plain` only): relative, so it
    /// holds in a container that mounts the parent elsewhere.
    func linkText(of version: Int) -> String { "\(hiddenPrefix)\(version)" }

    /// The version a `plain` link text names, if it is one of Cairn's.
    func version(ofLink text: String) -> Int? {
        text.hasPrefix(hiddenPrefix) ? Int(text.dropFirst(hiddenPrefix.count)) : nil
    }

    /// How a version's place is named in messages: `/srv/models/churn/3`, or `/srv/models/churn`.
    func display(_ version: Int) -> String {
        layout == .tfserving ? directory(of: version).path : base.path
    }
}
