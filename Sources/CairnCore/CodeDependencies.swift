public import CairnManifests
import Foundation

/// The repository files a command depends on without the manifest listing them: the files
/// its arguments name, and the Python modules those import, so that editing a helper module
/// changes the run's key as editing the script does.
///
/// What counts:
/// - every argument after argv[0] that names an existing file or directory of the repository,
///   also as the value of `--flag=path`; argv[0] only when it is itself a repository path
///   (`./run.sh`, `scripts/x.sh`), not a bare program name such as `python3`;
/// - after `-m` in a Python command (`python3 -m pkg.train`), the module's file;
/// - for each `.py` file so found, the repository files it imports, transitively (see
///   `PythonImports` for what the scanner reads). Absolute imports resolve against the
///   directory of the entry script, which Python puts first on `sys.path` (the repository
///   root for `-m`): `a.b` is `a/b.py` or `a/b/__init__.py`, plus `a/__init__.py` when it
///   exists; `from a import c` also tries `a/c.py` and `a/c/__init__.py`, as `c` may be a
///   submodule. Relative imports resolve against the importing file's package. Modules that
///   do not resolve to a repository file (the standard library, installed packages) are
///   skipped.
///
/// Never a declared output or a path under one: outputs are what the run makes, not what it
/// reads. Never outside the repository: every path is a `RepositoryPath`. Bounded by
/// `Limits`; `limitReached` says when a bound cut the scan short.
///
/// A `shell: true` command is one script string, not argv; nothing is found in it.
public struct CodeDependencies: Hashable, Sendable {
    /// Every file or directory found, sorted, each once.
    public let paths: [RepositoryPath]
    /// For a file found through an import, the file that imports it (the first found); a path
    /// named by the command itself has no entry.
    public let importedBy: [RepositoryPath: RepositoryPath]
    /// Whether a limit stopped the scan (too many files, a file too large to scan); `paths`
    /// may then miss some of the command's dependencies.
    public let limitReached: Bool

    public struct Limits: Hashable, Sendable {
        /// How many Python files are scanned for imports, at most.
        public var files: Int
        /// Python files larger than this are dependencies but are not scanned.
        public var bytesPerFile: Int

        public init(files: Int = 2_000, bytesPerFile: Int = 1 << 20) {
            self.files = files
            self.bytesPerFile = bytesPerFile
        }
    }

    public static func find(command: [String], outs: [RepositoryPath], in files: any SourceFiles,
                            limits: Limits = Limits()) throws -> CodeDependencies {
        var finder = Finder(files: files, outs: outs, limits: limits)
        try finder.run(command)
        return CodeDependencies(paths: finder.found.sorted(), importedBy: finder.importedBy, limitReached: finder.limitReached)
    }
}

private struct Finder {
    let files: any SourceFiles
    let outs: [RepositoryPath]
    let limits: Limits
    typealias Limits = CodeDependencies.Limits

    var found: Set<RepositoryPath> = []
    var importedBy: [RepositoryPath: RepositoryPath] = [:]
    var limitReached = false
    /// Python files waiting to be scanned, with the directory their absolute imports resolve against.
    private var queue: [(file: RepositoryPath, base: String)] = []
    private var queued: Set<String> = []
    private var scanned = 0
    /// Contents of the Python files probed so far (nil: no such file).
    private var cache: [RepositoryPath: Data?] = [:]

    init(files: any SourceFiles, outs: [RepositoryPath], limits: Limits) {
        self.files = files
        self.outs = outs
        self.limits = limits
    }

