import Dispatch
public import Foundation
import Glibc

/// A child process started by `Command.start()`: signal it, wait for it (async or blocking), or
/// read its outcome once it has ended.
///
/// A dedicated thread blocks in `waitid` until the child exits, so nothing polls. The moment it
/// has exited (still unreaped, so its pid and process group cannot be reused) whatever is left
/// in its group gets SIGKILL; then it is reaped. Signals are only ever sent before that point,
/// under the same lock, so they can never reach a stranger that inherited the pid.
///
/// The handle keeps itself alive until the child is reaped, so dropping it leaves no zombie.
public final class RunningProcess: Sendable {
    /// The child's pid, which is also its process group id.
    public let processID: Int32
    public let command: Command
    private let started: ContinuousClock.Instant
    private let state = Guarded(State())

    private struct State {
        var leaderExited = false
        var timedOut = false
        var termination: Termination?
        var elapsed: Duration?
        var streams: (CapturedOutput, CapturedOutput)?
        var outcome: ProcessOutcome?
        var waiters: [CheckedContinuation<ProcessOutcome, Never>] = []
        var timers: [DispatchWorkItem] = []
    }

    init(launching command: Command) throws {
        let child = try Spawner.spawn(command)
        started = .now
        processID = child.pid
        self.command = command

        func stream(_ descriptor: Int32?, _ destination: OutputDestination) -> OutputDrain.Stream? {
            guard let descriptor, case .capture(let limit) = destination else { return nil }
            return OutputDrain.Stream(descriptor: descriptor, limit: limit)
        }
        let wake: Int32?
        if child.standardOutput != nil || child.standardError != nil {
            wake = OutputDrain.start(standardOutput: stream(child.standardOutput, command.standardOutput),
                                     standardError: stream(child.standardError, command.standardError),
                                     linger: max(command.grace, .seconds(1))) { [self] output, error in
                record { $0.streams = (output, error) }
            }
        } else {
            wake = nil
            state.withLock { $0.streams = (.empty, .empty) }
        }
        let reaper = Thread { [self] in reap(wake: wake) }
        reaper.name = "cairn-run-wait-\(child.pid)"
        reaper.start()
        if let timeout = command.timeout {
            schedule(after: timeout) { [self] in
                if signalGroup(SIGTERM, markingTimeout: true) { escalate(after: command.grace) }
            }
        }
    }

    /// Whether the child has not exited yet.
    public var isRunning: Bool { state.withLock { !$0.leaderExited } }

    /// How it ended, once it has ended and its output has been read; nil before.
    public var outcome: ProcessOutcome? { state.withLock { $0.outcome } }

    /// Sends `signal` to the child's whole process group (or the child alone), unless it has
    /// already exited. Returns whether the signal was sent.
    @discardableResult
    public func terminate(signal: Int32 = SIGTERM, wholeGroup: Bool = true) -> Bool {
        signalGroup(signal, wholeGroup: wholeGroup)
    }

    /// Ends the child's group: SIGTERM now, SIGKILL after `grace` (the command's by default) if
    /// the child has not exited by then. Returns at once; `wait` for the outcome.
    public func stop(grace: Duration? = nil) {
        if signalGroup(SIGTERM) { escalate(after: grace ?? command.grace) }
    }

    /// Waits until the child has exited and its output has been read.
    public func wait() async -> ProcessOutcome {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> ProcessOutcome? in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Blocks this thread until the child has exited and its output has been read.
    public func waitUntilExit() -> ProcessOutcome {
        state.wait { $0.outcome }
    }

    // MARK: - Signals, timers and reaping

    private func signalGroup(_ signal: Int32, wholeGroup: Bool = true, markingTimeout: Bool = false) -> Bool {
        state.withLock { state in
            guard !state.leaderExited else { return false }
            if markingTimeout { state.timedOut = true }
            return kill(wholeGroup ? -processID : processID, signal) == 0
        }
    }

    private func escalate(after grace: Duration) {
        schedule(after: grace) { [self] in _ = signalGroup(SIGKILL) }
    }

    /// Where timeouts and graces fire. A serial queue gets a thread of its own when it needs
    /// one (it is "overcommit"), whereas the global queues have one per core and starve when
    /// callers block them, say in `waitUntilExit`, which would make a timeout late.
    private static let timers = DispatchQueue(label: "cairn.run.timers")

    /// Runs `action` after `delay` unless the child exits first.
    private func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let item = DispatchWorkItem(block: action)
        let scheduled = state.withLock { state -> Bool in
            guard !state.leaderExited else { return false }
            state.timers.append(item)
            return true
        }
        guard scheduled else { return }
        Self.timers.asyncAfter(deadline: .now() + dispatchInterval(delay), execute: item)
    }

    private func reap(wake: Int32?) {
        var info = siginfo_t()
        // Wait for the exit without reaping, so the pid and its group stay ours meanwhile.
        var waited: Int32
        repeat { waited = waitid(P_PID, id_t(processID), &info, WEXITED | WNOWAIT) } while waited != 0 && errno == EINTR
        // Failing means someone else reaped it (SIGCHLD ignored, a stray wait(-1)): then the
        // pid is no longer ours to signal, and its status is lost.
        let ours = waited == 0
        let timers = state.withLock { state -> [DispatchWorkItem] in
            state.leaderExited = true
            if ours { _ = kill(-processID, SIGKILL) }
            defer { state.timers = [] }
            return state.timers
        }
        for timer in timers { timer.cancel() }
        if let wake { _ = close(wake) }
        var status: Int32 = 0
        var reaped: pid_t = -1
        if ours {
            repeat { reaped = waitpid(processID, &status, 0) } while reaped == -1 && errno == EINTR
        }
        let elapsed = ContinuousClock.now - started
        let termination = reaped == processID ? Termination(waitStatus: status) : .exited(-1)
        record { state in
            state.termination = termination
            state.elapsed = elapsed
        }
    }

    /// Applies `change`; once both the exit and the output are in, makes the outcome and
    /// resumes everyone waiting.
    private func record(_ change: (inout State) -> Void) {
        let (outcome, waiters) = state.withLock { state -> (ProcessOutcome?, [CheckedContinuation<ProcessOutcome, Never>]) in
            change(&state)
            guard state.outcome == nil, let termination = state.termination, let elapsed = state.elapsed,
                  let (output, error) = state.streams else { return (nil, []) }
            let outcome = ProcessOutcome(command: command.description, processID: processID, termination: termination,
                                         timedOut: state.timedOut, elapsed: elapsed,
                                         standardOutput: output, standardError: error)
            state.outcome = outcome
            defer { state.waiters = [] }
            return (outcome, state.waiters)
        }
        guard let outcome else { return }
        for waiter in waiters { waiter.resume(returning: outcome) }
    }
}

private func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return .nanoseconds(0) }
    // Capped at a century, far inside Int nanoseconds.
    return .nanoseconds(Int(min(seconds, 3_153_600_000)) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
}

/// A value that one lock guards, with a condition to block on until it reaches a state.
/// Every change wakes the blocked waiters, who look again.
final class Guarded<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return try body(&value)
    }

    /// Blocks until `check` returns a result.
    func wait<Result>(for check: (Value) -> Result?) -> Result {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result = check(value) { return result }
            condition.wait()
        }
    }
}
