@testable import CairnManifests
import CairnTestSupport
import Foundation
import Testing

@Suite struct ManifestParserTests {
    @Test func decodesEveryKindFromOneFile() throws {
        let file = Fixtures.parse(Fixtures.all)
        #expect(file.diagnostics.isEmpty, "\(file.diagnostics)")
        #expect(file.manifests.map(\.ref.description) ==
                ["FeaturePipeline/feats", "TrainingSchedule/weekly", "Model/churn", "ModelDeployment/prod", "Monitor/quality"])
        guard case .trainingSchedule(let training) = file.manifests[1].spec else { Issue.record("not a schedule"); return }
        #expect(training.concurrencyPolicy == .Forbid && training.catchup == .latest && training.timeZone == "UTC")
        #expect(training.outputs.model.value == "model.bin")
        guard case .model(let model) = file.manifests[2].spec else { Issue.record("not a model"); return }
        #expect(model.assignments == ["staging": 2, "production": 1])
        #expect(model.policy.requireGate && model.policy.strictOrder)
        #expect(file.manifests[3].location(of: "spec.model") == SourceLocation(file: "m.yaml", line: 31, column: 10))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var line: Int
        var column: Int
        var message: String
        var hint: String? = nil
        var testDescription: String { name }
    }

    static let badDocuments: [Case] = [
        Case(name: "misspelled field", yaml: Fixtures.training.replacingOccurrences(of: "  command:", with: "  comand:"),
             line: 7, column: 3, message: "unknown field \"comand\" in spec", hint: "did you mean \"command\"?"),
        Case(name: "wrong type", yaml: Fixtures.training.replacingOccurrences(of: "command: [python3, train.py]", with: "command: python3 train.py"),
             line: 7, column: 12, message: "spec.command must be a list, not a string"),
        Case(name: "empty command", yaml: Fixtures.training.replacingOccurrences(of: "command: [python3, train.py]", with: "command: []"),
             line: 7, column: 12, message: "spec.command must have at least 1 item"),
        Case(name: "bad name", yaml: Fixtures.model.replacingOccurrences(of: "name: churn", with: "name: Churn_Model"),
             line: 3, column: 18, message: "metadata.name: \"Churn_Model\" is not a DNS label", hint: "lowercase"),
        Case(name: "bad duration", yaml: Fixtures.monitor.replacingOccurrences(of: "for: 10m", with: "for: 10 minutes"),
             line: 7, column: 43, message: "\"10 minutes\" is not a duration", hint: "30s, 10m or 1h30m"),
        Case(name: "bad cron", yaml: Fixtures.training + "\n  schedule: \"61 * * * *\"",
             line: 9, column: 13, message: "61 is outside 0-59 for the minute field"),
        Case(name: "cron with four fields", yaml: Fixtures.training + "\n  schedule: \"0 3 * *\"",
             line: 9, column: 13, message: "it has 4 fields, cron needs 5"),
        Case(name: "absolute path", yaml: Fixtures.training.replacingOccurrences(of: "{model: model.bin}", with: "{model: /etc/passwd}"),
             line: 8, column: 20, message: "\"/etc/passwd\" is absolute"),
        Case(name: "path escaping through ..", yaml: Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [data/../../secrets]"),
             line: 8, column: 14, message: "\"data/../../secrets\" leaves the repository"),
        Case(name: "unknown kind", yaml: Fixtures.model.replacingOccurrences(of: "kind: Model", with: "kind: Modle"),
             line: 2, column: 7, message: "\"Modle\" is not one of", hint: "did you mean \"Model\"?"),
        Case(name: "wrong apiVersion", yaml: Fixtures.model.replacingOccurrences(of: "cairn/v1", with: "cairn/v2"),
             line: 1, column: 13, message: "\"cairn/v2\" is not one of cairn/v1"),
        Case(name: "missing spec field", yaml: Fixtures.deployment.replacingOccurrences(of: "  model: churn\n", with: ""),
             line: 5, column: 3, message: "spec is missing the required field \"model\""),
        Case(name: "both stage and version", yaml: Fixtures.deployment.replacingOccurrences(of: "stage: production", with: "stage: production\n  version: 3"),
             line: 5, column: 3, message: "spec needs exactly one of \"stage\" or \"version\", not 2"),
        Case(name: "bad enum", yaml: Fixtures.training + "\n  concurrencyPolicy: forbid",
             line: 9, column: 22, message: "\"forbid\" is not one of Forbid, Replace, Allow", hint: "did you mean \"Forbid\"?"),
        Case(name: "malformed YAML", yaml: "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: x\nspec: {}\n",
             line: 4, column: 5, message: "invalid YAML"),
        Case(name: "tab indentation", yaml: "apiVersion: cairn/v1\nkind: Model\nmetadata:\n\tname: x\n",
             line: 4, column: 1, message: "a tab is used for indentation", hint: "replace the tabs with spaces"),
        Case(name: "kind without apiVersion", yaml: "kind: Model\nmetadata: {name: x}\nspec: {stages: [a]}\n", line: 1, column: 1,
             message: "missing the required field \"apiVersion\""),
        Case(name: "name and spec, misspelled apiVersion", yaml: "apiVersoin: cairn/v1\nkind: Modle\nmetadata: {name: x}\nspec: {}\n",
             line: 1, column: 1, message: "unknown field \"apiVersoin\""),
        Case(name: "another cairn version", yaml: "apiVersion: cairn/v2\nkind: Model\nmetadata: {name: x}\nspec: {stages: [a]}\n",
             line: 1, column: 13, message: "\"cairn/v2\" is not one of cairn/v1"),
        Case(name: "duplicate key", yaml: "apiVersion: cairn/v1\nkind: Model\nkind: Model\n", line: 2, column: 1, message: "appears twice"),
    ]

    @Test(arguments: badDocuments)
    func badInputNamesLineColumnAndField(_ bad: Case) throws {
        let file = Fixtures.parse(bad.yaml)
        #expect(file.manifests.isEmpty)
        let match = file.diagnostics.first { $0.message.contains(bad.message) }
        let diagnostic = try #require(match, "no diagnostic containing \(bad.message): \(file.diagnostics)")
        #expect(diagnostic.location.file == "m.yaml")
        #expect(diagnostic.location.line == bad.line, "\(diagnostic)")
        #expect(diagnostic.location.column == bad.column, "\(diagnostic)")
        if let hint = bad.hint { #expect(diagnostic.hint?.contains(hint) == true, "\(diagnostic)") }
    }

    /// Only `apiVersion: cairn/...` documents are manifests; other YAML beside them (params,
    /// CI configuration, lists, templates that are not YAML) is skipped and counted.
    @Test func yamlThatIsNotAManifestIsSkippedAndCounted() {
        let params = Fixtures.parse("learning_rate: 0.1\nlayers: [64, 32]\n---\n- a\n- list\n---\napiVersion: v1\nkind: ConfigMap\n")
        #expect(params.manifests.isEmpty && params.failures.isEmpty && params.skippedDocuments == 3, "\(params.diagnostics)")
        let template = Fixtures.parse("steps: {{ .Values.steps }}\n  - [\n")
        #expect(template.failures.isEmpty && template.skippedDocuments == 1)
        let brokenManifest = Fixtures.parse("apiVersion: cairn/v1\nkind: Model\nmetadata: {name: x\n")
        #expect(brokenManifest.failures.count == 1 && brokenManifest.skippedDocuments == 0)
        let mixed = Fixtures.parse(Fixtures.model + "\n---\nretries: 3\n")
        #expect(mixed.manifests.count == 1 && mixed.skippedDocuments == 1)
    }

    @Test func aBrokenDocumentDoesNotHideItsNeighbours() {
        let broken = Fixtures.model.replacingOccurrences(of: "stages: [staging, production]", with: "stages: staging")
        let file = Fixtures.parse([Fixtures.pipeline, broken, Fixtures.deployment].joined(separator: "\n---\n"))
        #expect(file.manifests.map(\.ref.description) == ["FeaturePipeline/feats", "ModelDeployment/prod"])
        #expect(file.failures.map { $0.ref?.description } == ["Model/churn"])
    }

    @Test func reportsEveryProblemInADocumentNotJustTheFirst() {
        let yaml = Fixtures.training
            .replacingOccurrences(of: "model: churn", with: "modle: churn")
            .replacingOccurrences(of: "command: [python3, train.py]", with: "command: []")
        let messages = Fixtures.parse(yaml).diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("unknown field \"modle\"") })
        #expect(messages.contains { $0.contains("spec.command must have at least 1 item") })
        #expect(messages.contains { $0.contains("missing the required field \"model\"") })
    }
}

