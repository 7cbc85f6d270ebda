import CairnManifests
import CairnStore
import CairnTestSupport
import Foundation
import Testing

@Suite struct StoreTests {
    func status(_ name: String, ready: Bool) -> ObjectStatus {
        ObjectStatus(ref: ObjectRef(.model, name), manifestPath: "m.yaml", generation: "g1", observedCommit: "c1",
                     conditions: [Condition(type: "Ready", status: ready, reason: ready ? "Reconciled" : "Failed", message: "",
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
        try reopened.markDrained(upTo: try #require(outbox[0].id))
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
}
