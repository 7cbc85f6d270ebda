import ArgumentParser
import CairnCore
import CairnEngine
import CairnRun
import CairnStore
import Foundation

extension Cairn {
    struct GarbageCollect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove the artifacts and run directories nothing needs any more.",
            discussion: """
            Keeps the outputs of the runs every object's current status reports, of the last \
            --keep-runs runs with outputs of each object (each pipeline stage apart), and of the \
            runs a kept skipped run reused, and of every registered model version (its model and \
            metrics files and the feature artifacts it was trained on, so `cairn models get` and \
            `cairn reproduce` keep working); a kept directory keeps every file it lists. Every \
            other blob under <state>/artifacts/sha256 goes, with files under <state>/artifacts/tmp \
            older than an hour. Run directories under <state>/runs (logs, job files) are kept for \
            those runs, for the last --keep-runs runs of each object and stage whatever their \
            state, and for runs not over yet; those of other finished runs are removed, so \
            `cairn logs` no longer has them. A run whose outputs were removed runs again when \
            its outputs are next needed. With --slurm-shared-dir, the same goes for the \
            directories of this state's Slurm runs under DIR/runs (other daemons' are left alone).

            gc needs the state directory to itself: it takes the daemon's lock (a dry run too), \
            so stop `cairn run` first.

            Exit code 0 when done; 1 when another cairn process (the daemon, or a \
            `reconcile --once`) uses the state directory; 2 usage error; 3 when the state cannot \
            be read or a file cannot be removed.

            Examples:
              cairn gc --dry-run
              cairn gc --keep-runs 10
              cairn gc --format json
              cairn gc --slurm-shared-dir /shared/cairn
            """)

        @Option(help: "How many of each object's (and pipeline stage's) newest runs keep their outputs and logs.")
        var keepRuns: Int = 5

        @Flag(help: "Say what would be removed, and remove nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("The daemon's --slurm-shared-dir: the directories of its Slurm runs there are pruned too (only those of runs this state directory knows).",
                                   valueName: "dir"))
        var slurmSharedDir: String?

        @OptionGroup var location: StateOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if keepRuns < 0 { throw ValidationError("--keep-runs must be 0 or more") }
            if let slurmSharedDir, !slurmSharedDir.hasPrefix("/") {
                throw ValidationError("--slurm-shared-dir \(slurmSharedDir) must be an absolute path")
            }
        }

        func run() async throws {
            let state = location.directory
            _ = try location.openStore()   // says clearly when there is no state there
            let lock: DaemonLock
            do {
                lock = try DaemonLock(stateDirectory: state)
            } catch {
                let holder = DaemonLock.holder(of: state).map { "(pid \($0)) " } ?? ""
                throw CairnExit.invalid("error: another cairn process \(holder)is using the state directory \(state.path); "
                                        + "stop `cairn run` (or wait for `cairn reconcile --once`) and run `cairn gc` again")
            }
            defer { withExtendedLifetime(lock) {} }
            let store: Store
            do {
                store = try Store(directory: state)
            } catch {
                throw CairnExit.unreadable("cannot open the Cairn state in \(state.path): \(describe(error))")
            }
            let retention = try Retention(store: store, keepRuns: keepRuns)
            var report = GarbageCollectReport(dryRun: dryRun)
            do {
                let artifactsRoot = state.appendingPathComponent("artifacts")
                if FileManager.default.fileExists(atPath: artifactsRoot.path) {
                    report.artifacts = try ArtifactStore(root: artifactsRoot)
                        .collectGarbage(keeping: retention.artifacts, dryRun: dryRun)
                }
                try pruneRunDirectories(in: state.appendingPathComponent("runs"), keeping: retention.runDirectories,
                                        store: store, report: &report)
                if let slurmSharedDir {
                    // Several daemons may share one directory: only runs of this store are touched.
                    try pruneRunDirectories(in: URL(fileURLWithPath: slurmSharedDir).appendingPathComponent("runs"),
                                            keeping: retention.runDirectories, store: store, report: &report)
                }
            } catch let error as ArtifactError {
                throw CairnExit.unreadable(error.description)
            } catch let error as CairnExit {
                throw error
            } catch {
                throw CairnExit.unreadable(describe(error))
            }
            print(format == .json ? report.jsonText() : report.text)
        }

        /// Removes `<state>/runs/<id>/` of every finished run not kept. A directory whose run
        /// the store does not know is left alone: nothing says it is over.
        private func pruneRunDirectories(in runs: URL, keeping kept: Set<String>, store: Store, report: inout GarbageCollectReport) throws {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []
            let candidates = names.filter { !kept.contains($0) }
            let finished = Set(try store.runs(ids: candidates).filter(\.state.isFinal).map(\.id))
            for name in names.sorted() {
                let directory = runs.appendingPathComponent(name)
                guard finished.contains(name) else {
                    report.keptRunDirectories += 1
                    continue
                }
                report.removedRunDirectories += 1
                report.removedRunBytes += ArtifactStore.diskUsage(of: directory)
                if !dryRun { try FileManager.default.removeItem(at: directory) }
            }
        }
    }
}

