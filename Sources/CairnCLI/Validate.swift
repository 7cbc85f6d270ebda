import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnRun
import Foundation

extension Cairn {
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Check manifests: fields, types, names, paths, references between objects and cycles.",
            discussion: """
            Without --repo, reads every *.yaml and *.yml file under PATH (default: the current \
            directory) on disk. With --repo, reads them as they are in a commit of a git \
            repository, through git's object database: no checkout, no working tree. --repo \
            takes a local repository (bare or not) or a URL (file://, git://, https://, ssh), \
            which is fetched into a temporary mirror first; credentials come from CAIRN_GIT_* \
            variables, never from the URL.

            Directories starting with '.' are skipped and symlinks are never followed.

            Output is one line per finding, compiler style (file:line:column: error: message), \
            with a hint on how to fix it; --format json prints the same for scripts.

            Exit codes: 0 valid (warnings allowed); 1 invalid; 2 usage error; 3 the repository \
            or a file could not be read.

            Examples:
              # inside a repository, such as one made by `cairn init churn && cd churn`
              cairn validate
              cairn validate --repo . --rev HEAD --format json
              cairn validate --repo https://git.example.com/ml/churn.git --rev main   # your own URL
            """)

        @Argument(help: "A directory of manifests on disk (ignored with --repo).")
        var path: String?

        @Option(help: "A git repository: a local path or a URL. Reads the manifests from a commit instead of from disk.")
        var repo: String?

        @Option(help: "The branch, tag or commit to read with --repo.")
        var rev: String = "HEAD"

        @Option(name: .customLong("path"), help: "With --repo, the directory inside the repository that holds the manifests (default: all of it).")
        var manifestPath: String = ""

        @Option(help: "How long a remote may take to answer when fetching --repo, such as 30s.")
        var fetchTimeout: String = "60s"

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        @OptionGroup var trustOptions: TrustOptions

        @Option(help: "With --verify-commits all: also check every commit after this one (such as the base of a pull request).")
        var since: String?

        @Option(help: ArgumentHelp("The daemon's --data-root: refuse absolute paths in stages (deps and command arguments) outside every such directory; repeatable.",
                                   valueName: "dir"))
        var dataRoot: [String] = []

        func validate() throws {
            if trustOptions.verifyCommits != .off, repo == nil {
                throw ValidationError("--verify-commits checks commits; give --repo (and --rev)")
            }
            if repo != nil, path != nil {
                throw ValidationError("give either a directory PATH or --repo, not both (inside a repository use --path DIR)")
            }
            if repo == nil, manifestPath != "" {
                throw ValidationError("--path names a directory inside --repo; without --repo, give the directory as an argument")
            }
            _ = try parseTimeout(fetchTimeout)
        }

        func run() async throws {
            let set: ManifestSet
            do {
                if let repo {
                    set = try await withRepository(repo, timeout: try parseTimeout(fetchTimeout)) { repository in
                        let commit = try repository.resolveCommit(rev)
                        if let problem = try await untrusted(commit, in: repository) {
                            throw CairnExit.invalid("error: \(problem)")
                        }
                        return try ManifestLoader.load(from: repository, commit: commit, path: manifestPath)
                    }
                } else {
                    let directory = path ?? "."
                    set = try ManifestLoader.load(directory: URL(fileURLWithPath: directory),
                                                  displayPrefix: directory == "." ? "" : directory.trimmingTrailingSlashes)
                }
            } catch let error as CairnExit {
                throw error
            } catch {
                throw CairnExit.unreadable(describe(error))
            }
            let report = ValidationReport(set, extra: dataRoot.isEmpty ? [] : Self.dataPathFindings(in: set, roots: dataRoot))
            print(format == .json ? report.jsonText() : report.text, terminator: format == .json ? "\n" : "")
            if !report.valid { throw CairnExit.invalid() }
        }
    }
}

