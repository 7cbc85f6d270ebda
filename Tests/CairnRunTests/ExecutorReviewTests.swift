import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// A checkout that also holds symlinks (path → where it points), as a commit may.
/// A run directory prepared as the executor would, with its row in the ledger as submitted and
/// no handle: what a daemon leaves when it dies between starting the supervisor and recording it.
/// SIGKILL for every process whose argv holds `marker`.

/// The defects a review found in the local executor, each with a real run.
@Suite struct ExecutorReviewTests {
    @Test func anOutputTheCommitHoldsDoesNotCountAsWritten() async throws {
        let fixture = try ExecutorFixture()
        let executor = try fixture.executor(files: ["model/weights.txt": "old\n", "metrics.json": "{}\n"])
        for outputs in [["model"], ["metrics.json"]] {
            let spec = job(["true"], outputs: outputs)
            _ = try await executor.submit(spec)
            let record = try await fixture.final(spec.runID)
            #expect(record.state == .failed)
            #expect(record.message?.hasPrefix("it exited with status 0 but did not write its declared output \(outputs[0])") == true,
                    "\(record.message ?? "")")
        }
    }

    @Test func aStoredDirectoryWithAMissingFileBlobIsNotContained() throws {
        let directory = try TemporaryDirectory()
        let store = try ArtifactStore(root: directory.appending("artifacts"))
        try directory.write("model/a.bin", "aaa\n")
        try directory.write("model/nested/b.bin", "bbb\n")
        let artifact = try store.store(directory.appending("model"))
        let file = try store.store(directory.appending("model/nested/b.bin"))
        #expect(store.contains(artifact) && store.contains(file))
        try FileManager.default.removeItem(at: store.path(of: file.digest))
        #expect(!store.contains(artifact), "one of its files is gone")
        #expect(!store.contains(file))
        #expect(store.contains(try store.store(directory.appending("model/a.bin"))))
    }
}
