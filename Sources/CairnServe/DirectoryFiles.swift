import Foundation
import Glibc
import CairnCore
import CairnRun

/// The file operations of a directory target: staging a version, renaming it into place,
/// checking what a version directory holds, and removing. Each leaves nothing visible under a
/// version's number but a complete version.
enum DirectoryFiles {
    /// What a version's place holds, against the artifact it should.
    enum Found: Equatable {
        case missing
        case matches
        /// Something else, in words (`its hash was sha256:…`).
        case differs(String)
    }

    /// Checks `directory` against `version`'s artifact by SHA-256, with the store's own
    /// hashing: a file artifact must be the only file in it, under its name; a directory
    /// artifact must be exactly its contents (file modes included, as the store keeps them).
    static func inspect(_ directory: URL, for version: ServedVersion) -> Found {
        var info = stat()
        guard lstat(directory.path, &info) == 0 else { return .missing }
        guard info.st_mode & S_IFMT == S_IFDIR else { return .differs("it is no longer a directory") }
        do {
            switch version.artifact.kind {
            case .file:
                let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                let name = fileName(of: version)
                guard names == [name] else {
                    return .differs("it held \(names.isEmpty ? "nothing" : names.joined(separator: ", ")) instead of \(name) alone")
                }
                let found = try ArtifactStore.artifact(describing: directory.appendingPathComponent(name))
                return found.digest == version.artifact.digest ? .matches : .differs("its hash was \(short(found.digest))")
            case .directory:
                let found = try ArtifactStore.artifact(describing: directory)
                return found.digest == version.artifact.digest ? .matches : .differs("its hash was \(short(found.digest))")
            }
        } catch {
            return .differs("it could not be read as placed: \(reason(error))")
        }
    }

    /// The name a file artifact gets in its version directory: the last component of the
    /// path the training wrote it to (`model.bin`).
    static func fileName(of version: ServedVersion) -> String {
        let last = (version.artifactPath as NSString).lastPathComponent
        return last.isEmpty || last == "." || last == ".." || last == "/" ? "model" : last
    }

    /// Restores the artifact into a new hidden directory in `paths.staging`, fsynced file by
    /// file and directory by directory, and returns it. Nothing is left behind on failure.
    static func stage(_ version: ServedVersion, from artifacts: ArtifactStore, in paths: DirectoryPaths) throws -> URL {
        let staged = paths.staging.appendingPathComponent("\(paths.stagingPrefix)\(version.version)-\(UUID().uuidString)")
        do {
            switch version.artifact.kind {
            case .file:
                try makeDirectory(staged)
                try artifacts.restore(version.artifact, to: staged.appendingPathComponent(fileName(of: version)))
            case .directory:
                try artifacts.restore(version.artifact, to: staged)
                chmod(staged.path, 0o755)
            }
            try syncDirectories(under: staged)
            return staged
        } catch {
            try? FileManager.default.removeItem(at: staged)
            throw error
        }
    }

    /// Renames the complete `staged` directory to `target`. When `target` exists (a version
    /// edited by hand), the two are exchanged in one step where the kernel can (renameat2
    /// with RENAME_EXCHANGE), so the version number never disappears, and `staged` then holds
    /// the old one, which is deleted; elsewhere the old one is renamed aside first.
    static func install(_ staged: URL, at target: URL) throws {
        var info = stat()
        if lstat(target.path, &info) != 0 {
            try check(rename(staged.path, target.path), "could not rename \(staged.path) to \(target.path)")
        } else if exchange(staged.path, target.path) {
            try FileManager.default.removeItem(at: staged)
        } else {
            let aside = staged.deletingLastPathComponent().appendingPathComponent(staged.lastPathComponent + "-aside")
            try check(rename(target.path, aside.path), "could not move \(target.path) aside")
            try check(rename(staged.path, target.path), "could not rename \(staged.path) to \(target.path)")
            try FileManager.default.removeItem(at: aside)
        }
        sync(target.deletingLastPathComponent())
    }

