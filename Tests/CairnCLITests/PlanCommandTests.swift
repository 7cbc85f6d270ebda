import CairnTestSupport
import Foundation
import Testing

/// `cairn plan --base --head` as CI runs it on a pull request: the real binary over a real
/// repository whose registry the daemon made (`StageFixture`: scorer@1 and @3 passed their
/// gate, @2 failed it; staging and production hold scorer@1).
@Suite(.serialized) struct PlanCommandTests {
    @Test(arguments: [
        ("{staging: 9, production: 1}", "VersionNotFound", "staging → scorer@9: no such version is registered"),
        ("{staging: 2, production: 1}", "GateFailed", "staging → scorer@2: the version failed its gate (failed: score 1 < 5)"),
        ("{staging: 1, production: 3}", "OrderViolated", "production → scorer@3: the version has never held staging (staging holds scorer@1)"),
    ])
    func eachRefusedPromotionExitsOneNamingItsRule(assignments: String, rule: String, message: String) async throws {
        let fixture = try await StageFixture.make()
        try await fixture.pullRequest("promote", ["model.yaml": StageFixture.model(assignments)])
        let plan = try await fixture.plan(["--base", "main", "--head", "promote"])
        #expect(plan.status == 1, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("REFUSED (\(rule))") && plan.stdout.contains(message), "\(plan.stdout)")
        #expect(plan.stdout.contains("Not acceptable: 1 refused promotion(s) (scorer \(rule == "OrderViolated" ? "production" : "staging"): \(rule))"),
                "\(plan.stdout)")
    }

    @Test func aGoodPromotionExitsZeroWithChampionAgainstChallenger() async throws {
        let fixture = try await StageFixture.make()
        try await fixture.pullRequest("promote", ["model.yaml": StageFixture.model("{staging: 3, production: 1}")])
        let plan = try await fixture.plan(["--base", "main", "--head", "promote"])
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("scorer staging @1 → @3: allowed"), "\(plan.stdout)")
        #expect(plan.stdout.contains("score: @1 10 → @3 20"), "\(plan.stdout)")
        #expect(plan.stdout.contains("Acceptable: every manifest is valid and the promotion policy allows 1 promotion(s)."), "\(plan.stdout)")
    }

    @Test(arguments: [
        (["--head", "HEAD"], "Missing expected argument '--base"),
        (["--base", "no-such-branch", "--head", "HEAD"], "base no-such-branch is not a commit of this repository"),
        (["--base", "main", "--head", "unrelated"], "share no history"),
    ])
    func usageErrorsExitTwo(arguments: [String], message: String) async throws {
        let fixture = try await StageFixture.make()
        // A branch with no commit in common with main.
        try await fixture.git(["checkout", "-q", "--orphan", "unrelated"])
        try await fixture.commit(["model.yaml": StageFixture.model("{staging: 3}")], message: "unrelated history")
        try await fixture.git(["checkout", "-q", "main"])
        let plan = try await fixture.plan(arguments)
        #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stderr.contains(message), "\(plan.stderr)")
        #expect(plan.stdout.isEmpty, "no plan is printed: \(plan.stdout)")
    }

    /// main moved on after the pull request branched (it added Model/other): the change is
    /// what the branch did since the merge base, not the difference from main's tip.
    @Test func aBaseThatIsNotAnAncestorIsComparedAtTheMergeBaseAndSaysSo() async throws {
        let fixture = try await StageFixture.make()
        let mergeBase = try await fixture.git(["rev-parse", "main"])
        try await fixture.pullRequest("promote", ["model.yaml": StageFixture.model("{staging: 3, production: 1}")])
        let other = StageFixture.model("{}").replacingOccurrences(of: "name: scorer", with: "name: other")
        try await fixture.commit(["other.yaml": other], message: "Another model on main")
        let plan = try await fixture.plan(["--base", "main", "--head", "promote"])
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("note: base main (") && plan.stdout.contains("is not an ancestor of head, so head is compared with their merge base "
                                                                              + String(mergeBase.prefix(7))), "\(plan.stdout)")
        #expect(plan.stdout.contains("compared with \(mergeBase.prefix(10))"), "\(plan.stdout)")
        #expect(!plan.stdout.contains("Model/other"), "what main gained is not the pull request's: \(plan.stdout)")
        let json = try await fixture.plan(["--base", "main", "--head", "promote", "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["comparedWith"] as? String == mergeBase && object["base"] as? String != mergeBase)
        let objects = try #require(object["objects"] as? [[String: Any]])
        #expect(objects.map { "\($0["object"] ?? "") \($0["change"] ?? "")" } == ["Model/scorer changed"])
    }

    /// CI has a clone and no state directory: the verdicts come from the registry files on
    /// origin/cairn/status, strictOrder's history included.
    @Test func fromAPlainCloneItJudgesFromTheStatusBranch() async throws {
        let fixture = try await StageFixture.make()
        let clone = fixture.root.appending("clone")
        try await fixture.git(["clone", "-q", fixture.repository.path, clone.path], in: fixture.root.url)
        #expect(try await fixture.git(["branch", "-a", "--list", "*cairn/status"], in: clone) == "remotes/origin/cairn/status")
        for (branch, assignments) in [("good", "{staging: 3, production: 1}"), ("gate", "{staging: 2, production: 1}"),
                                      ("order", "{staging: 1, production: 3}")] {
            try await fixture.git(["checkout", "-q", "-b", branch, "origin/main"], in: clone)
            try Data(StageFixture.model(assignments).utf8).write(to: clone.appendingPathComponent("model.yaml"))
            try await fixture.git(["commit", "-q", "-am", "promote"], in: clone)
        }
        let good = try await fixture.plan(["--base", "origin/main", "--head", "good"], state: false, repo: clone)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("Promotions (judged from the status branch origin/cairn/status at "), "\(good.stdout)")
        #expect(good.stdout.contains("scorer staging @1 → @3: allowed") && good.stdout.contains("score: @1 10 → @3 20"), "\(good.stdout)")
        let gate = try await fixture.plan(["--base", "origin/main", "--head", "gate"], state: false, repo: clone)
        #expect(gate.status == 1 && gate.stdout.contains("REFUSED (GateFailed)"), "\(gate.stdout)\(gate.stderr)")
        let order = try await fixture.plan(["--base", "origin/main", "--head", "order"], state: false, repo: clone)
        #expect(order.status == 1 && order.stdout.contains("REFUSED (OrderViolated)"), "\(order.stdout)\(order.stderr)")
    }

    /// A local status branch someone checked out once and never pulled is behind origin's: the
    /// plan judges by origin's, which knows the newer versions, and says so.
    @Test func aStaleLocalStatusBranchGivesWayToOrigins() async throws {
        let fixture = try await StageFixture.make()
        let clone = fixture.root.appending("clone")
        try await fixture.git(["clone", "-q", fixture.repository.path, clone.path], in: fixture.root.url)
        let registered = try await fixture.git(["log", "--format=%H", "origin/cairn/status", "--", "ModelVersion/scorer/3.yaml"], in: clone)
        let before = try #require(registered.split(separator: "\n").last.map(String.init))
        try await fixture.git(["branch", "cairn/status", "\(before)^"], in: clone)
        try await fixture.git(["checkout", "-q", "-b", "good", "origin/main"], in: clone)
        try Data(StageFixture.model("{staging: 3, production: 1}").utf8).write(to: clone.appendingPathComponent("model.yaml"))
        try await fixture.git(["commit", "-q", "-am", "promote"], in: clone)
        let good = try await fixture.plan(["--base", "origin/main", "--head", "good"], state: false, repo: clone)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("judged from the status branch origin/cairn/status at "), "\(good.stdout)")
        // Level with origin (or ahead, as a daemon's own branch is), the local branch is used.
        try await fixture.git(["branch", "-f", "cairn/status", "origin/cairn/status"], in: clone)
        let level = try await fixture.plan(["--base", "origin/main", "--head", "good"], state: false, repo: clone)
        #expect(level.status == 0 && level.stdout.contains("judged from the status branch cairn/status at "), "\(level.stdout)")
    }

    /// A clone of main alone, no state directory: nothing to judge promotions by. The plan says
    /// so and what it could not check, and it does not call a promotion allowed or the change
    /// acceptable.
    @Test func withNeitherStateNorStatusBranchItSaysWhatItCouldNotCheck() async throws {
        let fixture = try await StageFixture.make()
        let clone = fixture.root.appending("clone")
        try await fixture.git(["clone", "-q", "--single-branch", "--branch", "main", fixture.repository.path, clone.path], in: fixture.root.url)
        try await fixture.git(["checkout", "-q", "-b", "good", "origin/main"], in: clone)
        try Data(StageFixture.model("{staging: 3, production: 1}").utf8).write(to: clone.appendingPathComponent("model.yaml"))
        try await fixture.git(["commit", "-q", "-am", "promote"], in: clone)

        let text = try await fixture.plan(["--base", "origin/main", "--head", "good"], state: false, repo: clone)
        #expect(text.status == 1, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("scorer staging @1 → @3: UNCHECKED"), "\(text.stdout)")
        #expect(text.stdout.contains("could not be checked: no --state-dir was given and this repository has neither cairn/status nor origin/cairn/status"),
                "\(text.stdout)")
        #expect(!text.stdout.contains("allowed") && !text.stdout.contains("Acceptable") && !text.stdout.contains("judged from"), "\(text.stdout)")
        #expect(text.stdout.contains("Not acceptable: 1 promotion(s) that could not be checked"), "\(text.stdout)")

        let json = try await fixture.plan(["--base", "origin/main", "--head", "good", "--format", "json"], state: false, repo: clone)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let promotions = try #require(object["promotions"] as? [[String: Any]])
        #expect(object["acceptable"] as? Bool == false && object["registry"] == nil && object["registryProblem"] is String)
        #expect(promotions.map { $0["decision"] as? String } == ["unchecked"] && promotions.first?["challenger"] == nil)

        let markdown = try await fixture.plan(["--base", "origin/main", "--head", "good", "--format", "markdown"], state: false, repo: clone)
        #expect(markdown.stdout.contains("❌ not acceptable") && markdown.stdout.contains("UNCHECKED") && !markdown.stdout.contains("allowed"),
                "\(markdown.stdout)")

        // A change with no promotion in it has nothing that needed the registry.
        try await fixture.git(["checkout", "-q", "-b", "readme", "origin/main"], in: clone)
        try Data("notes\n".utf8).write(to: clone.appendingPathComponent("NOTES.md"))
        try await fixture.git(["add", "NOTES.md"], in: clone)
        try await fixture.git(["commit", "-q", "-m", "notes"], in: clone)
        let readme = try await fixture.plan(["--base", "origin/main", "--head", "readme"], state: false, repo: clone)
        #expect(readme.status == 0, "\(readme.stdout)\(readme.stderr)")
    }

    @Test func jsonParsesAndSaysWhetherTheChangeIsAcceptable() async throws {
        let fixture = try await StageFixture.make()
        try await fixture.pullRequest("gate", ["model.yaml": StageFixture.model("{staging: 2, production: 1}")])
        try await fixture.pullRequest("good", ["model.yaml": StageFixture.model("{staging: 3, production: 1}")])
        let refused = try await fixture.plan(["--base", "main", "--head", "gate", "--format", "json"])
        #expect(refused.status == 1, "\(refused.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: Any], "\(refused.stdout)")
        #expect(object["acceptable"] as? Bool == false)
        let promotion = try #require((object["promotions"] as? [[String: Any]])?.first)
        #expect(promotion["decision"] as? String == "refused" && promotion["rule"] as? String == "GateFailed")
        #expect((promotion["challenger"] as? [String: Any])?["gatePassed"] as? Bool == false)
        #expect((promotion["champion"] as? [String: Any])?["version"] as? Int == 1)

        let accepted = try await fixture.plan(["--base", "main", "--head", "good", "--format", "json"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let good = try #require(try JSONSerialization.jsonObject(with: Data(accepted.stdout.utf8)) as? [String: Any], "\(accepted.stdout)")
        #expect(good["acceptable"] as? Bool == true)
        #expect((good["promotions"] as? [[String: Any]])?.map { $0["decision"] as? String } == ["accepted"])
    }

    /// Text a pull request controls (a param's value, a manifest's field name and file name)
    /// reaches the Markdown as the same text, and as nothing else: no HTML, no link, no
    /// autolink, no broken table, no code span it opened itself. The commit's subject and
    /// author are hostile too, so that every line is checked should a plan ever show them.
    @Test func markdownShowsHostileTextAsTextAndNothingElse() async throws {
        let fixture = try await StageFixture.make()
        let hostile = #"| <script>alert(1)</script> [x](http://evil) `rm -rf` http://evil.example www.evil.example *bold* &amp;"#
        // In YAML's double quotes: the hostile text, then a line break and what would be a heading
        // and a table row of their own at the start of a line.
        let note = hostile + #"\r\n# forged heading\n| forged | row |"#
        let bad = """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: evil}
        spec:
          stages: [staging]
          "[x](http://evil.example)": 1

        """
        try await fixture.pullRequest("hostile", ["training.yaml": StageFixture.training(score: 20, params: ", note: \"\(note)\""),
                                                  "evil|<script>.yaml": bad],
                                      message: "Promote \(hostile)", author: "Mallory [x](http://evil) `tick` | <mallory@evil.example>")
        let plan = try await fixture.plan(["--base", "main", "--head", "hostile", "--format", "markdown"])
        #expect(plan.status == 1, "the manifest is invalid: \(plan.stdout)\(plan.stderr)")
        let markdown = plan.stdout
        #expect(markdown.contains("#### Runs whose key changes") && markdown.contains("#### Invalid manifests at head"), "\(markdown)")

        // Lines as Markdown ends them: at "\r\n" too, which is one Character, not "\n".
        let lines = markdown.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(MarkdownLine.init)
        let shown = lines.map(\.text).joined(separator: "\n")
        #expect(shown.contains("params: note added (\(hostile) # forged heading | forged | row |)"), "the param reads as written: \(markdown)")
        #expect(!lines.contains { $0.text.contains("forged") && !$0.text.contains("params: note added") }, "a line break from the change: \(markdown)")
        #expect(shown.contains(#"evil|<script>.yaml:6:3: unknown field "[x](http://evil.example)" in spec"#), "\(markdown)")
        #expect(shown.contains("| Model/evil | created | evil|<script>.yaml | (invalid at head) |"), "\(markdown)")
        for line in lines {
            #expect(line.tags.allSatisfy(MarkdownLine.planTags.contains), "HTML from the change: \(line.source)")
            #expect(line.links == 0, "a link from the change: \(line.source)")
            let plain = line.outsideCode.lowercased()
            #expect(!plain.contains("://") && !plain.contains("www."), "an address GitHub would autolink: \(line.source)")
        }
        // Every row of a table has as many cells as its header.
        var header: Int?
        for line in lines {
            guard line.source.hasPrefix("|") else { header = nil; continue }
            if let header { #expect(line.pipes == header, "a row with more cells than its header: \(line.source)") } else { header = line.pipes }
        }
    }
}

/// What a line of the plan's Markdown shows a reader, as GitHub and GitLab read the Markdown the
/// plan writes: backslash escapes, code spans of one backtick, table pipes, and raw HTML tags.
struct MarkdownLine {
    /// The tags the plan writes itself.
    static let planTags: Set<String> = ["<details>", "</details>", "<summary>", "</summary>"]
    /// What a backslash escapes: ASCII punctuation (CommonMark).
    static let escapable = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

    let source: String
    /// The text as shown (code spans' content included).
    private(set) var text = ""
    /// The text as shown outside code spans: where autolinks happen.
    private(set) var outsideCode = ""
    /// Raw HTML tags, as written.
    private(set) var tags: [String] = []
    /// Unescaped `[`: the start of a link or image.
    private(set) var links = 0
    /// Unescaped `|`: cell boundaries in a table row.
    private(set) var pipes = 0

    init(_ line: Substring) {
        source = String(line)
        let characters = Array(line)
        var index = 0
        func show(_ character: Character) {
            text.append(character)
            outsideCode.append(character)
        }
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "\\" where index + 1 < characters.count && Self.escapable.contains(characters[index + 1]):
                show(characters[index + 1])
                index += 2
                continue
            case "`":
                if let end = characters[(index + 1)...].firstIndex(of: "`") {
                    text += String(characters[(index + 1)..<end])
                    index = end + 1
                    continue
                }
                show(character)
            case "<":
                let end = characters[index...].firstIndex(of: ">") ?? characters.count - 1
                tags.append(String(characters[index...end]))
                show(character)
            case "[":
                links += 1
                show(character)
            case "|":
                pipes += 1
                show(character)
            default:
                show(character)
            }
            index += 1
        }
    }
}
