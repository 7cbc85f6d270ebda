import Foundation
import CairnCore
import CairnManifests
import CairnRun

/// How a command target's commands run: as argv (never through a shell) in a checkout of the
/// request's commit at `<state>/serving/<deployment>/work-<commit>`, where the scripts live,
/// through the one process runner (own process group, both streams drained, timeout ending
/// the group).
///
/// The environment is small and made here, not inherited: PATH as runs get it, HOME (the
/// daemon's, since the tools these commands call, kubectl, gcloud, aws, keep their
/// configuration there; no variable of the daemon's passes), LANG=C.UTF-8, and the version:
/// `CAIRN_DEPLOYMENT`, `CAIRN_MODEL_NAME`, `CAIRN_MODEL_VERSION`, `CAIRN_MODEL_PATH` (the
/// artifact in the store, read-only; a directory artifact is restored beside the checkout),
/// `CAIRN_MODEL_SHA256` and `CAIRN_SOURCE_COMMIT`. `${NAME}` for those names is replaced
/// inside the arguments, so `kubectl set image … model=repo/churn:${CAIRN_MODEL_VERSION}`
/// needs no shell.
struct CommandLaunch: Sendable {
    let environment: ServingEnvironment
    /// The daemon's HOME, handed to the commands.
    let home: String

    static let defaultTimeout = Duration.seconds(300)
    /// How much of each stream is kept for the log and the messages.
    static let outputCap = 256 << 10

    init(environment: ServingEnvironment, home: String? = ProcessInfo.processInfo.environment["HOME"]) {
        self.environment = environment
        self.home = home ?? environment.directory.path
    }

    struct Commands {
        var apply: [String]
        var remove: [String]
        var check: [String]
        var timeout: Duration
    }

    static func commands(of request: DeploymentRequest) -> Commands {
        guard case .command(let apply, let remove, let check, let timeout) = request.target else {
            return Commands(apply: [], remove: [], check: [], timeout: defaultTimeout)
        }
        return Commands(apply: apply, remove: remove, check: check, timeout: timeout?.duration ?? defaultTimeout)
    }

    func folder(of deployment: String) -> URL { environment.directory.appendingPathComponent(deployment) }

    // MARK: - Starting

    func start(_ argv: [String], for request: DeploymentRequest, timeout: Duration) throws -> RunningProcess {
        try command(argv, for: request, timeout: timeout).start()
    }

    /// The command for `argv`, ready to run: its checkout made, `${NAME}`s replaced, its
    /// program found (a path in the checkout when it holds a slash, else on the runs' PATH).
    func command(_ argv: [String], for request: DeploymentRequest, timeout: Duration) throws -> Command {
        guard let program = argv.first else { throw ExecutorError("the command is empty") }
        let work = try checkout(request)
        let variables = try self.variables(for: request)
        let arguments = argv.dropFirst().map { Launch.substitute($0, variables) }
        let executable = try LocalExecutor.resolve(Launch.substitute(program, variables), in: work)
        var environment = variables
        environment["PATH"] = LocalExecutor.runPath
        environment["HOME"] = home
        environment["LANG"] = "C.UTF-8"
        return Command(executable, arguments, environment: environment, workingDirectory: work,
                       standardOutput: .capture(limit: Self.outputCap), standardError: .capture(limit: Self.outputCap),
                       timeout: timeout, grace: .seconds(5))
    }

    func variables(for request: DeploymentRequest) throws -> [String: String] {
        let version = request.version
        return [
            "CAIRN_DEPLOYMENT": request.deployment,
            "CAIRN_MODEL_NAME": version.model,
            "CAIRN_MODEL_VERSION": String(version.version),
            "CAIRN_MODEL_PATH": try modelPath(of: request),
            "CAIRN_MODEL_SHA256": version.artifact.digest.hex,
            "CAIRN_SOURCE_COMMIT": request.sourceCommit,
        ]
    }

    /// The model as the commands get it: a file artifact is its blob in the store; a directory
    /// artifact is restored once into `model-<digest>` in the deployment's folder.
    private func modelPath(of request: DeploymentRequest) throws -> String {
        let artifact = request.version.artifact
        guard environment.artifacts.contains(artifact) else {
            throw ExecutorError("the artifact store no longer holds \(request.version)'s model (\(artifact.digest)); it must be trained again")
        }
        guard artifact.kind == .directory else { return environment.artifacts.path(of: artifact.digest).path }
        let restored = folder(of: request.deployment).appendingPathComponent("model-\(artifact.digest.hex.prefix(16))")
        if !FileManager.default.fileExists(atPath: restored.path) {
            try FileManager.default.createDirectory(at: restored.deletingLastPathComponent(), withIntermediateDirectories: true)
            try environment.artifacts.restore(artifact, to: restored)
        }
        return restored.path
    }

