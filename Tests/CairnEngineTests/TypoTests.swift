import CairnCLI
import CairnCore
import CairnEngine
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// A typo stalls, it never deletes: once deployments are real, a deleted object would be torn down.
@Suite struct TypoTests {
    @Test func aFileThatCannotBeReadStallsItsObjectsWithTheirLastGoodSpecAndTheFixRestoresThem() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let schedule = ObjectRef(.trainingSchedule, "churn-weekly"), model = ObjectRef(.model, "churn")
        let before = try setup.engine.store.objects()
        let good = try #require(before.first { $0.ref == schedule })
        let training = try #require(try exampleManifests()["training.yaml"] ?? nil)

        // A tab in the indentation: the file is not YAML at all, so it names none of its objects.
        try setup.repository.commit(["training.yaml": training.replacingOccurrences(of: "  retries: 1", with: "\tretries: 1")])
        let broken = try await setup.engine.reconcileOnce()
        #expect(!broken.healthy && broken.stalled == [schedule])
        #expect(broken.unreadableFiles.count == 1 && broken.unreadableFiles[0].hasPrefix("training.yaml:"), "\(broken.unreadableFiles)")
        let stalled = try #require(try setup.engine.store.object(schedule))
        #expect(stalled.reason == "InvalidManifest" && stalled.isStalled)
        #expect(stalled.primaryMessage.contains("keeps its last good spec"), "\(stalled.primaryMessage)")
        #expect(stalled.generation == good.generation, "the last good spec's generation stays")
        #expect(try setup.engine.store.object(model)?.reason == "DependencyNotAccepted")
        // Nothing deleted, and nothing else touched (the monitor that retrains the model included).
        let subjects = try setup.statusSubjects()
        #expect(!subjects.contains { $0.hasSuffix(": Deleted") }, "\(subjects)")
        #expect(Array(subjects.suffix(2)) == ["TrainingSchedule/churn-weekly: InvalidManifest", "Model/churn: DependencyNotAccepted"])
        for status in before where status.ref != schedule && status.ref != model {
            #expect(try setup.engine.store.object(status.ref) == status, "\(status.ref) was touched")
        }
        let note = try setup.git(["notes", "--ref=cairn", "show", "HEAD"])
        #expect(note.contains("Files that could not be read") && note.contains("training.yaml:"), "\(note)")

        // A restart, then an unrelated commit: the model is still held back (the last good spec
        // is in the store, not only in memory).
        try setup.restart()
        try setup.repository.commit(["notes.txt": "unrelated"])
        let unrelated = try await setup.engine.reconcileOnce()
        #expect(unrelated.changed.isEmpty, "\(unrelated.changed)")
        #expect(try setup.engine.store.object(model)?.reason == "DependencyNotAccepted")

        // The fix: every object is as it was, with the same generation; nothing it manages changes.
        try setup.repository.commit(["training.yaml": training])
        let fixed = try await setup.engine.reconcileOnce()
        #expect(fixed.healthy && fixed.unreadableFiles.isEmpty)
        for status in before {
            let now = try #require(try setup.engine.store.object(status.ref))
            #expect(now.reason == status.reason && now.generation == status.generation, "\(status.ref)")
        }
    }

    @Test func deletingTheBrokenFileDeletesItsObjectsAndReleasesTheirDependents() async throws {
        let setup = try Setup()
        try await setup.engine.reconcileOnce()
        let training = try #require(try exampleManifests()["training.yaml"] ?? nil)
        try setup.repository.commit(["training.yaml": training.replacingOccurrences(of: "timeout: 10m", with: "timout: 10m")])
        try await setup.engine.reconcileOnce()
        #expect(try setup.engine.store.object(ObjectRef(.model, "churn"))?.reason == "DependencyNotAccepted")
        try setup.repository.commit(["training.yaml": nil])
        let outcome = try await setup.engine.reconcileOnce()
        #expect(try setup.statusSubjects().contains("TrainingSchedule/churn-weekly: Deleted"))
        #expect(try setup.engine.store.object(ObjectRef(.model, "churn"))?.reason == "NoStageAssigned", "released")
        // With the schedule gone for good, the monitor that retrains through it is invalid, as validate says.
        #expect(outcome.stalled == [ObjectRef(.monitor, "churn-quality")])
        #expect(try setup.engine.store.object(ObjectRef(.monitor, "churn-quality"))?.primaryMessage
            .contains("needs a TrainingSchedule for Model/churn") == true)
    }
}
