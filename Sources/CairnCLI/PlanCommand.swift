import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnStore
import Foundation

extension Cairn {
    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "What merging a change would do: invalid manifests, changed objects, promotions and their verdicts, retrainings.",
            discussion: """
            For CI on a pull request. Reads the manifests at --head (every one is validated) and \
            at --base, and lists: each object created, changed (which spec fields), moved or \
            deleted; each stage promotion (a Model's assignments that change) with the promotion \
            policy's verdict, the promoted version's metrics next to the version it replaces, and \
            both gate verdicts; each pipeline stage and training whose run key changes, and why \
            (which file, which param).

            Promotions are judged against the registry as the daemon has it: from --state-dir \
            when given, otherwise from the status branch (--status-branch, local or as \
            origin/<name>, whichever is newer), which a plain clone has after `git fetch origin cairn/status`. When \
            neither can be read, promotions are reported unchecked, never guessed.

            When --base is not an ancestor of --head (the target branch moved on), head is \
            compared with their merge base, as a pull request is, and the plan says so.

            --format markdown fits a pull-request comment; Docs/operations.md has GitHub Actions \
            and GitLab CI jobs that post it.

            Exit codes: 0 acceptable (valid, and every promotion allowed); 1 not acceptable (an \
            invalid manifest, a refused or unchecked promotion); 2 usage error (such as a \
            revision that is not there); 3 the repository or the registry could not be read.

            Examples:
              cairn plan --base origin/main --head HEAD
              cairn plan --base origin/main --head HEAD --format markdown > plan.md
              cairn plan --base main --head promote-churn --state-dir /var/lib/cairn/churn
            """)

        @Option(help: "The revision the change is compared with (the pull request's target, such as origin/main).")
        var base: String

        @Option(help: "The revision with the change (the pull request's head).")
        var head: String = "HEAD"

        @Option(help: "The git repository (default: the one that holds the current directory).")
        var repo: String?

        @Option(name: .customLong("path"), help: "The directory inside the repository that holds the manifests, as the daemon's --path (default: all of it).")
        var manifestPath: String = ""

        @Option(help: "A daemon's state directory: judge promotions from its store (default: from the status branch).")
        var stateDir: String?

        @Option(help: "The status branch whose registry files judge promotions when no --state-dir is given.")
        var statusBranch: String = "cairn/status"

        @Option(help: "text, markdown or json.")
        var format: PlanFormat = .text

        func run() async throws {
            guard let path = repo ?? enclosingRepository() else {
                throw CairnExit.usage("the current directory is not inside a git repository; give --repo")
            }
            let repository: Repository
            do {
                repository = try Repository.open(at: URL(fileURLWithPath: path))
            } catch {
                throw CairnExit.unreadable("cannot open the repository \(path): \(error)")
            }
            let registry = try registry(repository)
            let plan: CairnEngine.Plan
            do {
                plan = try Planner.plan(repository: repository, base: base, head: head, path: manifestPath, registry: registry)
            } catch let error as PlanError {
                throw CairnExit.usage(error.description)
            } catch let error as RegistryReadError {
                throw CairnExit.unreadable(error.description)
            } catch {
                throw CairnExit.unreadable("\(error)")
            }
            switch format {
            case .json: print(plan.jsonText())
            case .markdown: print(PlanText.markdown(plan), terminator: "")
            case .text: print(PlanText.text(plan), terminator: "")
            }
            if !plan.acceptable { throw CairnExit.invalid() }
        }

        private func registry(_ repository: Repository) throws -> PlanRegistry {
            if let stateDir {
                let directory = URL(fileURLWithPath: stateDir)
                guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("cairn.sqlite").path) else {
                    throw CairnExit.unreadable("no Cairn state in \(directory.path) (give the daemon's --state-dir, or leave it out to read the status branch)")
                }
                do {
                    return .store(try Store(readingFrom: directory), "the state directory \(directory.path)")
                } catch {
                    throw CairnExit.unreadable("cannot read the Cairn state in \(directory.path): \(describe(error))")
                }
            }
            if let branch = try StatusBranchRegistry.find(in: repository, statusBranch: statusBranch) { return .statusBranch(branch) }
            return .none("no --state-dir was given and this repository has neither \(statusBranch) nor origin/\(statusBranch); "
                         + "fetch it (git fetch origin \(statusBranch):refs/remotes/origin/\(statusBranch)) or give --state-dir")
        }
    }
}

enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, markdown, json
}
