import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// Each way a run can end, with a real supervisor and real processes, ends in a clear
/// recorded state and message.
@Suite struct LocalExecutorTests {
    @Test func aRunThatSucceedsHasItsOutputsStoredAndRestorable() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["train.sh": """
            #!/bin/sh
            mkdir -p model
            printf 'weights for %s\\n' "$CAIRN_PARAMS" > model/weights.txt
            cp "$CAIRN_PARAMS_FILE" params-copy.json
            echo "trained in $(pwd)"
            """])
        let spec = job(["./train.sh"], outputs: ["model", "params-copy.json"])
        let handle = try await executor.submit(spec)
        #expect(handle.runID == spec.runID)
        let record = try await fixture.final(spec.runID)

        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(record.exitStatus == 0)
        #expect(record.handle?.executor == "local" && record.handle?.startTicks != nil)
        #expect(record.startedAt != nil && record.finishedAt != nil)
        #expect(record.inputs == ["params": "p"] && record.stage == "build" && record.reason == "inputs changed")
        let model = try #require(record.outputs["model"])
        let params = try #require(record.outputs["params-copy.json"])
        #expect(model.kind == .directory && params.kind == .file)
        let restored = fixture.directory.appending("restored")
        try fixture.artifacts.restore(model, to: restored)
        #expect(try String(contentsOf: restored.appendingPathComponent("weights.txt"), encoding: .utf8) == "weights for {\"lr\":0.1}\n")
        let paramsCopy = fixture.directory.appending("params.json")
        try fixture.artifacts.restore(params, to: paramsCopy)
        #expect(try String(contentsOf: paramsCopy, encoding: .utf8) == #"{"lr":0.1}"#)

        let directory = fixture.runDirectory(spec.runID)
        #expect(record.logPath == directory.appendingPathComponent("log").path)
        #expect(try String(contentsOfFile: try #require(record.logPath), encoding: .utf8) == "trained in \(directory.path)/work\n")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("work").path), "the checkout is removed")
        for kept in ["log", "result.json", "job.json"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(kept).path), "\(kept) is kept")
        }
        var completions = executor.completions.makeAsyncIterator()
        #expect(await completions.next()?.runID == spec.runID, "the end is announced")
        #expect(await executor.inFlight().isEmpty)
        #expect(try await executor.observe(runID: spec.runID) == .succeeded)
    }

    @Test func aCommandThatIsNotThereFailsTheRunWithoutCrashing() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        let spec = job(["no-such-program-xyz", "--flag"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed)
        #expect(record.message?.contains("the command no-such-program-xyz was not found on the runs' PATH") == true, "\(record.message ?? "")")
        #expect(await executor.inFlight().isEmpty, "its slot is free again")
    }

    @Test func aNonZeroExitFailsWithTheLastLinesOfTheLog() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["fail.sh": """
            for i in $(seq 1 40); do echo "line $i"; done
            echo "oops: bad input" >&2
            exit 3
            """])
        let spec = job(["sh", "fail.sh"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        let message = try #require(record.message)
        #expect(record.state == .failed && record.exitStatus == 3 && record.signal == nil)
        #expect(message.hasPrefix("it exited with status 3; the last lines of its log:\n"), "\(message)")
        #expect(message.hasSuffix("line 40\noops: bad input"))
        #expect(message.contains("line 22\n") && !message.contains("line 21\n"), "about 20 lines: \(message)")
        #expect(try await executor.observe(runID: spec.runID) == .failed(exitStatus: 3, signal: nil, message: message))
    }

    @Test func aRunKilledByASignalSaysWhich() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["die.sh": "echo dying\nkill -KILL $$\n"])
        let spec = job(["sh", "die.sh"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.signal == SIGKILL && record.exitStatus == nil)
        #expect(record.message?.hasPrefix("it was killed by SIGKILL; the last lines of its log:\ndying") == true, "\(record.message ?? "")")
    }

    @Test func aRunPastItsTimeoutIsEnded() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        let spec = job(["sleep", "1000"], timeout: .seconds(1))
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.signal == SIGTERM)
        #expect(record.message?.hasPrefix("timed out: it ran past its timeout of 1 s and was killed by SIGTERM") == true, "\(record.message ?? "")")
    }

    @Test func aRunThatIgnoresSIGTERMGetsSIGKILLAfterTheGrace() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["stubborn.sh": "trap '' TERM\necho stubborn\nwhile :; do sleep 1; done\n"], grace: .seconds(1))
        let spec = job(["sh", "stubborn.sh"], timeout: .seconds(1))
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.signal == SIGKILL)
        #expect(record.message?.contains("timed out") == true && record.message?.contains("stubborn") == true, "\(record.message ?? "")")
        let result = try String(contentsOf: fixture.runDirectory(spec.runID).appendingPathComponent("result.json"), encoding: .utf8)
        #expect(result.contains("\"timedOut\" : true"))
    }

    @Test func aRunThatWritesNoDeclaredOutputFails() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        let spec = job(["true"], outputs: ["model.bin"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.exitStatus == 0 && record.outputs.isEmpty)
        #expect(record.message?.hasPrefix("it exited with status 0 but did not write its declared output model.bin") == true, "\(record.message ?? "")")
    }

    @Test func theDirectoryOfEachDeclaredOutputIsMadeBeforeTheRun() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: [:])
        let spec = job(["touch", "deep/er/out.txt"], outputs: ["deep/er/out.txt"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        #expect(record.outputs["deep/er/out.txt"] != nil)
    }

    @Test func anOutputThatIsASymlinkLeavingTheDirectoryIsRefused() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["link.sh": "ln -s /etc/passwd model.bin\nmkdir -p out && rm -rf out/etc && ln -s /etc out/etc\n"])
        let spec = job(["sh", "link.sh"], outputs: ["model.bin"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.outputs.isEmpty)
        #expect(record.message?.contains("its declared output model.bin is a symlink, which leaves the run's directory") == true, "\(record.message ?? "")")

        let nested = job(["sh", "link.sh"], outputs: ["out/etc/passwd"])
        _ = try await executor.submit(nested)
        let second = try await fixture.final(nested.runID)
        #expect(second.state == .failed)
        #expect(second.message?.contains("resolves to /etc/passwd, which leaves the run's directory") == true, "\(second.message ?? "")")
    }

    @Test func aHugeLogKeepsItsTailWithinTheCap() async throws {
        let fixture = try ExecutorFixture()
        let cap = 1 << 20
        let executor = try fixture.executor(files: ["chatty.sh": """
            yes 'the quick brown fox jumps over the lazy dog' | head -c 210000000
            echo THE-END
            """], logCap: cap)
        let spec = job(["sh", "chatty.sh"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID, within: 240)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        let log = fixture.runDirectory(spec.runID).appendingPathComponent("log")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int)
        #expect(size <= cap && size > cap / 2, "the log is \(size) bytes")
        let handle = try FileHandle(forReadingFrom: log)
        defer { try? handle.close() }
        let head = String(decoding: try handle.read(upToCount: 100) ?? Data(), as: UTF8.self)
        let written = 210_000_000 + "THE-END\n".utf8.count
        let firstLine = String(head.prefix { $0 != "\n" })
        #expect(firstLine.hasPrefix("[cairn: the first ") && firstLine.hasSuffix(" bytes of this log were cut]"), "\(firstLine)")
        let cut = Int(firstLine.dropFirst("[cairn: the first ".count).prefix { $0.isNumber }) ?? -1
        #expect(cut + size - firstLine.utf8.count - 1 == written, "cut and kept add up to what was written")
        try handle.seek(toOffset: UInt64(size - 8))
        #expect(try handle.readToEnd() == Data("THE-END\n".utf8), "the tail is kept")
        #expect(!FileManager.default.fileExists(atPath: log.path + ".1"))
    }

    @Test func aChildThatOutlivesTheRunIsEnded() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["fork.sh": "sleep 1000 &\necho $! > \"$HOME/child.pid\"\necho forked\n"])
        let spec = job(["sh", "fork.sh"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .succeeded, "\(record.message ?? "")")
        let text = try String(contentsOf: fixture.runDirectory(spec.runID).appendingPathComponent("child.pid"), encoding: .utf8)
        let child = try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(exits(child, within: .seconds(10)), "the forked sleep \(child) still runs")
        if kill(child, 0) == 0 && !isZombie(child) { kill(child, SIGKILL) }
    }

    @Test func cancellingEndsTheGroupAndRecordsCancelled() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["long.sh": "echo working\nsleep 1000\n"])
        let spec = job(["sh", "long.sh"])
        _ = try await executor.submit(spec)
        try await fixture.waitForFile(fixture.runDirectory(spec.runID).appendingPathComponent("command.pid"))
        let command = try #require(commandPID(in: fixture.runDirectory(spec.runID)))
        try await executor.cancel(runID: spec.runID)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .cancelled, "\(record.message ?? "")")
        #expect(record.message?.hasPrefix("cancelled; it was killed by SIGTERM") == true, "\(record.message ?? "")")
        #expect(exits(command, within: .seconds(10)))
        #expect(try await executor.observe(runID: spec.runID) == .cancelled)
    }
}
