public import Foundation
public import CairnCore

/// A directory's manifest: its files by relative path, each with its digest and whether it
/// is executable. Stored in the store like any blob; its digest names the directory.
struct DirectoryManifest: Codable, Equatable {
    struct Entry: Codable, Equatable {
        var path: String
        var sha256: String
        var size: Int
        var executable: Bool
    }

    var format = "cairn.tree/v1"
    var entries: [Entry]
}

/// Content-addressed storage under `<state>/artifacts`: each blob once, at
/// `sha256/<first two hex digits>/<the rest>`, written to a temporary name in the same file
/// system, fsynced and renamed, so a crash never leaves a partial blob under its name.
/// Restoring verifies the bytes against their name while it copies them out.
public final class ArtifactStore: ArtifactIndex, Sendable {
    public let root: URL
    private var blobs: URL { root.appendingPathComponent("sha256") }
    private var scratch: URL { root.appendingPathComponent("tmp") }

    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sha256"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
    }

    /// Where the blob named `digest` lives (whether or not it is there).
    public func path(of digest: ContentHash) -> URL {
        blobs.appendingPathComponent(String(digest.hex.prefix(2))).appendingPathComponent(String(digest.hex.dropFirst(2)))
    }

    public func contains(_ digest: ContentHash) -> Bool {
        FileManager.default.fileExists(atPath: path(of: digest).path)
    }

    /// Stores the file or directory at `source`. Symlinks are refused: an output that points
    /// elsewhere would restore as a way out of the place it is restored to.
    /// With `consuming`, the files are moved into the store instead of copied (the caller
    /// gives them up: a run's directory, removed afterwards): they are read once to hash
    /// them, fsynced and renamed under their digest, so storing costs hashing alone. Across
    /// file systems it falls back to copying.
    public func store(_ source: URL, consuming: Bool = false) throws -> Artifact {
        let attributes = try FileManager.default.attributesOfItem(atPath: source.path)
        switch attributes[.type] as? FileAttributeType {
        case .typeRegular?:
            let (digest, size) = try storeFile(source, consuming: consuming)
            return Artifact(kind: .file, digest: digest, size: size)
        case .typeDirectory?:
            return try storeDirectory(source, consuming: consuming)
        default:
            throw ArtifactError("\(source.path) is neither a regular file nor a directory (a symlink or a device); outputs must be files or directories")
        }
    }

    /// Puts `artifact` at `destination` (which must not exist yet), checking every byte
    /// against its digest; on any mismatch nothing is left at `destination`.
    public func restore(_ artifact: Artifact, to destination: URL) throws {
        guard !FileManager.default.fileExists(atPath: destination.path) else {
            throw ArtifactError("\(destination.path) exists already; restoring never overwrites")
        }
        switch artifact.kind {
        case .file:
            try copyOut(artifact.digest, to: destination, executable: false)
        case .directory:
            let manifest = try JSONDecoder().decode(DirectoryManifest.self, from: try verifiedBytes(of: artifact.digest))
            let staging = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).cairn-\(UUID().uuidString)")
            do {
                try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
                for entry in manifest.entries {
                    guard Self.isSafeRelativePath(entry.path) else { throw ArtifactError("the manifest \(artifact.digest) names \(entry.path), which leaves its directory") }
                    let target = staging.appendingPathComponent(entry.path)
                    try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try copyOut(ContentHash(hex: entry.sha256), to: target, executable: entry.executable)
                }
                try FileManager.default.moveItem(at: staging, to: destination)
            } catch {
                try? FileManager.default.removeItem(at: staging)
                throw error
            }
        }
    }

    // MARK: Writing

    /// Copies `source` into a temporary file while hashing it, then renames it under its digest.
    private func storeFile(_ source: URL, consuming: Bool) throws -> (ContentHash, Int) {
        if consuming, let moved = try moveFile(source) { return moved }
        return try storeFile(source)
    }

    /// Hashes `source` in place and renames it under its digest; nil when it cannot be renamed
    /// into the store (another file system), and the caller copies it instead.
    private func moveFile(_ source: URL) throws -> (ContentHash, Int)? {
        // A file with other names (a hard link the run made to something else) is copied:
        // moving it would leave the blob sharing its bytes with a file outside the store.
        var info = stat()
        guard lstat(source.path, &info) == 0, info.st_nlink == 1 else { return nil }
        let input = try FileHandle(forReadingFrom: source)
        var hasher = ContentHasher()
        var size = 0
        do {
            defer { try? input.close() }
            while let piece = try input.read(upToCount: 4 << 20), !piece.isEmpty {
                hasher.update(piece)
                size += piece.count
            }
            try input.synchronize()
        }
        let digest = hasher.finalize()
        let target = path(of: digest)
        if FileManager.default.fileExists(atPath: target.path) {
            try? FileManager.default.removeItem(at: source)
            return (digest, size)
        }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        chmod(source.path, 0o444)
        guard rename(source.path, target.path) == 0 else {
            if errno == EXDEV { return nil }
            throw ArtifactError("could not move \(source.path) into the store as \(digest): \(String(cString: strerror(errno)))")
        }
        try Self.sync(target.deletingLastPathComponent())
        return (digest, size)
    }

    private func storeFile(_ source: URL) throws -> (ContentHash, Int) {
        let temporary = scratch.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: temporary) }
        let (digest, size) = try Self.copy(from: source, to: temporary)
        try place(temporary, as: digest)
        return (digest, size)
    }

    private func storeBytes(_ data: Data) throws -> ContentHash {
        let temporary = scratch.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: temporary) }
        try data.write(to: temporary)
        let digest = ContentHash.sha256(of: data)
        try Self.sync(temporary)
        try place(temporary, as: digest)
        return digest
    }

    private func storeDirectory(_ source: URL, consuming: Bool) throws -> Artifact {
        let (manifest, total) = try Self.manifest(of: source) { try storeFile($0, consuming: consuming) }
        let digest = try storeBytes(try Self.encoded(manifest))
        return Artifact(kind: .directory, digest: digest, size: total)
    }

    /// The manifest of the directory at `source`, each file handed to `file` for its digest and
    /// size (storing it, or only hashing it), and the bytes in all. Symlinks and devices throw.
    private static func manifest(of source: URL, file: (URL) throws -> (ContentHash, Int)) throws -> (DirectoryManifest, Int) {
        var entries: [DirectoryManifest.Entry] = []
        var total = 0
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? source : source.appendingPathComponent(relative)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
                let childRelative = relative.isEmpty ? name : "\(relative)/\(name)"
                let child = source.appendingPathComponent(childRelative)
                let attributes = try FileManager.default.attributesOfItem(atPath: child.path)
                switch attributes[.type] as? FileAttributeType {
                case .typeDirectory?:
                    pending.append(childRelative)
                case .typeRegular?:
                    let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o644
                    let (digest, size) = try file(child)
                    entries.append(.init(path: childRelative, sha256: digest.hex, size: size, executable: mode & 0o111 != 0))
                    total += size
                default:
                    throw ArtifactError("\(child.path) is a symlink or a device; outputs may hold only files and directories")
                }
            }
        }
        entries.sort { $0.path < $1.path }
        return (DirectoryManifest(entries: entries), total)
    }

    private static func encoded(_ manifest: DirectoryManifest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(manifest)
    }

    /// Renames a complete, fsynced temporary file under its digest, read-only; a blob already
    /// there is the same bytes, and stays.
    private func place(_ temporary: URL, as digest: ContentHash) throws {
        let target = path(of: digest)
        if FileManager.default.fileExists(atPath: target.path) { return }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        chmod(temporary.path, 0o444)
        guard rename(temporary.path, target.path) == 0 else {
            throw ArtifactError("could not store \(digest) at \(target.path): \(String(cString: strerror(errno)))")
        }
        try Self.sync(target.deletingLastPathComponent())
    }

    // MARK: Reading

    private func verifiedBytes(of digest: ContentHash) throws -> Data {
        let data = try Data(contentsOf: path(of: digest))
        guard ContentHash.sha256(of: data) == digest else { throw ArtifactError("the stored blob \(digest) is corrupt: its bytes no longer match its name") }
        return data
    }

    /// Copies the blob out, hashing as it goes; a mismatch removes what was written.
    private func copyOut(_ digest: ContentHash, to destination: URL, executable: Bool) throws {
        let source = path(of: digest)
        guard FileManager.default.fileExists(atPath: source.path) else { throw ArtifactError("the store has no blob \(digest)") }
        do {
            let (copied, _) = try Self.copy(from: source, to: destination)
            guard copied == digest else { throw ArtifactError("the stored blob \(digest) is corrupt: its bytes no longer match its name") }
            chmod(destination.path, executable ? 0o755 : 0o644)
        } catch {
            try? FileManager.default.removeItem(at: destination)
            throw error
        }
    }

    /// Copies `source` to a new file at `destination` in 1 MiB pieces, hashing them, and
    /// fsyncs it; returns the digest and the size.
    static func copy(from source: URL, to destination: URL) throws -> (ContentHash, Int) {
        let input = try FileHandle(forReadingFrom: source)
        defer { try? input.close() }
        guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
            throw ArtifactError("could not create \(destination.path): \(String(cString: strerror(errno)))")
        }
        let output = try FileHandle(forWritingTo: destination)
        defer { try? output.close() }
        var hasher = ContentHasher()
        var size = 0
        while let piece = try input.read(upToCount: 1 << 20), !piece.isEmpty {
            hasher.update(piece)
            try output.write(contentsOf: piece)
            size += piece.count
        }
        try output.synchronize()
        return (hasher.finalize(), size)
    }

    private static func sync(_ url: URL) throws {
        let descriptor = open(url.path, O_RDONLY)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = fsync(descriptor)
    }

    static func isSafeRelativePath(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/").contains { $0 == ".." || $0 == "." || $0.isEmpty }
    }
}

