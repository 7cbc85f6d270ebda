import CairnEngine
import ArgumentParser
import CairnCore
import CairnManifests
import CairnRun
import CairnStore
import Foundation

extension Cairn {
    struct Models: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "models",
            abstract: "The model registry: every model, one model's versions, or a version's artifact.",
            discussion: """
            Without NAME: each model with its newest version, how many it has, and which versions \
            its Model manifest assigns to which stage. With NAME: its versions, newest first, with \
            their metrics, gate verdict, source commit and trigger. `cairn models get MODEL@VERSION \
            --to DIR` copies a version's model file out of the artifact store; `cairn models diff \
            A B` shows two versions side by side.

            The same registry is on the status branch as ModelVersion/<model>/<version>.yaml, for \
            readers without the state directory: git show cairn/status:ModelVersion/churn/3.yaml

            With NAME and --history: every stage change, newest first, with the commit that made \
            it, its author and when Cairn applied it. With --at DATE: which version held each \
            stage then (a day alone, 2026-10-01, means that day in UTC: the stages at its start, \
            and the changes during it). The status branch tells the same: \
            git log cairn/status -- Model/churn.yaml

            Exit code 0 when shown; 1 when NAME has no version; 3 when the state cannot be read.

            Examples:
              cairn models
              cairn models churn --history
              cairn models churn --at 2026-10-01
              cairn models churn --at 2026-10-01T12:00:00Z --format json
              cairn models churn --limit 5
              cairn models churn --format json
              cairn models get churn@3 --to /tmp/churn-3
            """,
            subcommands: [List.self, Get.self, Diff.self],
            defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "list", abstract: "Every model, or one model's versions (the default of `cairn models`).")

            @Argument(help: "A model: list its versions.")
            var name: String?

            @Option(help: "How many versions (or stage changes, with --history) of NAME to list, newest first.")
            var limit: Int = 50

            @Flag(help: "List NAME's stage changes instead of its versions.")
            var history = false

            @Option(help: "Show which version held each stage of NAME at this time: 2026-10-01 (that day, UTC) or 2026-10-01T12:00:00Z.")
            var at: String?

            @OptionGroup var location: StateOptions

            @Option(help: "text or json.")
            var format: OutputFormat = .text

            func validate() throws {
                if limit < 1 { throw ValidationError("--limit must be at least 1") }
                if (history || at != nil), name == nil { throw ValidationError("--history and --at need a model NAME") }
                if history, at != nil { throw ValidationError("give --history or --at, not both") }
                if let at, StageText.instant(at) == nil {
                    throw ValidationError("--at \(at) is not a date (2026-10-01) or a time (2026-10-01T12:00:00Z)")
                }
            }

            func run() async throws {
                let store = try location.openStore()
                guard let name else {
                    if format == .json { print(try ModelText.registryJSON(store)); return }
                    let rows = ModelText.summaries(try store.registeredModels(), stages: try ModelText.stages(in: store))
                    if rows.isEmpty { print("no model has a registered version yet; a TrainingSchedule registers one when it trains"); return }
                    print(table(header: ["MODEL", "LATEST", "VERSIONS", "GATE", "STAGES", "REGISTERED"], rows: rows.map { row in
                        [row.model, "\(row.latest)", "\(row.versions)", row.latestGate,
                         row.stages.isEmpty ? "-" : row.stages.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                         RunText.when(row.registeredAt)]
                    }))
                    return
                }
                if history { return try StageText.history(of: name, in: store, limit: limit, format: format) }
                if let at, let instant = StageText.instant(at) {
                    return try StageText.stages(of: name, at: instant, in: store, format: format)
                }
                let noVersion = CairnExit.invalid("error: model \(name) has no registered version; `cairn models` lists those that do")
                if format == .json {
                    guard let text = try ModelText.versionsJSON(of: name, limit: limit, in: store) else { throw noVersion }
                    print(text)
                    return
                }
                let stages = try store.stageMap(of: name)
                let versions = try store.versions(of: name, limit: limit)
                guard !versions.isEmpty else { throw noVersion }
                print(ModelText.versionTable(versions, stages: stages.versions))
            }
        }

        struct Get: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "get",
                abstract: "Copy a version's model file (and its metrics file) out of the artifact store.",
                discussion: """
                Writes DIR/<the model's declared file name> (and the metrics file, when the version \
                has one), checking every byte against the SHA-256 the registry recorded. DIR is \
                created; files already there are never overwritten (exit 1, nothing written).

                Example:
                  cairn models get churn@3 --to /tmp/churn-3
                """)

            @Argument(help: "MODEL@VERSION, such as churn@3.")
            var version: String

            @Option(help: "The directory to write the files to.")
            var to: String

            @OptionGroup var location: StateOptions

            @Option(help: "text or json.")
            var format: OutputFormat = .text

            func validate() throws {
                if ModelText.parse(version) == nil { throw ValidationError("\(version) is not MODEL@VERSION, such as churn@3") }
            }

            func run() async throws {
                let store = try location.openStore()
                let found = try ModelText.find(version, in: store)
                let artifacts = try ArtifactStore(root: location.directory.appendingPathComponent("artifacts"))
                let directory = URL(fileURLWithPath: to)
                var copies = [(found.artifact, found.artifactPath)]
                if let metrics = found.lineage.metricsArtifact, let path = found.lineage.metricsPath { copies.append((metrics, path)) }
                // Everything is checked before anything is written.
                var targets: [URL] = []
                for (artifact, path) in copies {
                    let target = directory.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent)
                    guard artifacts.contains(artifact) else {
                        throw CairnExit.unreadable("the artifact store no longer holds \(path) of \(found.name) (\(artifact.digest))")
                    }
                    guard !FileManager.default.fileExists(atPath: target.path), !targets.contains(target) else {
                        throw CairnExit.invalid("error: \(target.path) exists already (or the model and metrics files share a name); "
                                                + "give --to a new directory: nothing is overwritten")
                    }
                    targets.append(target)
                }
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                var written: [String: String] = [:]
                for ((artifact, _), target) in zip(copies, targets) {
                    do {
                        try artifacts.restore(artifact, to: target)
                    } catch {
                        throw CairnExit.unreadable("could not write \(target.path): \(error)")
                    }
                    written[target.path] = artifact.digest.description
                }
                if format == .json { print(written.jsonText()); return }
                for (path, digest) in written.sorted(by: { $0.key < $1.key }) { print("wrote \(path) (\(digest))") }
            }
        }
    }
}

