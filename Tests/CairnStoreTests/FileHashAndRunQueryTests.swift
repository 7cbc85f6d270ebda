import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite struct FileHashCacheTests {
    let stamp = FileStamp(size: 1_234, modifiedNanoseconds: 1_700_000_000_123_456_789, inode: UInt64.max - 7, device: 2049)
    let hash = ContentHash(hex: String(repeating: "ab", count: 32))

    @Test func aHashIsRememberedAcrossReopeningWhileItsStampHolds() throws {
        let directory = try TemporaryDirectory()
        let other = ContentHash(hex: String(repeating: "cd", count: 32))
        try Store(directory: directory.url).remember([(path: "/data/raw.csv", stamp: stamp, hash: hash),
                                                      (path: "/data/other.csv", stamp: stamp, hash: other)])
        let store = try Store(directory: directory.url)
        #expect(store.hash(of: "/data/raw.csv", stamp: stamp) == hash)
        #expect(store.hash(of: "/data/other.csv", stamp: stamp) == other)
        #expect(store.hash(of: "/data/unknown.csv", stamp: stamp) == nil)
        // Remembering again replaces.
        var touched = stamp
        touched.modifiedNanoseconds += 1
        store.remember([(path: "/data/raw.csv", stamp: touched, hash: other)])
        #expect(store.hash(of: "/data/raw.csv", stamp: touched) == other)
        #expect(store.hash(of: "/data/raw.csv", stamp: stamp) == nil)
    }

    @Test(arguments: [
        FileStamp(size: 1_235, modifiedNanoseconds: 1_700_000_000_123_456_789, inode: UInt64.max - 7, device: 2049),
        FileStamp(size: 1_234, modifiedNanoseconds: 1_700_000_000_123_456_790, inode: UInt64.max - 7, device: 2049),
        FileStamp(size: 1_234, modifiedNanoseconds: 1_700_000_000_123_456_789, inode: UInt64.max - 6, device: 2049),
        FileStamp(size: 1_234, modifiedNanoseconds: 1_700_000_000_123_456_789, inode: UInt64.max - 7, device: 2050),
        FileStamp(size: 1_234, modifiedNanoseconds: 1_700_000_000_123_456_789, changedNanoseconds: 5, inode: UInt64.max - 7, device: 2049),
    ])
    func anyStampFieldThatChangedMeansNoHash(changed: FileStamp) throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        store.remember([(path: "/data/raw.csv", stamp: stamp, hash: hash)])
        #expect(store.hash(of: "/data/raw.csv", stamp: stamp) == hash)
        #expect(store.hash(of: "/data/raw.csv", stamp: changed) == nil)
    }

    @Test func aReadOnlyStoreRemembersNothingAndDoesNotThrow() throws {
        let directory = try TemporaryDirectory()
        _ = try Store(directory: directory.url)
        let reader = try Store(readingFrom: directory.url)
        reader.remember([(path: "/data/raw.csv", stamp: stamp, hash: hash)])
        #expect(reader.hash(of: "/data/raw.csv", stamp: stamp) == nil)
    }
}

@Suite struct RunQueryTests {
    let model = ObjectRef(.model, "churn")
    let pipeline = ObjectRef(.featurePipeline, "features")

    func run(_ id: String, _ object: ObjectRef, stage: String? = nil, state: RunRecord.State = .succeeded, output: Bool = true) -> RunRecord {
        var record = RunRecord(id: id, key: "sha256:" + String(repeating: "0", count: 64), object: object, stage: stage, state: state,
                               trigger: "inputs", sourceCommit: "c1", submittedAt: Date(timeIntervalSince1970: 1_700_000_000))
        if output { record.outputs = ["out": Artifact(kind: .file, digest: ContentHash(hex: String(repeating: "1", count: 64)), size: 1)] }
        return record
    }

    @Test func whatWasAddedSinceAMarkAndWhatIsStillGoing() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        #expect(try store.runMark() == 0)
        try store.record(run("old", model))
        try store.record(run("going", model, state: .running, output: false))
        let mark = try store.runMark()
        try store.record(run("new", pipeline, stage: "clean"))
        #expect(try store.runs(since: mark).map(\.id) == ["going", "new"])
        #expect(try store.recentRuns(of: pipeline, stage: "clean", in: [], limit: 5).map(\.id) == ["new"])
        #expect(try store.recentRuns(of: pipeline, stage: "join", in: [], limit: 5).isEmpty)
    }

    @Test func prefixesFiltersAndTheNewestRunsOfEachObjectAndStage() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        for record in [run("m-1", model), run("m-2", model, state: .failed, output: false), run("m-3", model),
                       run("p-clean-1", pipeline, stage: "clean"), run("p-clean-2", pipeline, stage: "clean"),
                       run("p-join-1", pipeline, stage: "join"), run("m-4", model, state: .running, output: false)] {
            try store.record(record)
        }
        #expect(try store.runs(withIDPrefix: "m-", limit: 10).map(\.id) == ["m-4", "m-3", "m-2", "m-1"])
        #expect(try store.runs(withIDPrefix: "p-j", limit: 10).map(\.id) == ["p-join-1"])
        #expect(try store.runs(withIDPrefix: "x", limit: 10).isEmpty)
        #expect(try store.runs(withIDPrefix: "%", limit: 10).isEmpty, "a prefix is matched literally, not as a pattern")
        #expect(try store.recentRuns(of: model, in: [.failed, .running], limit: 10).map(\.id) == ["m-4", "m-2"])
        #expect(try store.recentRuns(of: nil, in: [.succeeded], limit: 2).map(\.id) == ["p-join-1", "p-clean-2"])
        #expect(Set(try store.runs(ids: ["m-1", "p-join-1", "gone"]).map(\.id)) == ["m-1", "p-join-1"])
        #expect(try store.newestRuns(perObjectAndStage: 1, withOutputs: true).map(\.id) == ["p-join-1", "p-clean-2", "m-3"])
        #expect(try store.newestRuns(perObjectAndStage: 1, withOutputs: false).map(\.id) == ["m-4", "p-join-1", "p-clean-2"])
        #expect(try store.newestRuns(perObjectAndStage: 0, withOutputs: false).isEmpty)

        var status = ObjectStatus(ref: model, manifestPath: "m.yaml", generation: "g", observedCommit: "c1", conditions: [])
        status.runs = ["m-1", "m-3"]
        var changes = PassChanges()
        changes.upserts = [status, ObjectStatus(ref: pipeline, manifestPath: "p.yaml", generation: "g", observedCommit: "c1", conditions: [])]
        try store.apply(changes)
        #expect(try store.reportedRunIDs() == ["m-1", "m-3"])
    }
}
