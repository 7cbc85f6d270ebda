import Foundation
import Glibc

/// A child just started: its pid (also its process group) and the parent's ends of the
/// pipes for the streams being captured.
struct SpawnedChild {
    let pid: pid_t
    let standardOutput: Int32?
    let standardError: Int32?
}

/// posix_spawn with the child in its own process group, standard input from a file or /dev/null,
/// default signal dispositions and an empty signal mask, and no descriptor but 0, 1 and 2.
enum Spawner {
    static func spawn(_ command: Command) throws -> SpawnedChild {
        let name = command.executable
        let path = try ExecutableSearch.path(for: name)
        if let directory = command.workingDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw RunError(.workingDirectory, name, "the working directory \(directory.path) does not exist")
            }
        }
        var argv = [name] + command.arguments
        var executablePath = path
        if let directory = command.workingDirectory, GNUExtensions.addChdir == nil {
            // Without addchdir_np, env(1) changes directory and then execs the program: still argv, no shell.
            argv = ["/usr/bin/env", "-C", directory.path, "--", path] + command.arguments
            executablePath = "/usr/bin/env"
        }
        // nil inherits this process's environment as it is now (environ, read at the spawn).
        let environment = command.environment.map { $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
        if let bad = (argv + (environment ?? [])).first(where: { $0.utf8.contains(0) }) {
            throw RunError(.invalidArgument, name, "an argument or environment entry holds a NUL byte: \(bad.debugDescription)")
        }

        var descriptors = Descriptors()
        defer { descriptors.closeChildEnds() }
        do {
            try descriptors.open(command.standardOutput, childFD: 1)
            try descriptors.open(command.standardError, childFD: 2)
        } catch let error as SystemCallError {
            descriptors.closeParentEnds()
            throw RunError.system(.output, name, "could not open its output (\(error.context))", errno: error.errno)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, command.standardInput?.path ?? "/dev/null", O_RDONLY, 0)
        for (source, target) in descriptors.childEnds { posix_spawn_file_actions_adddup2(&actions, source, target) }
        if let directory = command.workingDirectory, let addChdir = GNUExtensions.addChdir {
            _ = addChdir(&actions, directory.path)
        }
        if let addClosefrom = GNUExtensions.addClosefrom { _ = addClosefrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        // Dispositions this process chose (SIGPIPE ignored, say) must not leak into the child.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in 1..<Int32(32) where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        var pid: pid_t = 0
        let result = withCStringArray(argv) { argvPointer in
            guard let environment else {
                return posix_spawn(&pid, executablePath, &actions, &attributes, argvPointer, environ)
            }
            return withCStringArray(environment) { environmentPointer in
                posix_spawn(&pid, executablePath, &actions, &attributes, argvPointer, environmentPointer)
            }
        }
        guard result == 0 else {
            descriptors.closeParentEnds()
            throw spawnError(result, name: name, path: path)
        }
        return SpawnedChild(pid: pid, standardOutput: descriptors.parentEnds[1], standardError: descriptors.parentEnds[2])
    }

    /// posix_spawn reports the child's failed exec as its result.
    private static func spawnError(_ number: Int32, name: String, path: String) -> RunError {
        switch number {
        case ENOENT: RunError(.notFound, name, "\(path) or the interpreter its #! line names does not exist", systemError: number)
        case EACCES: RunError(.notExecutable, name, "permission denied executing \(path)", systemError: number)
        case ENOEXEC: RunError(.notExecutable, name, "\(path) is not a program this system can run", systemError: number)
        default: RunError.system(.spawn, name, "posix_spawn", errno: number)
        }
    }
}

/// The descriptors a child's stdout and stderr go to, and the parent's ends of any pipes.
private struct Descriptors {
    /// The child's descriptor for 1 and 2, closed in the parent once the child has started.
    var childEnds: [(source: Int32, target: Int32)] = []
    /// The read ends of capture pipes, by the child's descriptor (1 or 2).
    var parentEnds: [Int32: Int32] = [:]

    mutating func open(_ destination: OutputDestination, childFD: Int32) throws {
        let stream = childFD == 1 ? "standard output" : "standard error"
        switch destination {
        case .capture:
            let ends = try GNUExtensions.makePipe().mapError { SystemCallError(errno: $0.errno, context: "a pipe for \(stream)") }.get()
            parentEnds[childFD] = ends.read
            childEnds.append((ends.write, childFD))
        case .discard:
            childEnds.append((try openFile("/dev/null", O_WRONLY | O_CLOEXEC, "/dev/null"), childFD))
        case .file(let url, let append):
            let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
            childEnds.append((try openFile(url.path, flags, "\(url.path) for \(stream)"), childFD))
        case .descriptor(let descriptor):
            // A copy, because the child ends are closed once the child has started.
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else { throw SystemCallError(errno: errno, context: "descriptor \(descriptor) for \(stream)") }
            childEnds.append((copy, childFD))
        }
    }

