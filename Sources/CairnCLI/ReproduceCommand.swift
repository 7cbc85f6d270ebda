import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnRun
import CairnStore
import Foundation
import Logging

extension Cairn {
    struct Reproduce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reproduce",
            abstract: "Train a registered version again from its lineage and check that the model comes out the same.",
            discussion: """
            Reruns the version's training in a fresh checkout of its source commit, with the same \
            command, params and environment names, and the same feature artifacts restored from \
            the artifact store, then compares the SHA-256 of the new model file (and metrics file) \
            with what the registry recorded. A deterministic trainer must match.

            It refuses, rather than train on today's data, when a file outside the repository that \
            the key covered no longer has its recorded hash, or a feature artifact is no longer in \
            the artifact store (`cairn gc` keeps those of registered versions). A program that now \
            resolves to another file (a python3 upgrade) is reported, not refused.

            The run is recorded in a scratch ledger under <state>/reproduce/, not among the \
            daemon's runs, and registers nothing; when the model differs or the training fails, \
            that directory (log, job file) stays for a look and its path is printed, and when it \
            matches it is removed.

            Exit code 0 when the model matches; 1 when it differs, the training fails, or \
            reproducing is refused; 3 when the state or repository cannot be read.

            Examples:
              cairn reproduce churn@2
              cairn reproduce churn@2 --data-root /srv/data --format json
            """)

        @Argument(help: "MODEL@VERSION, such as churn@2.")
        var version: String

        @OptionGroup var options: EngineOptions

        @OptionGroup var runOptions: RunOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if ModelText.parse(version) == nil { throw ValidationError("\(version) is not MODEL@VERSION, such as churn@2") }
        }

        struct Result: Encodable {
            var version: String
            var matches: Bool
            var run: String
            var state: String
            var expected: String
            var produced: String?
            var metricsMatch: Bool?
            var warnings: [String]
            var runDirectory: String
            var message: String?
            var logPath: String?

            var text: String {
                var lines = warnings.map { "warning: \($0)" }
                if state != RunRecord.State.succeeded.rawValue {
                    lines.append("the training \(state): \(message ?? "")\n  log: \(logPath ?? "-")")
                } else if matches {
                    lines.append("reproduced \(version): the model's SHA-256 matches (\(expected))"
                                 + (metricsMatch == false ? "; the metrics file differs" : metricsMatch == true ? ", and so does the metrics file's" : ""))
                } else {
                    lines.append("NOT reproduced: \(version) was \(expected), this training made \(produced ?? "no model")\n"
                                 + "  the trainer is not deterministic for the same inputs (a seed? the time? the thread count?); run: \(runDirectory)")
                }
                return lines.joined(separator: "\n")
            }
        }

        func run() async throws {
            Logs.bootstrap(level: .warning)
            let state = options.stateDirectory
            let store: Store
            do {
                store = try Store(directory: state)
            } catch {
                throw CairnExit.unreadable("cannot open the Cairn state in \(state.path): \(describe(error))")
            }
            let found = try ModelText.find(version, in: store)
            let lineage = found.lineage
            let repository = isLocalPath(options.repo) ? URL(fileURLWithPath: options.repo) : state.appendingPathComponent("mirror.git")
            do {
                let opened = try Repository.open(at: repository)
                guard let commit = ObjectID(hex: lineage.sourceCommit), opened.contains(commit) else {
                    throw CairnExit.invalid("error: refused: the source commit \(lineage.sourceCommit.prefix(12)) of \(found.name) is not in "
                                            + "\(repository.path) (was history rewritten?)")
                }
            } catch let error as GitError {
                throw CairnExit.unreadable("\(repository.path) is not a git repository (\(error.message))")
            }
            let result = try await Self.reproduce(found, state: state, repository: repository, policy: runOptions.policy,
                                                  logCap: try runOptions.logLimitBytes(), quiet: format == .json)
            print(format == .json ? result.jsonText() : result.text)
            if !result.matches { throw CairnExit.invalid() }
        }

        /// Trains `found` again from its lineage, in a scratch ledger under `state`, and compares.
        static func reproduce(_ found: ModelVersion, state: URL, repository: URL, policy: ExecutionPolicy, logCap: Int,
                              quiet: Bool) async throws -> Result {
            let lineage = found.lineage
            let artifacts = try ArtifactStore(root: state.appendingPathComponent("artifacts"))
            let hostFiles = LocalHostFiles(policy: policy, cache: InMemoryFileHashCache())
            var warnings: [String] = []
            try checkInputs(of: found, artifacts: artifacts, hostFiles: hostFiles, warnings: &warnings)

            let scratch = state.appendingPathComponent("reproduce").appendingPathComponent("\(found.model)-\(found.version)-\(Int(Date().timeIntervalSince1970))")
            let ledger = try Store(directory: scratch)
            let executor = try LocalExecutor(stateDirectory: scratch, ledger: ledger, artifacts: artifacts,
                                             source: GitCheckout(repository: repository), policy: policy,
                                             supervisor: [RunOptions.cairnPath, "_supervise"], logCap: logCap,
                                             logger: Logger(label: "cairn.reproduce"))
            var outputs = [found.artifactPath]
            if let metrics = lineage.metricsPath { outputs.append(metrics) }
            let runID = "reproduce-\(found.model)-\(found.version)-\(String(UInt16.random(in: 0...UInt16.max), radix: 16))"
            let job = JobSpec(runID: runID, key: lineage.runKey, object: ObjectRef(.trainingSchedule, lineage.schedule), trigger: "reproduce",
                              reason: "cairn reproduce \(found.name)", sourceCommit: lineage.sourceCommit, command: lineage.command,
                              shell: lineage.shell ?? false,
                              passEnvironment: lineage.environment, params: lineage.params, inputs: lineage.features, outputs: outputs,
                              timeout: lineage.timeout.map { .milliseconds(Int64($0 * 1000)) })
            if !quiet { FileHandle.standardError.write(Data("training \(found.name) again at commit \(lineage.sourceCommit.prefix(10)) (run \(runID))…\n".utf8)) }
            do {
                _ = try await executor.submit(job)
            } catch {
                throw CairnExit.invalid("error: refused: \(error)")
            }
            for await handle in executor.completions where handle.runID == runID { break }
            guard let record = try ledger.run(id: runID) else { throw CairnExit.unreadable("the reproduce run's record is missing") }
            let produced = record.outputs[found.artifactPath]
            let matches = record.state == .succeeded && produced?.digest == found.artifact.digest
            // A reproduction that matched leaves nothing behind; one that did not keeps its
            // directory (log, job file) for a look. Its outputs are in the artifact store either way.
            if matches { try? FileManager.default.removeItem(at: scratch) }
            var metricsMatch: Bool?
            if let path = lineage.metricsPath, let expected = lineage.metricsArtifact, record.state == .succeeded {
                metricsMatch = record.outputs[path]?.digest == expected.digest
            }
            return Result(version: found.name, matches: matches,
                          run: runID, state: record.state.rawValue, expected: found.artifact.digest.description,
                          produced: produced?.digest.description, metricsMatch: metricsMatch, warnings: warnings,
                          runDirectory: scratch.appendingPathComponent("runs").appendingPathComponent(runID).path,
                          message: record.state == .succeeded ? nil : record.message, logPath: record.logPath)
        }

        /// Refuses when an input is not what the version was trained on.
        static func checkInputs(of version: ModelVersion, artifacts: ArtifactStore, hostFiles: LocalHostFiles, warnings: inout [String]) throws {
            for (path, artifact) in version.lineage.features.sorted(by: { $0.key < $1.key }) where !artifacts.contains(artifact) {
                throw CairnExit.invalid("error: refused: the feature artifact \(path) (\(artifact.digest)) of \(version.name) is no longer in the artifact store")
            }
            for (path, recorded) in version.lineage.data.sorted(by: { $0.key < $1.key }) {
                if let refusal = hostFiles.refusal(ofDataPath: path) {
                    throw CairnExit.invalid("error: refused: \(version.name) was trained on \(path), which cannot be read here: \(refusal) "
                                            + "(give the --data-root the daemon runs with)")
                }
                let now = try? hostFiles.contentHash(ofDataPath: path)
                guard now?.description == recorded else {
                    throw CairnExit.invalid("error: refused: \(path) is not what \(version.name) was trained on (recorded \(recorded), now "
                                            + "\(now?.description ?? "missing")); reproducing would train on today's data")
                }
            }
            if let program = version.lineage.program {
                let parts = program.split(separator: " ", maxSplits: 1).map(String.init)
                let name = URL(fileURLWithPath: parts[0]).lastPathComponent
                if let found = try? hostFiles.program(name), parts.count == 2, "\(found.path) \(found.hash)" != program {
                    warnings.append("\(name) now resolves to \(found.path) with another hash than when \(version.name) was trained; the result may differ")
                }
            }
        }
    }
}
