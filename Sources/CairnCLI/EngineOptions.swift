import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnServe
import CairnStore
import Foundation
import MonitorController
import Logging

/// The options every command that reconciles or reads state shares.
struct EngineOptions: ParsableArguments {
    @Option(name: .customLong("repo"), help: "The repository to track: a local path (bare or not) or a URL. Default: the repository that holds the current directory.")
    var repoOption: String?

    /// `--repo`, or the repository that holds the current directory.
    var repo: String { repoOption ?? enclosingRepository() ?? "." }

    @Option(help: "The branch whose tip is reconciled.")
    var branch: String = "main"

    @Option(help: "The directory of manifests inside the repository (default: all of it).")
    var path: String = ""

    @Option(help: "Where the metadata store (and a remote's mirror) live. Default: $XDG_DATA_HOME/cairn/<repo> or ~/.local/share/cairn/<repo>.")
    var stateDir: String?

    @Option(help: "The branch Cairn writes status to; never the tracked branch.")
    var statusBranch: String = "cairn/status"

    @Flag(help: "Push the status branch and refs/notes/cairn to the remote after each pass (for a URL).")
    var push = false

    @Flag(help: "Also write the registry as annotated git tags in GTO's grammar (churn@v3.0.0, churn#production#4), pushed with the status branch under --push, for gto show and CI that reacts to tags.")
    var registryTags = false

    @Option(help: "How long a remote may take to answer a fetch, such as 60s.")
    var fetchTimeout: String = "60s"

    @OptionGroup var trustOptions: TrustOptions

    @Option(help: "Directory levels a commit's tree may have before Cairn stops reading deeper (a guard against hostile pushes).")
    var maxTreeDepth: Int = TreeLimits.standard.maxDepth

    @Option(help: "Tree entries Cairn reads from one commit at most (a guard against 'git bomb' trees); narrow with --path for huge repositories.")
    var maxTreeEntries: Int = TreeLimits.standard.maxEntries

    func validate() throws {
        if repoOption == nil, enclosingRepository() == nil {
            throw ValidationError("the current directory is not inside a git repository; give --repo PATH_OR_URL")
        }
        _ = try parseTimeout(fetchTimeout)
        if statusBranch == branch { throw ValidationError("--status-branch must differ from --branch: Cairn never commits to the tracked branch") }
        if maxTreeDepth < 1 || maxTreeEntries < 1 { throw ValidationError("--max-tree-depth and --max-tree-entries must be at least 1") }
        if push, isLocalPath(repo) { throw ValidationError("--push needs --repo to be a URL; for a local repository the status branch is written in place") }
    }

    var stateDirectory: URL {
        if let stateDir { return URL(fileURLWithPath: stateDir) }
        return Self.defaultStateDirectory(for: repo)
    }

    static func defaultStateDirectory(for repo: String) -> URL {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_DATA_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSTemporaryDirectory()).appendingPathComponent(".local/share")
        let identity = isLocalPath(repo) ? URL(fileURLWithPath: repo).standardizedFileURL.path : redactedURL(repo)
        let readable = identity.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).suffix(2).joined(separator: "-")
        let hash = Repository.blobID(of: Data(identity.utf8)).hex.prefix(8)
        return base.appendingPathComponent("cairn").appendingPathComponent("\(readable)-\(hash)")
    }

    var configuration: ReconcilerConfiguration {
        var configuration = ReconcilerConfiguration(branch: branch, path: path, statusBranch: statusBranch)
        configuration.treeLimits = TreeLimits(maxDepth: maxTreeDepth, maxEntries: maxTreeEntries)
        configuration.registryTags = registryTags
        return configuration
    }

    /// The engine; with `runs`, one that may start runs (the local executor, under those
    /// options) and deploy (with process targets only when `serveProcesses`: a process that
    /// stays); with `signer`, one that signs its proposal commits.
    func makeEngine(logger: Logger, runs: RunOptions? = nil, serveProcesses: Bool = false, signer: SSHCommitSigner? = nil,
                    metrics: EngineMetrics = EngineMetrics(), monitors: MonitorServices? = nil) throws -> Engine {
        let deadline = try parseTimeout(fetchTimeout)
        let source: RepositorySource = isLocalPath(repo) ? .local(URL(fileURLWithPath: repo)) : .remote(repo)
        var store: Store?
        var execution: Execution?
        var deployer: ServingDeployer?
        if let runs {
            // The repository first: a path that is no repository leaves no state directory behind.
            if isLocalPath(repo) {
                do {
                    _ = try Repository.open(at: URL(fileURLWithPath: repo))
                } catch let error as GitError where error.code == .notFound {
                    throw CairnExit.unreadable("\(redactedURL(repo)) is not a git repository (\(error.message))")
                }
            }
            let opened = try Store(directory: stateDirectory)
            store = opened
            let repository = isLocalPath(repo) ? URL(fileURLWithPath: repo) : stateDirectory.appendingPathComponent("mirror.git")
            execution = try runs.makeExecution(stateDirectory: stateDirectory, repository: repository, store: opened, logger: logger)
            deployer = try runs.makeDeployer(stateDirectory: stateDirectory, repository: repository,
                                             workingTree: isLocalPath(repo) ? URL(fileURLWithPath: repo) : nil,
                                             processes: serveProcesses, logger: logger)
        }
        do {
            return try Engine(source: source, stateDirectory: stateDirectory, configuration: configuration,
                              controllers: try Controllers.registry(monitors: monitors), execution: execution, deployer: deployer, store: store,
                              trust: trustOptions.trust, signer: signer, push: push,
                              logger: logger, metrics: metrics) { url, mirror in
                try await RemoteFetcher.fetch(url: url, into: mirror, timeout: deadline)
            }
        } catch let error as GitError where error.code == .notFound {
            throw CairnExit.unreadable("\(redactedURL(repo)) is not a git repository (\(error.message))")
        }
    }
}

/// The top of the git repository that holds the current directory (its working tree, or a
/// bare repository itself), as git finds it: the nearest directory upwards with a `.git`.
func enclosingRepository(from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> String? {
    var directory = start.standardizedFileURL
    while true {
        let dotGit = directory.appendingPathComponent(".git").path
        if FileManager.default.fileExists(atPath: dotGit) { return directory.path }
        // A bare repository: HEAD, objects/ and refs/ side by side.
        if ["HEAD", "objects", "refs"].allSatisfy({ FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }) {
            return directory.path
        }
        let parent = directory.deletingLastPathComponent()
        if parent.path == directory.path { return nil }
        directory = parent
    }
}

/// Logs go to standard error, one line each, with the object and commit they concern.
enum Logs {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
