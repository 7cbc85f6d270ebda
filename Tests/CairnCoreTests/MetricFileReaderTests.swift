import CairnCore
import CairnManifests
import CairnTestSupport
import Foundation
import MonitorController
import Testing

/// A Monitor's `file` source read for real from files in a temporary data root: the json
/// object (read when it changes), the jsonl stream (read from where the last read stopped,
/// complete lines only, bad lines counted), and the root that a symlink cannot leave.
@Suite struct MetricFileReaderTests {
    let root: TemporaryDirectory

    init() throws {
        root = try TemporaryDirectory("cairn-metric-files")
    }

    func read(_ name: String, _ format: MonitorSpec.FileFormat, cursor: FileCursor? = nil, now: Date = Date(),
              readLimit: Int = 4 << 20) throws -> MetricFileRead {
        try MetricFileReader.read(path: root.appending(name).path, format: format, roots: [root.path], cursor: cursor, now: now,
                                  readLimit: readLimit)
    }

    func failure(_ name: String, _ format: MonitorSpec.FileFormat, roots: [String]? = nil) -> String? {
        do {
            _ = try MetricFileReader.read(path: root.appending(name).path, format: format, roots: roots ?? [root.path], cursor: nil)
            return nil
        } catch {
            return error.message
        }
    }

