import CairnCore
import CairnEngine
import CairnManifests
import CairnRun
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// A state directory with a real store, holding runs as an executor and the engine write them.
struct RunFixture {
    let state: TemporaryDirectory
    let store: Store
    var clock = Date(timeIntervalSince1970: 1_700_000_000)

    init() throws {
        state = try TemporaryDirectory("cairn-state")
        store = try Store(directory: state.url)
    }

    /// Records a run submitted a minute after the one before.
    @discardableResult
    mutating func record(_ id: String, _ object: String, stage: String? = nil, state runState: RunRecord.State,
                         reason: String? = nil, key: String? = nil, reused: String? = nil, exitStatus: Int32? = nil,
                         outputs: [String: Artifact] = [:], log: String? = nil) throws -> RunRecord {
        clock += 60
        var run = RunRecord(id: id, key: key ?? "sha256:" + String(repeating: "e", count: 64), object: try #require(ObjectRef(parsing: object)),
                            stage: stage, state: runState, trigger: "inputs", reason: reason, sourceCommit: String(repeating: "c", count: 40),
                            command: ["python", "train.py", "--epochs", "3"], inputs: ["program": "sha256:" + String(repeating: "a", count: 64)],
                            submittedAt: clock)
        if runState != .skipped && runState != .submitted {
            run.startedAt = clock + 1
            if runState.isFinal { run.finishedAt = clock + 83 }
        }
        run.exitStatus = exitStatus
        run.reused = reused
        run.outputs = outputs
        if let log {
            let path = self.state.appending("runs/\(id)/log")
            try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(log.utf8).write(to: path)
            run.logPath = path.path
        }
        try store.record(run)
        return run
    }

    /// Makes `object`'s current status report `runs`.
    func report(_ object: String, runs: [String]) throws {
        var status = ObjectStatus(ref: try #require(ObjectRef(parsing: object)), manifestPath: "x.yaml", generation: "g",
                                  observedCommit: String(repeating: "c", count: 40), conditions: [])
        status.runs = runs
        var changes = PassChanges()
        changes.upserts = [status]
        try store.apply(changes)
    }

    func cairn(_ arguments: [String]) throws -> ProcessResult {
        try CairnTestSupport.cairn(arguments + ["--state-dir", state.path])
    }
}

@Suite struct RunsCommandTests {
    func fixture() throws -> RunFixture {
        var fixture = try RunFixture()
        let file = Artifact(kind: .file, digest: ContentHash(hex: String(repeating: "5", count: 64)), size: 3 * 1024 * 1024)
        try fixture.record("run-a1", "FeaturePipeline/features", stage: "clean", state: .succeeded,
                           reason: "dep:data/raw.csv changed", outputs: ["data/clean.parquet": file])
        try fixture.record("run-a2", "Model/churn", state: .failed, reason: "params changed", exitStatus: 2)
        try fixture.record("run-b1", "FeaturePipeline/features", stage: "clean", state: .skipped, reason: "nothing changed since run-a1",
                           key: "sha256:0123456789abcdef" + String(repeating: "0", count: 48), reused: "run-a1")
        return fixture
    }

