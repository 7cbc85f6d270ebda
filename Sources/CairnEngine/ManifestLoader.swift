public import Foundation
public import CairnGit
public import CairnManifests

/// Reads the manifests of a revision, either from a commit (through the object database, no
/// checkout) or from a directory on disk, and checks them as a whole.
public enum ManifestLoader {
    /// Whether a file name is a manifest's.
    public static func isManifestName(_ name: String) -> Bool {
        name.hasSuffix(".yaml") || name.hasSuffix(".yml")
    }

    /// Reads every manifest under `path` in `commit`. Paths in diagnostics are relative to the
    /// repository root. Dot-directories (`.git`, `.github`) are skipped; symlinks are never followed.
    public static func load(from repository: Repository, commit: ObjectID, path: String = "", limits: TreeLimits = .standard) throws -> ManifestSet {
        ManifestSet(files: try parseAll(from: repository, commit: commit, path: path, limits: limits).map(\.parsed))
    }

    /// Whether a path in the tree is read as a manifest: a YAML name, outside dot-directories.
    public static func isManifestPath(_ path: String) -> Bool {
        isManifestName(path) && !path.split(separator: "/").contains { $0.hasPrefix(".") }
    }

    /// Parses every manifest file under `path` in `commit`, with its blob id, in path order.
    /// A tree beyond `limits` (too deep, or too many entries: a push can make either cheaply)
    /// is not read past them; each refused directory becomes a located error of its own, and
    /// every manifest within the limits is read as usual.
    public static func parseAll(from repository: Repository, commit: ObjectID, path: String = "", limits: TreeLimits = .standard) throws
        -> [(path: String, blob: ObjectID, parsed: ParsedFile)] {
        let listing = try repository.listTree(in: commit, under: path, limits: limits, include: isManifestPath)
        let entries = listing.entries.filter { $0.kind != .submodule }
        let parsed = try parse(from: repository, entries.map { ($0.path, $0.blob, $0.kind == .symlink) })
        return zip(entries, parsed).map { ($0.path, $0.blob, $1) }
            + listing.refused.map { (treeRefusalPath($0.path), ObjectID.zero, refusedTree($0)) }
    }

    /// Parses these blobs (a diff's files, say), in their order: each is read here, on the
    /// caller's thread (libgit2 objects stay confined to it), while the files already read are
    /// parsed on the other cores.
    public static func parse(from repository: Repository, _ files: [(path: String, blob: ObjectID, symlink: Bool)]) throws -> [ParsedFile] {
        let parsing = ConcurrentParsing(count: files.count)
        for (index, file) in files.enumerated() {
            if file.symlink {
                parsing.finished(index, try parse(from: repository, path: file.path, blob: file.blob, symlink: true))
                continue
            }
            let size = try repository.blobSize(file.blob)
            if size > ManifestParser.maximumFileSize {
                parsing.finished(index, ManifestParser.tooLarge(file: file.path, size: size))
            } else {
                parsing.parse(index, try repository.blob(file.blob), file: file.path)
            }
        }
        return parsing.wait()
    }

    /// The key a refused directory has among the files: it names no file, so no diff of a
    /// file path ever replaces it; the next full load does.
    static func treeRefusalPath(_ directory: String) -> String { directory + "/" }

    private static func refusedTree(_ refusal: TreeRefusal) -> ParsedFile {
        let location = SourceLocation(file: refusal.path, line: 1, column: 1)
        let diagnostic = Diagnostic(at: location, "this directory was not read: \(refusal.reason)",
                                    hint: "manifests need neither deep nor huge trees; remove it, or narrow the daemon to the manifests with --path")
        return ParsedFile(path: treeRefusalPath(refusal.path), manifests: [],
                          failures: [ManifestFailure(ref: nil, location: location, diagnostics: [diagnostic])])
    }

