import CairnTestSupport
import Foundation
import Testing

@Suite struct InitCommandTests {
    @Test func initWritesTheExampleRepositoryCommittedAndValid() throws {
        let parent = try TemporaryDirectory()
        let target = parent.appending("churn")
        let result = try cairn(["init", target.path])
        #expect(result.status == 0, "\(result.stderr)")

        // Exactly the files of Manifests/ (the example people read), schemas included.
        let example = packageRoot.appendingPathComponent("Manifests")
        #expect(try relativeFiles(in: target) == (try relativeFiles(in: example)))
        for file in try relativeFiles(in: example) {
            #expect(try Data(contentsOf: target.appendingPathComponent(file)) == Data(contentsOf: example.appendingPathComponent(file)),
                    "\(file) differs from Manifests/; run python3 Scripts/embed-example.py")
        }

        let status = try run("git", ["status", "--porcelain"], in: target, environment: GitFixture.environment())
        #expect(status.stdout.isEmpty, "\(status.stdout)")
        let branch = try run("git", ["rev-parse", "--abbrev-ref", "HEAD"], in: target, environment: GitFixture.environment())
        #expect(branch.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "main")
        #expect(try cairn(["validate"], in: target).status == 0)
        #expect(try cairn(["validate", "--repo", target.path, "--rev", "main"]).status == 0)
    }

    /// In an existing repository, init adds what is missing, overwrites nothing, commits nothing.
    @Test func initInAnExistingRepositoryAddsWhatIsMissingAndOverwritesNothing() throws {
        let repository = try GitFixture()
        let head = try repository.commit(["README.md": "# Our project\n", "training.yaml": "mine: true\n"], message: "ours")
        let result = try cairn(["init", repository.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("kept   README.md (it exists; not changed)"), "\(result.stdout)")
        #expect(result.stdout.contains("added  model.yaml"), "\(result.stdout)")
        #expect(try String(contentsOf: repository.url.appendingPathComponent("README.md"), encoding: .utf8) == "# Our project\n")
        #expect(try String(contentsOf: repository.url.appendingPathComponent("training.yaml"), encoding: .utf8) == "mine: true\n")
        #expect(FileManager.default.fileExists(atPath: repository.url.appendingPathComponent("schema/Model.json").path))
        #expect(try repository.git(["rev-parse", "HEAD"]) == head, "nothing committed")
        // Run again: everything exists now, nothing changes.
        let again = try cairn(["init", repository.path])
        #expect(again.status == 0 && again.stdout.contains("added 0 example file(s)"), "\(again.stdout)")
    }

    @Test func schemaCommandPrintsAndWrites() throws {
        let printed = try cairn(["schema", "--kind", "Model"])
        #expect(printed.status == 0)
        #expect(printed.stdout.contains("\"$id\" : \"https://cairn.dev/schema/v1/Model.json\""))
        let directory = try TemporaryDirectory()
        #expect(try cairn(["schema", "--write", directory.path]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).count == 6)
        #expect(try cairn(["schema", "--kind", "Widget"]).status == 2)
    }
}

func relativeFiles(in root: URL) throws -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: root.path)
    var files: [String] = []
    while let path = enumerator?.nextObject() as? String {
        if path.hasPrefix(".git") { continue }
        var isDirectory: ObjCBool = false
        FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory)
        if !isDirectory.boolValue { files.append(path) }
    }
    return files.sorted()
}

