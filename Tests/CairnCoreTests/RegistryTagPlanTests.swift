import CairnCore
import Foundation
import Testing

/// GTO's grammar and how the planner names, numbers and times the registry's tags.
@Suite struct RegistryTagPlanTests {
    static let cairn = "Cairn <cairn@localhost>"
    static let commitA = String(repeating: "a", count: 40), commitB = String(repeating: "b", count: 40)

    static func version(_ number: Int, commit: String, at seconds: TimeInterval, model: String = "churn") -> ModelVersion {
        let lineage = Lineage(schedule: "weekly", sourceCommit: commit, runID: "run-\(number)", runKey: "key-\(number)", trigger: "inputs",
                              triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [], featurePipeline: nil,
                              features: [:], code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
        return ModelVersion(model: model, version: number, artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data("\(number)".utf8)), size: 1),
                            artifactPath: "model.bin", metrics: [:], gate: GateVerdict(rules: []), lineage: lineage,
                            registeredAt: Date(timeIntervalSince1970: seconds))
    }

    static func change(_ stage: String, _ previous: Int?, _ version: Int?, at seconds: TimeInterval, ordinal: Int = 1) -> StageChange {
        StageChange(model: "churn", stage: stage, version: version, previous: previous, sourceCommit: commitB,
                    author: "Dana <dana@example.com>", committedAt: Date(timeIntervalSince1970: seconds),
                    appliedAt: Date(timeIntervalSince1970: seconds), ordinal: ordinal)
    }

    @Test func parsesTagNamesAsGTOsTagRegexDoes() {
        let cases: [(String, GTOTag.Parsed?)] = [
            ("churn@v3.0.0", .init(artifact: "churn", action: .register, version: "v3.0.0")),
            ("churn@v3.0.0!", .init(artifact: "churn", action: .deregister, version: "v3.0.0")),
            ("churn@v1.2.3-rc.1+build.5#9", .init(artifact: "churn", action: .register, version: "v1.2.3-rc.1+build.5", counter: 9)),
            ("churn#production#4", .init(artifact: "churn", action: .assign, stage: "production", counter: 4)),
            ("churn#production!#12", .init(artifact: "churn", action: .unassign, stage: "production", counter: 12)),
            ("churn#prod", .init(artifact: "churn", action: .assign, stage: "prod")),
            ("churn#7", .init(artifact: "churn", action: .assign, stage: "7")),
            ("churn@deprecated#3", .init(artifact: "churn", action: .deprecate, counter: 3)),
            ("models/a=churn#dev#2", .init(artifact: "models/a:churn", action: .assign, stage: "dev", counter: 2)),
            ("churn@3", nil), ("churn@v1.0", nil), ("churn@v01.0.0", nil), ("churn#-bad#1", nil), ("churn", nil),
            ("v1.0.0", nil), ("-churn@v1.0.0", nil), ("churn#a#b", nil),
        ]
        for (name, expected) in cases {
            #expect(GTOTag.parse(name) == expected, "\(name)")
        }
        #expect(GTOTag.registration(model: "churn", version: 3) == "churn@v3.0.0")
        #expect(GTOTag.stage(model: "churn", stage: "production", assigned: false, counter: 5) == "churn#production!#5")
    }

    /// One counter per model across all its stages, as `gto/tag.py`'s `name_tag` counts; a
    /// move from one version to another is an unassignment and an assignment.
    @Test func numbersStageTagsPerModelAcrossStagesAndUnassignsTheVersionReplaced() throws {
        var planner = RegistryTagPlanner(existing: [], repositoryCounters: [:], cairn: Self.cairn)
        let tags = planner.plan([
            .registered(Self.version(1, commit: Self.commitA, at: 100)),
            .stageChanged(Self.change("staging", nil, 1, at: 200), id: 1),
            .registered(Self.version(2, commit: Self.commitB, at: 300)),
            .stageChanged(Self.change("production", nil, 1, at: 400), id: 2),
            .stageChanged(Self.change("production", 1, 2, at: 500, ordinal: 2), id: 3),
            .stageChanged(Self.change("staging", 1, nil, at: 600, ordinal: 2), id: 4),
        ])
        #expect(tags.map(\.name) == ["churn@v1.0.0", "churn#staging#1", "churn@v2.0.0", "churn#production#2",
                                     "churn#production!#3", "churn#production#4", "churn#staging!#5"])
        #expect(tags.map(\.target) == [Self.commitA, Self.commitA, Self.commitB, Self.commitA, Self.commitA, Self.commitB, Self.commitA])
        #expect(tags.allSatisfy { $0.state == .planned })
        #expect(tags[0].message == "Registering artifact churn version v1.0.0" && tags[0].tagger == Self.cairn)
        #expect(tags[1].message == "Assigning stage staging to artifact churn version v1.0.0" && tags[1].tagger == "Dana <dana@example.com>")
        #expect(tags[4].message == "Unassigning stage 'production' to artifact 'churn' version 'v1.0.0'")
        #expect(tags[4].stageChange == 3 && tags[5].stageChange == 3 && tags[5].action == .assign && tags[4].action == .unassign)
        // Whole seconds, strictly increasing: the replacement's two tags a second apart.
        #expect(tags.map(\.taggedAt.timeIntervalSince1970) == [100, 200, 300, 400, 500, 501, 600])
    }

    /// The repository's own GTO tags (a person's `gto assign`) and earlier plans count; times
    /// never go back; a second version at one commit is skipped, with its stage tags.
    @Test func continuesFromWhatExistsAndSkipsWhatGTOCouldNotRead() throws {
        var first = RegistryTagPlanner(existing: [], repositoryCounters: [:], cairn: Self.cairn)
        var existing = first.plan([.registered(Self.version(1, commit: Self.commitA, at: 1_000)),
                                   .stageChanged(Self.change("staging", nil, 1, at: 1_000), id: 1)])
        #expect(existing.map(\.taggedAt.timeIntervalSince1970) == [1_000, 1_001])
        for index in existing.indices { existing[index].state = .created }

        var planner = RegistryTagPlanner(existing: existing, repositoryCounters: ["churn": 6, "other": 40], cairn: Self.cairn)
        let tags = planner.plan([
            .registered(Self.version(2, commit: Self.commitA, at: 900)),
            .stageChanged(Self.change("production", nil, 2, at: 900), id: 2),
            .stageChanged(Self.change("production", 2, 1, at: 950), id: 3),
        ])
        #expect(tags.count == 4)
        #expect(tags[0].state == .skipped && tags[0].name == nil && tags[0].label == "churn@v2.0.0")
        #expect(tags[0].problem?.contains("same commit") == true && tags[0].problem?.contains("churn@v1.0.0") == true, "\(tags[0].problem ?? "")")
        for skipped in [tags[1], tags[2]] {
            #expect(skipped.state == .skipped && skipped.name == nil && skipped.problem?.contains("churn@2 has no tag of its own") == true)
        }
        #expect(tags[3].name == "churn#production#7" && tags[3].target == Self.commitA && tags[3].state == .planned)
        #expect(tags[3].taggedAt.timeIntervalSince1970 == 1_002, "after the model's last tag, though the change is older")

        // An author that is not `Name <email>` tags as Cairn; a stage GTO cannot name is skipped.
        var odd = Self.change("production", nil, 1, at: 2_000)
        odd.author = "unknown"
        let badStage = Self.change("prod.1", nil, 1, at: 2_001)
        let more = planner.plan([.stageChanged(odd, id: 4), .stageChanged(badStage, id: 5)])
        #expect(more[0].tagger == Self.cairn && more[0].name == "churn#production#8")
        #expect(more[1].state == .skipped && more[1].problem?.contains("prod.1") == true)
    }
}
