import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// Whether `pid` is a zombie: dead, its status not yet collected by its parent.
func isZombie(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    // The state follows the command name, which is in parentheses and may hold spaces.
    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
}

/// Waits until `pid` (not necessarily our child) has exited, at most `timeout`; whether it has.
///
/// A grandchild killed with its group finishes dying a moment after its pipes close, so it is
/// watched through a pidfd (readable once the process has exited, zombie or reaped) rather
/// than looked at once. An orphan is reparented to PID 1 and reaped by it, or, where PID 1
/// does not reap (as in some sandboxes), stays a zombie: dead, but still answering kill(pid, 0).
func exits(_ pid: pid_t, within timeout: Duration) -> Bool {
    typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    guard let process = dlopen(nil, RTLD_NOW), let address = dlsym(process, "pidfd_open") else {
        Issue.record("no pidfd_open in this C library")
        return false
    }
    let descriptor = unsafeBitCast(address, to: PidfdOpen.self)(pid, 0)
    guard descriptor >= 0 else { return errno == ESRCH }
    defer { close(descriptor) }
    var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
    let milliseconds = Int32(timeout.components.seconds * 1000)
    return poll(&entry, 1, milliseconds) == 1
}

@Suite struct TerminationTests {
    @Test func aTimeoutEndsTheWholeGroupEvenWhenItIgnoresSIGTERM() async throws {
        let directory = try TemporaryDirectory()
        let pidFile = directory.appending("grandchild.pid")
        let script = try directory.write("stubborn.sh", """
            trap '' TERM
            sh -c 'echo $$ > "$1"; exec sleep 1000' grandchild "$1" &
            echo started
            sleep 1000
            """)
        let command = Command("/bin/sh", [script.path, pidFile.path], timeout: .seconds(1), grace: .seconds(1))
        let outcome = try await command.run()

        #expect(outcome.timedOut)
        #expect(outcome.termination == .signaled(SIGKILL), "SIGTERM is ignored, so SIGKILL ends it: \(outcome)")
        #expect(outcome.elapsed >= .milliseconds(1900), "SIGKILL came before the grace period was over")
        #expect(outcome.elapsed < .seconds(15), "timeout 1 s + grace 1 s + slack for a loaded machine; the child would sleep 1000 s")
        #expect(outcome.standardOutput.text == "started\n")
        #expect(!outcome.succeeded)
        let grandchild = try #require(pid_t(try String(contentsOf: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(exits(grandchild, within: .seconds(5)), "the grandchild \(grandchild) still runs")
        // Gone once PID 1 has reaped the orphan; a zombie for good where PID 1 never reaps.
        let grandchildGone = kill(grandchild, 0) == -1 && errno == ESRCH
        #expect(grandchildGone || isZombie(grandchild))
        // The shell was our child, and the runner reaped it.
        #expect(kill(outcome.processID, 0) == -1 && errno == ESRCH)
        if !grandchildGone { kill(grandchild, SIGKILL) }
    }

    @Test(arguments: [
        ("exit 0", Termination.exited(0)),
        ("exit 3", .exited(3)),
        ("exit 143", .exited(143)),
        ("kill -TERM $$", .signaled(SIGTERM)),
        ("kill -KILL $$", .signaled(SIGKILL)),
    ])
    func anExitStatusAndASignalAreReportedApart(script: String, expected: Termination) throws {
        let outcome = try Command("/bin/sh", ["-c", script]).runSynchronously()
        #expect(outcome.termination == expected)
        #expect(!outcome.timedOut)
        #expect(outcome.succeeded == (expected == .exited(0)))
    }

    @Test func theChildDoesNotInheritIgnoredSignals() throws {
        // `cairn run` ignores SIGTERM and SIGINT to handle them itself; its children must not.
        // Nothing else in the tests uses SIGUSR2, so ignoring it here disturbs no one.
        signal(SIGUSR2, SIG_IGN)
        let outcome = try Command("/bin/sh", ["-c", "kill -USR2 $$; exit 7"]).runSynchronously()
        #expect(outcome.termination == .signaled(SIGUSR2))
    }

    @Test func aHandleCanBeSignalledAndWaitedFor() async throws {
        let child = try Command("sleep", ["1000"]).start()
        #expect(child.isRunning)
        #expect(child.outcome == nil)
        #expect(child.terminate())
        let outcome = await child.wait()
        #expect(outcome.termination == .signaled(SIGTERM))
        #expect(!outcome.timedOut)
        #expect(!child.isRunning)
        #expect(child.waitUntilExit().termination == .signaled(SIGTERM), "waiting again gives the same outcome")
        #expect(!child.terminate(), "no signal goes to a pid that may have been reused")
    }

    @Test func stopEscalatesToSIGKILLAfterTheGrace() throws {
        let directory = try TemporaryDirectory()
        let ready = directory.appending("ready")
        #expect(mkfifo(ready.path, 0o600) == 0)
        let child = try Command("/bin/sh", ["-c", "trap '' TERM; echo ready > \"$1\"; sleep 1000", "sh", ready.path]).start()
        // Opening the FIFO returns once the shell opens it to write, after its trap is set.
        _ = try FileHandle(forReadingFrom: ready).readToEnd()
        child.stop(grace: .milliseconds(300))
        let outcome = child.waitUntilExit()
        #expect(outcome.termination == .signaled(SIGKILL))
        #expect(!outcome.timedOut, "stopped, not timed out")
        #expect(outcome.elapsed >= .milliseconds(250))
    }

    @Test func cancellingTheTaskEndsTheChild() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let task = Task { try await Command("sleep", ["1000"], grace: .milliseconds(200)).run() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Far below the child's 1000 s, and loose enough for a loaded machine whose blocked
        // test threads delay the task (seen: 18 s while the whole suite ran beside a build).
        #expect(clock.now - start < .seconds(120))
    }
}