/// How the registry commands find versions and speak of them.
enum ModelText {
    /// `cairn models --format json`, and what `GET /api/v1/models` answers.
    static func registryJSON(_ store: Store) throws -> String {
        summaries(try store.registeredModels(), stages: try stages(in: store)).jsonText()
    }

    /// `cairn models NAME --format json` (the newest `limit` versions), and what
    /// `GET /api/v1/models/NAME` answers; nil when the model has no version.
    static func versionsJSON(of name: String, limit: Int, in store: Store) throws -> String? {
        let versions = try store.versions(of: name, limit: limit)
        return versions.isEmpty ? nil : versions.jsonText()
    }

    /// `churn@3` → ("churn", 3).
    static func parse(_ text: String) -> (model: String, version: Int)? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let number = Int(parts[1]), number > 0 else { return nil }
        return (String(parts[0]), number)
    }

    static func find(_ text: String, in store: Store) throws -> ModelVersion {
        guard let (model, number) = parse(text) else { throw CairnExit.invalid("error: \(text) is not MODEL@VERSION, such as churn@3") }
        guard let version = try store.version(model, number) else {
            let latest = try store.latestVersionNumber(of: model)
            throw CairnExit.invalid("error: \(model) has no version \(number); "
                                    + (latest == 0 ? "it has no registered version (`cairn models` lists those that do)"
                                                   : "its versions are 1 to \(latest)"))
        }
        return version
    }

    /// Which version holds each stage, by model, as Cairn accepted them (a refused promotion
    /// is not among them).
    static func stages(in store: Store) throws -> [String: [String: Int]] {
        var found: [String: [String: Int]] = [:]
        for (latest, _) in try store.registeredModels() {
            let stages = try store.stageMap(of: latest.model).versions
            if !stages.isEmpty { found[latest.model] = stages }
        }
        return found
    }

    struct Summary: Encodable {
        var model: String
        var latest: Int
        var versions: Int
        var latestGate: String
        var latestMetrics: [String: Double]
        var stages: [String: Int]
        var registeredAt: Date
    }

    static func summaries(_ models: [(latest: ModelVersion, count: Int)], stages: [String: [String: Int]]) -> [Summary] {
        models.map { latest, count in
            Summary(model: latest.model, latest: latest.version, versions: count, latestGate: latest.gate.passed ? "passed" : "failed",
                    latestMetrics: latest.metrics, stages: stages[latest.model] ?? [:], registeredAt: latest.registeredAt)
        }
    }

    /// One model's versions as `cairn models NAME` lists them, with what the newest failed gate said.
    static func versionTable(_ versions: [ModelVersion], stages held: [String: Int]) -> String {
        var text = table(header: ["VERSION", "STAGES", "GATE", "METRICS", "COMMIT", "TRIGGER", "REGISTERED"], rows: versions.map { version in
            ["\(version.version)", held.filter { $0.value == version.version }.keys.sorted().joined(separator: ",").orDash,
             version.gate.passed ? "passed" : "FAILED", metrics(version.metrics),
             String(version.lineage.sourceCommit.prefix(10)), version.lineage.trigger, RunText.when(version.registeredAt)]
        })
        if let failed = versions.first(where: { !$0.gate.passed }) {
            text += "\n\n\(failed.name) failed its gate: " + failed.gate.rules.filter { !$0.passed }.map(\.verdict).joined(separator: "; ")
        }
        return text
    }

    static func metrics(_ metrics: [String: Double]) -> String {
        metrics.isEmpty ? "-" : metrics.keys.sorted().prefix(4).map { "\($0)=\((metrics[$0] ?? 0).shortText)" }
            .joined(separator: " ")
    }
}