@Suite struct HostileInputTests {
    @Test func aFiftyMegabyteFileIsRefusedFromItsSize() {
        let huge = Data(repeating: UInt8(ascii: "a"), count: 50 << 20)
        let file = ManifestParser.parse(huge, file: "huge.yaml")
        #expect(file.diagnostics.first?.message.contains("52428800 bytes") == true)
    }

    @Test func binaryIsRefusedWithThePositionOfTheFirstBadByte() {
        var bytes = Data("apiVersion: cairn/v1\nkind: ".utf8)
        bytes.append(contentsOf: [0xFF, 0xFE, 0x00, 0x01])
        let diagnostic = ManifestParser.parse(bytes, file: "b.yaml").diagnostics.first
        #expect(diagnostic?.message.contains("not UTF-8") == true)
        #expect(diagnostic?.location.line == 2 && diagnostic?.location.column == 7)
        let nul = ManifestParser.parse(Data("a: b\n\u{0}\n".utf8), file: "n.yaml").diagnostics.first
        #expect(nul?.message.contains("NUL") == true)
    }

    @Test(arguments: [
        String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
        (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x",
        (0..<200).map { _ in "- " }.joined() + "x",
        String(repeating: "{a: ", count: 5_000) + "1" + String(repeating: "}", count: 5_000),
    ])
    func deepNestingIsRefusedBeforeTheParserRecurses(_ yaml: String) {
        let diagnostics = Fixtures.parse(yaml).diagnostics
        #expect(diagnostics.first?.message.contains("nested more than 64 levels") == true, "\(diagnostics)")
    }

    @Test func aliasBombsStopAtTheNodeBudget() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let diagnostics = Fixtures.parse(yaml).diagnostics
        #expect(diagnostics.first?.message.contains("more than 100000 YAML nodes") == true, "\(diagnostics)")
    }