    mutating func run(_ command: [String]) throws {
        let isPython = command.first.map { ($0.split(separator: "/").last ?? "").hasPrefix("python") } ?? false
        var index = 0
        while index < command.count {
            defer { index += 1 }
            var argument = Substring(command[index])
            if index == 0 {
                guard argument.contains("/") else { continue }
            } else if isPython, argument == "-m", index + 1 < command.count {
                index += 1
                let module = command[index].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                try importModule(module, base: "", from: nil)
                continue
            } else if argument.hasPrefix("-") {
                guard let equals = argument.firstIndex(of: "=") else { continue }
                argument = argument[argument.index(after: equals)...]
            }
            guard !argument.isEmpty, let path = try? RepositoryPath(String(argument)), !isOutput(path) else { continue }
            if path.value.hasSuffix(".py"), try python(path) != nil {
                add(path, from: nil, base: Self.directory(of: path))
            } else if try files.contentHash(of: path) != nil {
                found.insert(path)
            }
        }
        while !queue.isEmpty {
            let (file, base) = queue.removeFirst()
            guard scanned < limits.files else {
                limitReached = true
                break
            }
            scanned += 1
            guard let source = try python(file) else { continue }
            guard source.count <= limits.bytesPerFile else {
                limitReached = true
                continue
            }
            for statement in PythonImports.scan(source) { try resolve(statement, in: file, base: base) }
        }
    }

    private func isOutput(_ path: RepositoryPath) -> Bool {
        outs.contains { $0.contains(path) }
    }

    /// The directory holding `path` ("" for the repository root).
    static func directory(of path: RepositoryPath) -> String {
        path.ancestors.first ?? ""
    }

    private static func join(_ directory: String, _ components: [String]) -> RepositoryPath? {
        let relative = components.joined(separator: "/")
        return try? RepositoryPath(directory.isEmpty ? relative : "\(directory)/\(relative)")
    }

    /// The bytes of a Python file, or nil when there is none at `path`.
    private mutating func python(_ path: RepositoryPath) throws -> Data? {
        if let cached = cache[path] { return cached }
        let data = try files.contents(of: path)
        cache[path] = data
        return data
    }

    /// Records a file found (once), and queues it to be scanned for imports.
    private mutating func add(_ path: RepositoryPath, from importer: RepositoryPath?, base: String) {
        guard !isOutput(path) else { return }
        if found.insert(path).inserted, let importer { importedBy[path] = importer }
        if queued.insert("\(base)\u{0}\(path.value)").inserted { queue.append((path, base)) }
    }

    /// `components.py` or `components/__init__.py` under `directory`, if either exists.
    private mutating func moduleFile(_ components: [String], in directory: String) throws -> RepositoryPath? {
        guard let last = components.last, !components.isEmpty else { return nil }
        if let file = Self.join(directory, components.dropLast() + ["\(last).py"]), try python(file) != nil { return file }
        if let package = Self.join(directory, components + ["__init__.py"]), try python(package) != nil { return package }
        return nil
    }

    /// A dotted module under `base`: its file, and the `__init__.py` of each package above it.
    private mutating func importModule(_ module: [String], base: String, from importer: RepositoryPath?) throws {
        guard !module.isEmpty, module.allSatisfy({ !$0.isEmpty }) else { return }
        for length in 1..<module.count {
            if let package = Self.join(base, Array(module.prefix(length)) + ["__init__.py"]), try python(package) != nil {
                add(package, from: importer, base: base)
            }
        }
        if let file = try moduleFile(module, in: base) { add(file, from: importer, base: base) }
    }

    private mutating func resolve(_ statement: PythonImport, in file: RepositoryPath, base: String) throws {
        // The directory the module path starts from: the entry script's for absolute imports,
        // the importing file's package, or one above it per extra dot, for relative ones.
        var directory = base
        if statement.level > 0 {
            var parts = Self.directory(of: file).split(separator: "/").map(String.init)
            guard statement.level - 1 <= parts.count else { return } // above the repository root
            parts.removeLast(statement.level - 1)
            directory = parts.joined(separator: "/")
            if let package = Self.join(directory, ["__init__.py"]), try python(package) != nil { add(package, from: file, base: base) }
        }
        if !statement.module.isEmpty { try importModule(statement.module, base: directory, from: file) }
        for name in statement.names {
            if let submodule = try moduleFile(statement.module + [name], in: directory) { add(submodule, from: file, base: base) }
        }
    }
}
