import Foundation

/// One import statement's target, as written: `from ..pkg.mod import a, b` has level 2,
/// module `[pkg, mod]` and names `[a, b]`; `import a.b` has level 0, module `[a, b]`, no names.
struct PythonImport: Hashable, Sendable {
    /// How many leading dots: 0 for an absolute import.
    var level: Int
    var module: [String]
    /// What `from … import` names (submodules or attributes; which, only the files can say).
    var names: [String]
}

/// Finds the import statements of a Python file without running or fully parsing it.
///
/// Strings (also triple-quoted, over several lines) and comments are skipped, so an `import`
/// in a docstring is not taken for one. Statements are joined over bracketed line breaks and
/// backslash continuations, and split at `;`. A statement counts when it starts with `import`
/// or `from` after its indentation, so imports inside functions, `try` blocks and `if`
/// blocks are found; one written after a colon on the same line (`try: import x`) is not.
/// What does not parse as an import is skipped: this is a heuristic for dependencies, and a
/// file Python cannot read fails when it runs.
enum PythonImports {
    static func scan(_ source: Data) -> [PythonImport] {
        statements(of: source).flatMap(parse)
    }

    /// The logical statements of a file, strings replaced by a `"` and comments removed.
    static func statements(of source: Data) -> [[UInt8]] {
        let bytes = [UInt8](source)
        var statements: [[UInt8]] = []
        var current: [UInt8] = []
        var depth = 0
        var index = 0
        func finish() {
            if current.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) { statements.append(current) }
            current.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                index = endOfString(in: bytes, at: index)
                current.append(UInt8(ascii: "\""))
                continue
            case UInt8(ascii: "\\") where index + 1 < bytes.count && (bytes[index + 1] == UInt8(ascii: "\n") || bytes[index + 1] == UInt8(ascii: "\r")):
                current.append(UInt8(ascii: " "))
                index += bytes[index + 1] == UInt8(ascii: "\r") && index + 2 < bytes.count && bytes[index + 2] == UInt8(ascii: "\n") ? 3 : 2
                continue
            case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                current.append(byte)
            case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(0, depth - 1)
                current.append(byte)
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                if depth > 0 { current.append(UInt8(ascii: " ")) } else { finish() }
            case UInt8(ascii: ";") where depth == 0:
                finish()
            default:
                current.append(byte)
            }
            index += 1
        }
        finish()
        return statements
    }

    /// The index just after the string literal whose opening quote is at `start`.
    private static func endOfString(in bytes: [UInt8], at start: Int) -> Int {
        let quote = bytes[start]
        let triple = start + 2 < bytes.count && bytes[start + 1] == quote && bytes[start + 2] == quote
        var index = start + (triple ? 3 : 1)
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == quote {
                if !triple { return index + 1 }
                if index + 2 < bytes.count, bytes[index + 1] == quote, bytes[index + 2] == quote { return index + 3 }
            }
            // A one-quote string ends at the line's end, closed or not.
            if !triple, byte == UInt8(ascii: "\n") { return index }
            index += 1
        }
        return index
    }

    private enum Token: Equatable {
        case word(String)
        case dot, comma, open, close, star
    }

    private static func tokens(of statement: [UInt8]) -> [Token]? {
        var tokens: [Token] = []
        var index = 0
        func isWordByte(_ byte: UInt8) -> Bool {
            byte >= 0x80 || byte == UInt8(ascii: "_") || (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte)
        }
        while index < statement.count {
            let byte = statement[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), 0x0C: index += 1
            case UInt8(ascii: "."): tokens.append(.dot); index += 1
            case UInt8(ascii: ","): tokens.append(.comma); index += 1
            case UInt8(ascii: "("): tokens.append(.open); index += 1
            case UInt8(ascii: ")"): tokens.append(.close); index += 1
            case UInt8(ascii: "*"): tokens.append(.star); index += 1
            default:
                guard isWordByte(byte), !(48...57).contains(byte) else { return nil }
                let start = index
                while index < statement.count, isWordByte(statement[index]) { index += 1 }
                tokens.append(.word(String(decoding: statement[start..<index], as: UTF8.self)))
            }
        }
        return tokens
    }

    static func parse(_ statement: [UInt8]) -> [PythonImport] {
        guard let tokens = tokens(of: statement), case .word(let keyword)? = tokens.first,
              keyword == "import" || keyword == "from" else { return [] }
        var position = 1
        func word() -> String? {
            guard position < tokens.count, case .word(let word) = tokens[position], word != "import", word != "as" else { return nil }
            position += 1
            return word
        }
        func take(_ token: Token) -> Bool {
            guard position < tokens.count, tokens[position] == token else { return false }
            position += 1
            return true
        }
        func dotted() -> [String]? {
            guard let first = word() else { return nil }
            var parts = [first]
            while take(.dot) {
                guard let next = word() else { return nil }
                parts.append(next)
            }
            return parts
        }
        func alias() -> Bool {
            guard take(.word("as")) else { return true }
            return word() != nil
        }
        if keyword == "import" {
            var result: [PythonImport] = []
            repeat {
                guard let module = dotted(), alias() else { return [] }
                result.append(PythonImport(level: 0, module: module, names: []))
            } while take(.comma)
            return position == tokens.count ? result : []
        }
        var level = 0
        while take(.dot) { level += 1 }
        let module = position < tokens.count && tokens[position] != .word("import") ? dotted() : []
        guard let module, level > 0 || !module.isEmpty, take(.word("import")) else { return [] }
        if take(.star) { return position == tokens.count ? [PythonImport(level: level, module: module, names: [])] : [] }
        let bracketed = take(.open)
        var names: [String] = []
        repeat {
            if bracketed, position < tokens.count, tokens[position] == .close { break } // a trailing comma
            guard let name = word(), alias() else { return [] }
            names.append(name)
        } while take(.comma)
        guard !bracketed || take(.close), position == tokens.count else { return [] }
        return [PythonImport(level: level, module: module, names: names)]
    }
}
