/// Changes one scalar of one manifest in the text people wrote, and nothing else.
///
/// A proposal (a rollback's reverse assignment) is a commit people review and merge: a
/// re-serialised file would lose their comments, key order, quoting and flow style, and make
/// a one-line change into a diff of the whole file. So the scalar is found with the parser's
/// own positions and its text is replaced in place; the result is read again to make sure it
/// says what was meant, and an edit that cannot be made exactly is refused with the reason.
public enum ManifestEditor {
    /// `text` with the value at `field` (such as `spec`, `assignments`, `production`) of the
    /// document of `object` set from `expected` to `value`. `file` is only for messages.
    public static func replace(in text: String, file: String, object: ObjectRef, field: [String],
                               expected: String, with value: String) throws(ManifestEditError) -> String {
        let path = field.joined(separator: ".")
        let node = try scalar(at: field, of: object, in: text, file: file)
        let location = SourceLocation(file: file, line: node.line, column: node.column)
        guard node.text == expected else {
            throw ManifestEditError(.unexpectedValue, at: location,
                                    "\(object) \(path) is \(node.text.map { "'\($0)'" } ?? node.typeName), not '\(expected)' as the proposal expected")
        }
        guard let start = offset(line: node.line, column: node.column, in: text) else {
            throw ManifestEditError(.unsupported, at: location, "cannot find the text of \(object) \(path)")
        }
        let written = try literal(of: expected, as: text.utf8[start...], at: location, path: path)
        let replacement = try written.style.literal(value, at: location)
        let end = text.utf8.index(start, offsetBy: written.length)
        // Cut by Unicode scalars, not characters: a String subscript would round to a
        // character boundary, and a combining mark after the value would move the cut.
        let edited = String(text.unicodeScalars[..<start]) + replacement + String(text.unicodeScalars[end...])
        try check(edited, file: file, object: object, field: field, reads: value, like: node, at: location)
        return edited
    }

    /// The scalar node at `field` in the first document of `object`.
    private static func scalar(at field: [String], of object: ObjectRef, in text: String,
                               file: String) throws(ManifestEditError) -> YAMLNode {
        let document = try document(of: object, in: text, file: file)
        var node = document
        for (depth, key) in field.enumerated() {
            guard let child = node[key] else {
                let path = field[...depth].joined(separator: ".")
                throw ManifestEditError(.fieldNotFound, at: SourceLocation(file: file, line: node.line, column: node.column),
                                        "\(object) has no \(path)")
            }
            node = child
        }
        guard case .scalar = node.value else {
            throw ManifestEditError(.unsupported, at: SourceLocation(file: file, line: node.line, column: node.column),
                                    "\(object) \(field.joined(separator: ".")) is \(node.typeName), not a single value")
        }
        return node
    }

    private static func document(of object: ObjectRef, in text: String, file: String) throws(ManifestEditError) -> YAMLNode {
        let reader = YAMLReader(text)
        do {
            while let document = try reader.nextDocument() {
                if document["kind"]?.text == object.kind.rawValue, document["metadata"]?["name"]?.text == object.name {
                    return document
                }
            }
        } catch let error as YAMLSyntaxError {
            throw ManifestEditError(.unreadable, at: SourceLocation(file: file, line: error.line, column: error.column),
                                    "the file is not valid YAML: \(error.message)")
        } catch {
            throw ManifestEditError(.unreadable, at: SourceLocation(file: file, line: 1, column: 1), "the file cannot be read: \(error)")
        }
        throw ManifestEditError(.objectNotFound, at: SourceLocation(file: file, line: 1, column: 1), "the file has no document of \(object)")
    }

