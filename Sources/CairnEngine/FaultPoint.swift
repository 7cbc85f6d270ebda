import Foundation

/// Named points where the crash tests kill the process (`CAIRN_FAULT=<name>` in the
/// environment), so that every window between the store and git is tested, not just the ones
/// a random kill happens to hit. Nothing happens unless the variable names the point.
enum FaultPoint {
    private static let armed = ProcessInfo.processInfo.environment["CAIRN_FAULT"]

    static func hit(_ name: String) {
        guard armed == name else { return }
        kill(getpid(), SIGKILL)
    }

    /// With `CAIRN_FAULT=pause:<name>`, says so on standard error and holds the pass there for
    /// two seconds, so a test can act (send SIGTERM) while a pass is surely in flight.
    static func pause(_ name: String) {
        guard armed == "pause:" + name else { return }
        FileHandle.standardError.write(Data("cairn: paused at \(name)\n".utf8))
        Thread.sleep(forTimeInterval: 2)
    }
}
