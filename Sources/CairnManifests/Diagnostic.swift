/// A place in a manifest file: `/`-separated path from the repository root, 1-based line and column.
public struct SourceLocation: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The file name's control characters escaped: a file named with a line break in it cannot
    /// print a forged `file:line:col: error:` line.
    public var description: String { "\(escapingControlCharacters(file)):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// One finding about the manifests: where, what, and what to do about it.
public struct Diagnostic: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Severity: String, Hashable, Sendable, Codable {
        case error, warning
    }

    public var severity: Severity
    public var location: SourceLocation
    /// The field the finding is about, such as `spec.stages[1].command`, when there is one.
    public var field: String?
    /// The object the finding belongs to (`Kind/name`), when it is known.
    public var object: String?
    public var message: String
    /// What to do about it, such as the nearest valid field name.
    public var hint: String?

    public init(_ severity: Severity = .error, at location: SourceLocation, field: String? = nil, object: String? = nil,
                _ message: String, hint: String? = nil) {
        self.severity = severity
        self.location = location
        self.field = field
        self.object = object
        // Whatever a site quoted, a finding is one line of bounded length: a value holding a
        // line break must not print a forged `file:line:col: error:` line of its own.
        self.message = Self.oneLine(message, limit: 600)
        self.hint = hint.map { Self.oneLine($0, limit: 300) }
    }

    static func oneLine(_ text: String, limit: Int) -> String {
        let escaped = escapingControlCharacters(text)
        guard escaped.count > limit else { return escaped }
        return String(escaped.prefix(limit)) + "… (cut)"
    }

    /// Compiler style: `file:line:col: error: message`, then the hint on its own line.
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}

extension [Diagnostic] {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
func nearest(to word: String, in candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    let limit = max(2, min(word.count, candidate.count) / 3)
    return distance <= limit ? candidate : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// A value quoted in a finding: in double quotes, control characters escaped (`\n`, `\t`,
/// `\u{1b}`), and at most 60 characters of it, with how many more there were.
public func quote(_ value: some StringProtocol, limit: Int = 60) -> String {
    let text = String(value)
    let cut = text.count > limit
    let shown = escapingControlCharacters(cut ? String(text.prefix(limit)) : text)
    return "\"\(shown)\"" + (cut ? "… (\(text.count - limit) more characters)" : "")
}

func escapingControlCharacters(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.properties.generalCategory == .control {
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result
}
