import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnRun
import CairnStore
import CairnServe
import Foundation
import Logging
import MonitorController

extension Cairn {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "demo",
            abstract: "Show Cairn at work on the example repository, made in a new directory that stays for you to explore.",
            discussion: """
            Creates the example churn repository and reconciles it: the feature pipeline runs \
            for real (two independent stages at once, then the one that needs them), then the \
            training, which registers version 1 of Model/churn. Then it makes commits as a team \
            would (a README edit, which runs nothing; a featurize.py change, which reruns only \
            that stage and, its output unchanged, trains nothing; version 1 promoted to staging, \
            then to production; a params change, whose version 2 fails its champion–challenger \
            gate; a broken manifest, its fix, a deleted monitor), reconciling after each and \
            waiting for the runs. Between them, `cairn plan` refuses a pull request that would \
            promote the gate-failed version 2, with the Markdown a CI job would post. It shows the \
            registry and its stage history, a version's lineage, a reproduction of version 2, \
            and the status the way anyone reads it: with `cairn runs` and plain \
            `git log cairn/status`, `git show cairn/status:<Kind>/<name>.yaml` and \
            `git log --notes=cairn main`. Needs the git command line for that last part.

            The repository and its state stay where they were made, so you can look around \
            afterwards with git and with `cairn status`; the demo prints the commands.

            Examples:
              cairn demo                           # in a new directory under $TMPDIR
              cairn demo --keep ~/churn-demo       # in a directory of your choosing (new or empty)
            """)

        @Option(help: "Where to create the demo repository and its state (a new or empty directory; default: a new directory under $TMPDIR).")
        var keep: String?

        func run() async throws {
            Logs.bootstrap(level: .error)
            let root = keep.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("cairn-demo-\(UUID().uuidString.prefix(8))")
            if let existing = try? FileManager.default.contentsOfDirectory(atPath: root.path), !existing.isEmpty {
                throw CairnExit.usage("\(root.path) is not empty; give a new directory to --keep")
            }
            let repositoryURL = root.appendingPathComponent("churn")
            _ = try ExampleRepository.create(at: repositoryURL)
            let state = root.appendingPathComponent("state")
            let logger = Logger(label: "cairn")
            let store = try Store(directory: state)
            // Where the feedback loop's labelled customers land: outside the repository, so
            // under a data root the runs may read.
            let feedback = root.appendingPathComponent("feedback")
            try FileManager.default.createDirectory(at: feedback, withIntermediateDirectories: true)
            let execution = try RunOptions.parse(["--data-root", feedback.path]).makeExecution(stateDirectory: state, repository: repositoryURL,
                                                                                                 store: store, logger: logger)
            let monitors = MonitorServices(hub: MetricHub())
            let serving = try RunOptions.parse([]).makeDeployer(stateDirectory: state, repository: repositoryURL, workingTree: repositoryURL,
                                                                processes: true, logger: logger)
            let engine = try Engine(source: .local(repositoryURL), stateDirectory: state,
                                    configuration: ReconcilerConfiguration(), controllers: try Controllers.registry(monitors: monitors),
                                    execution: execution, deployer: serving, store: store, push: false, logger: logger) { _, _ in }
            let author = Signature(name: "Dana Scientist", email: "dana@example.com")
            let script = DemoScript(repository: try Repository.open(at: repositoryURL), root: repositoryURL, author: author)
            // The example serves on 8601; where that is taken here, the demo serves elsewhere.
            var port = 8601
            if Loopback.accepts(port: port) {
                port = try Loopback.freePort()
                try script.edit("deployment.yaml", "port: 8601", "port: \(port)", "Serve on port \(port): 8601 is taken on this machine")
            }
            let traffic = DemoTraffic(port: port)
            var deploymentSeen: String?
            do {

                func step(_ title: String, _ change: () throws -> Void) async throws {
                    try change()
                    let mark = try engine.store.runMark()
                    let stagesBefore = try engine.store.stageHistory(of: "churn").count
                    print("• \(title)")
                    let (outcome, _) = try await engine.reconcileUntilSettled(timeout: .seconds(600))
                    let runs = try engine.store.runs(since: mark)
                    var stages: [String] = []
                    for manifest in await engine.manifestSet?.ordered ?? [] {
                        if case .featurePipeline(let spec) = manifest.spec { stages += spec.stages.map(\.name) }
                    }
                    for line in DemoRuns.describe(Array(runs), stages: stages) { print("    \(line)") }
                    for version in try runs.compactMap({ try engine.store.version(registeredBy: $0.id) }) {
                        print("    registered \(version.name): \(ModelText.metrics(version.metrics)); gate \(version.gate.summary)")
                    }
                    let stageChanges = try engine.store.stageHistory(of: "churn")
                    for change in stageChanges.prefix(stageChanges.count - stagesBefore).reversed() {
                        print("    stage change accepted: churn \(change.summary) (commit \(change.sourceCommit.prefix(7)) by \(change.author))")
                    }
                    if let model = try engine.store.object(ObjectRef(.model, "churn")), model.isStalled {
                        print("    Model/churn refused: \(model.reason): \(model.primaryMessage)")
                    }
                    if let deployment = try engine.store.object(ObjectRef(.modelDeployment, "churn-prod")),
                       deployment.primaryMessage != deploymentSeen {
                        deploymentSeen = deployment.primaryMessage
                        print("    ModelDeployment/churn-prod: \(deployment.reason): \(deployment.primaryMessage)")
                    }
                    var what = outcome.ran ? "reconciled \(outcome.commit.short): \(outcome.objects) objects, \(outcome.changed.count) status change(s)"
                        : "\(outcome.commit.short) is already reconciled: nothing to do"
                    if !outcome.stalled.isEmpty { what += "; stalled: " + outcome.stalled.map(\.description).joined(separator: ", ") }
                    if !outcome.waiting.isEmpty { what += "; waiting: " + outcome.waiting.map(\.description).joined(separator: ", ") }
                    if outcome.notImplemented > 0 { what += "; \(outcome.notImplemented) await work Cairn cannot do yet (NotImplemented)" }
                    print("    \(what)")
                }
                print("Demo repository: \(repositoryURL.path)\n")
                try await step("initial commit: the example churn project (the pipeline runs, then the first training)") {}
                try await step("edit README.md only: nothing the pipeline or the training reads, so nothing runs") {
                    try script.edit("README.md", "# A Cairn repository", "# Churn: a Cairn repository", "README: name the project")
                }
                try await step("change pipelines/featurize.py: only featurize reruns; its output is byte for byte the same, so no retraining") {
                    try script.edit("pipelines/featurize.py", "print(f\"wrote {len(rows)} feature rows to {target}\")",
                                    "print(f\"wrote {len(rows)} feature rows ({len(columns)} features) to {target}\")", "Say how many features featurize wrote")
                }
                try await step("revert that change: featurize's first run is reused, nothing runs twice") {
                    try script.edit("pipelines/featurize.py", "print(f\"wrote {len(rows)} feature rows ({len(columns)} features) to {target}\")",
                                    "print(f\"wrote {len(rows)} feature rows to {target}\")", "Revert: keep featurize's message as it was")
                }
                try await step("promote version 1 to staging (model.yaml): it exists and passed its gate, so the policy accepts it") {
                    try script.edit("model.yaml", "assignments: {}", "assignments: {staging: 1}", "Promote churn@1 to staging")
                }
                try await step("promote version 1 to production: it held staging first, as strictOrder asks; ModelDeployment/churn-prod serves it") {
                    try script.edit("model.yaml", "assignments: {staging: 1}", "assignments: {staging: 1, production: 1}", "Promote churn@1 to production")
                }
                try await callModel(traffic)
                try await step("a challenger (params C: 1.0 → 0.5): version 2 must beat production (version 1) by 0.005 in AUC, and does not") {
                    try script.edit("training.yaml", "params: {C: 1.0, max_iter: 200}", "params: {C: 0.5, max_iter: 200}", "Regularise churn training harder")
                }
                print("• a pull request (branch promote-churn-2) promotes version 2 to staging; CI runs `cairn plan` on it before anyone merges:")
                try script.branch("promote-churn-2", from: "main", editing: "model.yaml", "assignments: {staging: 1, production: 1}",
                                  "assignments: {staging: 2, production: 1}", "Promote churn@2 to staging")
                print("\n$ cairn plan --base main --head promote-churn-2 --format markdown     # exit code 1: not acceptable")
                let repository = try Repository.open(at: repositoryURL)
                let registry = try StatusBranchRegistry.find(in: repository, statusBranch: "cairn/status").map(PlanRegistry.statusBranch)
                    ?? .none("the demo's status branch is missing")
                let plan = try Planner.plan(repository: repository, base: "main", head: "promote-churn-2", registry: registry)
                print(PlanText.markdown(plan))
                try await step("more data (ingest 3000 rows, not 2000): version 3 beats production (version 1) and passes its gate") {
                    try script.edit("features.yaml", "--rows, \"2000\"", "--rows, \"3000\"", "Ingest 3000 customers")
                }
                try await step("train.py writes models in format 2: version 4 scores as version 3 did and passes its gate (production still holds 1), but serve.py reads format 1 only") {
                    try script.edit("train.py", "MODEL_FORMAT = 1", "MODEL_FORMAT = 2", "Write models in format 2")
                }
                try await step("promote version 3 to staging") {
                    try script.edit("model.yaml", "assignments: {staging: 1, production: 1}", "assignments: {staging: 3, production: 1}", "Promote churn@3 to staging")
                }
                let (_, tally) = try await traffic.during {
                    try await step("promote version 3 to production: blue/green, while a client calls the model through the proxy on 127.0.0.1:\(port)") {
                        try script.edit("model.yaml", "assignments: {staging: 3, production: 1}", "assignments: {staging: 3, production: 3}",
                                        "Promote churn@3 to production")
                    }
                }
                print("    \(tally.summary)")
                try await callModel(traffic)
                try await step("promote version 4 to staging") {
                    try script.edit("model.yaml", "assignments: {staging: 3, production: 3}", "assignments: {staging: 4, production: 3}", "Promote churn@4 to staging")
                }
                let (_, brokenTally) = try await traffic.during {
                    try await step("promote version 4 to production: its server cannot read the model, so it never becomes healthy; version 3 goes on serving, and Cairn proposes the rollback in git") {
                        try script.edit("model.yaml", "assignments: {staging: 4, production: 3}", "assignments: {staging: 4, production: 4}",
                                        "Promote churn@4 to production")
                    }
                }
                print("    \(brokenTally.summary)")
                try await callModel(traffic)
                let git = GitCommandLine(directory: repositoryURL)
                for arguments in [["branch", "--list", "cairn/proposals/*"],
                                  ["log", "-1", "--format=%h %an: %s%n%n%b", "cairn/proposals/churn-rollback-1"],
                                  ["diff", "main", "cairn/proposals/churn-rollback-1"]] {
                    print("\n$ git \(arguments.map { $0.contains(" ") || $0.contains("*") ? "'\($0)'" : $0 }.joined(separator: " "))")
                    print(try git.run(arguments), terminator: "")
                }
                print("A person (or a CI job) merges that branch as a pull request; then git says what serves again.")
                try await step("squash-merge the rollback proposal (as a person would, after review): git and what serves agree again") {
                    try script.take("model.yaml", from: "cairn/proposals/churn-rollback-1", "Roll churn production back to churn@3 (squash-merged cairn/proposals/churn-rollback-1)")
                }
                try await step("break deployment.yaml (stage: prod, which Model/churn does not have): the deployment stalls and goes on serving") {
                    try script.edit("deployment.yaml", "stage: production", "stage: prod", "Serve the prod stage")
                }
                try await step("fix it") {
                    try script.edit("deployment.yaml", "stage: prod", "stage: production", "Fix the stage name")
                }
                try await DemoLoop(engine: engine, script: script, git: git, traffic: traffic, hub: monitors.hub, feedback: feedback,
                                   step: step).run()
                try await step("delete monitor.yaml") {
                    try script.delete("monitor.yaml", "Drop the quality monitor for now")
                }
                try await step("an unchanged branch: one ref read, nothing written") {}

                print("\n$ cairn runs --state succeeded      # skipped stages are listed too, without --state")
                print(RunText.list(try engine.store.recentRuns(of: nil, in: [.succeeded], limit: 20)))
                print("\n$ cairn models churn")
                let versions = try engine.store.versions(of: "churn")
                print(ModelText.versionTable(versions, stages: try ModelText.stages(in: engine.store)["churn"] ?? [:]))
                print("\n$ cairn models churn --history")
                try StageText.history(of: "churn", in: engine.store, limit: 20, format: .text)
                if let second = try engine.store.version("churn", 2) {
                    print("\n$ cairn lineage churn@2")
                    print(try LineageTree(store: engine.store).tree(of: second).rendered())
                    print("\n$ cairn reproduce churn@2")
                    let result = try await Reproduce.reproduce(second, state: state, repository: repositoryURL, policy: RunOptions.parse([]).policy,
                                                               logCap: LocalExecutor.defaultLogCap, quiet: true)
                    print(result.text)
                }
                for arguments in [["log", "--format=%h %s", "cairn/status"],
                                  ["log", "--format=%h %s%n    %(trailers:key=Cairn-Run,key=Cairn-Model-Version,separator=%x2C )", "-20", "cairn/status", "--",
                                   "TrainingSchedule/churn-weekly.yaml"],
                                  ["log", "--format=%h %s%n    %(trailers:key=Cairn-Run,separator=%x2C )", "-3", "cairn/status", "--", "FeaturePipeline/churn-features.yaml"],
                                  ["log", "--format=%h %ad %s%n    %(trailers:key=Cairn-Stage,separator=%x2C )", "--date=iso-strict", "cairn/status", "--",
                                   "Model/churn.yaml"],
                                  ["log", "--format=%h %s%n    %(trailers:key=Cairn-Proposal,separator=%x2C )", "-12", "cairn/status", "--",
                                   "ModelDeployment/churn-prod.yaml"],
                                  ["show", "cairn/status:ModelDeployment/churn-prod.yaml"],
                                  ["log", "--notes=cairn", "--format=%h %s%n%N", "-2", "main"]] {
                    print("\n$ git \(arguments.map { $0.contains(" ") || $0.contains("%") ? "'\($0)'" : $0 }.joined(separator: " "))")
                    print(try git.run(arguments), terminator: "")
                }
                print("\n$ git show cairn/status:ModelVersion/churn/2.yaml | sed -n '/^gate:/,/^lineage:/p'")
                let third = try git.run(["show", "cairn/status:ModelVersion/churn/2.yaml"])
                let lines = third.split(separator: "\n", omittingEmptySubsequences: false)
                if let gate = lines.firstIndex(where: { $0.hasPrefix("gate:") }), let lineage = lines.firstIndex(where: { $0.hasPrefix("lineage:") }) {
                    print(lines[gate...lineage].joined(separator: "\n"))
                }
                print("""

                The demo repository stays in \(repositoryURL.path). Look around (`cairn` is \(RunOptions.cairnPath);
                export PATH="\(URL(fileURLWithPath: RunOptions.cairnPath).deletingLastPathComponent().path):$PATH" to type it as below):

                  cd \(repositoryURL.path)
                  git log --oneline cairn/status                    # every status change
                  git show cairn/status:Model/churn.yaml            # one object's status now
                  git log --notes=cairn --format='%h %s%n%N' main   # what Cairn did with each commit
                  cairn status --state-dir \(state.path)   # the same from Cairn's store
                  cairn runs --state-dir \(state.path)     # every run and skip, and why
                  cairn models churn --state-dir \(state.path)        # the registry: versions, metrics, gates
                  cairn models churn --history --state-dir \(state.path)   # every stage change, by whose commit
                  cairn plan --base main --head promote-churn-2      # a pull request's verdict (add --format markdown)
                  cairn lineage churn@2 --state-dir \(state.path)     # what produced a version, back to the data
                  git show cairn/status:ModelVersion/churn/2.yaml    # the same registry, in git
                  cairn logs RUN --state-dir \(state.path) # what a run printed

                Next: `cairn init` a repository of your own (or run it in one you have), then `cairn validate` and `cairn reconcile --once` in it.
                """)
            } catch {
                // Servers the demo started do not outlive it, whatever went wrong.
                await serving.shutdown()
                throw error
            }
            await serving.shutdown()
            print("(The demo's model servers and proxy stopped with it; `cairn run` keeps a deployment serving.)")
        }
    }
}

