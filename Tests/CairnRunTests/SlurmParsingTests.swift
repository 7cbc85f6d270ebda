import CairnCore
import CairnManifests
@testable import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// What the Slurm executor reads from `squeue` and `scontrol`, as Slurm 22.05 prints it.
@Suite struct SlurmParsingTests {
    @Test func squeueLinesGiveIdStateReasonAndAnyName() {
        let entries = SlurmQueueEntry.parse("""
            14|COMPLETING|None|sigjob.sh
            15|PENDING|ReqNodeNotAvail, UnavailableNodes:vm|cairn-0c8a562c49-1-c6ca
            16|PENDING|Resources|someone's|job
            garbage
            """)
        #expect(entries.map(\.jobID) == ["14", "15", "16"])
        #expect(entries[0].state == .completing && !entries[0].state.isFinal)
        #expect(entries[1].reason == "ReqNodeNotAvail, UnavailableNodes:vm" && entries[1].name == "cairn-0c8a562c49-1-c6ca")
        #expect(entries[2].name == "someone's|job", "the name comes last, so it may hold |")
    }

    @Test func scontrolFieldsKeepValuesWithSpaces() throws {
        let details = SlurmJobDetails("JobId=20 JobName=cairn-x-1 UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) "
                                      + "ExitCode=0:9 RunTime=00:01:23 TimeLimit=00:01:00 StartTime=2026-11-27T13:22:46 EndTime=Unknown "
                                      + "NodeList=vm Command=/shared/runs/x/job.sh Comment=a comment with spaces")
        #expect(details.state == .timeout && details.state?.isFinal == true)
        #expect(details["Reason"] == "TimeLimit" && details["NodeList"] == "vm")
        #expect(details["Comment"] == "a comment with spaces")
        let code = try #require(details.exitCode)
        #expect(code.status == 0 && code.signal == 9)
        let start = try #require(details.startTime)
        let parts = Calendar.current.dateComponents(in: .current, from: start)
        #expect(parts.hour == 13 && parts.minute == 22 && parts.second == 46 && parts.day == 27)
        #expect(SlurmJobDetails("JobState=PENDING StartTime=Unknown").startTime == nil)
    }

    @Test func sbatchRefusalsAreToldFromOutages() {
        #expect(SlurmCommands.refusal("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"))
        #expect(!SlurmCommands.refusal("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"))
        #expect(!SlurmCommands.refusal("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"))
        #expect(!SlurmCommands.refusal("sbatch: error: some other trouble"))
    }

    /// Slurm's --time: past Cairn's own timeout (plus the grace and a minute), whatever
    /// resources.time says, so Cairn's scancel comes first.
    @Test func theTimeLimitIsTheBackstop() {
        #expect(SlurmExecutor.timeLimitMinutes(timeout: nil, wallTime: nil, grace: .seconds(10)) == nil)
        #expect(SlurmExecutor.timeLimitMinutes(timeout: .seconds(2), wallTime: nil, grace: .seconds(10)) == 2)
        #expect(SlurmExecutor.timeLimitMinutes(timeout: .seconds(3600), wallTime: .seconds(3600), grace: .seconds(10)) == 62)
        #expect(SlurmExecutor.timeLimitMinutes(timeout: nil, wallTime: .seconds(90), grace: .seconds(10)) == 2)
        #expect(SlurmExecutor.timeLimitMinutes(timeout: .seconds(60), wallTime: .seconds(7200), grace: .seconds(10)) == 120)
    }

    /// Slurm signals every process of a job it ends, so the command can die of Slurm's SIGTERM
    /// before its supervisor hears it (seen in CI): a result that says "killed by SIGTERM", not
    /// "cancelled", still reads as Slurm's doing.
    @Test(arguments: [(SlurmJobState.nodeFail, "NODE_FAIL", RunRecord.State.interrupted), (.cancelled, "CANCELLED", .failed)])
    func aCommandKilledBySlurmsOwnSignalReadsAsSlurmsDoing(state: SlurmJobState, text: String, expected: RunRecord.State) async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.slurmExecutor()
        var record = RunRecord(id: "r", key: "k", object: ObjectRef(.featurePipeline, "f"), stage: "s", state: .failed, trigger: "inputs",
                               reason: "r", sourceCommit: "c", command: ["sh"], inputs: [:], attempt: 1, submittedAt: Date())
        record.signal = 15
        record.message = "it was killed by SIGTERM; the last lines of its log:\nworking"
        await executor.explainForTest(&record, jobID: "7", state: state, stateText: text, directory: fixture.directory.url)
        #expect(record.state == expected)
        #expect(record.message?.contains("Slurm ended job 7 (\(text))") == true, "\(record.message ?? "")")
        #expect(record.message?.hasSuffix("it was killed by SIGTERM; the last lines of its log:\nworking") == true)
    }
}

extension SlurmExecutor {
    func explainForTest(_ record: inout RunRecord, jobID: String, state: SlurmJobState, stateText: String, directory: URL) {
        explain(&record, jobID: jobID, state: state, stateText: stateText, details: nil, hasResult: true, cancelRequested: false,
                timedOut: false, directory: directory)
    }
}
