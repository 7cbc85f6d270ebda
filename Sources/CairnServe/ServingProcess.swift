import CairnCore
import CairnManifests
import CairnRun
import Foundation
import Glibc

/// A version's process as the target holds it: its own child, or one a previous daemon
/// started and this one adopted (not its child, so it is watched through /proc).
final class ProcessHandle: Sendable {
    let pid: Int32
    let startTicks: UInt64?
    private let child: RunningProcess?

    init(child: RunningProcess) {
        self.child = child
        pid = child.processID
        startTicks = ProcessTable.startTicks(of: child.processID)
    }

    init(adopting pid: Int32, startTicks: UInt64?) {
        child = nil
        self.pid = pid
        self.startTicks = startTicks
    }

    /// Whether this daemon started it (so its exit and status come from the runner).
    var isChild: Bool { child != nil }

    var isAlive: Bool {
        if let child { return child.isRunning }
        return ProcessTable.isAlive(pid, startTicks: startTicks)
    }

    /// How a child ended, once its runner has seen it; nil before, and for an adopted process.
    var termination: Termination? { child?.outcome?.termination }

    /// How it ended, once it has: the exit status or signal of a child; nil for an adopted
    /// process, whose status goes to its parent. Polls /proc for an adopted one (cancellable).
    func waitForExit() async -> Termination? {
        if let child { return await child.wait().termination }
        while isAlive {
            do { try await Task.sleep(for: .milliseconds(250)) } catch { return nil }
        }
        return nil
    }

    /// Ends its process group: SIGTERM, then SIGKILL after `grace`; returns once it is gone.
    func stop(grace: Duration) async {
        if let child {
            child.stop(grace: grace)
            _ = await child.wait()
            return
        }
        await Self.stop(pid: pid, startTicks: startTicks, grace: grace)
    }

    /// Ends the group of a process that is not this one's child, checking before each signal
    /// that the pid still names the process that started at `startTicks`.
    static func stop(pid: Int32, startTicks: UInt64?, grace: Duration) async {
        guard ProcessTable.isAlive(pid, startTicks: startTicks) else { return }
        signal(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ProcessTable.isAlive(pid, startTicks: startTicks), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        guard ProcessTable.isAlive(pid, startTicks: startTicks) else { return }
        signal(pid, SIGKILL)
        // SIGKILL cannot be refused; give the kernel a moment to take it down.
        for _ in 0..<100 where ProcessTable.isAlive(pid, startTicks: startTicks) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The group when the process leads one (as every serving process does), else the process.
    private static func signal(_ pid: Int32, _ number: Int32) {
        if getpgid(pid) == pid { _ = kill(-pid, number) } else { _ = kill(pid, number) }
    }
}

/// What a version's process is started with and where it lives on disk.
struct Launch: Sendable {
    let deployment: String
    let version: ServedVersion
    let command: [String]
    let commit: String
    let token: String
    let port: Int
    /// `<serving>/<deployment>/<version>-<commit prefix>`: the checkout (`work`) and `log`.
    let directory: URL
    let modelPath: String

    var work: URL { directory.appendingPathComponent("work") }
    var log: URL { directory.appendingPathComponent("log") }

    /// The variables a command may name as `${NAME}`, and the process's environment gets.
    var variables: [String: String] {
        [
            "CAIRN_MODEL_PATH": modelPath,
            "CAIRN_PORT": String(port),
            "CAIRN_MODEL_VERSION": String(version.version),
            "CAIRN_MODEL_NAME": version.model,
            "CAIRN_MODEL_SHA256": version.artifact.digest.hex,
            "CAIRN_DEPLOYMENT": deployment,
        ]
    }

    /// Checks out the commit (once per version and commit: a restart reuses it) and makes
    /// the command: argv with the variables substituted, never a shell.
    func prepare(source: any SourceCheckout) throws -> Command {
        try checkOut(source: source)
        let argv = command.map { Self.substitute($0, variables) }
        guard let program = argv.first else { throw ExecutorError("the serving command is empty") }
        let executable = try LocalExecutor.resolve(program, in: work)
        var environment = variables
        environment["PATH"] = LocalExecutor.runPath
        environment["HOME"] = directory.path
        environment["LANG"] = "C.UTF-8"
        environment[ProcessTarget.tokenVariable] = token
        let header = "[cairn] \(Date()): starting \(version) on port \(port): \(argv.joined(separator: " "))\n"
        if let handle = FileHandle(forWritingAtPath: log.path) ?? Self.createLog(log) {
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: Data(header.utf8))
            try? handle.close()
        }
        return Command(executable, Array(argv.dropFirst()), environment: environment, workingDirectory: work,
                       standardOutput: .file(log, append: true), standardError: .file(log, append: true))
    }

    /// Writes the checkout under a temporary name and renames it into place, so two starts of
    /// one version never see a half-written one; an existing checkout is reused.
    private func checkOut(source: any SourceCheckout) throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: work.path) { return }
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent("work.\(token.suffix(8))")
        try? manager.removeItem(at: temporary)
        try manager.createDirectory(at: temporary, withIntermediateDirectories: true)
        do {
            try source.checkout(commit: commit, into: temporary)
        } catch {
            try? manager.removeItem(at: temporary)
            throw ExecutorError("could not check out commit \(commit.prefix(12)) into \(temporary.path): \(error)")
        }
        if rename(temporary.path, work.path) != 0 { try? manager.removeItem(at: temporary) }
    }

    private static func createLog(_ url: URL) -> FileHandle? {
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else { return nil }
        return FileHandle(forWritingAtPath: url.path)
    }

    /// Replaces `${NAME}` for the names in `values` only; anything else stays as written.
    static func substitute(_ argument: String, _ values: [String: String]) -> String {
        guard argument.contains("${") else { return argument }
        var result = ""
        var rest = argument[...]
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            if let close = after.firstIndex(of: "}"), let value = values[String(after[..<close])] {
                result += value
                rest = after[after.index(after: close)...]
            } else {
                result += "${"
                rest = after
            }
        }
        return result + rest
    }
}

