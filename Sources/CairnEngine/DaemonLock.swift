public import Foundation

/// One daemon per state directory: `cairn run` holds an exclusive `flock` on
/// `<state>/daemon.lock` for its whole life, with its pid written inside. The kernel drops the
/// lock when the process dies, however it dies, so a stale file never blocks a restart.
public final class DaemonLock: @unchecked Sendable {
    private let descriptor: Int32
    public let path: URL

    /// Takes the lock, or throws naming the process that holds it.
    public init(stateDirectory: URL) throws(DaemonLockError) {
        path = stateDirectory.appendingPathComponent("daemon.lock")
        let fd = open(path.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DaemonLockError("cannot open \(path.path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.readPID(fd)
            close(fd)
            throw DaemonLockError("another cairn process (pid \(holder.map(String.init) ?? "unknown")) is using the state directory "
                                  + "\(stateDirectory.path); stop it first, or give this one its own --state-dir")
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.utf8.count, 0)
        descriptor = fd
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        close(descriptor)
    }

    /// The pid of the daemon holding the lock on `stateDirectory`, or nil when none runs.
    public static func holder(of stateDirectory: URL) -> pid_t? {
        let fd = open(stateDirectory.appendingPathComponent("daemon.lock").path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A shared lock that can be had means no daemon holds the exclusive one.
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        return readPID(fd)
    }

    private static func readPID(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return pid_t(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

public struct DaemonLockError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
