import CairnRun
public import Foundation

/// Finds a TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() throws -> UInt16 {
    let socket = try ListeningSocket()
    defer { socket.close() }
    return socket.port
}

/// A listening TCP socket on 127.0.0.1.
public final class ListeningSocket: @unchecked Sendable {
    public let descriptor: Int32
    public let port: UInt16

    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SubprocessError(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else { throw SubprocessError(description: "bind/listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.port = UInt16(bigEndian: address.sin_port)
    }

    public func close() {
        _ = Glibc.close(descriptor)
    }
}

/// A server on 127.0.0.1 that accepts connections (the kernel completes the handshake) and
/// never says a word: the remote that does not answer.
public final class SilentServer: @unchecked Sendable {
    private let socket: ListeningSocket
    public var port: UInt16 { socket.port }

    public init() throws {
        socket = try ListeningSocket()
    }

    deinit {
        socket.close()
    }
}

/// A real `git daemon` serving a directory on 127.0.0.1, push enabled; stopped on `stop()` or deinit.
public final class GitDaemon: Sendable {
    public let port: UInt16
    private let process: RunningProcess

    public init(basePath: URL) throws {
        var lastError: (any Error)?
        // git-daemon itself, not the `git daemon` wrapper, so that stopping it stops the server.
        let execPath = try run("git", ["--exec-path"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<5 {
            let port = try freePort()
            let process = try Command("\(execPath)/git-daemon",
                                      ["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1",
                                       "--port=\(port)", "--base-path=\(basePath.path)", basePath.path],
                                      environment: GitFixture.environment(),
                                      standardOutput: .discard, standardError: .discard).start()
            // Ready when it accepts a connection; give up after 10 s.
            for _ in 0..<200 {
                if canConnect(port: port) {
                    self.port = port
                    self.process = process
                    return
                }
                if !process.isRunning { break }
                usleep(50_000)
            }
            process.terminate(signal: SIGKILL)
            _ = process.waitUntilExit()
            lastError = SubprocessError(description: "git daemon did not start on port \(port)")
        }
        throw lastError ?? SubprocessError(description: "git daemon did not start")
    }

    public func url(_ repository: String) -> String { "git://127.0.0.1:\(port)/\(repository)" }

    /// Kills the daemon and the connections it has forked (its process group), and waits.
    public func stop() {
        process.terminate(signal: SIGKILL)
        _ = process.waitUntilExit()
    }

    deinit { stop() }
}

func canConnect(port: UInt16) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