    /// The reader keeps Yams' composition rules: keys are the same when text and resolved tag
    /// are, an alias is its anchor's node, and a repeated key outranks the node budget.
    @Test(arguments: [
        ("!!str a: 1\n\"a\": 2\n'b': 1\nb: 2\n!foo c: 1\nc: 2\n! d: 1\nd: 2\n", 1, 1, "the key \"a\", \"b\", \"d\" appears twice in one mapping"),
        ("b: 1\na: 1\nb: 2\na: 2\nc: 1\n", 2, 1, "the key \"a\", \"b\" appears twice in one mapping"),
        ("a:\n  b: 1\n  b: 2\nc: 1\nc: 1\n", 2, 3, "the key \"b\" appears twice in one mapping"),
        ("x: &k a\n*k : 1\na: 2\n", 1, 4, "the key \"a\" appears twice in one mapping"),
        ("? [a, b]\n: 1\n? [a, b]\n: 2\nz: 1\nz: 2\n", 1, 3, "a mapping key must be a plain value, not a list or a mapping"),
        ("a: *nowhere\n", 1, 4, "found undefined alias"),
        ("kind: Mo\u{1}del\n", 1, 1, "control characters are not allowed"),
    ])
    func yamlCompositionErrors(_ yaml: String, _ line: Int, _ column: Int, _ message: String) {
        // The comment makes the text speak of Cairn: YAML that does not, and does not parse, is skipped.
        let diagnostic = Fixtures.parse(yaml + "# apiVersion: cairn/v1\n").diagnostics.first
        #expect(diagnostic?.message == "invalid YAML: \(message)")
        #expect(diagnostic?.location == SourceLocation(file: "m.yaml", line: line, column: column))
    }