    /// How the scalar is written at `source` (plain or quoted) and how many bytes it takes,
    /// when that text is exactly `expected`: anything else (a block scalar, a tag, an anchor,
    /// an escape, a value folded over lines) is refused rather than guessed at.
    private static func literal(of expected: String, as source: Substring.UTF8View, at location: SourceLocation,
                                path: String) throws(ManifestEditError) -> (style: ScalarStyle, length: Int) {
        for style in [ScalarStyle.doubleQuoted, .singleQuoted, .plain] {
            guard let written = try? style.literal(expected, at: location) else { continue }
            if source.starts(with: written.utf8) { return (style, written.utf8.count) }
        }
        let shown = String(decoding: source.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }.prefix(60), as: UTF8.self)
        throw ManifestEditError(.unsupported, at: location,
                                "\(path) is written as '\(shown)', which Cairn does not rewrite (only a plain or quoted single-line value)")
    }

    /// Reads the edited text again: the field must now hold `value`, of the same type as before
    /// (a plain `2` stays an integer; a value that would read as something else is refused).
    private static func check(_ edited: String, file: String, object: ObjectRef, field: [String], reads value: String,
                              like original: YAMLNode, at location: SourceLocation) throws(ManifestEditError) {
        let path = field.joined(separator: ".")
        let node: YAMLNode
        do {
            node = try scalar(at: field, of: object, in: edited, file: file)
        } catch {
            throw ManifestEditError(.unsupported, at: location, "writing '\(value)' at \(path) would break the file (\(error.message))")
        }
        guard case .scalar(let text, let type) = node.value, case .scalar(_, let before) = original.value,
              text == value, type == before else {
            throw ManifestEditError(.unsupported, at: location,
                                    "writing '\(value)' at \(path) would not read back as that \(original.typeName)")
        }
    }

    /// The byte offset of a 1-based line and column as libyaml counts them: lines end at
    /// `\n`, `\r\n` or `\r`; columns count characters (Unicode scalars); a leading byte-order
    /// mark is not counted.
    static func offset(line: Int, column: Int, in text: String) -> String.UTF8View.Index? {
        let scalars = text.unicodeScalars
        var index = scalars.startIndex
        if index < scalars.endIndex, scalars[index] == "\u{FEFF}" { index = scalars.index(after: index) }
        var currentLine = 1
        while currentLine < line {
            guard index < scalars.endIndex else { return nil }
            let character = scalars[index]
            index = scalars.index(after: index)
            if character == "\n" {
                currentLine += 1
            } else if character == "\r" {
                if index < scalars.endIndex, scalars[index] == "\n" { index = scalars.index(after: index) }
                currentLine += 1
            }
        }
        for _ in 1..<max(column, 1) {
            guard index < scalars.endIndex, scalars[index] != "\n", scalars[index] != "\r" else { return nil }
            index = scalars.index(after: index)
        }
        return index.samePosition(in: text.utf8)
    }
}

/// How a single-line scalar is written.
enum ScalarStyle {
    case plain, singleQuoted, doubleQuoted

    /// `value` written in this style, or an error when this style cannot hold it as it is
    /// (no escapes are written: a value that needs one is not a value a proposal sets).
    func literal(_ value: String, at location: SourceLocation) throws(ManifestEditError) -> String {
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ManifestEditError(.unsupported, at: location, "'\(value)' holds a control character")
        }
        switch self {
        case .plain:
            return value
        case .singleQuoted:
            return "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
        case .doubleQuoted:
            guard !value.contains("\""), !value.contains("\\") else {
                throw ManifestEditError(.unsupported, at: location, "'\(value)' would need escapes in double quotes")
            }
            return "\"" + value + "\""
        }
    }
}

/// An edit that cannot be made as asked: what was wrong, and where in the manifest.
public struct ManifestEditError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case unreadable, objectNotFound, fieldNotFound, unexpectedValue, unsupported }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The file is not YAML the parser can read.
        public static let unreadable = Code(.unreadable)
        /// No document in the file is the object.
        public static let objectNotFound = Code(.objectNotFound)
        /// The object has no such field.
        public static let fieldNotFound = Code(.fieldNotFound)
        /// The field holds something other than what the proposal expected (git changed since).
        public static let unexpectedValue = Code(.unexpectedValue)
        /// The field is written in a way Cairn does not rewrite, or the new value would not fit it.
        public static let unsupported = Code(.unsupported)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let location: SourceLocation
    public let message: String

    init(_ code: Code, at location: SourceLocation, _ message: String) {
        self.code = code
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }
}
