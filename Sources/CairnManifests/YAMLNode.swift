/// A YAML node with its position, detached from the YAML library so that no Yams type
/// appears outside the parser.
struct YAMLNode: Sendable {
    enum ScalarType: Sendable {
        case string, int, float, bool, null
    }

    enum Value: Sendable {
        case scalar(String, ScalarType)
        case mapping([(key: YAMLNode, value: YAMLNode)])
        case sequence([YAMLNode])
    }

    var value: Value
    var line: Int
    var column: Int

    func location(in file: String) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    /// The value of `key` in a mapping.
    subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = value else { return nil }
        for pair in pairs {
            if case .scalar(let text, let type) = pair.key.value, type != .null, text == key { return pair.value }
        }
        return nil
    }

    /// The scalar's text, for any scalar that is not null.
    var text: String? {
        if case .scalar(let text, let type) = value, type != .null { return text }
        return nil
    }

    var int: Int? {
        if case .scalar(let text, .int) = value {
            return text.utf8.contains(UInt8(ascii: "_")) ? Int(text.replacingOccurrences(of: "_", with: "")) : Int(text)
        }
        return nil
    }

    var double: Double? {
        if case .scalar(let text, let type) = value, type == .int || type == .float { return Self.number(text) }
        return nil
    }

    /// A number as YAML 1.1 writes it, with '_' between digits allowed.
    static func number(_ text: String) -> Double? {
        text.utf8.contains(UInt8(ascii: "_")) ? Double(text.replacingOccurrences(of: "_", with: "")) : Double(text)
    }

    var bool: Bool? {
        guard case .scalar(let text, .bool) = value else { return nil }
        return ["true", "yes", "on", "y"].contains(text.lowercased())
    }

    var isNull: Bool {
        if case .scalar(_, .null) = value { return true }
        return false
    }

    var items: [YAMLNode] {
        if case .sequence(let items) = value { return items }
        return []
    }

    var pairs: [(key: YAMLNode, value: YAMLNode)] {
        if case .mapping(let pairs) = value { return pairs }
        return []
    }

    var strings: [String] { items.compactMap(\.text) }

    /// What a user would call this node's type, for error messages.
    var typeName: String {
        switch value {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(_, .null): "empty (null)"
        case .scalar(_, .bool): "a boolean"
        case .scalar(_, .int): "an integer"
        case .scalar(_, .float): "a number"
        case .scalar(_, .string): "a string"
        }
    }
}
