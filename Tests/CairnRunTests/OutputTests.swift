@testable import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// The bytes the writer script produces for `seed`: a pattern with period 251, so a lost,
/// doubled or reordered chunk shows.
func pattern(seed: Int, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(($0 * 7 + seed) % 251) }
}

/// Where `actual` first differs from `expected`, or nil if they are equal. (Swift Testing would
/// diff two 10 MiB arrays element by element, which takes for ever.)
func mismatch(_ actual: [UInt8], _ expected: [UInt8]) -> String? {
    guard actual != expected else { return nil }
    let common = min(actual.count, expected.count)
    let offset = (0..<common).first { actual[$0] != expected[$0] } ?? common
    return "\(actual.count) bytes where \(expected.count) were expected; the first difference is at offset \(offset)"
}

/// Writes 1 MiB to stdout and 10 MiB to stderr, alternating in pieces larger than a pipe, so a
/// reader that drains one stream before the other leaves the child blocked.
let writerScript = """
import sys
def pattern(seed, count):
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (count // 251 + 1))[:count]
out, err = pattern(1, 1 << 20), pattern(2, 10 << 20)
for i in range(64):
    sys.stderr.buffer.write(err[i * 163840:(i + 1) * 163840]); sys.stderr.buffer.flush()
    sys.stdout.buffer.write(out[i * 16384:(i + 1) * 16384]); sys.stdout.buffer.flush()
"""

@Suite struct OutputTests {
    @Test(arguments: [nil, 1_000_003])
    func bothStreamsAreDrainedWhileTheChildRuns(stderrLimit: Int?) async throws {
        let command = Command("python3", ["-c", writerScript],
                              standardError: stderrLimit.map { .capture(limit: $0) } ?? .capture(),
                              timeout: .seconds(60))
        let outcome = try await command.run()
        #expect(!outcome.timedOut, "the child blocked on a full pipe")
        #expect(outcome.termination == .exited(0), "\(outcome)")
        #expect(mismatch(outcome.standardOutput.bytes, pattern(seed: 1, count: 1 << 20)) == nil)
        #expect(!outcome.standardOutput.truncated)
        let stderr = pattern(seed: 2, count: 10 << 20)
        #expect(outcome.standardError.totalBytes == stderr.count)
        if let stderrLimit {
            #expect(outcome.standardError.truncated)
            #expect(mismatch(outcome.standardError.bytes, Array(stderr.suffix(stderrLimit))) == nil, "the tail is kept, in order")
        } else {
            #expect(!outcome.standardError.truncated)
            #expect(mismatch(outcome.standardError.bytes, stderr) == nil)
        }
    }

    @Test(arguments: [0, 1, 7, 251, 4096, 65_537])
    func theTailBufferKeepsTheLastBytesInOrder(limit: Int) {
        let stream = pattern(seed: 3, count: 200_000)
        var buffer = TailBuffer(limit: limit)
        var offset = 0
        var sizes = [1, 5, 4096, 3, 70_000, 0, 251, 65_537]
        while offset < stream.count {
            let size = min(sizes.removeFirst(), stream.count - offset)
            sizes.append(size == 0 ? 1 : size)
            stream[offset..<(offset + size)].withUnsafeBytes { buffer.append($0) }
            offset += size
        }
        let kept = buffer.finish()
        #expect(kept.totalBytes == stream.count)
        #expect(mismatch(kept.bytes, Array(stream.suffix(limit))) == nil)
        #expect(kept.truncated == (limit < stream.count))
    }

    @Test func aGrandchildHoldingThePipesDoesNotHoldTheReader() throws {
        // The shell exits at once; the background sleep keeps both pipes open. A long grace
        // (which also bounds how long the reader lingers after the exit) makes a reader that
        // waits for the grandchild show. The wait blocks this thread rather than awaiting: an
        // awaiting test resumes only when the cooperative pool has a free thread, and in a full
        // run other suites' blocking subprocess calls can hold both for longer than the grace.
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = try Command("/bin/sh", ["-c", "sleep 1000 & echo $!"], timeout: .seconds(60), grace: .seconds(30)).runSynchronously()
        #expect(clock.now - start < .seconds(25), "the reader waited for the grandchild (the grace is 30 s; a loaded machine adds seconds)")
        #expect(outcome.termination == .exited(0))
        let grandchild = try #require(pid_t(outcome.standardOutput.text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(exits(grandchild, within: .seconds(5)), "the grandchild \(grandchild) outlived the shell")
        if !exits(grandchild, within: .zero) { kill(grandchild, SIGKILL) }
    }

    @Test func outputGoesToAFileOrNowhere() async throws {
        let directory = try TemporaryDirectory()
        let log = directory.appending("out.log")
        try "old contents\n".write(to: log, atomically: true, encoding: .utf8)
        let outcome = try await Command("/bin/sh", ["-c", "echo to-file; echo to-null >&2"],
                                        standardOutput: .file(log), standardError: .discard).run()
        #expect(outcome.succeeded)
        #expect(try String(contentsOf: log, encoding: .utf8) == "to-file\n")
        #expect(outcome.standardOutput == .empty && outcome.standardError == .empty)

        _ = try await Command("/bin/sh", ["-c", "echo again"], standardOutput: .file(log, append: true)).run()
        #expect(try String(contentsOf: log, encoding: .utf8) == "to-file\nagain\n")
    }
}
