public import Foundation
import CLibGit2
import Glibc

extension Repository {
    /// Writes the files of `commit`'s tree into `directory` (which exists): files 0644,
    /// executables 0755, symlinks only when their target stays inside `directory` (others,
    /// and submodules, are left out). The walk keeps within `limits`, and a tree beyond them
    /// is refused whole rather than written in part. Names that could escape (`..`, `.`,
    /// `.git`) are refused. Returns how many entries were written.
    @discardableResult
    public func writeTree(of commit: ObjectID, into directory: URL, limits: TreeLimits = .standard) throws -> Int {
        let listing = try listTree(in: commit, limits: limits)
        if let first = listing.refused.first {
            throw GitError(.limitExceeded, "the tree of commit \(commit.short) is too large to check out: \(first)")
        }
        let root = directory.path
        var created: Set<String> = [""]
        var links: [TreeEntry] = []
        var written = 0
        for entry in listing.entries {
            let components = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." || $0.lowercased() == ".git" }) else {
                throw GitError(.other, "commit \(commit.short) holds the path '\(entry.path)', which would leave the checkout; refusing it",
                               function: "writeTree")
            }
            // Directories are made one level at a time, never through a symlink (links come last).
            var parent = ""
            for component in components.dropLast() {
                parent = parent.isEmpty ? String(component) : parent + "/" + component
                if created.insert(parent).inserted, mkdir(root + "/" + parent, 0o755) != 0, errno != EEXIST {
                    throw GitError(.other, "could not create \(root)/\(parent): \(String(cString: strerror(errno)))", function: "mkdir")
                }
            }
            switch entry.kind {
            case .file, .executable:
                try writeBlob(entry.blob, to: root + "/" + entry.path, mode: entry.kind == .executable ? 0o755 : 0o644)
                written += 1
            case .symlink:
                links.append(entry)
            case .submodule:
                continue
            }
        }
        for link in links {
            let target = String(decoding: try blob(link.blob), as: UTF8.self)
            guard Self.staysInside(link: link.path, target: target) else { continue }
            if symlink(target, root + "/" + link.path) != 0 {
                throw GitError(.other, "could not create the symlink \(root)/\(link.path): \(String(cString: strerror(errno)))", function: "symlink")
            }
            written += 1
        }
        return written
    }

    /// Whether a symlink at `link` (a path inside the checkout) pointing at `target` resolves,
    /// lexically, to a place inside the checkout.
    static func staysInside(link: String, target: String) -> Bool {
        guard !target.isEmpty, !target.hasPrefix("/") else { return false }
        var stack = link.split(separator: "/").dropLast().map(String.init)
        for component in target.split(separator: "/") {
            switch component {
            case ".": continue
            case "..":
                guard !stack.isEmpty else { return false }
                stack.removeLast()
            default: stack.append(String(component))
            }
        }
        return true
    }

    private func writeBlob(_ id: ObjectID, to path: String, mode: mode_t) throws {
        var oid = id.raw
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, handle, &oid), "git_blob_lookup", notFoundMessage: "blob \(id) not found")
        defer { git_blob_free(blob) }
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw GitError(.other, "could not create \(path): \(String(cString: strerror(errno)))", function: "open") }
        defer { close(descriptor) }
        var remaining = Int(git_blob_rawsize(blob))
        guard remaining > 0, var bytes = git_blob_rawcontent(blob) else { return }
        while remaining > 0 {
            let count = write(descriptor, bytes, remaining)
            if count < 0 {
                if errno == EINTR { continue }
                throw GitError(.other, "could not write \(path): \(String(cString: strerror(errno)))", function: "write")
            }
            bytes += count
            remaining -= count
        }
        // O_CREAT's mode is reduced by the umask; the tree's mode is what counts.
        fchmod(descriptor, mode)
    }
}