/// What `cairn gc` keeps, read from the store.
struct Retention {
    /// The outputs to keep.
    var artifacts: [Artifact] = []
    /// The runs whose directories (logs) stay.
    var runDirectories: Set<String> = []

    init(store: Store, keepRuns: Int) throws {
        // (a) what the objects' statuses report, (b) the newest runs with outputs of each
        // object and stage.
        var kept: [String: RunRecord] = [:]
        for run in try store.runs(ids: try store.reportedRunIDs()) { kept[run.id] = run }
        for run in try store.newestRuns(perObjectAndStage: keepRuns, withOutputs: true) { kept[run.id] = run }
        // A kept skipped run stands on the outputs of the run it reused: keep those too.
        var reused = Set(kept.values.compactMap(\.reused)).subtracting(kept.keys)
        while !reused.isEmpty {
            let found = try store.runs(ids: reused)
            for run in found { kept[run.id] = run }
            reused = Set(found.compactMap(\.reused)).subtracting(kept.keys)
        }
        artifacts = kept.values.flatMap(\.outputs.values)
        // (c) Registered model versions, however old their runs: the model file, the metrics
        // file and the feature artifacts each was trained on (`cairn reproduce` needs them).
        for version in try store.allVersions() {
            artifacts.append(version.artifact)
            if let metrics = version.lineage.metricsArtifact { artifacts.append(metrics) }
            artifacts += version.lineage.features.values
        }

        runDirectories = Set(kept.keys)
        runDirectories.formUnion(try store.newestRuns(perObjectAndStage: keepRuns, withOutputs: false).map(\.id))
        runDirectories.formUnion(try store.unfinishedRuns().map(\.id))
    }
}

/// What `cairn gc` prints.
struct GarbageCollectReport: Encodable {
    var dryRun: Bool
    var artifacts: GarbageReport
    var removedRunDirectories = 0
    var removedRunBytes: Int64 = 0
    var keptRunDirectories = 0

    init(dryRun: Bool) {
        self.dryRun = dryRun
        artifacts = GarbageReport(dryRun: dryRun)
    }

    var text: String {
        let verb = dryRun ? "would remove" : "removed"
        var lines = ["\(verb) \(artifacts.removedBlobs) blobs, \(RunText.bytes(artifacts.removedBytes)); "
                     + "kept \(artifacts.keptBlobs) blobs, \(RunText.bytes(artifacts.keptBytes))"]
        if artifacts.removedTemporaryFiles > 0 {
            lines.append("\(verb) \(artifacts.removedTemporaryFiles) leftover temporary files, \(RunText.bytes(artifacts.removedTemporaryBytes))")
        }
        lines.append("\(verb) \(removedRunDirectories) run directories, \(RunText.bytes(removedRunBytes)); kept \(keptRunDirectories)")
        if !artifacts.missing.isEmpty {
            lines.append("\(artifacts.missing.count) kept outputs are not in the store any more; the runs that made them run again when they are needed")
        }
        if dryRun { lines.append("dry run: nothing was removed") }
        return lines.joined(separator: "\n")
    }
}