    /// Parses one manifest file from its blob.
    public static func parse(from repository: Repository, path: String, blob: ObjectID, symlink: Bool = false) throws -> ParsedFile {
        if symlink {
            let target = String(decoding: try repository.blob(blob), as: UTF8.self)
            return symlinkFailure(path, target: target, escapes: escapesRoot(from: path, target: target))
        }
        let size = try repository.blobSize(blob)
        if size > ManifestParser.maximumFileSize { return ManifestParser.tooLarge(file: path, size: size) }
        return ManifestParser.parse(try repository.blob(blob), file: path)
    }

    /// Reads every manifest under `directory` on disk. `displayPrefix` is put before each
    /// file's relative path in diagnostics (such as the directory as the user typed it).
    public static func load(directory: URL, displayPrefix: String) throws -> ManifestSet {
        let root = directory.resolvingSymlinksInPath().standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LoadError("\(displayPrefix) is not a directory")
        }
        var inputs: [(String, Data?, ParsedFile?)] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? root : root.appendingPathComponent(relative)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            for name in names where !name.hasPrefix(".") {
                let childRelative = relative.isEmpty ? name : "\(relative)/\(name)"
                let child = root.appendingPathComponent(childRelative)
                let display = displayPrefix.isEmpty ? childRelative : "\(displayPrefix)/\(childRelative)"
                let attributes = try FileManager.default.attributesOfItem(atPath: child.path)
                let type = attributes[.type] as? FileAttributeType
                if type == .typeSymbolicLink {
                    guard isManifestName(name) || isDirectoryLink(child) else { continue }
                    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: child.path)) ?? ""
                    let resolved = child.resolvingSymlinksInPath().standardizedFileURL.path
                    let escapes = !(resolved == root.path || resolved.hasPrefix(root.path + "/"))
                    inputs.append((display, nil, symlinkFailure(display, target: target, escapes: escapes)))
                } else if type == .typeDirectory {
                    pending.append(childRelative)
                } else if type == .typeRegular, isManifestName(name) {
                    let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
                    if size > ManifestParser.maximumFileSize {
                        inputs.append((display, nil, ManifestParser.tooLarge(file: display, size: size)))
                    } else {
                        inputs.append((display, try Data(contentsOf: child), nil))
                    }
                }
            }
        }
        inputs.sort { $0.0 < $1.0 }
        let parsing = ConcurrentParsing(count: inputs.count)
        for (index, (path, data, done)) in inputs.enumerated() {
            if let done { parsing.finished(index, done) } else { parsing.parse(index, data ?? Data(), file: path) }
        }
        return ManifestSet(files: parsing.wait())
    }

    private static func escapesRoot(from path: String, target: String) -> Bool {
        if target.hasPrefix("/") { return true }
        let base = path.split(separator: "/").dropLast().joined(separator: "/")
        return (try? RepositoryPath(base.isEmpty ? target : "\(base)/\(target)")) == nil
    }

    private static func isDirectoryLink(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func symlinkFailure(_ path: String, target: String, escapes: Bool) -> ParsedFile {
        let location = SourceLocation(file: path, line: 1, column: 1)
        let diagnostic = escapes
            ? Diagnostic(at: location, "this is a symlink to \(target), which is outside the repository",
                         hint: "manifests must be regular files inside the repository; copy the file in instead")
            : Diagnostic(.warning, at: location, "this is a symlink (to \(target)); symlinks are not followed, so it was skipped",
                         hint: "make it a regular file if it should be read")
        return ParsedFile(path: path, manifests: [], failures: [ManifestFailure(ref: nil, location: location, diagnostics: [diagnostic])])
    }
}

/// Why manifests could not be loaded at all (as opposed to being invalid).
public struct LoadError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Parses files on all cores as they are handed in; results keep the order of their indices.
private final class ConcurrentParsing: @unchecked Sendable {
    private var slots: [ParsedFile?]
    private let lock = NSLock()
    private let group = DispatchGroup()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func parse(_ index: Int, _ data: Data, file: String) {
        DispatchQueue.global().async(group: group) {
            self.finished(index, ManifestParser.parse(data, file: file))
        }
    }

    func finished(_ index: Int, _ value: ParsedFile) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    /// Waits for every file handed in and returns the results in order.
    func wait() -> [ParsedFile] {
        group.wait()
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