@Suite struct DemoCommandTests {
    @Test func theDemoShowsTheStatusHistoryThroughGitLog() throws {
        let directory = try TemporaryDirectory()
        let keep = directory.appending("demo")
        let result = try cairn(["demo", "--keep", keep.path])
        #expect(result.status == 0, "\(result.stderr)")
        for line in ["ModelDeployment/churn-prod: InvalidManifest", "Monitor/churn-quality: DependencyNotAccepted",
                     "Monitor/churn-quality: Deleted", "Cairn reconciled this commit: 4 objects, 4 Ready.",
                     "ModelDeployment/churn-prod: Serving: churn@1 serves at 127.0.0.1:", "\"version\": \"1\"}",
                     "0 failed; answered by churn@1", "ModelDeployment/churn-prod: RolledBack: churn@4 failed on its target (ExitedBeforeHealthy",
                     "cairn/proposals/churn-rollback-1", "+  assignments: {staging: 4, production: 3}",
                     "stage change accepted: churn production: 4 → 3",
                     "registered churn@1", "registered churn@2", "gate failed: auc 0.9338 does not beat production (version 1: 0.934 + 0.005)",
                     "stage change accepted: churn staging: none → 1", "stage change accepted: churn production: none → 1",
                     "### Cairn plan: ❌ not acceptable", "| churn | staging | @1 → @2 | REFUSED (GateFailed)", "Cairn-Stage: churn production 1",
                     "production  none → 1", "reproduced churn@2: the model's SHA-256 matches", "Cairn-Model-Version: churn@2",
                     "ran featurize: succeeded", "(pipelines/featurize.py changed)",
                     "not run (run key unchanged): ingest, calendar", "not run, outputs of earlier runs reused: featurize", "no stage ran: no stage's run key changed", "is already reconciled",
                     // The feedback loop.
                     "202 {\"accepted\":10,", "Monitor/churn-quality: Pending: ", "Monitor/churn-quality: Retraining: ",
                     "registered churn@5 (trigger monitor)", "Monitor/churn-quality: PromotionProposed: ",
                     "Promote churn@5 to staging", "+  assignments: {staging: 5, production: 3}", "Promote churn@5 to production",
                     "### Cairn plan: ✅ acceptable", "| churn | production | @3 → @5 | allowed", "stage change accepted: churn production: 3 → 5",
                     "0 failed; answered by churn@3", "then churn@5", "churn@5 serves on ModelDeployment/churn-prod: the loop is closed",
                     "  trigger: \"monitor\"", "  reason: \"triggered: Monitor/churn-quality: accuracy mean"] {
            #expect(result.stdout.contains(line), "missing: \(line)")
        }
        // The kept repository answers the same questions with plain git.
        let log = try run("git", ["log", "--format=%s", "cairn/status", "--", "ModelDeployment/churn-prod.yaml"],
                          in: keep.appendingPathComponent("churn"), environment: GitFixture.environment())
        // Newest first: churn@5 by the loop, churn@3 again with serve.py's new code, then as before.
        #expect(log.stdout.split(separator: "\n") == [
            "ModelDeployment/churn-prod: Serving", "ModelDeployment/churn-prod: Starting",
            "ModelDeployment/churn-prod: Serving", "ModelDeployment/churn-prod: Starting",
            "ModelDeployment/churn-prod: Serving", "ModelDeployment/churn-prod: InvalidManifest", "ModelDeployment/churn-prod: Serving",
            "ModelDeployment/churn-prod: RolledBack", "ModelDeployment/churn-prod: Starting", "ModelDeployment/churn-prod: Serving",
            "ModelDeployment/churn-prod: Starting", "ModelDeployment/churn-prod: Serving", "ModelDeployment/churn-prod: Starting",
            "ModelDeployment/churn-prod: NothingToServe"])
        let monitor = try run("git", ["log", "--format=%s", "cairn/status", "--", "Monitor/churn-quality.yaml"],
                              in: keep.appendingPathComponent("churn"), environment: GitFixture.environment())
        let reasons = monitor.stdout.split(separator: "\n").map { $0.replacingOccurrences(of: "Monitor/churn-quality: ", with: "") }
        // Newest first: deleted, healthy on churn@5, still firing while churn@5's window filled, the proposals, the retrain, pending.
        #expect(reasons.first == "Deleted" && reasons.contains("Pending") && reasons.contains("Retraining")
                && reasons.filter { $0 == "PromotionProposed" }.count == 2 && reasons.dropFirst().first == "Healthy", "\(reasons)")
    }
}

@Suite struct RepositoryDefaultTests {
    /// Without --repo, commands use the repository that holds the current directory, from any
    /// directory inside it, and find the same default state.
    @Test func repoDefaultsToTheRepositoryHoldingTheCurrentDirectory() throws {
        let repository = try largeRepository(objects: 2)
        let data = try TemporaryDirectory("cairn-data")
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_DATA_HOME"] = data.path
        let subdirectory = repository.url.appendingPathComponent("models")
        let once = try cairn(["reconcile", "--once"], in: subdirectory, environment: environment)
        #expect(once.status == 0, "\(once.stdout)\(once.stderr)")
        let status = try cairn(["status"], in: subdirectory, environment: environment)
        #expect(status.status == 0 && status.stdout.contains("Model/m1"), "\(status.stdout)\(status.stderr)")
        let elsewhere = try TemporaryDirectory("cairn-nowhere")
        let outside = try cairn(["reconcile", "--once"], in: elsewhere.url, environment: environment)
        #expect(outside.status == 2 && outside.stderr.contains("not inside a git repository; give --repo"), "\(outside.stderr)")
    }
}

@Suite struct ErrorSentenceTests {
    /// Errors read as sentences: no Foundation dumps, no Swift type names, one "error:" prefix.
    @Test func aPathThatCannotBeWrittenIsASentence() throws {
        let result = try cairn(["init", "/proc/cairn-cannot-be-here"])
        #expect(result.status == 3)
        #expect(result.stderr == "error: could not create or open /proc/cairn-cannot-be-here: No such file or directory\n", "\(result.stderr)")
        let usage = try cairn(["run", "--interval", "xyz"])
        #expect(usage.status == 2 && usage.stderr.hasPrefix("error: --interval xyz is not a duration"), "\(usage.stderr)")
        for output in [result.stderr, usage.stderr] {
            #expect(!output.contains("Domain=") && !output.contains("CairnExit") && !output.contains("error: error:"))
        }
    }
}
