@testable import CairnManifests
import Foundation
import Testing

/// `resources: {cpus, memory, gpus, time}` and `executor:` on stages and trainings (issue 16).
@Suite struct ResourcesTests {
    @Test func stagesAndTrainingsSayWhatTheyNeedAndWhereTheyRun() throws {
        let stage = Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: """
            deps: [ingest.py]
                  resources: {cpus: 4, memory: 16GiB, gpus: 1, time: 2h}
                  executor: slurm
            """)
        let file = Fixtures.parse(stage)
        guard case .featurePipeline(let pipeline)? = file.manifests.first?.spec else { Issue.record("\(file.diagnostics)"); return }
        let resources = try #require(pipeline.stages.first).resources
        #expect(resources.cpus == 4 && resources.gpus == 1 && resources.time?.milliseconds == 7_200_000)
        #expect(resources.memory?.bytes == 16 << 30 && resources.memory?.mebibytes == 16_384)
        #expect(pipeline.stages.first?.executor == .slurm)

        let training = Fixtures.parse(Fixtures.training + "\n  resources: {memory: 512M, time: 90m}\n  executor: local\n  timeout: 1h")
        guard case .trainingSchedule(let spec)? = training.manifests.first?.spec else { Issue.record("\(training.diagnostics)"); return }
        #expect(spec.resources == RunResources(cpus: 1, memory: try MemorySize(parsing: "512M"), time: try ManifestDuration(parsing: "90m")))
        #expect(spec.executor == .local)
    }

    /// Absent, the new fields leave a spec's stored form (and so its generation) as it was.
    @Test func absentFieldsAreNotWritten() throws {
        let file = Fixtures.parse(Fixtures.training)
        guard case .trainingSchedule(let spec)? = file.manifests.first?.spec else { Issue.record("\(file.diagnostics)"); return }
        let encoded = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        #expect(!encoded.contains("resources") && !encoded.contains("executor"), "\(encoded)")
        var changed = spec
        changed.resources.gpus = 2
        changed.executor = .slurm
        let back = try JSONDecoder().decode(TrainingScheduleSpec.self, from: JSONEncoder().encode(changed))
        #expect(back == changed)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var line: String
        var message: String
        var testDescription: String { name }
    }

    static let bad: [Case] = [
        Case(name: "memory without a unit", line: "resources: {memory: \"16\"}", message: "resources.memory: \"16\" is not an amount of memory: \"16\" has no unit"),
        Case(name: "memory in words", line: "resources: {memory: lots}", message: "\"lots\" is not an amount of memory"),
        Case(name: "memory under 1MiB", line: "resources: {memory: 512KiB}", message: "\"512KiB\" is less than 1MiB"),
        Case(name: "negative gpus", line: "resources: {gpus: -1}", message: "resources.gpus must be at least 0, not -1"),
        Case(name: "time in words", line: "resources: {time: long}", message: "\"long\" is not a duration"),
        Case(name: "an executor typo", line: "executor: slrum", message: "\"slrum\" is not one of local, slurm"),
    ]

    @Test(arguments: bad)
    func badFieldsAreLocated(_ bad: Case) throws {
        let file = Fixtures.parse(Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: bad.line))
        #expect(file.manifests.isEmpty)
        let diagnostic = try #require(file.diagnostics.first { $0.message.contains(bad.message) }, "\(file.diagnostics)")
        #expect(diagnostic.location.line == 8, "\(diagnostic)")
    }

    /// What the shapes cannot say: a scheduler limit under the timeout, and GPUs asked of the
    /// local executor by name.
    @Test func theCheckerRefusesWhatCannotWork() throws {
        let yaml = Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: """
            deps: [ingest.py]
                  timeout: 2h
                  resources: {time: 30m, gpus: 2}
                  executor: local
            """)
        let set = ManifestSet(files: [Fixtures.parse(yaml)])
        let messages = set.diagnostics.map(\.message)
        #expect(messages.contains("resources.time (30m) is shorter than timeout (2h): the scheduler would end the run before its timeout"), "\(messages)")
        #expect(messages.contains("resources.gpus asks for 2 GPUs, and executor: local cannot give any"), "\(messages)")
        // With no executor, the daemon's decides: nothing to say here.
        let open = Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [ingest.py]\n      resources: {gpus: 2}")
        #expect(ManifestSet(files: [Fixtures.parse(open)]).diagnostics.isEmpty)
    }
}
