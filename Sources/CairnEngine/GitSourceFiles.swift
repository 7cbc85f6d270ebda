import Foundation
import CairnCore
import CairnGit
import CairnManifests

/// SHA-256 of blobs by blob id. A blob id names its content for ever, so the cache outlives
/// passes: an unchanged file is hashed once, however many passes and objects read it.
final class BlobHashes {
    private var hashes: [ObjectID: ContentHash] = [:]
    private let limit = 100_000

    func hash(of blob: ObjectID, read: () throws -> Data) rethrows -> ContentHash {
        if let known = hashes[blob] { return known }
        let hash = ContentHash.sha256(of: try read())
        if hashes.count >= limit { hashes.removeAll(keepingCapacity: true) }
        hashes[blob] = hash
        return hash
    }
}

/// A controller's view of the repository's files at one commit, read through the object
/// database (no checkout). A commit's files never change, so what was looked up is kept: many
/// objects name the same scripts, and each lookup walks trees and inflates objects.
final class GitSourceFiles: SourceFiles {
    private let repository: Repository
    private let commit: ObjectID
    private let hashes: BlobHashes
    private var pathHashes: [RepositoryPath: ContentHash?] = [:]
    private var texts: [RepositoryPath: Data?] = [:]
    private var textBytes = 0
    /// What the kept contents may add up to; past it, files are read each time.
    private let textBudget = 16 << 20

    init(repository: Repository, commit: ObjectID, hashes: BlobHashes) {
        self.repository = repository
        self.commit = commit
        self.hashes = hashes
    }

    func contents(of path: RepositoryPath) throws -> Data? {
        if let known = texts[path] { return known }
        let data = try repository.file(at: path.value, in: commit)
        if textBytes + (data?.count ?? 0) <= textBudget {
            texts[path] = .some(data)
            textBytes += data?.count ?? 0
        }
        return data
    }

    func contentHash(of path: RepositoryPath) throws -> ContentHash? {
        if let known = pathHashes[path] { return known }
        let hash = try findContentHash(of: path)
        pathHashes[path] = .some(hash)
        return hash
    }

    private func findContentHash(of path: RepositoryPath) throws -> ContentHash? {
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
        var listing = Data()
        let prefix = path.value + "/"
        for entry in entries.sorted(by: { $0.path < $1.path }) where entry.kind != .submodule {
            let line = "\(try hash(of: entry).hex)  \(entry.kind == .symlink ? "symlink:" : "")\(entry.path.dropFirst(prefix.count))\n"
            listing.append(contentsOf: line.utf8)
        }
        return ContentHash.sha256(of: listing)
    }

    private func hash(of entry: TreeEntry) throws -> ContentHash {
        try hashes.hash(of: entry.blob) { try repository.blob(entry.blob) }
    }
}