extension ArtifactStore {
    /// What `store` would name the file or directory at `url`, computed without storing
    /// anything (streaming each file through SHA-256): how a serving directory is checked
    /// against the artifact it should hold. Symlinks and devices throw, as they do in `store`.
    public static func artifact(describing url: URL) throws -> Artifact {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        switch attributes[.type] as? FileAttributeType {
        case .typeRegular?:
            let (digest, size) = try hashFile(url)
            return Artifact(kind: .file, digest: digest, size: size)
        case .typeDirectory?:
            let (manifest, total) = try manifest(of: url, file: hashFile)
            return Artifact(kind: .directory, digest: ContentHash.sha256(of: try encoded(manifest)), size: total)
        default:
            throw ArtifactError("\(url.path) is neither a regular file nor a directory (a symlink or a device)")
        }
    }

    private static func hashFile(_ url: URL) throws -> (ContentHash, Int) {
        var info = stat()
        guard stat(url.path, &info) == 0 else { throw RunFiles.fileError("could not read \(url.path)") }
        return (try LocalHostFiles.sha256(ofFile: url.path), Int(info.st_size))
    }
}

public struct ArtifactError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension ArtifactStore {
    /// Whether the store can restore `artifact`: its blob is there, and for a directory every
    /// blob its manifest names too (a look at each file's existence, no hashing), since a file
    /// of it may have gone since the manifest was stored.
    public func contains(_ artifact: Artifact) -> Bool {
        guard contains(artifact.digest) else { return false }
        guard artifact.kind == .directory else { return true }
        guard let bytes = try? Data(contentsOf: path(of: artifact.digest)),
              let manifest = try? JSONDecoder().decode(DirectoryManifest.self, from: bytes) else { return false }
        return manifest.entries.allSatisfy { contains(ContentHash(hex: $0.sha256)) }
    }

    public func contents(of artifact: Artifact, limit: Int) throws -> Data? {
        guard artifact.kind == .file else { throw ArtifactError("\(artifact.digest) is a directory, not a file") }
        guard artifact.size <= limit else { throw ArtifactError("it holds \(artifact.size) bytes, more than the \(limit) read at most") }
        let location = path(of: artifact.digest)
        guard FileManager.default.fileExists(atPath: location.path) else { return nil }
        let bytes = try Data(contentsOf: location)
        guard bytes.count <= limit, ContentHash.sha256(of: bytes) == artifact.digest else {
            throw ArtifactError("the stored bytes of \(artifact.digest) do not match their digest (the store was altered)")
        }
        return bytes
    }
}