/// One prediction through the proxy, shown as a person would type it.
private func callModel(_ traffic: DemoTraffic) async throws {
    print("\n$ curl -s -X POST 127.0.0.1:\(traffic.port)/predict -d '{\"features\": [0.5, 0.2, 0.8, 0.1]}'")
    switch await traffic.predict() {
    case .success(let text): print(text + "\n")
    case .failure(let error): print("(no answer: \(error))\n")
    }
}

/// Commits to the demo repository as a person would, keeping the working tree and index in step.
struct DemoScript {
    let repository: Repository
    let root: URL
    let author: Signature

    func edit(_ path: String, _ old: String, _ new: String, _ message: String) throws {
        let url = root.appendingPathComponent(path)
        let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: old, with: new)
        try commit([path: Data(text.utf8)], message)
    }

    /// Takes `path`'s content from another branch onto main, as a squash merge of a one-file
    /// pull request would.
    func take(_ path: String, from branch: String, _ message: String) throws {
        guard let data = try repository.file(at: path, in: try repository.resolveCommit(branch)) else {
            throw CairnExit.unreadable("the demo expected \(path) on \(branch)")
        }
        try commit([path: data], message)
    }

    func delete(_ path: String, _ message: String) throws {
        try commit([path: nil], message)
    }

    /// A branch off `base` with one edit, as a pull request would have: main and the working
    /// tree stay as they are.
    func branch(_ name: String, from base: String, editing path: String, _ old: String, _ new: String, _ message: String) throws {
        let parent = try repository.resolveCommit(base)
        let text = String(decoding: try repository.file(at: path, in: parent) ?? Data(), as: UTF8.self).replacingOccurrences(of: old, with: new)
        var signature = author
        signature.time = Date()
        let commit = try repository.createCommit(parent: parent, changes: [path: Data(text.utf8)], message: message + "\n", author: signature)
        try repository.updateReference("refs/heads/\(name)", to: commit, expected: nil, logMessage: "demo: a pull request's branch")
    }

    private func commit(_ changes: [String: Data?], _ message: String) throws {
        for (path, data) in changes {
            let url = root.appendingPathComponent(path)
            if let data { try data.write(to: url) } else { try FileManager.default.removeItem(at: url) }
        }
        let parent = try repository.referenceTarget("refs/heads/main")
        var signature = author
        signature.time = Date()
        let commit = try repository.createCommit(parent: parent, changes: changes, message: message + "\n", author: signature)
        try repository.updateReference("refs/heads/main", to: commit, expected: parent, logMessage: "demo")
        try repository.resetIndex(to: commit)
    }
}

