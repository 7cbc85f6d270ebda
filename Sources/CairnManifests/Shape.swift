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
    /// `unique`: no item may repeat (the object checker reports a repeat; the JSON Schema says `uniqueItems`).
    case array(Shape, minItems: Int, unique: Bool = false)
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
///
/// The path of the node being checked is kept as components and spelled out only for a
/// diagnostic: most documents are valid, and building a path string for every field of every
/// document cost more than the checks themselves.
struct ShapeChecker {
    let file: String
    var diagnostics: [Diagnostic] = []
    private var components: [PathComponent] = []

    private enum PathComponent {
        /// A field of an object: `a.b`, or just `b` at the top.
        case field(String)
        /// A key of a map: always `a.b`.
        case key(String)
        case index(Int)
    }

    init(file: String) {
        self.file = file
    }

    /// The path of the node being checked, such as `spec.stages[1].command`.
    private var path: String {
        var path = ""
        for component in components { Self.append(component, to: &path) }
        return path
    }

    private static func append(_ component: PathComponent, to path: inout String) {
        switch component {
        case .field(let name): path = path.isEmpty ? name : "\(path).\(name)"
        case .key(let name): path = "\(path).\(name)"
        case .index(let index): path = "\(path)[\(index)]"
        }
    }

    /// Checks `node`, found at `component` below the current path.
    private mutating func check(_ node: YAMLNode, _ shape: Shape, at component: PathComponent) {
        components.append(component)
        check(node, shape)
        components.removeLast()
    }

    /// Checks a whole document (the path starts empty).
    mutating func check(_ node: YAMLNode, _ shape: Shape) {
        switch shape {
        case .string(let rule):
            guard let text = node.text, !isCollection(node) else {
                let path = self.path
                return fail(node, path, "\(path) must be a string, not \(node.typeName)", hint: rule.hint)
            }
            if let problem = rule.problem(with: text) {
                let path = self.path
                fail(node, path, "\(path): \(problem.message)", hint: problem.hint ?? rule.hint)
            }
        case .integer(let minimum):
            guard let value = node.int else {
                let path = self.path
                return fail(node, path, "\(path) must be an integer, not \(node.typeName)")
            }
            if let minimum, value < minimum {
                let path = self.path
                fail(node, path, "\(path) must be at least \(minimum), not \(value)")
            }
        case .number(let minimum, let maximum):
            guard let value = node.double, value.isFinite else {
                let path = self.path
                return fail(node, path, "\(path) must be a number, not \(node.typeName)")
            }
            if let minimum, value < minimum {
                let path = self.path
                fail(node, path, "\(path) must be at least \(minimum), not \(value)")
            }
            if let maximum, value > maximum {
                let path = self.path
                fail(node, path, "\(path) must be at most \(maximum), not \(value)")
            }
        case .boolean:
            if node.bool == nil {
                let path = self.path
                fail(node, path, "\(path) must be true or false, not \(node.typeName)")
            }
        case .scalar:
            if isCollection(node) || node.isNull {
                let path = self.path
                fail(node, path, "\(path) must be a string, number or boolean, not \(node.typeName)")
            } else if let value = node.double, !value.isFinite {
                // Such as 1.0e999: too large for a double. Content keys have no spelling for it.
                let path = self.path
                fail(node, path, "\(path) is too large to be a number; quote it to pass it as a string")
            }
        case .array(let element, let minItems, _):
            guard case .sequence(let items) = node.value else {
                let path = self.path
                return fail(node, path, "\(path) must be a list, not \(node.typeName)")
            }
            if items.count < minItems {
                let path = self.path
                fail(node, path, "\(path) must have at least \(minItems) item\(minItems == 1 ? "" : "s")")
            }
            for (index, item) in items.enumerated() { check(item, element, at: .index(index)) }
        case .object(let object):
            checkObject(node, object)
        case .anyMapping:
            guard case .mapping = node.value else {
                let path = self.path
                return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
            }
        case .map(let keyRule, let valueShape):
            guard case .mapping(let pairs) = node.value else {
                let path = self.path
                return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
            }
            var seen: Set<String> = []
            seen.reserveCapacity(pairs.count)
            for (key, value) in pairs {
                let name = key.text ?? ""
                if !seen.insert(name).inserted {
                    let path = self.path
                    fail(key, path, "\(path) has the key \(quote(name)) twice")
                }
                if let problem = keyRule.problem(with: name) {
                    let path = self.path
                    fail(key, "\(path).\(name)", "\(path): key \(quote(name)): \(problem.message)", hint: problem.hint)
                }
                check(value, valueShape, at: .key(name))
            }
        }
    }