    /// Points the symlink `link` at `text` atomically: a new symlink under a temporary name,
    /// renamed over the old one.
    static func point(_ link: URL, at text: String) throws {
        let temporary = link.deletingLastPathComponent().appendingPathComponent(".\(link.lastPathComponent).cairn-link-\(UUID().uuidString)")
        try check(symlink(text, temporary.path), "could not make a symlink at \(temporary.path)")
        if rename(temporary.path, link.path) != 0 {
            let number = errno
            unlink(temporary.path)
            throw FileFailure("could not put the symlink \(link.path) in place", number)
        }
        sync(link.deletingLastPathComponent())
    }

    /// Removes what a crash left in `paths.staging` under the staging prefix (restore's own
    /// temporary names start with one more dot).
    static func removeLeftovers(in paths: DirectoryPaths) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: paths.staging.path) else { return }
        for name in names where name.hasPrefix(paths.stagingPrefix) || name.hasPrefix("." + paths.stagingPrefix) {
            try? FileManager.default.removeItem(at: paths.staging.appendingPathComponent(name))
        }
    }

    /// Makes `url` and the directories above it that are missing, with mkdir(2), so a
    /// failure names the directory that could not be made and the system's reason.
    static func makeDirectory(_ url: URL) throws {
        var info = stat()
        if stat(url.path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw FileFailure("could not use \(url.path) as a directory", ENOTDIR) }
            return
        }
        let parent = url.deletingLastPathComponent()
        if parent.path != url.path { try makeDirectory(parent) }
        guard mkdir(url.path, 0o755) == 0 || errno == EEXIST else { throw FileFailure("could not create \(url.path)", errno) }
    }

    /// Removes `url` if it is there.
    static func remove(_ url: URL) throws {
        var info = stat()
        guard lstat(url.path, &info) == 0 else { return }
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            throw FileFailure("could not remove \(url.path): \(reason(error))")
        }
    }

    static func short(_ digest: ContentHash) -> String { "sha256:\(digest.hex.prefix(12))…" }

    /// An error in words; for a Foundation file error, strerror's text (Foundation on Linux
    /// throws a plain NSError there, which `LocalExecutor.reason` does not unwrap).
    static func reason(_ error: any Error) -> String {
        if let failure = error as? FileFailure { return failure.description }
        let error = error as NSError
        if error.domain == NSCocoaErrorDomain, let underlying = (error.userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return LocalExecutor.reason(error)
    }

    // MARK: - System calls

    private static func check(_ result: Int32, _ what: String) throws {
        guard result == 0 else { throw FileFailure(what, errno) }
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc's renameat2, found at run time: Swift's Glibc module does not declare it (it
    /// sits behind _GNU_SOURCE), and Linux has had it since 3.15.
    private static let renameAt2: RenameAt2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2")
        .map { unsafeBitCast($0, to: RenameAt2.self) }

    /// Swaps two paths in one step; false when this kernel or file system cannot.
    private static func exchange(_ first: String, _ second: String) -> Bool {
        guard let renameAt2 else { return false }
        let exchangeFlag: UInt32 = 1 << 1  // RENAME_EXCHANGE
        return renameAt2(AT_FDCWD, first, AT_FDCWD, second, exchangeFlag) == 0
    }

    /// fsyncs every directory under `root` (the store fsyncs the files as it copies them),
    /// so a crash after the rename cannot leave a version directory with names but no data.
    private static func syncDirectories(under root: URL) throws {
        var pending = [root]
        while let directory = pending.popLast() {
            sync(directory)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
                let child = directory.appendingPathComponent(name)
                var info = stat()
                if lstat(child.path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { pending.append(child) }
            }
        }
    }

    static func sync(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = fsync(descriptor)
    }
}

/// A file operation that failed, with the path and strerror's text.
struct FileFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }

    init(_ what: String, _ number: Int32) { description = "\(what): \(String(cString: strerror(number)))" }
}
