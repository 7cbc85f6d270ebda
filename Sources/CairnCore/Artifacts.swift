public import Foundation

/// What the artifact store holds for one output: a file's bytes, or a directory as a
/// manifest of its files, both named by SHA-256.
public struct Artifact: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable { case file, directory }

    public var kind: Kind
    /// For a file, the SHA-256 of its bytes; for a directory, of its manifest.
    public var digest: ContentHash
    /// Bytes in all (a directory: its files together).
    public var size: Int

    public init(kind: Kind, digest: ContentHash, size: Int) {
        self.kind = kind
        self.digest = digest
        self.size = size
    }
}

/// What a controller may ask of the artifact store: whether an output can still be restored
/// (`cairn gc` may have removed it, and then the run that made it must run again).
public protocol ArtifactIndex: Sendable {
    func contains(_ artifact: Artifact) -> Bool
    /// The bytes of a stored file, checked against its digest; nil when the store lacks it.
    /// Throws when it is a directory, larger than `limit`, or its bytes do not match.
    func contents(of artifact: Artifact, limit: Int) throws -> Data?
}

/// What identifies a file's content cheaply, as git's index does: when size, modification
/// and status-change times, inode and device are all unchanged, the content is taken to be
/// unchanged. (The status-change time moves on every write and cannot be set back, so a
/// rewrite that keeps size and mtime, as `cp -p` or `touch -r` do, is still seen.)
public struct FileStamp: Hashable, Sendable, Codable {
    public var size: Int64
    public var modifiedNanoseconds: Int64
    public var changedNanoseconds: Int64
    public var inode: UInt64
    public var device: UInt64

    public init(size: Int64, modifiedNanoseconds: Int64, changedNanoseconds: Int64 = 0, inode: UInt64, device: UInt64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
        self.changedNanoseconds = changedNanoseconds
        self.inode = inode
        self.device = device
    }

    /// Whether the file changed so recently that another write within the file system's
    /// time granularity could follow unseen ("racily clean", in git's words): such a hash is
    /// not remembered, and the file is read again next time.
    public func isRacy(hashedAt now: Date, granularity: TimeInterval = 2) -> Bool {
        let latest = Double(max(modifiedNanoseconds, changedNanoseconds)) / 1e9
        return latest >= now.timeIntervalSince1970 - granularity
    }
}

/// Remembers the hashes of files outside the repository by their stamp, across passes and
/// restarts (the metadata store keeps them), so a tick over unchanged data reads nothing.
public protocol FileHashCache: Sendable {
    /// The hash remembered for `path`, if its stamp is still `stamp`.
    func hash(of path: String, stamp: FileStamp) -> ContentHash?
    /// Remembers hashes (one transaction for the lot).
    func remember(_ entries: [(path: String, stamp: FileStamp, hash: ContentHash)])
}
