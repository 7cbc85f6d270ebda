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
}
