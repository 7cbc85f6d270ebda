public import CairnCore
import Foundation
import Glibc

/// Files outside the repository as this machine has them: data under the policy's data
/// roots, and the programs runs call. Hashes go through a `FileHashCache` keyed by path and
/// stamp (size, mtime, ctime, inode, device), so an unchanged file is never read twice; a file
/// changed in the last two seconds is not remembered (it is read again next time).
public struct LocalHostFiles: HostFiles {
    public let dataRoots: [String]
    public let cache: any FileHashCache
    /// Where bare program names are looked up: the PATH runs get.
    public let searchPath: String
    /// How recent a change makes a file's hash not worth remembering (see `FileStamp.isRacy`).
    public let racyWindow: Double
    /// The hashes this process already looked up, in front of `cache`.
    private let memory = InMemoryFileHashCache(limit: 100_000)

    public init(policy: ExecutionPolicy, cache: any FileHashCache, searchPath: String = LocalExecutor.runPath, racyWindow: Double = 2) {
        dataRoots = policy.dataRoots
        self.cache = cache
        self.searchPath = searchPath
        self.racyWindow = racyWindow
    }

    public func refusal(ofDataPath path: String) -> String? {
        Self.refusal(ofPath: path, roots: dataRoots, use: "runs may not read it")
    }

