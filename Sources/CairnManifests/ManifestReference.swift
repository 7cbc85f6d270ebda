/// The manifest reference in Markdown, generated from the same shapes the decoder checks,
/// so Docs/manifests.md cannot fall behind the code.
public enum ManifestReference {
    public static func markdown() -> String {
        var text = ""
        for kind in Kind.allCases {
            text += "### \(kind.rawValue)\n\n| field | type | required | meaning |\n|---|---|---|---|\n"
            rows(Spec.shape(of: kind), path: "spec", into: &text)
            text += "\n"
        }
        text += "### metadata (every kind)\n\n| field | type | required | meaning |\n|---|---|---|---|\n"
        rows(Manifest.metadataShape, path: "metadata", into: &text)
        return text
    }

    private static func rows(_ shape: Shape, path: String, into text: inout String) {
        guard case .object(let object) = shape else { return }
        for field in object.fields {
            let fieldPath = "\(path).\(field.name)"
            var meaning = field.doc
            for group in object.exactlyOne where group.contains(field.name) {
                meaning += "; exactly one of " + group.map { "`\($0)`" }.joined(separator: ", ")
            }
            text += "| `\(fieldPath)` | \(typeName(field.shape)) | \(field.required ? "yes" : "") | \(meaning.replacingOccurrences(of: "|", with: "\\|")) |\n"
            switch field.shape {
            case .object:
                rows(field.shape, path: fieldPath, into: &text)
            case .array(let element, _, _):
                rows(element, path: "\(fieldPath)[]", into: &text)
            default:
                break
            }
        }
    }

    private static func typeName(_ shape: Shape) -> String {
        switch shape {
        case .string(let rule):
            switch rule {
            case .text: "string"
            case .dnsLabel: "name (DNS label)"
            case .duration: "duration (`30s`, `10m`, `1h30m`)"
            case .cron: "cron (5 fields or `@daily`…)"
            case .repoPath: "path in the repository"
            case .dependencyPath: "path in the repository, or absolute path under a `--data-root`"
            case .environmentName: "environment variable name"
            case .oneOf(let words): words.map { "`\($0)`" }.joined(separator: " \\| ")
            case .timeZone: "IANA time zone"
            case .metricName: "metric name"
            case .httpPath: "HTTP path"
            case .url: "http(s) URL"
            case .labelKey: "label key"
            case .labelValue: "label value"
            case .memory: "memory (`512MiB`, `16GiB`)"
            }
        case .integer(let minimum): minimum.map { "integer ≥ \($0)" } ?? "integer"
        case .number: "number"
        case .boolean: "boolean"
        case .scalar: "string, number or boolean"
        case .array(let element, let minItems, let unique):
            "list of \(typeName(element))\(minItems > 0 ? " (at least \(minItems))" : "")\(unique ? ", no repeats" : "")"
        case .object(let object): object.fields.isEmpty ? "mapping (empty: `{}`)" : "mapping"
        case .map(let key, let value): "map of \(typeName(.string(key))) to \(typeName(value))"
        case .anyMapping: "mapping"
        }
    }
}
