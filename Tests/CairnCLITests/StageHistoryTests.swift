import CairnCore
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// `cairn models NAME --history` and `--at DATE` over the stage history the daemon recorded
/// (`StageFixture`: scorer@1 registered, then staging ← 1, then production ← 1, by commits).
@Suite(.serialized) struct StageHistoryTests {
    static func json(_ result: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    @Test func historyListsEachChangeWithItsCommitAuthorAndTime() async throws {
        let fixture = try await StageFixture.make()
        let staging = try await fixture.git(["log", "-1", "--format=%H %at", "--grep", "Promote scorer@1 to staging", "main"]).split(separator: " ")
        let production = try await fixture.git(["log", "-1", "--format=%H %at", "--grep", "Promote scorer@1 to production", "main"]).split(separator: " ")

        let text = try await fixture.cairn(["models", "scorer", "--history"])
        #expect(text.status == 0, "\(text.stderr)")
        let rows = text.stdout.split(separator: "\n").map(String.init)
        #expect(rows.count == 3 && rows[0].hasPrefix("APPLIED"), "\(text.stdout)")
        let when = ISO8601DateFormatter()
        for (row, commit, stage, applied) in [(rows[1], production[0], "production", fixture.productionApplied),
                                              (rows[2], staging[0], "staging", fixture.stagingApplied)] {
            #expect(row.hasPrefix(when.string(from: applied)) && row.contains(" \(stage) ") && row.contains("none → 1"), "\(row)")
            #expect(row.contains(String(commit.prefix(10))) && row.hasSuffix("Ada Tester <ada@example.com>"), "\(row)")
        }

        let json = try await fixture.cairn(["models", "scorer", "--history", "--format", "json"])
        let changes = try #require(try Self.json(json) as? [[String: Any]], "\(json.stdout)")
        #expect(changes.map { $0["commit"] as? String } == [String(production[0]), String(staging[0])])
        #expect(changes.map { $0["stage"] as? String } == ["production", "staging"] && changes.map { $0["version"] as? Int } == [1, 1])
        // committedAt is the commit's author time; appliedAt when the daemon applied it.
        let committed = changes.compactMap { ($0["committedAt"] as? String).flatMap(when.date(from:))?.timeIntervalSince1970 }
        #expect(committed == [Double(production[1]), Double(staging[1])])
        #expect(changes.allSatisfy { $0["author"] as? String == "Ada Tester <ada@example.com>" && $0["appliedAt"] is String })
    }

    @Test func atADateBeforeTheModelExistedSaysSoAndNamesNoHolder() async throws {
        let fixture = try await StageFixture.make()
        let text = try await fixture.cairn(["models", "scorer", "--at", "2001-01-01"])
        #expect(text.status == 0, "\(text.stderr)")
        let registered = ISO8601DateFormatter().string(from: fixture.firstRegistered)
        #expect(text.stdout == "scorer did not exist yet at 2001-01-01T00:00:00Z: its first version was registered at \(registered), "
                + "and its first stage change was at \(ISO8601DateFormatter().string(from: fixture.stagingApplied))\n", "\(text.stdout)")

        let json = try await fixture.cairn(["models", "scorer", "--at", "2001-01-01T00:00:00Z", "--format", "json"])
        let answer = try #require(try Self.json(json) as? [String: Any], "\(json.stdout)")
        #expect((answer["stages"] as? [String: Any])?.isEmpty == true)
        #expect((answer["note"] as? String)?.hasPrefix("scorer did not exist yet") == true, "\(json.stdout)")
    }