    /// Why `path` is not data Cairn may use, or nil when it lies under one of `roots` once
    /// symlinks are resolved (a path that does not exist yet: its deepest existing ancestor).
    /// `use` says what is refused, for the message ("runs may not read it"); runs and
    /// serving directories share this one rule for what lies outside the repository.
    public static func refusal(ofPath path: String, roots dataRoots: [String], use: String) -> String? {
        let roots = dataRoots.isEmpty ? "no --data-root is set" : "the data roots are \(dataRoots.joined(separator: ", "))"
        guard path.hasPrefix("/") else {
            return "\(path) is not an absolute path; data outside the repository is named by its absolute path under a --data-root (\(roots))"
        }
        if path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            return "\(path) holds a '.' or '..' component; name data by its plain absolute path (\(roots))"
        }
        let resolved = resolve(path)
        for root in dataRoots {
            let realRoot = resolve(root)
            if resolved == realRoot || resolved.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") { return nil }
        }
        let via = resolved == path ? "" : " (it resolves to \(resolved))"
        return "\(path)\(via) is not under a data root, so \(use); \(roots); add one with --data-root"
    }

    public func contentHash(ofDataPath path: String) throws -> ContentHash? {
        guard let resolved = try? realPath(URL(fileURLWithPath: path)) else { return nil }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return nil }
        var fresh: [(path: String, stamp: FileStamp, hash: ContentHash)] = []
        defer { if !fresh.isEmpty { cache.remember(fresh) } }
        if info.st_mode & S_IFMT == S_IFDIR {
            return try hashDirectory(resolved, named: path, fresh: &fresh)
        }
        return try hashFile(resolved, info, fresh: &fresh)
    }

    public func program(_ name: String) throws -> (path: String, hash: ContentHash)? {
        var candidates: [String] = []
        if name.contains("/") {
            candidates = [name.hasPrefix("/") ? name : FileManager.default.currentDirectoryPath + "/" + name]
        } else {
            candidates = searchPath.split(separator: ":").map { "\($0)/\(name)" }
        }
        for candidate in candidates {
            guard let resolved = try? realPath(URL(fileURLWithPath: candidate)) else { continue }
            var info = stat()
            guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(resolved, X_OK) == 0 else { continue }
            var fresh: [(path: String, stamp: FileStamp, hash: ContentHash)] = []
            let hash = try hashFile(resolved, info, fresh: &fresh)
            if !fresh.isEmpty { cache.remember(fresh) }
            return (resolved, hash)
        }
        return nil
    }

    // MARK: - Hashing

    static func stamp(_ info: stat) -> FileStamp {
        FileStamp(size: Int64(info.st_size), modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                  changedNanoseconds: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec),
                  inode: UInt64(info.st_ino), device: UInt64(info.st_dev))
    }

    private func hashFile(_ path: String, _ info: stat, fresh: inout [(path: String, stamp: FileStamp, hash: ContentHash)]) throws -> ContentHash {
        let stamp = Self.stamp(info)
        // This process's memory first (a pass keys every stage, most naming the same
        // program), then the store's table, then the file's bytes.
        if let known = memory.hash(of: path, stamp: stamp) { return known }
        if let known = cache.hash(of: path, stamp: stamp) {
            memory.remember([(path, stamp, known)])
            return known
        }
        let hash = try Self.sha256(ofFile: path)
        // A file written within the last moments may change again unseen by its stamp.
        if !stamp.isRacy(hashedAt: Date(), granularity: racyWindow) {
            fresh.append((path, stamp, hash))
            memory.remember([(path, stamp, hash)])
        }
        return hash
    }

    /// SHA-256 of the lines `<file hash>  <relative path>` of every file under the directory,
    /// sorted by path. A symlink that stays inside counts as the file it points to (or, to a
    /// directory, as its link text); one that leaves the directory is refused.
    private func hashDirectory(_ root: String, named name: String, fresh: inout [(path: String, stamp: FileStamp, hash: ContentHash)]) throws -> ContentHash {
        var lines: [(String, String)] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? root : "\(root)/\(relative)"
            for entry in try FileManager.default.contentsOfDirectory(atPath: folder) {
                let childRelative = relative.isEmpty ? entry : "\(relative)/\(entry)"
                let child = "\(root)/\(childRelative)"
                var info = stat()
                guard lstat(child, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    pending.append(childRelative)
                case S_IFREG:
                    lines.append((childRelative, try hashFile(child, info, fresh: &fresh).hex))
                case S_IFLNK:
                    let target = (try? realPath(URL(fileURLWithPath: child))) ?? ""
                    guard target.hasPrefix(root + "/") else {
                        throw ExecutorError("\(name)/\(childRelative) is a symlink that leaves \(name)\(target.isEmpty ? " (or points nowhere)" : " (to \(target))"); data directories may only link inside themselves")
                    }
                    var targetInfo = stat()
                    if stat(target, &targetInfo) == 0, targetInfo.st_mode & S_IFMT == S_IFREG {
                        lines.append((childRelative, try hashFile(target, targetInfo, fresh: &fresh).hex))
                    } else {
                        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: child)) ?? ""
                        lines.append((childRelative, "symlink:" + link))
                    }
                default:
                    continue  // Sockets, devices and pipes hold no data to hash.
                }
            }
        }
        lines.sort { $0.0 < $1.0 }
        var hasher = ContentHasher()
        for (path, hash) in lines { hasher.update(Data("\(hash)  \(path)\n".utf8)) }
        return hasher.finalize()
    }

    /// Streams the file through SHA-256 in 1 MiB reads into one reused buffer.
    static func sha256(ofFile path: String) throws -> ContentHash {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RunFiles.fileError("could not read \(path)") }
        defer { close(descriptor) }
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var hasher = ContentHasher()
        while true {
            let count = read(descriptor, buffer, size)
            if count < 0 {
                if errno == EINTR { continue }
                throw RunFiles.fileError("could not read \(path)")
            }
            if count == 0 { break }
            hasher.update(Data(bytesNoCopy: buffer, count: count, deallocator: .none))
        }
        return hasher.finalize()
    }

    /// The path with symlinks resolved; for a path that does not exist (yet), its deepest
    /// existing ancestor resolved, with the rest appended.
    public static func resolve(_ path: String) -> String {
        var existing = path
        var rest: [String] = []
        while existing != "/" && !existing.isEmpty {
            if let resolved = try? realPath(URL(fileURLWithPath: existing)) {
                return ([resolved == "/" ? "" : resolved] + rest.reversed()).joined(separator: "/")
            }
            rest.append((existing as NSString).lastPathComponent)
            existing = (existing as NSString).deletingLastPathComponent
        }
        return path
    }
}

/// A `FileHashCache` in memory, for tests and for a daemon with no store.
public final class InMemoryFileHashCache: FileHashCache, @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (FileStamp, ContentHash)] = [:]
    /// How many hashes were asked for and found, for tests that check nothing is read twice.
    public private(set) var hits = 0
    /// The most entries kept; past it the memory starts over (the store's table remains).
    private let limit: Int

    public init(limit: Int = .max) {
        self.limit = limit
    }

    public func hash(of path: String, stamp: FileStamp) -> ContentHash? {
        lock.withLock {
            guard let (known, hash) = entries[path], known == stamp else { return nil }
            hits += 1
            return hash
        }
    }

    public func remember(_ entries: [(path: String, stamp: FileStamp, hash: ContentHash)]) {
        lock.withLock {
            if self.entries.count + entries.count > limit { self.entries.removeAll(keepingCapacity: true) }
            for entry in entries { self.entries[entry.path] = (entry.stamp, entry.hash) }
        }
    }
}