    private func openFile(_ path: String, _ flags: Int32, _ context: String) throws -> Int32 {
        let descriptor = Glibc.open(path, flags, 0o644)
        guard descriptor >= 0 else { throw SystemCallError(errno: errno, context: context) }
        return descriptor
    }

    mutating func closeChildEnds() {
        for (source, _) in childEnds { _ = close(source) }
        childEnds = []
    }

    mutating func closeParentEnds() {
        for (_, descriptor) in parentEnds { _ = close(descriptor) }
        parentEnds = [:]
    }
}

/// Runs `body` with a NULL-terminated array of C strings, as argv and envp want.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
    for (index, string) in strings.enumerated() { (pointers + index).initialize(to: strdup(string)) }
    (pointers + strings.count).initialize(to: nil)
    defer {
        for index in 0..<strings.count { free(pointers[index]) }
        pointers.deallocate()
    }
    return body(pointers)
}

// MARK: - Finding the program

/// Finds the file a program name means, the way `execvp` does, but before spawning, so that a
/// missing program is a clear error rather than an exit status 127 from somewhere.
public enum ExecutableSearch {
    /// A name with a slash is a path (relative to the current directory); a bare name is looked
    /// up on this process's PATH. Throws a `RunError` saying what is missing.
    public static func path(for name: String) throws -> String {
        guard !name.isEmpty else { throw RunError(.notFound, "\"\"", "the program name is empty") }
        if name.contains("/") {
            let path = name.hasPrefix("/") ? name : FileManager.default.currentDirectoryPath + "/" + name
            switch check(path) {
            case .executable: return path
            case .missing: throw RunError(.notFound, name, "no such file")
            case .directory: throw RunError(.notExecutable, name, "\(path) is a directory")
            case .notExecutable: throw RunError(.notExecutable, name, "\(path) is not executable (permission denied)")
            }
        }
        let search = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        var unusable: [String] = []
        for directory in search.split(separator: ":", omittingEmptySubsequences: false) {
            // An empty entry is the current directory, as in a shell.
            let base = directory.isEmpty ? FileManager.default.currentDirectoryPath : String(directory)
            let candidate = base.hasSuffix("/") ? base + name : base + "/" + name
            switch check(candidate) {
            case .executable: return candidate
            case .notExecutable: unusable.append(candidate)
            case .missing, .directory: continue
            }
        }
        if !unusable.isEmpty {
            throw RunError(.notExecutable, name, "\(unusable.joined(separator: ", ")) is on PATH but not executable")
        }
        throw RunError(.notFound, name, "no such file on PATH")
    }

    private enum Check { case executable, missing, directory, notExecutable }

    private static func check(_ path: String) -> Check {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        if info.st_mode & S_IFMT == S_IFDIR { return .directory }
        return access(path, X_OK) == 0 ? .executable : .notExecutable
    }
}

// MARK: - glibc extensions

/// glibc functions that Swift's Glibc module hides (they are declared only under _GNU_SOURCE),
/// looked up once at run time rather than through a C shim target. Each is nil where the C
/// library lacks it, and the runner then takes a portable way round.
enum GNUExtensions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29): the child changes directory
    /// before exec, without touching the parent's working directory.
    static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")
    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34): the child closes every
    /// descriptor from 3 up, so nothing this process opened without O_CLOEXEC leaks into it.
    static let addClosefrom: AddClosefrom? = symbol("posix_spawn_file_actions_addclosefrom_np")
    /// `pipe2` (Linux 2.6.27): a pipe whose ends are close-on-exec from the start, so a child
    /// spawned by another thread meanwhile cannot inherit them.
    static let pipe2: Pipe2? = symbol("pipe2")

    private static func symbol<Function>(_ name: String) -> Function? {
        guard let process = dlopen(nil, RTLD_NOW), let address = dlsym(process, name) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }

    /// A close-on-exec pipe: (read end, write end), or the errno.
    static func makePipe() -> Result<(read: Int32, write: Int32), SystemCallError> {
        var ends: [Int32] = [-1, -1]
        let result = ends.withUnsafeMutableBufferPointer { buffer -> Int32 in
            if let pipe2 { return pipe2(buffer.baseAddress, O_CLOEXEC) }
            guard Glibc.pipe(buffer.baseAddress) == 0 else { return -1 }
            _ = fcntl(buffer[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(buffer[1], F_SETFD, FD_CLOEXEC)
            return 0
        }
        return result == 0 ? .success((ends[0], ends[1])) : .failure(SystemCallError(errno: errno))
    }
}

/// An errno and what was being done, carried until it becomes a `RunError`.
struct SystemCallError: Error {
    let errno: Int32
    var context = ""
}