    @Test func atADateAfterItsFirstVersionButBeforeAnyStageSaysNoStageWasAssignedYet() async throws {
        let fixture = try await StageFixture.make()
        let between = fixture.firstRegistered.addingTimeInterval(fixture.stagingApplied.timeIntervalSince(fixture.firstRegistered) / 2)
        let text = try await fixture.cairn(["models", "scorer", "--at", Self.time(between)])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("no stage of scorer was assigned yet at "), "\(text.stdout)")
    }

    @Test func atDatesBetweenChangesAnswersTheVersionThatHeldEachStage() async throws {
        let fixture = try await StageFixture.make()
        let staging = try await fixture.git(["log", "-1", "--format=%H", "--grep", "Promote scorer@1 to staging", "main"])
        let between = fixture.stagingApplied.addingTimeInterval(fixture.productionApplied.timeIntervalSince(fixture.stagingApplied) / 2)
        let json = try await fixture.cairn(["models", "scorer", "--at", Self.time(between), "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let answer = try #require(try Self.json(json) as? [String: Any], "\(json.stdout)")
        let stages = try #require(answer["stages"] as? [String: [String: Any]], "\(json.stdout)")
        #expect(stages.keys.sorted() == ["staging"] && stages["staging"]?["version"] as? Int == 1 && stages["staging"]?["commit"] as? String == staging)
        #expect(answer["note"] == nil)

        let text = try await fixture.cairn(["models", "scorer", "--at", Self.time(between)])
        #expect(text.stdout.contains("staging  scorer@1") && !text.stdout.contains("production"), "\(text.stdout)")

        let after = try await fixture.cairn(["models", "scorer", "--at", Self.time(fixture.productionApplied.addingTimeInterval(1)), "--format", "json"])
        let later = try #require(try Self.json(after) as? [String: Any], "\(after.stdout)")
        let held = try #require(later["stages"] as? [String: [String: Any]])
        #expect(held.keys.sorted() == ["production", "staging"] && held.values.allSatisfy { $0["version"] as? Int == 1 })
    }

    @Test(arguments: ["yesterday", "2026-13-45", "2026-10-01T25:00:00Z", "2026-10-01 12:00"])
    func aDateThatIsNoDateExitsTwoSayingWhatADateIs(date: String) async throws {
        let fixture = try await StageFixture.make()
        let result = try await fixture.cairn(["models", "scorer", "--at", date])
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("error: --at \(date) is not a date (2026-10-01) or a time (2026-10-01T12:00:00Z)"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// Every form of the question about a model Cairn has never heard of is an error, on
    /// standard error, with nothing on standard output for a script to take as an answer.
    @Test(arguments: [
        [], ["--format", "json"], ["--history"], ["--history", "--format", "json"],
        ["--at", "2026-10-01"], ["--at", "2026-10-01T12:00:00Z", "--format", "json"],
    ])
    func aModelThatDoesNotExistIsAnErrorInEveryForm(form: [String]) async throws {
        let fixture = try await StageFixture.make()
        let result = try await fixture.cairn(["models", "nope"] + form)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.hasPrefix("error: model nope has no registered version"), "\(result.stderr)")
        #expect(result.stdout.isEmpty, "\(result.stdout)")
    }

    /// A model with a version and no stage change yet exists: its history is empty, not an error.
    @Test func aModelWithAVersionAndNoStageChangeHasAnEmptyHistory() async throws {
        let fixture = try await StageFixture.make()
        do {
            let store = try Store(directory: fixture.state)
            var version = try #require(try store.version("scorer", 1))
            version.model = "fresh"
            version.lineage.runID = "run-of-fresh"
            try store.register(version)
        }
        let json = try await fixture.cairn(["models", "fresh", "--history", "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        #expect((try Self.json(json) as? [Any])?.isEmpty == true, "\(json.stdout)")
        let text = try await fixture.cairn(["models", "fresh", "--history"])
        #expect(text.status == 0 && text.stdout.hasPrefix("no stage of fresh has been assigned yet"), "\(text.stdout)\(text.stderr)")
        let at = try await fixture.cairn(["models", "fresh", "--at", Self.time(Date())])
        #expect(at.status == 0 && at.stdout.hasPrefix("no stage of fresh was assigned at "), "\(at.stdout)\(at.stderr)")
    }
}
