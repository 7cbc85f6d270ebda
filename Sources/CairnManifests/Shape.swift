/// The declared shape of a manifest: one description that drives strict decoding (every
/// unknown field, wrong type and bad value is reported with its position) and the JSON Schema
/// that editors use, so the two cannot drift apart.
indirect enum Shape: Sendable {
    case string(StringRule)
    case integer(minimum: Int?)
    case number(minimum: Double?, maximum: Double?)
    case boolean
    /// Any string, number or boolean (parameters).
    case scalar
    case array(Shape, minItems: Int)
    case object(ObjectShape)
    /// A mapping whose keys follow `key` and whose values all have one shape.
    case map(key: StringRule, value: Shape)
    /// Any mapping, not looked into (a spec whose kind is unknown).
    case anyMapping
}

struct Field: Sendable {
    var name: String
    var shape: Shape
    var required: Bool
    var doc: String

    static func required(_ name: String, _ shape: Shape, _ doc: String) -> Field {
        Field(name: name, shape: shape, required: true, doc: doc)
    }

    static func optional(_ name: String, _ shape: Shape, _ doc: String) -> Field {
        Field(name: name, shape: shape, required: false, doc: doc)
    }
}

struct ObjectShape: Sendable {
    var fields: [Field]
    /// Groups of fields of which exactly one must be present.
    var exactlyOne: [[String]] = []
    /// Groups of fields of which at most one may be present.
    var atMostOne: [[String]] = []
}

/// Checks a YAML node against a shape, collecting every problem rather than stopping at the first.
struct ShapeChecker {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) {
        self.file = file
    }

    mutating func check(_ node: YAMLNode, _ shape: Shape, path: String) {
        switch shape {
        case .string(let rule):
            guard let text = node.text, !isCollection(node) else {
                return fail(node, path, "\(path) must be a string, not \(node.typeName)", hint: rule.hint)
            }
            if let problem = rule.problem(with: text) {
                fail(node, path, "\(path): \(problem.message)", hint: problem.hint ?? rule.hint)
            }
        case .integer(let minimum):
            guard let value = node.int else {
                return fail(node, path, "\(path) must be an integer, not \(node.typeName)")
            }
            if let minimum, value < minimum { fail(node, path, "\(path) must be at least \(minimum), not \(value)") }
        case .number(let minimum, let maximum):
            guard let value = node.double, value.isFinite else {
                return fail(node, path, "\(path) must be a number, not \(node.typeName)")
            }
            if let minimum, value < minimum { fail(node, path, "\(path) must be at least \(minimum), not \(value)") }
            if let maximum, value > maximum { fail(node, path, "\(path) must be at most \(maximum), not \(value)") }
        case .boolean:
            if node.bool == nil { fail(node, path, "\(path) must be true or false, not \(node.typeName)") }
        case .scalar:
            if isCollection(node) || node.isNull {
                fail(node, path, "\(path) must be a string, number or boolean, not \(node.typeName)")
            } else if let value = node.double, !value.isFinite {
                // Such as 1.0e999: too large for a double. Content keys have no spelling for it.
                fail(node, path, "\(path) is too large to be a number; quote it to pass it as a string")
            }
        case .array(let element, let minItems):
            guard case .sequence(let items) = node.value else {
                return fail(node, path, "\(path) must be a list, not \(node.typeName)")
            }
            if items.count < minItems {
                fail(node, path, "\(path) must have at least \(minItems) item\(minItems == 1 ? "" : "s")")
            }
            for (index, item) in items.enumerated() { check(item, element, path: "\(path)[\(index)]") }
        case .object(let object):
            checkObject(node, object, path: path)
        case .anyMapping:
            guard case .mapping = node.value else {
                return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
            }
        case .map(let keyRule, let valueShape):
            guard case .mapping(let pairs) = node.value else {
                return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
            }
            var seen: Set<String> = []
            for (key, value) in pairs {
                let name = key.text ?? ""
                if !seen.insert(name).inserted { fail(key, path, "\(path) has the key \"\(name)\" twice") }
                if let problem = keyRule.problem(with: name) {
                    fail(key, "\(path).\(name)", "\(path): key \"\(name)\": \(problem.message)", hint: problem.hint)
                }
                check(value, valueShape, path: "\(path).\(name)")
            }
        }
    }

    private mutating func checkObject(_ node: YAMLNode, _ object: ObjectShape, path: String) {
        guard case .mapping(let pairs) = node.value else {
            return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
        }
        let names = object.fields.map(\.name)
        var present: Set<String> = []
        for (key, value) in pairs {
            guard let name = key.text, !isCollection(key) else {
                fail(key, path, "\(path) has a key that is not a string")
                continue
            }
            let fieldPath = path.isEmpty ? name : "\(path).\(name)"
            if !present.insert(name).inserted {
                fail(key, fieldPath, "\(fieldPath) is given twice")
                continue
            }
            guard let field = object.fields.first(where: { $0.name == name }) else {
                let hint = nearest(to: name, in: names).map { "did you mean \"\($0)\"?" }
                    ?? "valid fields here: \(names.joined(separator: ", "))"
                fail(key, fieldPath, "unknown field \"\(name)\" in \(path.isEmpty ? "the manifest" : path)", hint: hint)
                continue
            }
            if value.isNull, !field.allowsNull {
                if field.required { fail(key, fieldPath, "\(fieldPath) must not be empty") }
                continue
            }
            check(value, field.shape, path: fieldPath)
        }
        for field in object.fields where field.required && !present.contains(field.name) {
            let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
            fail(node, fieldPath, "\(path.isEmpty ? "the manifest" : path) is missing the required field \"\(field.name)\"",
                 hint: field.doc)
        }
        for group in object.exactlyOne {
            let given = group.filter { present.contains($0) }
            if given.count != 1 {
                let list = group.map { "\"\($0)\"" }.joined(separator: " or ")
                fail(node, path, "\(path) needs exactly one of \(list)\(given.count > 1 ? ", not \(given.count)" : "")")
            }
        }
        for group in object.atMostOne {
            let given = group.filter { present.contains($0) }
            if given.count > 1 {
                fail(node, path, "\(path) may have only one of \(given.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
        }
    }

    private func isCollection(_ node: YAMLNode) -> Bool {
        switch node.value {
        case .mapping, .sequence: true
        case .scalar: false
        }
    }

    private mutating func fail(_ node: YAMLNode, _ path: String, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(at: node.location(in: file), field: path.isEmpty ? nil : path, message, hint: hint))
    }
}

extension Field {
    /// Optional fields may be written as `field:` with no value (YAML null) to mean "absent".
    var allowsNull: Bool { !required }
}
