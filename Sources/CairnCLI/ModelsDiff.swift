import CairnEngine
import ArgumentParser
import CairnCore
import CairnManifests
import CairnStore
import Foundation

extension Cairn.Models {
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Two versions side by side: params, metrics, gate verdicts, data and code hashes.",
            discussion: """
            For a reviewer deciding between two versions (a champion and its challenger): each \
            param, metric and gate rule with its value in A and in B, and each feature artifact, \
            data file and code file with whether its SHA-256 is the same, changed, or only in \
            one of them; then the model file, command, source commit and trigger. Rows that are \
            the same are shown too, marked `=`, unless --changed.

            The versions may be of two models (churn@3 fraud@1). Exit code 0 when shown; 1 when \
            a version does not exist; 2 usage error; 3 when the state cannot be read.

            Examples:
              cairn models diff churn@2 churn@3
              cairn models diff churn@2 churn@3 --changed --format json
            """)

        @Argument(help: "The first version, MODEL@VERSION (A).")
        var first: String

        @Argument(help: "The second version, MODEL@VERSION (B).")
        var second: String

        @Flag(help: "Only the rows that differ.")
        var changed = false

        @OptionGroup var location: StateOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            for text in [first, second] where ModelText.parse(text) == nil {
                throw ValidationError("\(text) is not MODEL@VERSION, such as churn@3")
            }
        }

        func run() async throws {
            let store = try location.openStore()
            let a = try ModelText.find(first, in: store)
            let b = try ModelText.find(second, in: store)
            var sections = VersionDiff(a, b).sections
            if changed { sections = sections.map { VersionDiff.Section(name: $0.name, rows: $0.rows.filter(\.differs)) } }
            if format == .json {
                struct Document: Encodable {
                    var a: String
                    var b: String
                    var sections: [VersionDiff.Section]
                }
                print(Document(a: a.name, b: b.name, sections: sections).jsonText())
                return
            }
            var lines: [String] = []
            for section in sections where !section.rows.isEmpty {
                lines.append("\(section.name):")
                lines.append(table(header: ["", "", a.name, b.name], rows: section.rows.map { [$0.differs ? "≠" : "=", $0.name, $0.a ?? "-", $0.b ?? "-"] })
                    .split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            }
            print(lines.isEmpty ? "\(a.name) and \(b.name) differ in nothing shown" : lines.joined(separator: "\n"))
        }
    }
}

/// What differs between two versions, section by section.
struct VersionDiff {
    struct Row: Encodable {
        var name: String
        var a: String?
        var b: String?
        var differs: Bool { a != b }

        private enum CodingKeys: String, CodingKey { case name, a, b, differs }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encodeIfPresent(a, forKey: .a)
            try container.encodeIfPresent(b, forKey: .b)
            try container.encode(differs, forKey: .differs)
        }
    }

    struct Section: Encodable {
        var name: String
        var rows: [Row]
    }

    let sections: [Section]

    init(_ a: ModelVersion, _ b: ModelVersion) {
        func rows(_ left: [String: String], _ right: [String: String]) -> [Row] {
            Set(left.keys).union(right.keys).sorted().map { Row(name: $0, a: left[$0], b: right[$0]) }
        }
        func short(_ hash: String) -> String {
            let hex = hash.hasPrefix("sha256:") ? String(hash.dropFirst(7)) : hash
            return "sha256:" + hex.prefix(12)
        }
        let paramsA = Self.params(a.lineage.params), paramsB = Self.params(b.lineage.params)
        let gateA = Dictionary(a.gate.rules.map { ($0.rule, $0.verdict) }, uniquingKeysWith: { first, _ in first })
        let gateB = Dictionary(b.gate.rules.map { ($0.rule, $0.verdict) }, uniquingKeysWith: { first, _ in first })
        sections = [
            Section(name: "params", rows: rows(paramsA, paramsB)),
            Section(name: "metrics", rows: rows(a.metrics.mapValues(\.shortText), b.metrics.mapValues(\.shortText))),
            Section(name: "gate", rows: [Row(name: "verdict", a: a.gate.passed ? "passed" : "failed", b: b.gate.passed ? "passed" : "failed")]
                        + rows(gateA, gateB)),
            Section(name: "features", rows: rows(a.lineage.features.mapValues { short($0.digest.description) },
                                                 b.lineage.features.mapValues { short($0.digest.description) })),
            Section(name: "data", rows: rows(a.lineage.data.mapValues(short), b.lineage.data.mapValues(short))),
            Section(name: "code", rows: rows(a.lineage.code.mapValues(short), b.lineage.code.mapValues(short))),
            Section(name: "version", rows: [
                Row(name: "model file", a: "\(a.artifactPath) \(short(a.artifact.digest.description))",
                    b: "\(b.artifactPath) \(short(b.artifact.digest.description))"),
                Row(name: "command", a: RunText.commandLine(a.lineage.command), b: RunText.commandLine(b.lineage.command)),
                Row(name: "program", a: a.lineage.program.map { String($0.split(separator: " ").first ?? "") },
                    b: b.lineage.program.map { String($0.split(separator: " ").first ?? "") }),
                Row(name: "source commit", a: String(a.lineage.sourceCommit.prefix(12)), b: String(b.lineage.sourceCommit.prefix(12))),
                Row(name: "trigger", a: a.lineage.trigger, b: b.lineage.trigger),
            ]),
        ]
    }

    /// A version's params JSON as name → value text, one row each.
    static func params(_ json: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [:] }
        var values: [String: String] = [:]
        for (name, value) in object {
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys])
            values[name] = data.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        }
        return values
    }
}
