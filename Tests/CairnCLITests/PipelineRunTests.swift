import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// Pipelines run for real, end to end: `cairn reconcile --once` and `cairn run` in
/// subprocesses, stages as real processes in their own checkouts, the store a real SQLite
/// file, status read back from git.
@Suite(.serialized) struct PipelineRunTests {
    let repository: GitFixture
    let state: TemporaryDirectory

    init() throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-state")
    }

    static func pipeline(_ stages: String) -> String {
        """
        apiVersion: cairn/v1
        kind: FeaturePipeline
        metadata: {name: features}
        spec:
          stages:
        \(stages)
        """
    }

    static let twoStages = pipeline("""
            - name: make
              command: [python3, make.py, raw.txt]
              outs: [raw.txt]
            - name: upper
              command: [python3, upper.py, raw.txt, upper.txt]
              outs: [upper.txt]
        """)

    static let scripts: [String: String?] = [
        "make.py": "import sys, helper\nopen(sys.argv[1], 'w').write(helper.TEXT)\n",
        "helper.py": "TEXT = 'hello'\n",
        "upper.py": "import sys\nopen(sys.argv[2], 'w').write(open(sys.argv[1]).read().upper())\n",
    ]

    func reconcile(_ extra: [String] = []) throws -> ProcessResult {
        try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path] + extra)
    }

    func runs() throws -> [RunRecord] {
        try Store(directory: state.url).recentRuns(limit: 100)
    }

    func status() throws -> String {
        try repository.git(["show", "cairn/status:FeaturePipeline/features.yaml"])
    }

    @Test func runsStagesThenRunsNothingThenOnlyWhatAChangeMadeStale() async throws {
        try repository.commit(Self.scripts.merging(["features.yaml": Self.twoStages]) { $1 })
        let first = try reconcile()
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("ran FeaturePipeline/features/make (run "), "reconcile --once says what ran: \(first.stdout)")
        let ran = try runs()
        #expect(Set(ran.map(\.stage)) == ["make", "upper"])
        #expect(ran.allSatisfy { $0.state == .succeeded })
        #expect(try status().contains("reason: \"UpToDate\""))
        // Cairn-Run trailers link the status commit to the runs.
        let trailers = try repository.git(["log", "-1", "--format=%(trailers:key=Cairn-Run,valueonly)", "cairn/status"])
        #expect(Set(trailers.split(separator: "\n").map(String.init)) == Set(ran.map(\.id)))

        // A commit that changes nothing the stages read runs nothing, and records nothing.
        try repository.commit(["README.md": "notes\n"])
        #expect(try reconcile().status == 0)
        #expect(try runs().filter { $0.state == .succeeded }.count == 2)
        // Nor does breaking the manifest and fixing it: the stalled status kept reporting the
        // stages' runs, so nothing is "reused" when it is fixed.
        try repository.commit(["features.yaml": "apiVersion: cairn/v1\nkind: FeaturePipeline\n  bad: [\n"])
        #expect(try reconcile().status == 1)
        try repository.commit(["features.yaml": Self.twoStages])
        #expect(try reconcile().status == 0)
        let afterFix = try runs()
        #expect(afterFix.count == 2, "\(afterFix.map { "\($0.id) \($0.state)" })")

        // helper.py is imported by make.py, which the command names: make reruns, and upper
        // reruns only because make's output changed.
        try repository.commit(["helper.py": "TEXT = 'changed'\n"])
        #expect(try reconcile().status == 0)
        let after = try runs().filter { $0.state == .succeeded }
        #expect(after.count == 4)
        let make = try #require(after.first { $0.stage == "make" })
        #expect(make.reason?.contains("helper.py changed") == true, "\(make.reason ?? "")")
        let upper = try #require(after.first { $0.stage == "upper" })
        #expect(upper.reason?.contains("raw.txt changed") == true, "\(upper.reason ?? "")")
        let output = try #require(upper.outputs["upper.txt"])
        let stored = state.url.appendingPathComponent("artifacts/sha256/\(output.digest.hex.prefix(2))/\(output.digest.hex.dropFirst(2))")
        #expect(try String(contentsOf: stored, encoding: .utf8) == "CHANGED")

        // Reverting the change runs nothing: both keys ran before, their outputs are reused.
        try repository.commit(["helper.py": "TEXT = 'hello'\n"])
        #expect(try reconcile().status == 0)
        #expect(try runs().filter { $0.state == .succeeded }.count == 4)
        let reused = try runs().filter { $0.state == .skipped }
        #expect(Set(reused.compactMap(\.reused)) == Set(ran.map(\.id)), "\(reused.map { "\($0.stage ?? "") \($0.reused ?? "")" })")

        // `cairn runs` explains every run and skip.
        let listed = try cairn(["runs", "--repo", repository.path, "--state-dir", state.path, "--limit", "20"])
        #expect(listed.stdout.contains("helper.py changed"), "\(listed.stdout)")
        #expect(listed.stdout.contains("no input changed"), "\(listed.stdout)")
    }

    @Test func aFailingStageStallsThePipelineWithItsLogAndItsDependantsDoNotRun() async throws {
        try repository.commit(Self.scripts.merging([
            "make.py": "import sys\nprint('token is', 's3cr3t-value')\nprint('cannot make it', file=sys.stderr)\nsys.exit(7)\n",
            "features.yaml": Self.twoStages,
        ]) { $1 })
        let result = try reconcile()
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("stalled: FeaturePipeline/features"))
        let status = try status()
        #expect(status.contains("StageFailed"))
        #expect(status.contains("stage make failed (run") && status.contains("exited with status 7"), "\(status)")
        #expect(status.contains("cannot make it"), "the end of the log reaches status: \(status)")
        #expect(!(try runs()).contains { $0.stage == "upper" })
        // The same inputs are not tried again.
        _ = try reconcile()
        #expect(try runs().filter { $0.stage == "make" }.count == 1)
    }

    @Test func aPassedSecretReachesTheRunButNeverTheStatusBranch() async throws {
        try repository.commit(Self.scripts.merging(["features.yaml": Self.pipeline("""
                - name: leak
                  command: [python3, leak.py]
                  outs: [never.txt]
                  env: [MY_TOKEN]
            """), "leak.py": "import os, sys\nprint('the token is', os.environ['MY_TOKEN'])\nprint('HOME' in os.environ, 'GIT_ASKPASS' in os.environ)\nsys.exit(1)\n"]) { $1 })
        var environment = ProcessInfo.processInfo.environment
        environment["MY_TOKEN"] = "s3cr3t-value"
        environment["GIT_ASKPASS"] = "/usr/bin/daemon-secret-helper"
        // Not on the --pass-env list: the stage is refused before anything runs.
        let refused = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path], environment: environment)
        #expect(refused.status == 1)
        #expect(try status().contains("EnvNotAllowed"))
        #expect(try runs().isEmpty)

        let result = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--pass-env", "MY_TOKEN",
                                "FeaturePipeline/features"], environment: environment)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let status = try status()
        #expect(status.contains("the token is ***"), "\(status)")
        #expect(status.contains("True False"), "HOME is set, the daemon's other variables are not: \(status)")
        let history = try repository.git(["log", "-p", "cairn/status"])
        #expect(!history.contains("s3cr3t-value"))
        #expect(!(try runs()).contains { ($0.message ?? "").contains("s3cr3t-value") })
    }

    @Test func dataOutsideTheRepositoryIsReadOnlyUnderADataRootAndItsChangesRerun() async throws {
        let data = try TemporaryDirectory("cairn-data")
        let input = try data.write("table.csv", "a,b\n1,2\n")
        try repository.commit(Self.scripts.merging(["features.yaml": Self.pipeline("""
                - name: count
                  command: [python3, count.py, \(input.path), lines.txt]
                  outs: [lines.txt]
            """), "count.py": "import sys\nopen(sys.argv[2], 'w').write(str(len(open(sys.argv[1]).readlines())))\n"]) { $1 })
        let refused = try reconcile()
        #expect(refused.status == 1)
        let status = try status()
        #expect(status.contains("DataPathRefused"), "\(status)")
        #expect(status.contains("features.yaml:"), "the message names the manifest's place: \(status)")

        let allowed = try reconcile(["--data-root", data.path, "FeaturePipeline/features"])
        #expect(allowed.status == 0, "\(allowed.stdout)\(allowed.stderr)")
        #expect(try runs().filter { $0.state == .succeeded }.count == 1)
        // Unchanged data is not run again; changed data is (asked for by name: the tip did not move).
        #expect(try reconcile(["--data-root", data.path, "FeaturePipeline/features"]).status == 0)
        #expect(try runs().filter { $0.state == .succeeded }.count == 1)
        try Data("a,b\n1,2\n3,4\n".utf8).write(to: input)
        #expect(try reconcile(["--data-root", data.path, "FeaturePipeline/features"]).status == 0)
        let succeeded = try runs().filter { $0.state == .succeeded }
        #expect(succeeded.count == 2)
        #expect(succeeded.first?.reason?.contains(input.path) == true, "\(succeeded.first?.reason ?? "")")
    }

    @Test func aDaemonKilledDuringARunLeavesItToTheNextOneWhichAdoptsItAndNeverRunsItTwice() async throws {
        let marker = state.appending("started-count")
        try repository.commit(Self.scripts.merging(["features.yaml": Self.pipeline("""
                - name: slow
                  command: [python3, slow.py, out.txt]
                  outs: [out.txt]
            """), "slow.py": """
            import sys, time
            with open('\(marker.path)', 'a') as f: f.write('x')
            time.sleep(3)
            open(sys.argv[1], 'w').write('done')
            """]) { $1 })
        let daemon = try BackgroundProcess(try cairnExecutable(), ["run", "--repo", repository.path, "--state-dir", state.path,
                                                                   "--interval", "1h"], logTo: state.appending("daemon.log"))
        #expect(daemon.waitFor("cairn.stage=slow"), "\(daemon.output)")
        // Running: killed without a chance to clean up.
        try await waitUntil { (try? String(contentsOf: marker, encoding: .utf8)) == "x" }
        daemon.process.terminate(signal: SIGKILL, wholeGroup: true)
        _ = daemon.process.waitUntilExit()

        let next = try reconcile()
        #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
        let all = try runs()
        #expect(all.filter { $0.state != .skipped }.count == 1, "one run, adopted: \(all.map { "\($0.id) \($0.state)" })")
        #expect(all.first?.state == .succeeded)
        #expect(try String(contentsOf: marker, encoding: .utf8) == "x", "the stage's process started once")
        #expect(try status().contains("UpToDate"))
    }

    @Test func aRunLostWithItsDaemonIsInterruptedAndRunAgain() async throws {
        // The first try hangs; a second try of the same key (the marker is outside the
        // repository, so the key is the same) finishes at once.
        let marker = state.appending("tried")
        try repository.commit(Self.scripts.merging(["features.yaml": Self.pipeline("""
                - name: slow
                  command: [python3, slow.py, out.txt]
                  outs: [out.txt]
            """), "slow.py": """
            import os, sys, time
            if not os.path.exists('\(marker.path)'):
                open('\(marker.path)', 'w').write('1')
                time.sleep(60)
            open(sys.argv[1], 'w').write('done')
            """]) { $1 })
        let first = try reconcile(["--no-wait"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let started = try #require(try runs().first)
        try await waitUntil { FileManager.default.fileExists(atPath: marker.path) }
        // The supervisor is killed with its daemon gone: nothing is left to say how the run ended.
        let running = try #require(try Store(directory: state.url).run(id: started.id))
        let supervisor = try #require(Int32(running.handle?.id ?? ""))
        kill(supervisor, SIGKILL)
        try await waitUntil { kill(supervisor, 0) != 0 }

        let next = try reconcile()
        #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
        let after = try runs().filter { $0.state != .skipped }
        #expect(after.count == 2, "\(after.map { "\($0.id) \($0.state)" })")
        #expect(after.contains { $0.id == started.id && $0.state == .interrupted })
        let retry = try #require(after.first { $0.state == .succeeded })
        #expect(retry.key == started.key)
        #expect(retry.attempt == 2)
        #expect(retry.reason?.contains("interrupted") == true, "\(retry.reason ?? "")")
    }

    @Test func aPathThatIsNoRepositoryLeavesNoStateBehind() throws {
        let nothing = try TemporaryDirectory("not-a-repo")
        let state = nothing.appending("state")
        let result = try cairn(["reconcile", "--once", "--repo", nothing.path, "--state-dir", state.path])
        #expect(result.status == 3)
        #expect(result.stderr.contains("is not a git repository"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state.path))
    }

    @Test func reconcileOnceTimesOutWithExitFourAndLeavesTheRunGoing() async throws {
        try repository.commit(Self.scripts.merging(["features.yaml": Self.pipeline("""
                - name: slow
                  command: [python3, slow.py, out.txt]
                  outs: [out.txt]
            """), "slow.py": "import sys, time\ntime.sleep(4)\nopen(sys.argv[1], 'w').write('done')\n"]) { $1 })
        let result = try reconcile(["--timeout", "1s"])
        #expect(result.status == 4, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("waiting for 1 run(s): FeaturePipeline/features/slow"), "\(result.stderr)")
        // The next one takes the run back and waits for it.
        let next = try reconcile()
        #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
        #expect(try runs().filter { $0.state == .succeeded }.count == 1)
    }
}

/// Polls `condition` every 50 ms for up to 60 s (processes on a loaded machine are slow).
func waitUntil(_ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("the condition did not become true within 60 s")
}
