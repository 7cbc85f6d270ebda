public import Foundation

/// JSON Schemas (draft-07) for the manifests, generated from the same shapes the decoder
/// checks against, so an editor's YAML language server and `cairn validate` agree.
public enum JSONSchema {
    public static let baseURL = "https://cairn.dev/schema/v1/"

    /// The schema of one kind, as pretty-printed JSON with sorted keys.
    public static func document(for kind: Kind) -> Data {
        var schema = envelope(for: kind)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        schema["$id"] = baseURL + "\(kind.rawValue).json"
        schema["title"] = "Cairn \(kind.rawValue) (cairn/v1)"
        return serialise(schema)
    }

    /// A schema for any manifest, choosing the kind's schema by the `kind` field.
    public static func combinedDocument() -> Data {
        let branches: [[String: Any]] = Kind.allCases.map { kind in
            [
                "if": ["properties": ["kind": ["const": kind.rawValue]], "required": ["kind"]],
                "then": envelope(for: kind),
            ]
        }
        let schema: [String: Any] = [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": baseURL + "cairn.json",
            "title": "Cairn manifest (cairn/v1), any kind",
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": ["kind": ["enum": Kind.allCases.map(\.rawValue)]],
            "allOf": branches,
        ]
        return serialise(schema)
    }

    /// File name → contents of every schema file, as kept under `Manifests/schema/`.
    public static func files() -> [String: Data] {
        var files = ["cairn.json": combinedDocument()]
        for kind in Kind.allCases { files["\(kind.rawValue).json"] = document(for: kind) }
        return files
    }

    private static func envelope(for kind: Kind) -> [String: Any] {
        var schema = fragment(.object(Manifest.envelopeShape(for: kind)))
        if var properties = schema["properties"] as? [String: Any] {
            properties["kind"] = ["const": kind.rawValue, "description": "the kind of object"]
            schema["properties"] = properties
        }
        return schema
    }

    private static func serialise(_ schema: [String: Any]) -> Data {
        // Only literals built above go in, so serialisation cannot fail.
        var data = (try? JSONSerialization.data(withJSONObject: schema, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    static func fragment(_ shape: Shape) -> [String: Any] {
        switch shape {
        case .string(let rule):
            var schema: [String: Any] = ["type": "string"]
            for (key, value) in constraint(rule) { schema[key] = value }
            return schema
        case .integer(let minimum):
            var schema: [String: Any] = ["type": "integer"]
            if let minimum { schema["minimum"] = minimum }
            return schema
        case .number(let minimum, let maximum):
            var schema: [String: Any] = ["type": "number"]
            if let minimum { schema["minimum"] = minimum }
            if let maximum { schema["maximum"] = maximum }
            return schema
        case .boolean:
            return ["type": "boolean"]
        case .scalar:
            return ["type": ["string", "number", "boolean"]]
        case .array(let element, let minItems, let unique):
            var schema: [String: Any] = ["type": "array", "items": fragment(element)]
            if minItems > 0 { schema["minItems"] = minItems }
            if unique { schema["uniqueItems"] = true }
            return schema
        case .anyMapping:
            return ["type": "object"]
        case .map(let key, let value):
            return ["type": "object", "propertyNames": fragment(.string(key)), "additionalProperties": fragment(value)]
        case .object(let object):
            var properties: [String: Any] = [:]
            for field in object.fields {
                var property = fragment(field.shape)
                property["description"] = field.doc
                properties[field.name] = property
            }
            var schema: [String: Any] = ["type": "object", "properties": properties, "additionalProperties": false]
            let required = object.fields.filter(\.required).map(\.name)
            if !required.isEmpty { schema["required"] = required }
            var rules: [[String: Any]] = object.exactlyOne.map { group in
                ["oneOf": group.map { ["required": [$0]] }]
            }
            rules += object.atMostOne.map { group in
                ["not": ["anyOf": pairs(of: group).map { ["required": $0] }]]
            }
            if rules.count == 1 { for (key, value) in rules[0] { schema[key] = value } }
            if rules.count > 1 { schema["allOf"] = rules }
            return schema
        }
    }

    private static func pairs(of group: [String]) -> [[String]] {
        var result: [[String]] = []
        for (index, first) in group.enumerated() {
            for second in group.dropFirst(index + 1) { result.append([first, second]) }
        }
        return result
    }

    /// The JSON Schema constraint of a string rule; what a pattern cannot say (cron fields'
    /// ranges, time zone names, paths leaving the root through '..') is left to `cairn validate`.
    private static func constraint(_ rule: StringRule) -> [String: Any] {
        switch rule {
        case .text: ["minLength": 1]
        case .dnsLabel: ["pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"]
        case .duration: ["pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$", "minLength": 2]
        case .cron: ["pattern": "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9A-Za-z*/,-]+\\s+){4}[0-9A-Za-z*/,-]+)$"]
        case .repoPath: ["pattern": "^(?!/)(?!~)(?!\\.\\./)(?!\\.\\.$)[^\\\\\\u0000]+$"]
        case .dependencyPath:
            // A repository path as above, or an absolute path whose components are neither
            // empty, '.' nor '..', without control characters.
            ["anyOf": [
                ["pattern": "^(?!/)(?!~)(?!\\.\\./)(?!\\.\\.$)[^\\\\\\u0000]+$"],
                ["pattern": "^(/(?!\\.\\.?(/|$))[^/\\u0000-\\u001f\\u007f]+)+$"],
            ]]
        case .environmentName: ["pattern": "^[A-Za-z_][A-Za-z0-9_]*$"]
        case .oneOf(let words): ["enum": words]
        case .timeZone: ["minLength": 1]
        case .metricName: ["pattern": "^[A-Za-z_][A-Za-z0-9_.:-]*$"]
        case .httpPath: ["pattern": "^/\\S*$"]
        case .url: ["pattern": "^https?://[^\\s/]+", "format": "uri"]
        case .labelKey: ["pattern": "^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"]
        case .labelValue: ["pattern": "^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$"]
        case .memory: ["pattern": "^[0-9]+(KiB|MiB|GiB|TiB|K|M|G|T)$"]
        }
    }
}