    @Test func aliasesCountAsTheNodesTheyRepeat() {
        var deep = "a0: &a0 [x]\n"
        for level in 1...70 { deep += "a\(level): &a\(level) [*a\(level - 1)]\n" }
        let diagnostic = Fixtures.parse(deep).diagnostics.first
        #expect(diagnostic?.message.contains("nested more than 64 levels") == true)
        #expect(diagnostic?.location == SourceLocation(file: "m.yaml", line: 1, column: 10))

        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 { bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        #expect(Fixtures.parse(bomb + "a0: 1\n# cairn/v1\n").diagnostics.first?.message == "invalid YAML: the key \"a0\" appears twice in one mapping")
    }

    @Test func emptyAndCommentOnlyFilesHoldNothing() {
        #expect(Fixtures.parse("").manifests.isEmpty && Fixtures.parse("").diagnostics.isEmpty)
        #expect(Fixtures.parse("# nothing\n---\n").diagnostics.isEmpty)
    }
}

@Suite struct DiagnosticExcerptTests {
    /// A bad value is quoted as a short excerpt with its line breaks escaped: a value holding
    /// a newline cannot print a forged `file:line:col: error:` line, and a million-character
    /// value does not make a million-character message.
    @Test func aBadValueIsQuotedShortAndOnOneLine() {
        let forged = "a\nb.yaml:1:1: error: forged"
        let long = String(repeating: "y", count: 1_000_000)
        let yaml = "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: x}\nspec:\n  stages: [\"\(forged.replacingOccurrences(of: "\n", with: "\\n"))\", \(long)]\n"
        let diagnostics = Fixtures.parse(yaml).diagnostics
        #expect(diagnostics.count == 2)
        for diagnostic in diagnostics {
            #expect(!diagnostic.description.split(separator: "\n").contains { $0.hasPrefix("b.yaml") }, "\(diagnostic)")
            #expect(diagnostic.message.count < 200, "\(diagnostic.message.count) characters")
        }
        #expect(diagnostics[0].message == "spec.stages[0]: \"a\\nb.yaml:1:1: error: forged\" is not a DNS label")
        #expect(diagnostics[1].message.contains("\"yyyyyyyyyy") && diagnostics[1].message.contains("… (999940 more characters)"))
        #expect(quote("tab\there\u{1b}") == "\"tab\\there\\u{1b}\"")
    }
}

@Suite struct HostileKeyTests {
    /// Two equal 8-level alias chains used as keys took 10 s to compare (×10 a level), and a
    /// mapping of 40,000 keys 93 s to check for repeats: both are now cheap.
    @Test func aliasKeysAreRefusedAndManyKeysAreCheckedFast() {
        var chains = ""
        for name in ["a", "b"] {
            chains += "\(name)0: &\(name)0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...7 {
                chains += "\(name)\(level): &\(name)\(level) [" + Array(repeating: "*\(name)\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let keyed = Fixtures.parse(chains + "m:\n  ? *a7\n  : 1\n  ? *b7\n  : 2\n# cairn/v1\n").diagnostics.first
        #expect(keyed?.message.contains("a mapping key must be a plain value") == true || keyed?.message.contains("more than 100000") == true,
                "\(String(describing: keyed))")
        var many = "# cairn/v1\n"
        for index in 0..<40_000 { many += "k\(index): 1\n" }
        let repeated = Fixtures.parse(many + "k0: 2\n").diagnostics.first
        #expect(repeated?.message.contains("\"k0\" appears twice") == true, "\(String(describing: repeated))")
        // Generous on a loaded machine: the old code took minutes here.
        #expect(clock.now - start < .seconds(20))
    }
}

@Suite struct AbsentNullEmptyTests {
    static func schedule(_ line: String) -> String {
        "apiVersion: cairn/v1\nkind: TrainingSchedule\nmetadata: {name: t}\nspec:\n  model: m\n  command: [python3, train.py]\n  outputs: {model: m.bin}\n\(line)"
    }

    /// What Docs/manifests.md says of absent, null and empty fields.
    @Test func absentTakesTheDefaultNullIsAnErrorEmptyIsAValue() throws {
        let absent = try #require(Fixtures.parse(Self.schedule("")).manifests.first)
        guard case .trainingSchedule(let defaults) = absent.spec else { Issue.record("not a schedule"); return }
        #expect(defaults.deps.isEmpty && defaults.params.isEmpty && defaults.features == nil)
        for null in ["  retries:\n", "  features: null\n", "  deps: ~\n", "  params:\n"] {
            let message = Fixtures.parse(Self.schedule(null)).diagnostics.first?.message ?? ""
            #expect(message.contains("not empty (null)"), "\(null): \(message)")
        }
        for empty in ["  deps: []\n", "  params: {}\n", "  gate: []\n"] {
            #expect(Fixtures.parse(Self.schedule(empty)).diagnostics.isEmpty, "\(empty)")
        }
        #expect(!Fixtures.parse(Self.schedule("").replacingOccurrences(of: "[python3, train.py]", with: "[]")).diagnostics.isEmpty)
        #expect(Fixtures.parse(Self.schedule("  features: \"\"\n")).diagnostics.first?.message.contains("must not be empty") == true)
    }
}