    /// A checkout of the request's commit, made once under a temporary name and renamed, so a
    /// crash never leaves a half checkout under the name that is reused. Checkouts of other
    /// commits go: nothing runs in them any more (a deployment runs one command at a time).
    private func checkout(_ request: DeploymentRequest) throws -> URL {
        let folder = folder(of: request.deployment)
        let name = "work-\(request.sourceCommit.prefix(12))"
        let work = folder.appendingPathComponent(name)
        guard !FileManager.default.fileExists(atPath: work.path) else { return work }
        let staging = folder.appendingPathComponent(".\(name)-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try environment.source.checkout(commit: request.sourceCommit, into: staging)
            try FileManager.default.moveItem(at: staging, to: work)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw ExecutorError("could not check out commit \(request.sourceCommit.prefix(12)) into \(work.path): \(LocalExecutor.reason(error))")
        }
        removeEntries(in: folder) { $0 != name && ($0.hasPrefix("work-") || $0.hasPrefix(".work-")) }
        return work
    }

    // MARK: - Logs and messages

    /// Writes what the command printed to `<folder>/<name>.log`, capped by what was kept of
    /// each stream. A log that cannot be written is logged, not fatal.
    func writeLog(_ outcome: ProcessOutcome, named name: String, deployment: String) {
        var text = "$ \(outcome.command)\n"
        for (label, stream) in [("standard output", outcome.standardOutput), ("standard error", outcome.standardError)] where stream.totalBytes > 0 {
            let cut = stream.truncated ? " (the last \(stream.bytes.count) of \(stream.totalBytes) bytes)" : ""
            text += "--- \(label)\(cut)\n\(stream.text)\(stream.text.hasSuffix("\n") ? "" : "\n")"
        }
        text += "--- \(outcome)\n"
        let url = folder(of: deployment).appendingPathComponent("\(name).log")
        do {
            try RunFiles.writeAtomically(Data(text.utf8), to: url, mode: 0o600)
        } catch {
            environment.logger.warning("could not write \(url.path): \(error)", metadata: ["cairn.deployment": "\(deployment)"])
        }
    }

    /// How a command ended, for a status message: `exited with status 3 after 0.2s: <the last lines>`.
    static func describe(_ outcome: ProcessOutcome) -> String {
        let how = outcome.timedOut ? "timed out after \(seconds(outcome.elapsed)) and was \(outcome.termination)" : "\(outcome.termination) after \(seconds(outcome.elapsed))"
        let lines = lastLines(of: outcome)
        return lines.isEmpty ? how + ", printing nothing" : "\(how): \(lines)"
    }

    /// The last few lines it printed, standard error first (where failures usually go).
    static func lastLines(of outcome: ProcessOutcome, count: Int = 5, limit: Int = 800) -> String {
        let stream = outcome.standardError.totalBytes > 0 ? outcome.standardError : outcome.standardOutput
        let lines = stream.text.split(separator: "\n", omittingEmptySubsequences: true).suffix(count)
        let text = lines.joined(separator: " / ")
        return text.count > limit ? "…" + String(text.suffix(limit)) : text
    }

    private static func seconds(_ duration: Duration) -> String {
        String(format: "%.1fs", duration.seconds)
    }

    // MARK: - Records

    func record(of deployment: String) throws -> CommandRecord? {
        try CommandRecord.load(from: folder(of: deployment))
    }

    func save(_ record: CommandRecord, deployment: String) throws {
        try record.save(in: folder(of: deployment))
    }

    /// Deletes the record and what this target made for the deployment (checkouts, restored
    /// models, logs), leaving another target's files; the folder goes when it is empty.
    func forget(_ deployment: String) {
        let folder = folder(of: deployment)
        try? CommandRecord.delete(in: folder)
        removeEntries(in: folder) {
            $0.hasPrefix("work-") || $0.hasPrefix(".work-") || $0.hasPrefix("model-") || ["apply.log", "check.log", "remove.log"].contains($0)
        }
        _ = rmdir(folder.path)
    }

    /// The deployments with a command target's record.
    func recorded() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: environment.directory.path)) ?? []
        return names.sorted().filter { (try? CommandRecord.load(from: folder(of: $0))) != nil }
    }

    private func removeEntries(in folder: URL, where matches: (String) -> Bool) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where matches(name) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}
