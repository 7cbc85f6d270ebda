import CairnCore
import CairnManifests
import Foundation

/// A metrics file that cannot be read as a JSON object of metric name to finite number: the
/// training fails with this reason (its model is not registered).
struct MetricsProblem: Error, CustomStringConvertible {
    let description: String
}

enum Metrics {
    /// Larger metrics files are refused: a metrics file is a handful of numbers.
    static let sizeLimit = 1 << 20
    static let maximumCount = 256

    /// Text from a metrics file as messages may quote it: control characters (newlines,
    /// escapes) become `?`, so a file cannot forge lines of a status commit.
    static func printable(_ text: Substring) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
    static let maximumNameLength = 128

    /// Reads `{"auc": 0.91, "accuracy": 0.87}`. Every value must be a finite number: NaN,
    /// infinities, strings, booleans, nulls and nested values are refused, naming the metric.
    static func parse(_ bytes: Data, path: String) throws(MetricsProblem) -> [String: Double] {
        let values: [String: Value]
        do {
            values = try JSONDecoder().decode([String: Value].self, from: bytes)
        } catch {
            let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
            // Python's json.dump writes NaN and Infinity, which are not JSON.
            for token in ["NaN", "-Infinity", "Infinity"] where text.contains(token) {
                throw MetricsProblem(description: "the metrics file \(path) holds \(token), which is not a number JSON allows (a metric that could not be computed?)")
            }
            if (try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) != nil {
                throw MetricsProblem(description: "the metrics file \(path) is JSON but not an object of metric name to number")
            }
            let start = printable(text.prefix(60))
            throw MetricsProblem(description: "the metrics file \(path) is not JSON (it starts \"\(start)\")")
        }
        // A metrics file is a handful of numbers; its names end up in status commits.
        guard values.count <= maximumCount else {
            throw MetricsProblem(description: "the metrics file \(path) holds \(values.count) metrics, more than the \(maximumCount) a version keeps")
        }
        var metrics: [String: Double] = [:]
        for (name, value) in values {
            guard !name.isEmpty, name.count <= maximumNameLength, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw MetricsProblem(description: "the metrics file \(path) has a metric name that is empty, longer than \(maximumNameLength) "
                                     + "characters or holds control characters (\"\(printable(name.prefix(40)))\")")
            }
            guard case .number(let number) = value else {
                throw MetricsProblem(description: "metric \"\(name.prefix(60))\" in \(path) is \(value.description), not a number")
            }
            metrics[name] = number
        }
        return metrics
    }

    /// One value of the metrics object, as JSON has it.
    enum Value: Decodable, CustomStringConvertible {
        case number(Double), string(String), boolean(Bool), null, other, outOfRange

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null } else if let flag = try? container.decode(Bool.self) { self = .boolean(flag) }
            else if let number = try? container.decode(Double.self) { self = .number(number) }
            else if let text = try? container.decode(String.self) { self = .string(text) }
            else if (try? container.decode([Value].self)) != nil || (try? container.decode([String: Value].self)) != nil { self = .other }
            // What is left is a number JSON allows and a double cannot hold (1e999).
            else { self = .outOfRange }
        }

        var description: String {
            switch self {
            case .number(let value): "\(value)"
            case .string(let text): "a string (\"\(Metrics.printable(text.prefix(40)))\")"
            case .boolean(let flag): "a boolean (\(flag))"
            case .null: "null"
            case .other: "a list or an object"
            case .outOfRange: "a number beyond what a double holds"
            }
        }
    }
}

/// Applies a schedule's gate to a new version's metrics.
struct Gate {
    let rules: [TrainingScheduleSpec.GateRule]
    /// Which version holds each stage of the model, as Cairn accepted them (a refused
    /// promotion names no champion: the version that still holds the stage does).
    let champions: [String: Int]
    let modelName: String
    let versions: any ModelVersions
    /// The feature artifacts the challenger was trained and measured on.
    let features: [String: Artifact]

    func verdict(for metrics: [String: Double]) throws -> GateVerdict {
        GateVerdict(rules: try rules.map { try apply($0, metrics) })
    }

    private func apply(_ rule: TrainingScheduleSpec.GateRule, _ metrics: [String: Double]) throws -> GateRuleResult {
        guard let value = metrics[rule.metric] else {
            let known = metrics.keys.sorted().prefix(8).joined(separator: ", ")
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: nil, threshold: rule.atLeast ?? rule.atMost, passed: false,
                                  verdict: "the metrics have no \(rule.metric) (they have \(known.isEmpty ? "none" : known))")
        }
        let shown = { (value: Double) in value.shortText }
        if let atLeast = rule.atLeast {
            let passed = value >= atLeast
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: atLeast, passed: passed,
                                  verdict: "\(rule.metric) \(shown(value)) \(passed ? ">=" : "<") \(shown(atLeast))")
        }
        if let atMost = rule.atMost {
            let passed = value <= atMost
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: atMost, passed: passed,
                                  verdict: "\(rule.metric) \(shown(value)) \(passed ? "<=" : ">") \(shown(atMost))")
        }
        guard let stage = rule.beats else {
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: nil, passed: true, verdict: "no condition")
        }
        let margin = rule.by ?? 0
        guard let number = champions[stage] else {
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: nil, passed: true,
                                  verdict: "no version holds \(stage) yet, so there is nothing to beat: passes")
        }
        guard let champion = try versions.version(modelName, number) else {
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: nil, passed: false, champion: number,
                                  verdict: "\(stage) is assigned version \(number) of \(modelName), which is not registered, so it cannot be compared")
        }
        guard let best = champion.metrics[rule.metric] else {
            return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: nil, passed: false, champion: number,
                                  verdict: "the champion, version \(number), has no \(rule.metric) to compare with")
        }
        let threshold = best + margin
        // With a margin, winning by exactly it passes, whatever the binary fractions make of
        // the sum (0.8 + 0.05 is 0.8500000000000001): equal within a part in a billion counts.
        let tolerance = 1e-9 * max(1, abs(best), abs(margin))
        let passed = value > threshold || (margin > 0 && value >= threshold - tolerance)
        let same = champion.lineage.features == features
        let across = same ? "" : " (measured on other feature data than the champion's: the comparison is across data)"
        let by = margin == 0 ? "" : " + \(shown(margin))"
        return GateRuleResult(rule: rule.text, metric: rule.metric, value: value, threshold: threshold, passed: passed, champion: number,
                              sameFeatures: same,
                              verdict: "\(rule.metric) \(shown(value)) \(passed ? "beats" : "does not beat") \(stage) (version \(number): "
                                  + "\(shown(best))\(by))\(across)")
    }
}