extension Cairn.Validate {
    /// Each absolute path a stage names (in deps or as a command argument) that the daemon
    /// with these data roots would refuse, at its place in the manifest.
    static func dataPathFindings(in set: ManifestSet, roots: [String]) -> [Diagnostic] {
        let files = LocalHostFiles(policy: ExecutionPolicy(dataRoots: roots.map { URL(fileURLWithPath: $0).standardizedFileURL.path }),
                                   cache: InMemoryFileHashCache())
        var findings: [Diagnostic] = []
        for manifest in set.ordered {
            guard case .featurePipeline(let spec) = manifest.spec else { continue }
            for (index, stage) in spec.stages.enumerated() {
                var named: [(String, String)] = []
                for (position, dependency) in stage.deps.enumerated() {
                    if case .external(let path) = dependency { named.append((path, "spec.stages[\(index)].deps[\(position)]")) }
                }
                named += StageGraph.pathArguments(of: stage.command).filter { $0.hasPrefix("/") }.map { ($0, "spec.stages[\(index)].command") }
                for (path, field) in named {
                    guard let refusal = files.refusal(ofDataPath: path) else { continue }
                    // Command arguments have no position of their own: the stage's is given.
                    let place = field.hasSuffix(".command") ? "spec.stages[\(index)]" : field
                    findings.append(Diagnostic(at: manifest.location(of: place), field: field, object: manifest.ref.description,
                                               "stage \(stage.name): \(refusal)",
                                               hint: "move the data under a --data-root, or add its directory with --data-root"))
                }
            }
        }
        return findings
    }

    /// Why `commit` would not be reconciled under --verify-commits. validate has no last
    /// trusted commit to count from, so it judges `commit` itself, as the daemon's first pass
    /// does; `all` with `--since REV` also checks every commit after REV.
    func untrusted(_ commit: ObjectID, in repository: Repository) async throws -> String? {
        let trust = trustOptions.trust
        guard trust.mode != .off else { return nil }
        let verifier = CommitVerifier(trust: trust)
        var commits = [commit]
        if trust.mode == .all, let since {
            commits = try repository.commits(from: commit, hiding: try repository.resolveCommit(since), limit: CommitTrust.maximumCommits + 1)
            if commits.count > CommitTrust.maximumCommits {
                return "more than \(CommitTrust.maximumCommits) commits after \(since) would need checking"
            }
        }
        for candidate in commits.reversed() {
            if let problem = try await verifier.problem(with: candidate, in: repository) { return problem }
        }
        return nil
    }
}

/// What `cairn validate` prints.
struct ValidationReport: Encodable {
    var valid: Bool
    var files: Int
    var objects: [String]
    var errors: Int
    var warnings: Int
    /// YAML documents that are not Cairn manifests (no apiVersion: cairn/...), skipped.
    var skipped: Int
    var diagnostics: [Diagnostic]

    init(_ set: ManifestSet, extra: [Diagnostic] = []) {
        valid = set.isValid && !extra.contains { $0.severity == .error }
        files = set.fileCount
        objects = set.ordered.map(\.ref.description)
        diagnostics = set.diagnostics + extra
        errors = diagnostics.filter { $0.severity == .error }.count
        warnings = diagnostics.count - errors
        skipped = set.skippedDocuments
    }

    var text: String {
        var lines = diagnostics.map(\.description)
        let counts = "\(files) file\(files == 1 ? "" : "s"), \(objects.count) valid object\(objects.count == 1 ? "" : "s")"
            + (skipped > 0 ? ", \(skipped) YAML document\(skipped == 1 ? "" : "s") skipped as not Cairn manifests" : "")
        if valid {
            lines.append("ok: \(counts)\(warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : "")")
        } else {
            lines.append("invalid: \(errors) error\(errors == 1 ? "" : "s")\(warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : "") (\(counts))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    var trimmingTrailingSlashes: String {
        var text = self
        while text.count > 1, text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