    func append(_ name: String, _ text: String) throws {
        let url = root.appending(name)
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    // MARK: json

    @Test func aJSONObjectIsReadAtItsModificationTimeAndNotAgainUntilItChanges() throws {
        let file = try root.write("metrics.json", #"{"accuracy": 0.93, "latency_p95": 120}"#)
        let written = Date().addingTimeInterval(-60)
        try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: file.path)
        let first = try read("metrics.json", .json)
        #expect(first.changed)
        #expect(first.samples.map(\.metric) == ["accuracy", "latency_p95"])
        #expect(first.samples.map(\.value) == [0.93, 120])
        #expect(first.samples.allSatisfy { abs(($0.time ?? .distantPast).timeIntervalSince(written)) < 0.001 })

        let again = try read("metrics.json", .json, cursor: first.cursor)
        #expect(!again.changed && again.samples.isEmpty)
        #expect(again.cursor == first.cursor)

        // The cursor survives a restart as JSON.
        let kept = try JSONDecoder().decode(FileCursor.self, from: JSONEncoder().encode(first.cursor))
        #expect(try read("metrics.json", .json, cursor: kept).samples.isEmpty)

        try root.write("metrics.json", #"{"accuracy": 0.91, "latency_p95": 130}"#)
        let changed = try read("metrics.json", .json, cursor: first.cursor)
        #expect(changed.changed && changed.samples.map(\.value) == [0.91, 130])
    }

    @Test(arguments: [#""2025-06-01T12:00:00Z""#, #""2025-06-01T12:00:00.000Z""#, "1748779200"])
    func anExplicitTimestampAppliesToEveryMetric(stamp: String) throws {
        try root.write("metrics.json", #"{"timestamp": \#(stamp), "accuracy": 0.9, "drift": 0.1}"#)
        let now = Date(timeIntervalSince1970: 1_748_779_200 + 600)
        let read = try read("metrics.json", .json, now: now)
        #expect(read.samples.map(\.metric) == ["accuracy", "drift"])
        #expect(read.samples.allSatisfy { $0.time == Date(timeIntervalSince1970: 1_748_779_200) })
    }

    @Test(arguments: [
        (#"{"accuracy": "high"}"#, #"the value of "accuracy" is the string "high", not a finite number"#),
        (#"{"accuracy": true}"#, #"the value of "accuracy" is true, not a finite number"#),
        (#"{"accuracy": null}"#, #"the value of "accuracy" is null, not a finite number"#),
        (#"{"accuracy": 1e999}"#, #"the value of "accuracy" is"#),
        (#"[0.93]"#, "is not one JSON object of metric name to number"),
        (#"{"accuracy": 0.9, "timestamp": "yesterday"}"#, #""timestamp" is "yesterday", not RFC 3339"#),
        (#"{"accuracy": 0.9, "timestamp": 1000}"#, "is not read: its \"timestamp\" is out of bounds: its timestamp is"),
    ])
    func aBadObjectIsAnErrorNamingTheKey(text: String, expected: String) throws {
        try root.write("metrics.json", text)
        let message = failure("metrics.json", .json)
        #expect(message?.contains(expected) == true, "\(message ?? "no error")")
        #expect(message?.hasPrefix(root.appending("metrics.json").path) == true)
    }

    @Test func aStaleOrOversizedObjectIsRefused() throws {
        let file = try root.write("metrics.json", #"{"accuracy": 0.93}"#)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3 * 86400)], ofItemAtPath: file.path)
        #expect(failure("metrics.json", .json)?.contains("its modification time is out of bounds") == true)
        try root.write("big.json", "{\"a\": 1" + String(repeating: " ", count: 1 << 20) + "}")
        #expect(failure("big.json", .json)?.contains("a json metrics file holds at most 1048576") == true)
    }

    // MARK: jsonl

    @Test func appendedLinesAreReadOnceAndAPartialLineWaits() throws {
        try append("m.jsonl", #"{"metric": "accuracy", "value": 0.9, "labels": {"version": 3, "region": "eu"}}"# + "\n"
                   + #"{"metric": "accuracy", "value": 0.8, "timestamp": "\#(ISO8601DateFormatter().string(from: Date()))"}"# + "\n")
        let first = try read("m.jsonl", .jsonl)
        #expect(first.samples.map(\.value) == [0.9, 0.8])
        #expect(first.samples[0].labels == ["version": "3", "region": "eu"])
        #expect(first.samples[0].time == nil && first.samples[1].time != nil)
        #expect(first.cursor.lines == 2 && first.badLines == 0)

        try append("m.jsonl", #"{"metric": "accuracy", "val"#)
        let partial = try read("m.jsonl", .jsonl, cursor: first.cursor)
        #expect(partial.samples.isEmpty)
        #expect(partial.cursor.offset == first.cursor.offset)

        try append("m.jsonl", #"ue": 0.7}"# + "\n")
        let completed = try read("m.jsonl", .jsonl, cursor: partial.cursor)
        #expect(completed.samples.map(\.value) == [0.7])
        #expect(try read("m.jsonl", .jsonl, cursor: completed.cursor).samples.isEmpty)
    }

    @Test func aTruncatedOrReplacedFileIsReadFromTheTop() throws {
        try append("m.jsonl", String(repeating: #"{"metric": "a", "value": 1}"# + "\n", count: 3))
        let first = try read("m.jsonl", .jsonl)
        #expect(first.samples.count == 3)

        try root.write("m.jsonl", #"{"metric": "a", "value": 2}"# + "\n")  // Shorter than the cursor's offset.
        let truncated = try read("m.jsonl", .jsonl, cursor: first.cursor)
        #expect(truncated.restarted && truncated.samples.map(\.value) == [2])

        let other = try root.write("other.jsonl", String(repeating: #"{"metric": "a", "value": 3}"# + "\n", count: 4))
        #expect(rename(other.path, root.appending("m.jsonl").path) == 0)  // As a log rotation does: a new inode.
        let replaced = try read("m.jsonl", .jsonl, cursor: truncated.cursor)
        #expect(replaced.restarted && replaced.samples.map(\.value) == [3, 3, 3, 3])
        #expect(replaced.cursor.inode != truncated.cursor.inode)
    }

    /// 4 MiB per read: the rest, complete lines only, comes next time.
    @Test func aLargeBacklogIsReadFourMebibytesAtATime() throws {
        let line = #"{"metric": "accuracy", "value": 0.5, "labels": {"pad": "\#(String(repeating: "x", count: 60))"}}"# + "\n"
        let count = (5 << 20) / line.utf8.count
        try append("m.jsonl", String(repeating: line, count: count))
        let first = try read("m.jsonl", .jsonl)
        #expect(first.more)
        #expect(first.cursor.offset <= 4 << 20 && first.cursor.offset % Int64(line.utf8.count) == 0)
        let second = try read("m.jsonl", .jsonl, cursor: first.cursor)
        #expect(!second.more)
        #expect(first.samples.count + second.samples.count == count)
        #expect(second.cursor.lines == count && second.badLines == 0)
    }

    @Test func badLinesAreSkippedAndCountedWithTheFirstOnesNumber() throws {
        let now = Date()
        try append("m.jsonl", [
            #"{"metric": "accuracy", "value": 0.9}"#,
            "",
            "not json at all",
            #"{"metric": "accuracy", "value": NaN}"#,
            #"{"metric": "accuracy", "value": "Infinity"}"#,
            #"{"value": 0.5}"#,
            #"{"metric": "accuracy", "value": 0.8, "timestamp": \#(now.timeIntervalSince1970 + 3600)}"#,
            #"{"metric": "accuracy", "value": 0.8, "timestamp": "last tuesday"}"#,
            #"{"metric": "accuracy", "value": 0.7}"#,
        ].joined(separator: "\n") + "\n")
        let read = try read("m.jsonl", .jsonl, now: now)
        #expect(read.samples.map(\.value) == [0.9, 0.7])
        #expect(read.badLines == 6)
        #expect(read.firstBadLine?.number == 3)
        #expect(read.firstBadLine?.reason.hasPrefix("not a JSON object") == true)
        #expect(read.cursor.lines == 9)

        try append("m.jsonl", #"{"metric": "accuracy", "value": "NaN"}"# + "\n")
        let next = try self.read("m.jsonl", .jsonl, cursor: read.cursor, now: now)
        #expect(next.firstBadLine == .init(number: 10, reason: "the value of accuracy is the string \"NaN\", not a finite number"))
    }

    @Test func aLineLongerThanTheLimitIsSkippedOnce() throws {
        try append("m.jsonl", String(repeating: "y", count: 250) + "\n" + #"{"metric": "a", "value": 1}"# + "\n")
        var cursor: FileCursor?
        var samples: [MetricSample] = []
        var bad: [MetricFileRead.BadLine] = []
        for _ in 0..<5 {
            let read = try read("m.jsonl", .jsonl, cursor: cursor, readLimit: 100)
            samples += read.samples
            bad += read.firstBadLine.map { [$0] } ?? []
            cursor = read.cursor
        }
        #expect(samples.map(\.value) == [1])
        #expect(bad == [.init(number: 1, reason: "it is longer than 100 bytes")])
        #expect(cursor?.lines == 2)
    }

    // MARK: Where

    @Test func aSymlinkLeavingTheRootIsRefused() throws {
        let outside = try TemporaryDirectory("cairn-outside")
        let secret = try outside.write("secret.json", #"{"accuracy": 1}"#)
        try FileManager.default.createSymbolicLink(atPath: root.appending("escape.json").path, withDestinationPath: secret.path)
        let message = failure("escape.json", .json)
        #expect(message?.contains("resolves to \(secret.resolvingSymlinksInPath().path), which is not under a data root") == true,
                "\(message ?? "no error")")

        // A link that stays inside is followed.
        try root.write("real/metrics.json", #"{"accuracy": 0.5}"#)
        try FileManager.default.createSymbolicLink(atPath: root.appending("inside.json").path, withDestinationPath: root.appending("real/metrics.json").path)
        #expect(try read("inside.json", .json).samples.map(\.value) == [0.5])
    }

    @Test func aMissingFileSaysItDoesNotExistYet() {
        #expect(failure("nowhere.jsonl", .jsonl) == "\(root.appending("nowhere.jsonl").path) does not exist yet (the serving process or a job writes it)")
        #expect(failure("dir/nowhere.json", .json)?.hasSuffix("does not exist yet (the serving process or a job writes it)") == true)
    }
}
