import ArgumentParser
import CairnEngine
import CairnGit
import CairnStore
import Foundation

/// Issue 12's first figure: `cairn plan` over a change of 1,000 manifests in a repository of
/// 10,000, as a command and in process, with the commands a user would otherwise run beside it.
struct PlanBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Time cairn plan over a change touching a tenth of a generated repository's manifests.",
        discussion: """
        Generates the default benchmark's repository of --manifests manifests (with the code \
        their commands name) as branch main of a bare repository, and a commit on branch change \
        that touches a tenth of them: trainings' params (their run keys change) and timeouts, \
        pipelines, deployments, monitors, Models (20 promotions that a state directory's \
        registry judges: 16 accepted, 4 refused, one per rule and two gate failures, so the \
        plan is not acceptable and exits 1), and whole groups of five created and deleted.

        Then times, --repeats times each after one warm-up, interleaved:
          process     cairn plan --base main --head change --state-dir D --format json (target < 300 ms)
          in process  Planner.plan, a freshly opened repository each time, the store open (target < 300 ms)
          validate    cairn validate --repo R --rev change --format json (reference: every manifest at head)
          git diff    git diff --stat main change (reference)
          start-up    cairn --version
        Every answer is checked (counts of objects created, changed and deleted, promotions by \
        decision and refusals by rule, changed run keys, the exit status), so no figure is that \
        of a call that failed or answered something else.

        With --keep (or --directory) the fixture stays, for profiling; its commands are printed.

        Example (Scripts/bench-stages runs it):
          cairn-bench plan --repeats 10 --keep
        """)

    @Option(help: "How many manifests the repository has (a multiple of 5, at least 2,000).")
    var manifests: Int = 10_000

    @OptionGroup var options: FixtureOptions

    func validate() throws {
        if manifests < 2_000 || !manifests.isMultiple(of: 5) { throw ValidationError("--manifests must be a multiple of 5, at least 2,000") }
    }

    func run() throws {
        let binary = try Sampling.cairnBinary(options.cairn)
        let (folder, kept) = try options.folder("plan", marker: "repo.git")
        defer { if !kept { try? FileManager.default.removeItem(at: folder) } }
        let started = ContinuousClock.now
        let fixture = try PlanFixture.make(in: folder, manifests: manifests)
        progress(String(format: "plan: fixture made in %.1f s", (ContinuousClock.now - started).seconds))
        let report = try Self.measure(fixture, cairn: binary, repeats: options.repeats, kept: kept ? folder.path : nil)
        if kept { progress("plan: kept the fixture in \(folder.path); rerun: \(report.command)") }
        try report.emit(format: options.format)
    }

    static func measure(_ fixture: PlanFixture, cairn: String, repeats: Int, kept: String?) throws -> BenchReport<PlanSummary> {
        let repo = fixture.repository.path, state = fixture.state.path
        let planArguments = ["plan", "--repo", repo, "--base", fixture.base, "--head", fixture.head, "--state-dir", state, "--format", "json"]
        let store = try Store(readingFrom: fixture.state)
        let expected = fixture.expected
        func check(_ found: PlanSummary, _ what: String) throws {
            guard found == expected else {
                throw ValidationError("\(what) answered \(found); expected \(expected): the figure would not be of this plan")
            }
        }

        var report = BenchReport(title: "cairn plan over \(fixture.changedFiles) changed manifests of \(fixture.manifests)", repeats: repeats,
                                 answer: expected, fixture: kept, command: "cairn " + planArguments.joined(separator: " "))
        try report.measure([
            .init(key: "process", label: "cairn plan --format json, as a command", target: 0.3) {
                let run = try Sampling.process(cairn, planArguments).expect(status: expected.acceptable ? 0 : 1)
                try check(try PlanSummary(json: run.outcome.standardOutput.data), "cairn plan")
                return run.seconds
            },
            .init(key: "inProcess", label: "Planner.plan, in process", target: 0.3) {
                let repository = try Repository.open(at: fixture.repository)   // no object cached from the call before
                let started = ContinuousClock.now
                let plan = try Planner.plan(repository: repository, base: fixture.base, head: fixture.head,
                                            registry: .store(store, "the state directory \(state)"))
                let seconds = (ContinuousClock.now - started).seconds
                try check(PlanSummary(plan), "Planner.plan")
                return seconds
            },
            .init(key: "validate", label: "reference: cairn validate over head, as a command") {
                try Sampling.process(cairn, ["validate", "--repo", repo, "--rev", fixture.head, "--format", "json"]).expect().seconds
            },
            .init(key: "gitDiff", label: "reference: git diff --stat base head") {
                let run = try Sampling.process("git", ["-C", repo, "diff", "--stat", fixture.base, fixture.head]).expect()
                // Fewer than the files changed: git pairs a deleted file with a created one like it as a rename.
                guard let summary = run.output.split(separator: "\n").last, summary.contains(" files changed"),
                      let files = Int(summary.split(separator: " ").first ?? ""), files > fixture.changedFiles * 9 / 10 else {
                    throw ValidationError("git diff --stat did not count about \(fixture.changedFiles) files: \(run.output.suffix(200))")
                }
                return run.seconds
            },
            .init(key: "startUp", label: "reference: cairn --version (start-up alone)") {
                try Sampling.process(cairn, ["--version"]).expect().seconds
            },
        ], name: "plan")
        return report
    }
}

extension PlanSummary {
    /// The counts of a plan made in this process.
    init(_ plan: Plan) {
        self.init(acceptable: plan.acceptable, invalid: plan.invalid.count)
        tally(objects: plan.objects.map(\.change.rawValue), promotions: plan.promotions.map { ($0.decision.rawValue, $0.rule) },
              runs: plan.runs.count)
    }

    /// The counts of what `cairn plan --format json` printed.
    init(json: Data) throws {
        struct Printed: Decodable {
            struct Object: Decodable { var change: String }
            struct Promotion: Decodable { var decision: String; var rule: String? }
            struct Run: Decodable { var object: String }
            var acceptable: Bool
            var invalid: [String]
            var objects: [Object]
            var promotions: [Promotion]
            var runs: [Run]
        }
        let printed = try JSONDecoder().decode(Printed.self, from: json)
        self.init(acceptable: printed.acceptable, invalid: printed.invalid.count)
        tally(objects: printed.objects.map(\.change), promotions: printed.promotions.map { ($0.decision, $0.rule) }, runs: printed.runs.count)
    }

    private mutating func tally(objects: [String], promotions: [(String, String?)], runs: Int) {
        for change in objects {
            switch change {
            case "created": created += 1
            case "deleted": deleted += 1
            case "moved": moved += 1
            default: changed += 1
            }
        }
        for (decision, rule) in promotions {
            self.promotions[decision, default: 0] += 1
            if let rule { refusals[rule, default: 0] += 1 }
        }
        self.runs = runs
    }
}
