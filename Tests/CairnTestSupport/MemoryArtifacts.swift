public import CairnCore
public import Foundation

/// An artifact store in memory: digest → bytes. What a test puts in, it can read back through
/// `contents(of:limit:)` (a training's metrics file), and what it removes is gone, as after
/// `cairn gc`.
public final class MemoryArtifacts: ArtifactIndex, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [ContentHash: Data] = [:]

    public init() {}

    /// Stores `bytes` and returns the file artifact that names them.
    @discardableResult
    public func put(_ bytes: Data) -> Artifact {
        let digest = ContentHash.sha256(of: bytes)
        lock.withLock { stored[digest] = bytes }
        return Artifact(kind: .file, digest: digest, size: bytes.count)
    }

    @discardableResult
    public func put(_ text: String) -> Artifact { put(Data(text.utf8)) }

    public func remove(_ artifact: Artifact) {
        _ = lock.withLock { stored.removeValue(forKey: artifact.digest) }
    }

    public func contains(_ artifact: Artifact) -> Bool {
        lock.withLock { stored[artifact.digest] != nil }
    }

    public struct TooLarge: Error, CustomStringConvertible {
        public let description: String
    }

    public func contents(of artifact: Artifact, limit: Int) throws -> Data? {
        guard let bytes = lock.withLock({ stored[artifact.digest] }) else { return nil }
        guard bytes.count <= limit else { throw TooLarge(description: "\(artifact.digest) holds \(bytes.count) bytes, over the limit of \(limit)") }
        return bytes
    }
}
