import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// The registry's promises, as the store keeps them: numbers per model that only grow, one
/// version per run, registration in the pass's transaction; controller memory and triggers.
@Suite struct RegistryStoreTests {
    static func version(_ model: String, _ number: Int, run: String, auc: Double = 0.9) -> ModelVersion {
        let lineage = Lineage(schedule: "nightly", sourceCommit: String(repeating: "c", count: 40), runID: run, runKey: "sha256:" + String(repeating: "k", count: 64),
                              trigger: "inputs", triggerID: nil, command: ["python3", "train.py"], params: "{}", environment: [],
                              featurePipeline: nil, features: [:], code: ["train.py": "sha256:00"], data: [:], program: nil,
                              startedAt: nil, finishedAt: nil)
        return ModelVersion(model: model, version: number, artifact: Artifact(kind: .file, digest: ContentHash(hex: String(repeating: "a", count: 64)), size: 3),
                            artifactPath: "model.json", metrics: ["auc": auc], gate: GateVerdict(rules: []), lineage: lineage,
                            registeredAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test func numbersGrowPerModelAndAreNeverGivenTwice() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        try store.register(Self.version("churn", 1, run: "r1"))
        try store.register(Self.version("churn", 2, run: "r2"))
        try store.register(Self.version("fraud", 1, run: "r3"))
        #expect(try store.latestVersionNumber(of: "churn") == 2 && store.latestVersionNumber(of: "fraud") == 1)
        #expect(try store.latestVersionNumber(of: "nobody") == 0)
        // The same number again, a lower one, or a second version from one run: refused.
        #expect(throws: (any Error).self) { try store.register(Self.version("churn", 2, run: "r4")) }
        #expect(throws: (any Error).self) { try store.register(Self.version("churn", 1, run: "r5")) }
        #expect(throws: (any Error).self) { try store.register(Self.version("churn", 3, run: "r1")) }
        #expect(try store.versions(of: "churn").map(\.version) == [2, 1])
        #expect(try store.version(registeredBy: "r3")?.name == "fraud@1")
        let models = try store.registeredModels()
        #expect(models.map(\.latest.name) == ["churn@2", "fraud@1"] && models.map(\.count) == [2, 1])
        #expect(try Store(readingFrom: directory.url).version("churn", 2)?.metrics == ["auc": 0.9])
    }

    @Test func aRegistrationIsPartOfItsPassAllOrNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        try store.register(Self.version("churn", 1, run: "r1"))
        // A pass whose second registration is refused writes neither, nor its status.
        var changes = PassChanges()
        changes.effects = [.registerVersion(Self.version("churn", 2, run: "r2")), .registerVersion(Self.version("churn", 2, run: "r3"))]
        changes.outbox = [OutboxEntry(kind: .status, ref: ObjectRef(.trainingSchedule, "nightly"), reason: "Registered", body: "x",
                                      sourceCommit: "c", createdAt: Date(), runs: ["r2"])]
        #expect(throws: (any Error).self) { try store.apply(changes) }
        #expect(try store.latestVersionNumber(of: "churn") == 1)
        #expect(try store.pendingOutbox().isEmpty)
    }

    @Test func memoryAndTriggersRoundTripAndAreConsumedWithThePass() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        let ref = ObjectRef(.trainingSchedule, "nightly")
        #expect(try store.memory(of: ref) == nil)
        let request = TriggerRequest(id: "manual-1", object: ref, source: "manual", reason: "because", requestedAt: Date(timeIntervalSince1970: 1_800_000_000))
        try store.addTrigger(request)
        #expect(try store.triggers(of: ref) == [request])
        #expect(try store.takeRequests() == [ref], "a trigger asks for a pass over its object")
        var changes = PassChanges()
        changes.effects = [.remember(ref, Data("{\"a\":1}".utf8)), .consumeTrigger("manual-1")]
        try store.apply(changes)
        #expect(try store.triggers(of: ref).isEmpty)
        #expect(try store.memory(of: ref) == Data("{\"a\":1}".utf8))
        changes.effects = [.remember(ref, nil)]
        try store.apply(changes)
        #expect(try store.memory(of: ref) == nil)
    }
}
