import CairnCore
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// What the executor allows a run, how many run at once, and that one key runs once.
@Suite struct ExecutorPolicyTests {
    @Test func submittingOneKeyTwiceStartsOneRun() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        let first = job(["sleep", "2"], key: "same-key")
        let second = job(["sleep", "2"], key: "same-key")
        let a = try await executor.submit(first)
        let b = try await executor.submit(second)
        #expect(a == b && b.runID == first.runID)
        #expect(try fixture.ledger.runs(withKey: "same-key").count == 1)
        #expect(try await fixture.final(first.runID).state == .succeeded)
        #expect(try fixture.ledger.run(id: second.runID) == nil)
        #expect(!FileManager.default.fileExists(atPath: fixture.runDirectory(second.runID).path))
    }

    @Test func runsTakeTheirCpusInSlotsAndWaitInOrder() async throws {
        let fixture = try ExecutorFixture()
        let marks = fixture.directory.appending("marks")
        try FileManager.default.createDirectory(at: marks, withIntermediateDirectories: true)
        // Each run notes who else runs while it starts and just before it ends.
        let script = """
            touch "\(marks.path)/running.$CAIRN_RUN_ID"
            ls "\(marks.path)" | grep -c '^running' >> "\(marks.path)/seen.$CAIRN_RUN_ID"
            sleep 1
            ls "\(marks.path)" | grep -c '^running' >> "\(marks.path)/seen.$CAIRN_RUN_ID"
            rm "\(marks.path)/running.$CAIRN_RUN_ID"
            """
        let executor = try fixture.executor(files: ["mark.sh": script], policy: ExecutionPolicy(maxRuns: 2))
        let singles = (0..<3).map { _ in job(["sh", "mark.sh"]) }
        let double = job(["sh", "mark.sh"], cpus: 2)
        let after = job(["sh", "mark.sh"])
        for spec in singles + [double, after] { _ = try await executor.submit(spec) }
        #expect(await executor.inFlight().count == 5)
        for spec in singles + [double, after] {
            #expect(try await fixture.final(spec.runID).state == .succeeded)
        }
        func seen(_ spec: JobSpec) throws -> [Int] {
            try String(contentsOf: marks.appendingPathComponent("seen.\(spec.runID)"), encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        }
        for spec in singles + [after] {
            let counts = try seen(spec)
            #expect(counts.count == 2 && counts.allSatisfy { $0 <= 2 }, "\(spec.runID) saw \(counts)")
        }
        #expect(try seen(double) == [1, 1], "the 2-cpu run had both slots to itself")
        let doubleRecord = try #require(try fixture.ledger.run(id: double.runID))
        let afterRecord = try #require(try fixture.ledger.run(id: after.runID))
        let lastSingleEnd = try singles.compactMap { try fixture.ledger.run(id: $0.runID)?.finishedAt }.max()
        #expect(try #require(doubleRecord.startedAt) >= (try #require(lastSingleEnd)).addingTimeInterval(-0.5), "it waited for both slots")
        #expect(try #require(afterRecord.startedAt) >= (try #require(doubleRecord.startedAt)), "first come, first served")
    }

    @Test func onlyTheListedVariablesReachARunAndPassedValuesAreRedacted() async throws {
        let fixture = try ExecutorFixture()
        let secret = "s3cr3t-value-123"
        let executor = try fixture.executor(
            files: ["leak.sh": "echo \"token is $API_TOKEN\"\necho \"user is $USER_NAME\"\nexit 1\n"],
            policy: ExecutionPolicy(passEnvironment: ["API_TOKEN"], maxRuns: 2),
            environment: ["API_TOKEN": secret, "USER_NAME": "ada", "AWS_SECRET_ACCESS_KEY": "nope", "PATH": "/opt/daemon/bin"])
        let listing = job(["env"], passEnvironment: ["API_TOKEN"])
        _ = try await executor.submit(listing)
        #expect(try await fixture.final(listing.runID).state == .succeeded)
        let log = try String(contentsOf: fixture.runDirectory(listing.runID).appendingPathComponent("log"), encoding: .utf8)
        var seen: [String: String] = [:]
        for line in log.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            seen[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let directory = fixture.runDirectory(listing.runID)
        #expect(seen == [
            "CAIRN_RUN_ID": listing.runID, "CAIRN_OUTPUT_DIR": directory.appendingPathComponent("work").path,
            "CAIRN_PARAMS": #"{"lr":0.1}"#, "CAIRN_PARAMS_FILE": directory.appendingPathComponent("params.json").path,
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory.path, "LANG": "C.UTF-8", "API_TOKEN": secret,
        ])

        let leaking = job(["sh", "leak.sh"], passEnvironment: ["API_TOKEN"])
        _ = try await executor.submit(leaking)
        let failed = try await fixture.final(leaking.runID)
        #expect(failed.state == .failed)
        #expect(failed.message?.hasSuffix("token is ***\nuser is ") == true, "\(failed.message ?? "")")
        #expect(failed.message?.contains(secret) == false)
    }

    @Test(arguments: [
        (job(["env"], passEnvironment: ["AWS_SECRET_ACCESS_KEY"]), "asks for the environment variable AWS_SECRET_ACCESS_KEY, which the daemon does not pass on; allow it with --pass-env"),
        (job(["echo hi"], shell: true), "asks for a shell (shell: true), which this daemon does not allow"),
        (job(["true"], cpus: 3), "needs 3 cpus, and this daemon runs at most 2 at once (--max-runs)"),
        ({ var spec = job(["true"]); spec.gpus = 1; return spec }(), "asks for 1 GPU, and the local executor cannot give any; use executor: slurm"),
        (job(["true"], outputs: ["../escape"]), "declares the output ../escape, which is not a relative path inside the repository"),
    ])
    func whatThePolicyDoesNotAllowIsRefusedBeforeAnythingIsRecorded(spec: JobSpec, refusal: String) async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(policy: ExecutionPolicy(passEnvironment: ["API_TOKEN"], maxRuns: 2),
                                            environment: ["AWS_SECRET_ACCESS_KEY": "x"])
        do {
            _ = try await executor.submit(spec)
            Issue.record("\(spec.command) was accepted")
        } catch {
            #expect("\(error)".contains(refusal), "\(error)")
        }
        #expect(fixture.ledger.all.isEmpty)
        #expect(await executor.inFlight().isEmpty)
    }

    @Test func aLedgerThatCannotBeWrittenStartsNothing() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        fixture.ledger.failWrites = true
        let spec = job(["true"])
        await #expect(throws: ExecutorError.self) { _ = try await executor.submit(spec) }
        do {
            _ = try await executor.submit(spec)
        } catch {
            #expect("\(error)" == "could not record run \(spec.runID) in the ledger: the ledger's disk is full (a test double failing on purpose); nothing was started")
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.runDirectory(spec.runID).path))
        #expect(await executor.inFlight().isEmpty)
    }

    @Test func anUnwritableStateDirectoryFailsTheRunWithAClearMessage() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor()
        // As root, permissions do not stop writes; a file where the runs directory was does.
        let runs = fixture.state.appendingPathComponent("runs")
        try FileManager.default.removeItem(at: runs)
        try Data("not a directory".utf8).write(to: runs)
        let spec = job(["true"])
        _ = try await executor.submit(spec)
        let record = try await fixture.final(spec.runID)
        #expect(record.state == .failed && record.handle == nil)
        #expect(record.message?.hasPrefix("could not start: could not create the run's directory \(runs.path)/\(spec.runID)") == true, "\(record.message ?? "")")
        #expect(try String(contentsOf: runs, encoding: .utf8) == "not a directory", "nothing half-written")
        #expect(await executor.inFlight().isEmpty)

        #expect(throws: ExecutorError.self) {
            _ = try LocalExecutor(stateDirectory: runs, ledger: fixture.ledger, artifacts: fixture.artifacts, source: FilesCheckout([:]),
                                  policy: ExecutionPolicy(), supervisor: ["/bin/false"])
        }
    }
}
