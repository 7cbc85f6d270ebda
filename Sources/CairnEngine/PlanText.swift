public import CairnCore
import CairnManifests
import Foundation

/// How a plan reads: as text in a terminal or a CI log, and as Markdown in a pull-request
/// comment. Everything from the change itself (paths, messages that quote manifests) is
/// escaped in Markdown, so a pull request cannot write links or HTML into its own review.
public enum PlanText {
    /// A pull-request comment has room for this many rows per table; the rest are counted.
    static let markdownRows = 100

    public static func text(_ plan: Plan) -> String {
        var lines: [String] = []
        lines.append("Cairn plan: \(String(plan.head.prefix(10))) compared with \(String(plan.comparedWith.prefix(10)))")
        if let note = plan.baseNote { lines.append("note: \(note)") }
        lines.append("")
        if !plan.invalid.isEmpty {
            lines.append("Invalid manifests at head (\(plan.invalid.count)):")
            lines += plan.invalid.map { "  \($0)" }
            lines.append("")
        }
        if !plan.warnings.isEmpty {
            lines.append("Warnings (\(plan.warnings.count)):")
            lines += plan.warnings.map { "  \($0)" }
            lines.append("")
        }
        lines.append("Promotions" + (plan.registry.map { " (judged from \($0))" } ?? "") + ":")
        if plan.promotions.isEmpty { lines.append("  none") }
        for promotion in plan.promotions {
            lines.append("  \(promotion.model) \(move(promotion)): \(verdict(promotion))")
            lines.append("    \(promotion.message)")
            for line in comparison(promotion) { lines.append("    \(line)") }
        }
        lines.append("")
        lines.append("Objects (\(plan.objects.count)):")
        if plan.objects.isEmpty { lines.append("  no object changes") }
        lines += table(header: ["OBJECT", "CHANGE", "FILE", "FIELDS"], rows: plan.objects.map { change in
            [change.object, change.change.rawValue, change.file, change.fields.joined(separator: ", ").orDash]
        }).split(separator: "\n").map { "  \($0)" }
        lines.append("")
        lines.append("Runs whose key changes (\(plan.runs.count)):")
        if plan.runs.isEmpty { lines.append("  none: nothing reruns or retrains") }
        for run in plan.runs {
            lines.append("  \(run.object)\(run.stage.map { " stage \($0)" } ?? " (training)"): " + run.reasons.joined(separator: "; "))
        }
        lines.append("")
        lines.append(conclusion(plan))
        return lines.joined(separator: "\n") + "\n"
    }