    private mutating func checkObject(_ node: YAMLNode, _ object: ObjectShape) {
        guard case .mapping(let pairs) = node.value else {
            let path = self.path
            return fail(node, path, "\(path) must be a mapping, not \(node.typeName)")
        }
        // Which fields were given, by their index in the shape; names that are not fields are
        // kept apart (they are reported as unknown, and rarely appear).
        precondition(object.fields.count <= 64, "an object shape has at most 64 fields")
        var present: UInt64 = 0
        var presentUnknown: Set<String> = []
        for (key, value) in pairs {
            guard let name = key.text, !isCollection(key) else {
                let path = self.path
                fail(key, path, "\(path) has a key that is not a string")
                continue
            }
            guard let index = object.fields.firstIndex(where: { $0.name == name }) else {
                let path = self.path
                let fieldPath = path.isEmpty ? name : "\(path).\(name)"
                if !presentUnknown.insert(name).inserted {
                    fail(key, fieldPath, "\(fieldPath) is given twice")
                    continue
                }
                let names = object.fields.map(\.name)
                let hint = nearest(to: name, in: names).map { "did you mean \(quote($0))?" }
                    ?? "valid fields here: \(names.joined(separator: ", "))"
                fail(key, fieldPath, "unknown field \(quote(name)) in \(path.isEmpty ? "the manifest" : path)", hint: hint)
                continue
            }
            let field = object.fields[index]
            guard present & (1 << index) == 0 else {
                let path = self.path
                let fieldPath = path.isEmpty ? name : "\(path).\(name)"
                fail(key, fieldPath, "\(fieldPath) is given twice")
                continue
            }
            present |= 1 << index
            if value.isNull, !field.allowsNull {
                if field.required {
                    let path = self.path
                    let fieldPath = path.isEmpty ? name : "\(path).\(name)"
                    fail(key, fieldPath, "\(fieldPath) must not be empty")
                }
                continue
            }
            check(value, field.shape, at: .field(name))
        }
        func isPresent(_ name: String) -> Bool {
            object.fields.firstIndex { $0.name == name }.map { present & (1 << $0) != 0 } ?? presentUnknown.contains(name)
        }
        for (index, field) in object.fields.enumerated() where field.required && present & (1 << index) == 0 {
            let path = self.path
            let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
            fail(node, fieldPath, "\(path.isEmpty ? "the manifest" : path) is missing the required field \(quote(field.name))",
                 hint: field.doc)
        }
        for group in object.exactlyOne {
            let given = group.reduce(0) { $0 + (isPresent($1) ? 1 : 0) }
            if given != 1 {
                let path = self.path
                let list = group.map { "\(quote($0))" }.joined(separator: " or ")
                fail(node, path, "\(path) needs exactly one of \(list)\(given > 1 ? ", not \(given)" : "")")
            }
        }
        for group in object.atMostOne where group.reduce(0, { $0 + (isPresent($1) ? 1 : 0) }) > 1 {
            let path = self.path
            let given = group.filter(isPresent)
            fail(node, path, "\(path) may have only one of \(given.map { "\(quote($0))" }.joined(separator: ", "))")
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