    @Test func theListShowsEachRunWithWhyItRanNewestFirst() throws {
        let fixture = try fixture()
        let result = try fixture.cairn(["runs"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 4, "\(result.stdout)")
        #expect(lines[0].hasPrefix("RUN"))
        #expect(lines[1].hasPrefix("run-b1") && lines[2].hasPrefix("run-a2") && lines[3].hasPrefix("run-a1"), "\(result.stdout)")
        #expect(lines[1].contains("FeaturePipeline/features/clean") && lines[1].contains("skipped"))
        #expect(lines[1].contains("nothing changed since run-a1"), "\(lines[1])")
        #expect(lines[2].contains("failed (exit 2)") && lines[2].contains("params changed") && lines[2].contains("1m22s"), "\(lines[2])")
        #expect(lines[3].contains("succeeded") && lines[3].contains("2023-11-14T22:14:20Z") && lines[3].contains("dep:data/raw.csv changed"), "\(lines[3])")

        // The OBJECT column's Kind/name/stage filters by stage.
        let stage = try fixture.cairn(["runs", "--object", "FeaturePipeline/features/clean"])
        #expect(stage.stdout.split(separator: "\n").count == 3 && stage.stdout.contains("run-b1") && stage.stdout.contains("run-a1"), "\(stage.stdout)")
        #expect(try fixture.cairn(["runs", "--object", "FeaturePipeline/features/other"]).stdout.split(separator: "\n").count <= 1)
        let one = try fixture.cairn(["runs", "--object", "Model/churn"])
        #expect(one.stdout.split(separator: "\n").count == 2 && one.stdout.contains("run-a2"), "\(one.stdout)")
        let failed = try fixture.cairn(["runs", "--state", "failed", "--state", "skipped", "--limit", "1"])
        #expect(failed.stdout.split(separator: "\n").count == 2 && failed.stdout.contains("run-b1"), "\(failed.stdout)")
        #expect(try fixture.cairn(["runs", "--state", "exploded"]).status == 2)
        #expect(try fixture.cairn(["runs", "--object", "Model/other"]).stdout == "no runs of Model/other yet\n")
    }

    @Test func jsonIsTheRunRecordsWithISODates() throws {
        let fixture = try fixture()
        let result = try fixture.cairn(["runs", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"submittedAt\" : \"2023-11-14T22:15:20Z\""), "\(result.stdout)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let runs = try decoder.decode([RunRecord].self, from: Data(result.stdout.utf8))
        #expect(runs.map(\.id) == ["run-b1", "run-a2", "run-a1"])
        #expect(runs.map(\.state) == [.skipped, .failed, .succeeded])
        #expect(runs[0].reused == "run-a1" && runs[1].exitStatus == 2 && runs[2].outputs["data/clean.parquet"]?.size == 3 * 1024 * 1024)
        // A second listing prints the same bytes: keys are sorted.
        #expect(try fixture.cairn(["runs", "--format", "json"]).stdout == result.stdout)
    }

    @Test func oneRunByAUniquePrefixShowsItsDetails() throws {
        let fixture = try fixture()
        let result = try fixture.cairn(["runs", "run-a1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("object    FeaturePipeline/features, stage clean"), "\(result.stdout)")
        #expect(result.stdout.contains("command   python train.py --epochs 3"))
        #expect(result.stdout.contains("key       sha256:" + String(repeating: "e", count: 64)))
        #expect(result.stdout.contains("program  sha256:" + String(repeating: "a", count: 64)))
        #expect(result.stdout.contains("data/clean.parquet  sha256:" + String(repeating: "5", count: 64) + "  3.0 MiB"), "\(result.stdout)")
        let byPrefix = try fixture.cairn(["runs", "run-b"])
        #expect(byPrefix.status == 0 && byPrefix.stdout.contains("reused    run-a1"), "\(byPrefix.stdout)")
        let json = try fixture.cairn(["runs", "run-a2", "--format", "json"])
        #expect(json.stdout.contains("\"id\" : \"run-a2\""))

        let ambiguous = try fixture.cairn(["runs", "run-a"])
        #expect(ambiguous.status == 1)
        #expect(ambiguous.stderr.contains("run-a is ambiguous: it starts the ids of 2 runs (run-a2, run-a1); give more of the id"), "\(ambiguous.stderr)")
        let unknown = try fixture.cairn(["runs", "zzz"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no run has an id starting with zzz"), "\(unknown.stderr)")
        #expect(try fixture.cairn(["runs", "run-a1", "--object", "Model/churn"]).status == 2)
        #expect(try CairnTestSupport.cairn(["runs", "--help"]).stdout.contains("Examples:"))
    }
}

@Suite struct LogsCommandTests {
    @Test func printsTheLogOrItsLastLinesAndSaysWhenThereIsNone() throws {
        var fixture = try RunFixture()
        try fixture.record("run-1", "Model/churn", state: .failed, exitStatus: 1, log: "one\ntwo\nthree\nfour\n")
        try fixture.record("run-2", "Model/churn", state: .skipped, reused: "run-1")
        let whole = try fixture.cairn(["logs", "run-1"])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout == "one\ntwo\nthree\nfour\n")
        #expect(try fixture.cairn(["logs", "run-1", "--tail", "2"]).stdout == "three\nfour\n")
        let json = try fixture.cairn(["logs", "run-1", "--tail", "1", "--format", "json"])
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(document?["run"] == "run-1" && document?["log"] == "four\n", "\(json.stdout)")
        #expect(try fixture.cairn(["logs", "run-1", "--tail", "9"]).stdout == "one\ntwo\nthree\nfour\n")
        let skipped = try fixture.cairn(["logs", "run-2"])
        #expect(skipped.status == 1)
        #expect(skipped.stderr.contains("run-2 was skipped and has no log; the run whose outputs it reused does: cairn logs run-1"), "\(skipped.stderr)")
        #expect(try fixture.cairn(["logs", "nope"]).status == 1)
        #expect(try CairnTestSupport.cairn(["logs", "--help"]).stdout.contains("Examples:"))
    }

    @Test func followPrintsWhatIsAppendedUntilTheRunIsOver() throws {
        var fixture = try RunFixture()
        var run = try fixture.record("run-live", "Model/churn", state: .running, log: "starting\n")
        let logPath = try #require(run.logPath)
        let output = fixture.state.appending("follow.out")
        let follower = try Command(try cairnExecutable(), ["logs", "run-live", "--follow", "--state-dir", fixture.state.path],
                                   standardOutput: .file(output), standardError: .file(fixture.state.appending("follow.err"))).start()
        func printed() -> String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        func waitUntil(_ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if condition() { return true }
                usleep(50_000)
            }
            return condition()
        }
        #expect(waitUntil { printed() == "starting\n" }, "\(printed())")
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        try log.write(contentsOf: Data("epoch 1\n".utf8))
        #expect(waitUntil { printed() == "starting\nepoch 1\n" }, "\(printed())")
        #expect(follower.isRunning, "--follow stays while the run runs")
        try log.write(contentsOf: Data("done\n".utf8))
        try log.close()
        run.state = .succeeded
        run.finishedAt = Date()
        try fixture.store.record(run)
        #expect(waitUntil { !follower.isRunning })
        #expect(follower.waitUntilExit().termination == .exited(0))
        #expect(printed() == "starting\nepoch 1\ndone\n")
    }
}