    public static func markdown(_ plan: CairnEngine.Plan) -> String {
        var lines: [String] = []
        lines.append("### Cairn plan: " + (plan.acceptable ? "✅ acceptable" : "❌ not acceptable"))
        lines.append("")
        lines.append("Head `\(plan.head.prefix(10))` compared with `\(plan.comparedWith.prefix(10))`. " + md(conclusion(plan)))
        if let note = plan.baseNote { lines += ["", "> " + md(note)] }
        if !plan.invalid.isEmpty {
            lines += ["", "#### Invalid manifests at head (\(plan.invalid.count))", ""]
            lines += plan.invalid.prefix(markdownRows).map { "- " + md($0) }
            if plan.invalid.count > markdownRows { lines.append("- … and \(plan.invalid.count - markdownRows) more (run `cairn validate`)") }
        }
        if !plan.promotions.isEmpty {
            lines += ["", "#### Promotions", ""]
            if let registry = plan.registry { lines += ["Judged from " + md(registry) + ".", ""] }
            lines += ["| Model | Stage | Change | Verdict |", "|---|---|---|---|"]
            for promotion in plan.promotions {
                lines.append("| \(md(promotion.model)) | \(md(promotion.stage)) | \(md(change(promotion))) | \(md(verdict(promotion))): \(md(promotion.message)) |")
            }
            for promotion in plan.promotions {
                guard let challenger = promotion.challenger else { continue }
                lines += ["", "**\(md(promotion.model))@\(challenger.version) for \(md(promotion.stage))**"
                          + (promotion.champion.map { " (challenger) against \(md(promotion.model))@\($0.version) (holds it now)" } ?? ""), ""]
                let champion = promotion.champion
                let names = Set(challenger.metrics.keys).union(champion?.metrics.keys ?? [:].keys).sorted()
                if !names.isEmpty {
                    lines.append("| metric | " + (champion.map { "@\($0.version) (now)" } ?? "") + (champion == nil ? "" : " | ")
                                 + "@\(challenger.version)" + (champion == nil ? " |" : " | Δ |"))
                    lines.append(champion == nil ? "|---|---|" : "|---|---|---|---|")
                    for name in names.prefix(markdownRows) {
                        let new = challenger.metrics[name]
                        guard let champion else { lines.append("| \(md(name)) | \(number(new)) |"); continue }
                        let old = champion.metrics[name]
                        let delta = old.flatMap { old in new.map { String(format: "%+.4g", $0 - old) } } ?? "-"
                        lines.append("| \(md(name)) | \(number(old)) | \(number(new)) | \(delta) |")
                    }
                    lines.append("")
                }
                lines.append("- gate of @\(challenger.version): " + md(challenger.gate))
                if let champion { lines.append("- gate of @\(champion.version): " + md(champion.gate)) }
            }
        } else if plan.registryProblem == nil {
            lines += ["", "No stage promotions."]
        }
        if !plan.runs.isEmpty {
            lines += ["", "#### Runs whose key changes (\(plan.runs.count))", ""]
            for run in plan.runs.prefix(markdownRows) {
                lines.append("- " + md(run.object) + (run.stage.map { " stage " + md($0) } ?? " (training)") + ": " + md(run.reasons.joined(separator: "; ")))
            }
            if plan.runs.count > markdownRows { lines.append("- … and \(plan.runs.count - markdownRows) more") }
        }
        if !plan.objects.isEmpty {
            lines += ["", "<details><summary>Objects (\(plan.objects.count))</summary>", "", "| Object | Change | File | Fields |", "|---|---|---|---|"]
            for change in plan.objects.prefix(markdownRows) {
                lines.append("| \(md(change.object)) | \(change.change.rawValue) | \(md(change.file)) | \(md(change.fields.joined(separator: ", ").orDash)) |")
            }
            if plan.objects.count > markdownRows { lines.append("| … and \(plan.objects.count - markdownRows) more | | | |") }
            lines += ["", "</details>"]
        }
        if !plan.warnings.isEmpty {
            lines += ["", "<details><summary>Warnings (\(plan.warnings.count))</summary>", ""]
            lines += plan.warnings.prefix(markdownRows).map { "- " + md($0) }
            lines += ["", "</details>"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The verdict in one sentence, for the end of the text and the top of the Markdown.
    static func conclusion(_ plan: CairnEngine.Plan) -> String {
        var problems: [String] = []
        if !plan.invalid.isEmpty { problems.append("\(plan.invalid.count) invalid manifest finding(s)") }
        let refused = plan.promotions.filter { $0.decision == .refused }
        if !refused.isEmpty {
            problems.append("\(refused.count) refused promotion(s) (" + refused.map { "\($0.model) \($0.stage): \($0.rule ?? "refused")" }
                .joined(separator: ", ") + ")")
        }
        let unchecked = plan.promotions.filter { $0.decision == .unchecked }
        if !unchecked.isEmpty { problems.append("\(unchecked.count) promotion(s) that could not be checked (\(plan.registryProblem ?? ""))") }
        if problems.isEmpty {
            let promotions = plan.promotions.filter { $0.decision == .accepted }.count
            return "Acceptable: every manifest is valid" + (promotions > 0 ? " and the promotion policy allows \(promotions) promotion(s)." : ".")
        }
        return "Not acceptable: " + problems.joined(separator: "; ") + "."
    }

    private static func move(_ promotion: CairnEngine.Plan.Promotion) -> String {
        "\(promotion.stage) \(change(promotion))"
    }

    private static func change(_ promotion: CairnEngine.Plan.Promotion) -> String {
        var text = "\(promotion.from.map { "@\($0)" } ?? "none") → \(promotion.to.map { "@\($0)" } ?? "none")"
        if let holder = promotion.holder, holder != promotion.from { text += " (@\(holder) holds it now)" }
        return text
    }

    private static func verdict(_ promotion: CairnEngine.Plan.Promotion) -> String {
        switch promotion.decision {
        case .accepted: "allowed"
        case .unchanged: "allowed (already holds)"
        case .refused: "REFUSED (\(promotion.rule ?? "policy"))"
        case .unchecked: "UNCHECKED"
        }
    }

    /// Champion against challenger, metric by metric, with both gates: for the text output.
    private static func comparison(_ promotion: CairnEngine.Plan.Promotion) -> [String] {
        guard let challenger = promotion.challenger else { return [] }
        var lines: [String] = []
        let champion = promotion.champion
        let names = Set(challenger.metrics.keys).union(champion?.metrics.keys ?? [:].keys).sorted()
        for name in names {
            let new = challenger.metrics[name]
            if let champion {
                let old = champion.metrics[name]
                lines.append("\(name): @\(champion.version) \(number(old)) → @\(challenger.version) \(number(new))")
            } else {
                lines.append("\(name): @\(challenger.version) \(number(new))")
            }
        }
        lines.append("gate of @\(challenger.version): \(challenger.gate)")
        if let champion { lines.append("gate of @\(champion.version): \(champion.gate)") }
        return lines
    }

    private static func number(_ value: Double?) -> String { value?.shortText ?? "-" }

    /// Text from the change, safe in Markdown: one line, and every character Markdown or HTML
    /// gives a meaning to is escaped. A word that GitHub or GitLab would make a link of by
    /// itself (`http://evil.example`, `www.evil.example`; their autolinks ignore backslashes,
    /// and GitLab's run on the rendered text) goes in a code span instead: the same characters,
    /// and no link. Such a word ends at a space, a `|` or a backtick, so it can hold neither a
    /// table's cell separator nor the end of its own code span.
    static func md(_ text: String) -> String {
        var out = ""
        var word = ""
        func endWord() {
            guard !word.isEmpty else { return }
            let lowercased = word.lowercased()
            if lowercased.contains("://") || lowercased.contains("www.") {
                out += "`" + word + "`"
            } else {
                for character in word { out += escaped(character) }
            }
            word = ""
        }
        for character in text {
            if character.isWhitespace || character == "|" || character == "`" {
                endWord()
                out += escaped(character)
            } else {
                word.append(character)
            }
        }
        endWord()
        return out
    }

    private static func escaped(_ character: Character) -> String {
        // A newline, "\r\n" too: one Character, which a case "\n" does not match.
        if character.isNewline { return " " }
        return switch character {
        case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "#", "~", "&": "\\\(character)"
        default: String(character)
        }
    }
}

/// A plain text table with columns padded to their widest cell; the last column is not padded.
/// A cell's line breaks (a failed run's log lines in a message) become " / ", so every row
/// stays one line.
public func table(header: [String], rows: [[String]]) -> String {
    let all = [header] + rows.map { row in row.map { $0.contains("\n") ? $0.split(separator: "\n").joined(separator: " / ") : $0 } }
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}


extension String {
    public var orDash: String { isEmpty ? "-" : self }
}