/// The git command line, for showing what a person would type.
struct GitCommandLine {
    let directory: URL

    /// What git printed: its standard output, then its standard error.
    func run(_ arguments: [String]) throws -> String {
        let git = Command("git", ["--no-pager"] + arguments, workingDirectory: directory)
        do {
            let outcome = try git.runSynchronously()
            return outcome.standardOutput.text + outcome.standardError.text
        } catch {
            throw CairnExit.unreadable("the demo needs the git command line: \(error)")
        }
    }
}

/// What the demo says about the runs one step made.
enum DemoRuns {
    static func describe(_ runs: [RunRecord], stages: [String]) -> [String] {
        let ran = runs.filter { $0.state != .skipped }
        let reused = runs.filter { $0.state == .skipped }
        var lines: [String] = []
        for run in ran {
            var seconds: String?
            if let start = run.startedAt, let end = run.finishedAt { seconds = String(format: "%.2f s", end.timeIntervalSince(start)) }
            lines.append("ran \(run.stage ?? run.object.description): \(run.state.rawValue)\(seconds.map { " in " + $0 } ?? "") (\(run.reason ?? "no reason recorded"))")
        }
        // Two stages whose runs overlapped in time ran at once.
        for (index, first) in ran.enumerated() {
            for second in ran.dropFirst(index + 1) {
                if let a = first.startedAt, let b = first.finishedAt, let c = second.startedAt, let d = second.finishedAt, a < d, c < b {
                    lines.append("\(first.stage ?? "") and \(second.stage ?? "") ran at the same time (they do not depend on each other)")
                }
            }
        }
        if !reused.isEmpty {
            lines.append("not run, outputs of earlier runs reused: " + reused.compactMap(\.stage).joined(separator: ", "))
        }
        let untouched = stages.filter { stage in !runs.contains { $0.stage == stage } }
        if !untouched.isEmpty, !ran.isEmpty || !reused.isEmpty {
            lines.append("not run (run key unchanged): " + untouched.joined(separator: ", "))
        } else if runs.isEmpty {
            lines.append("no stage ran" + (stages.isEmpty ? "" : ": no stage's run key changed"))
        }
        return lines
    }
}
