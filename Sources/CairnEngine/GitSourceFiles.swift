import Foundation
import Crypto
import CairnCore
import CairnGit
import CairnManifests

/// A controller's view of the repository's files at one commit, read through the object
/// database (no checkout). Hashes are cached by blob id for the life of one pass, so a file
/// several objects depend on is hashed once.
final class GitSourceFiles: SourceFiles {
    private let repository: Repository
    private let commit: ObjectID
    private var hashes: [ObjectID: ContentHash] = [:]

    init(repository: Repository, commit: ObjectID) {
        self.repository = repository
        self.commit = commit
    }

    func contents(of path: RepositoryPath) throws -> Data? {
        try repository.file(at: path.value, in: commit)
    }

    func contentHash(of path: RepositoryPath) throws -> ContentHash? {
        let entries: [TreeEntry]
        do {
            entries = try repository.listFiles(in: commit, under: path.value)
        } catch let error as GitError where error.code == .notFound {
            return nil
        }
        // A single entry standing at the path itself is a file; anything else is a directory.
        if entries.count == 1, entries[0].path == path.value, entries[0].kind != .submodule {
            return try hash(of: entries[0])
        }
        // A directory: its files' hashes and paths relative to it, one per line, in path order.
        var listing = SHA256()
        let prefix = path.value + "/"
        for entry in entries.sorted(by: { $0.path < $1.path }) where entry.kind != .submodule {
            let line = "\(try hash(of: entry).hex)  \(entry.kind == .symlink ? "symlink:" : "")\(entry.path.dropFirst(prefix.count))\n"
            listing.update(data: Data(line.utf8))
        }
        return ContentHash(hex: listing.finalize().hexString)
    }

    private func hash(of entry: TreeEntry) throws -> ContentHash {
        if let known = hashes[entry.blob] { return known }
        var hasher = SHA256()
        hasher.update(data: try repository.blob(entry.blob))
        let hash = ContentHash(hex: hasher.finalize().hexString)
        hashes[entry.blob] = hash
        return hash
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex, two digits a byte.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