/// The serving log's upkeep: the process writes it directly (so it outlives the daemon), with
/// O_APPEND, so cutting it is safe at any time.
enum ServingLog {
    /// When `log` holds more than `cap` bytes, keeps its last half in `log.1` and empties it.
    static func cap(_ log: URL, at cap: Int) {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: log.path))?[.size] as? Int, size > cap,
              let handle = FileHandle(forReadingAtPath: log.path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seek(toOffset: UInt64(size - cap / 2))
        let tail = (try? handle.readToEnd()) ?? Data()
        try? tail.write(to: log.appendingPathExtension("1"), options: .atomic)
        _ = truncate(log.path, 0)
    }

    /// The last `count` lines the process wrote, for a failure's message.
    static func tail(_ log: URL, lines count: Int = 10) -> String {
        var text = ""
        for url in [log, log.appendingPathExtension("1")] {
            guard let handle = FileHandle(forReadingAtPath: url.path) else { continue }
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()) ?? 0
            _ = try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
            text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
            if !text.isEmpty { break }
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("[cairn]") }
        return lines.suffix(count).joined(separator: "\n")
    }
}

/// Small socket helpers on 127.0.0.1.
public enum Loopback {
    /// A port nothing listens on right now: bind port 0, read what the system gave, close.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ExecutorError("could not open a socket to pick a port: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = Self.address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ExecutorError("could not pick a free port on 127.0.0.1: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections on the port (a loopback connect ends at once).
    public static func accepts(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = Self.address(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(clamping: port).bigEndian
        return address
    }
}

/// Finds processes by the token Cairn put in their environment, so one that a daemon started
/// and died before recording is still found.
enum TokenScan {
    /// Each process of this user whose environment holds `CAIRN_SERVE_TOKEN` starting with `prefix`.
    static func processes(withTokenPrefix prefix: String) -> [(pid: Int32, token: String, startTicks: UInt64?)] {
        let key = Data("\(ProcessTarget.tokenVariable)=\(prefix)".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [(Int32, String, UInt64?)] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(),
                  let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            for variable in environment.split(separator: 0) where variable.starts(with: key) {
                let text = String(decoding: variable, as: UTF8.self)
                found.append((pid, String(text.dropFirst(ProcessTarget.tokenVariable.count + 1)), ProcessTable.startTicks(of: pid)))
            }
        }
        return found
    }
}
