import CairnCore
import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite struct StoreTests {
    func status(_ name: String, ready: Bool) -> ObjectStatus {
        ObjectStatus(ref: ObjectRef(.model, name), manifestPath: "m.yaml", generation: "g1", observedCommit: "c1",
                     conditions: [Condition(type: "Ready", status: ready ? .true : .false, reason: ready ? "Reconciled" : "Failed", message: "",
                                            lastTransitionTime: Date(timeIntervalSince1970: 1_700_000_000))])
    }

    @Test func aPassIsAppliedAllOrNothingAndSurvivesReopening() throws {
        let directory = try TemporaryDirectory()
        var changes = PassChanges()
        changes.upserts = [status("a", ready: true), status("b", ready: false)]
        changes.events = [Event(ref: ObjectRef(.model, "a"), time: Date(), reason: "Reconciled", message: "ok", sourceCommit: "c1")]
        changes.outbox = [OutboxEntry(kind: .status, ref: ObjectRef(.model, "a"), reason: "Reconciled", body: "x", sourceCommit: "c1", createdAt: Date()),
                          OutboxEntry(kind: .note, ref: nil, reason: "Reconciled", body: "n", sourceCommit: "c1", createdAt: Date())]
        changes.reconciledCommit = "c1"
        try Store(directory: directory.url).apply(changes)

        let reopened = try Store(directory: directory.url)
        #expect(try reopened.objects().map(\.ref.name) == ["a", "b"])
        #expect(try reopened.object(ObjectRef(.model, "b"))?.isReady == false)
        #expect(try reopened.lastReconciledCommit() == "c1")
        #expect(try reopened.history(ObjectRef(.model, "a")).map(\.reason) == ["Reconciled"])
        let outbox = try reopened.pendingOutbox()
        #expect(outbox.map(\.kind) == [.status, .note])
        #expect(outbox[0].id! < outbox[1].id!)
        try reopened.markDrained(upTo: try #require(outbox[0].id), statusRef: "refs/heads/cairn/status", statusTip: "abc")
        #expect(try reopened.statusTip(of: "refs/heads/cairn/status") == "abc")
        #expect(try reopened.statusTip(of: "refs/heads/feature") == nil)
        #expect(try reopened.pendingOutbox().map(\.kind) == [.note])
        // WAL mode: the write-ahead log sits beside the database.
        #expect(FileManager.default.fileExists(atPath: directory.appending("cairn.sqlite-wal").path))
    }

    @Test func deletionsAndRequests() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        var changes = PassChanges()
        changes.upserts = [status("a", ready: true)]
        try store.apply(changes)
        var deletion = PassChanges()
        deletion.deletions = [ObjectRef(.model, "a")]
        try store.apply(deletion)
        #expect(try store.objects().isEmpty)

        #expect(try store.hasRequests() == false)
        try store.request(ObjectRef(.model, "a"))
        try store.request(ObjectRef(.model, "a"))
        #expect(try store.hasRequests())
        #expect(try store.takeRequests() == [ObjectRef(.model, "a")])
        #expect(try store.takeRequests().isEmpty)
    }

    /// A controller's store effect lands in the same transaction as the status it explains,
    /// and reads back through the narrow `RunRecords` protocol controllers get.
    @Test func effectsAreAppliedWithThePassAndRunsReadBack() throws {
        let directory = try TemporaryDirectory()
        let store = try Store(directory: directory.url)
        let object = ObjectRef(.trainingSchedule, "weekly")
        var run = RunRecord(id: "r1", key: "sha256:aa", object: object, state: .submitted, trigger: "inputs",
                            sourceCommit: "c1", submittedAt: Date(timeIntervalSince1970: 1_700_000_000))
        var changes = PassChanges()
        changes.upserts = [status("a", ready: false)]
        changes.effects = [.recordRun(run)]
        try store.apply(changes)
        run.state = .succeeded
        run.finishedAt = Date(timeIntervalSince1970: 1_700_000_060)
        var second = PassChanges()
        second.effects = [.recordRun(run), .recordRun(RunRecord(id: "r2", key: "sha256:bb", object: object, state: .running,
                                                                 trigger: "schedule", sourceCommit: "c2", submittedAt: Date()))]
        try store.apply(second)

        let records: any RunRecords = try Store(directory: directory.url)
        #expect(try records.runs(withKey: "sha256:aa") == [run], "updated in place, not duplicated")
        #expect(try records.runs(of: object, limit: 10).map(\.id) == ["r2", "r1"])
        #expect(try records.runs(of: object, limit: 1).map(\.id) == ["r2"])
        #expect(try records.runs(withKey: "sha256:none").isEmpty)
    }

    /// Stores written before conditions had three values kept a Bool; they still read.
    @Test func conditionsWrittenAsBooleansStillDecode() throws {
        let json = #"{"type":"Ready","status":true,"reason":"Reconciled","message":"","lastTransitionTime":0}"#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        #expect(try decoder.decode(Condition.self, from: Data(json.utf8)).status == .true)
        let unknown = json.replacingOccurrences(of: "true", with: "\"Unknown\"")
        #expect(try decoder.decode(Condition.self, from: Data(unknown.utf8)).status == .unknown)
        #expect(throws: (any Error).self) {
            try decoder.decode(Condition.self, from: Data(json.replacingOccurrences(of: "true", with: "\"Maybe\"").utf8))
        }
    }
}
