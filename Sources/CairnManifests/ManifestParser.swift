public import Foundation

/// Reads manifest files: several YAML documents per file, each checked strictly against its
/// kind's shape. Nothing here throws: every problem becomes a diagnostic with file, line and
/// column, and a broken document never hides its neighbours in the same file.
public enum ManifestParser {
    /// Manifests larger than this are refused before any parsing.
    public static let maximumFileSize = 1 << 20
    /// Deeper nesting than this (flow brackets or block levels) is refused.
    public static let maximumDepth = 64

    public static func parse(_ data: Data, file: String) -> ParsedFile {
        var result = ParsedFile(path: file, manifests: [], failures: [])
        func fileError(_ message: String, line: Int = 1, column: Int = 1, hint: String? = nil) -> ParsedFile {
            let location = SourceLocation(file: file, line: line, column: column)
            result.failures.append(ManifestFailure(ref: nil, location: location,
                                                   diagnostics: [Diagnostic(at: location, message, hint: hint)]))
            return result
        }
        guard data.count <= maximumFileSize else { return tooLarge(file: file, size: data.count) }
        guard let text = String(validating: data, as: UTF8.self) else {
            let (line, column) = position(ofFirstInvalidUTF8In: data)
            return fileError("the file is not UTF-8 text (is it binary?)", line: line, column: column,
                             hint: "manifests are YAML text in UTF-8; move binary files out of the manifest directory")
        }
        if let offset = text.utf8.firstIndex(of: 0) {
            let (line, column) = position(of: offset, in: text)
            return fileError("the file contains a NUL byte (is it binary?)", line: line, column: column,
                             hint: "manifests are YAML text in UTF-8; move binary files out of the manifest directory")
        }
        if let (line, column) = NestingScan.firstTooDeep(text, limit: maximumDepth) {
            return fileError("the YAML is nested more than \(maximumDepth) levels deep", line: line, column: column,
                             hint: "manifests are shallow; flatten this structure")
        }
        do {
            let reader = YAMLReader(text)
            while let node = try reader.nextDocument() {
                if node.isNull { continue } // an empty document, such as a trailing '---'
                decodeDocument(node, file: file, into: &result)
            }
        } catch let problem as ConversionProblem {
            return fileError(problem.message, line: problem.line, column: problem.column, hint: problem.hint)
        } catch let error as YAMLSyntaxError {
            // Not YAML at all, and nothing in it speaks of Cairn (a template, say): not ours.
            guard mayBeManifest(text) else {
                result.skippedDocuments += 1
                return result
            }
            if let (tabLine, tabColumn) = firstTabIndentation(in: text) {
                return fileError("a tab is used for indentation", line: tabLine, column: tabColumn,
                                 hint: "YAML allows only spaces for indentation; replace the tabs with spaces")
            }
            return fileError("invalid YAML: \(error.message)", line: error.line, column: error.column)
        } catch {
            return fileError("invalid YAML: \(error)")
        }
        return result
    }

    /// Whether text that is not valid YAML could still be meant as a Cairn manifest: it names
    /// Cairn's apiVersion or one of its kinds.
    static func mayBeManifest(_ text: String) -> Bool {
        if text.contains("cairn/") { return true }
        return Kind.allCases.contains { kind in text.contains("kind: \(kind.rawValue)") || text.contains("kind: \"\(kind.rawValue)\"") }
    }

    /// The result for a file that is too large to read, found out from its size alone.
    public static func tooLarge(file: String, size: Int) -> ParsedFile {
        let location = SourceLocation(file: file, line: 1, column: 1)
        let diagnostic = Diagnostic(at: location, "the file is \(size) bytes; a manifest file may be at most \(maximumFileSize) bytes",
                                    hint: "split it into several files, or check that it is a manifest at all")
        return ParsedFile(path: file, manifests: [], failures: [ManifestFailure(ref: nil, location: location, diagnostics: [diagnostic])])
    }

    private static func decodeDocument(_ node: YAMLNode, file: String, into result: inout ParsedFile) {
        let location = node.location(in: file)
        let kind = node["kind"]?.text.flatMap(Kind.init(rawValue:))
        let name = node["metadata"]?["name"]?.text
        // Only documents that say `apiVersion: cairn/...` are manifests. One that does not, but
        // has a kind Cairn knows or a metadata.name and a spec, is a manifest with a broken
        // apiVersion (an error, so a typo there cannot make an object vanish); the rest is
        // other YAML living beside the manifests, and is skipped.
        let saysCairn = node["apiVersion"]?.text?.hasPrefix("cairn/") == true
        guard saysCairn || kind != nil || (name != nil && node["spec"] != nil) else {
            result.skippedDocuments += 1
            return
        }
        let ref = kind.flatMap { kind in name.flatMap { DNSLabel.problem(with: $0) == nil ? ObjectRef(kind, $0) : nil } }
        var checker = ShapeChecker(file: file)
        checker.check(node, .object(Manifest.envelopeShape(for: kind)))
        guard checker.diagnostics.isEmpty, let ref, let kind, let specNode = node["spec"] else {
            let diagnostics = checker.diagnostics.map { diagnostic in
                var diagnostic = diagnostic
                diagnostic.object = ref?.description
                return diagnostic
            }
            result.failures.append(ManifestFailure(ref: ref, location: location, diagnostics: diagnostics))
            return
        }
        var labels: [String: String] = [:]
        for (key, value) in node["metadata"]?["labels"]?.pairs ?? [] {
            if let key = key.text, let value = value.text { labels[key] = value }
        }
        var fieldLocations: [String: SourceLocation] = [:]
        recordLocations(of: specNode, path: "spec", at: LocatedField.spec, file: file, into: &fieldLocations)
        result.manifests.append(Manifest(ref: ref, labels: labels, spec: Spec(kind: kind, specNode), location: location,
                                         fieldLocations: fieldLocations))
    }

    /// Records where the located fields under `node` stand, walking only the branches of the
    /// spec that lead to one (`Manifest.locatedFields`, as a tree).
    private static func recordLocations(of node: YAMLNode, path: String, at field: LocatedField, file: String,
                                        into locations: inout [String: SourceLocation]) {
        if field.isLocated { locations[path] = node.location(in: file) }
        switch node.value {
        case .mapping(let pairs):
            for (key, value) in pairs {
                guard let name = key.text, let child = field.anyKey ?? field.fields[name] else { continue }
                // Keys of a map point at the key itself: that is where a reader looks.
                if child.isLocated, case .scalar = value.value {
                    locations["\(path).\(name)"] = (field.anyKey != nil ? key : value).location(in: file)
                } else {
                    recordLocations(of: value, path: "\(path).\(name)", at: child, file: file, into: &locations)
                }
            }
        case .sequence(let items):
            guard let item = field.item else { return }
            for (index, element) in items.enumerated() {
                recordLocations(of: element, path: "\(path)[\(index)]", at: item, file: file, into: &locations)
            }
        case .scalar:
            break
        }
    }

    private static func firstTabIndentation(in text: String) -> (Int, Int)? {
        var line = 1
        var atLineStart = true
        var column = 1
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
                atLineStart = true
                continue
            }
            if atLineStart {
                if byte == UInt8(ascii: "\t") { return (line, column) }
                if byte != UInt8(ascii: " ") { atLineStart = false }
            }
            column += 1
        }
        return nil
    }

    static func position(of index: String.UTF8View.Index, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in text.utf8[..<index] {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private static func position(ofFirstInvalidUTF8In data: Data) -> (Int, Int) {
        // Decode line by line; the first line that fails holds the bad byte.
        var line = 1
        for chunk in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if String(validating: chunk, as: UTF8.self) == nil {
                let good = chunk.prefix { $0 < 0x80 }.count
                return (line, good + 1)
            }
            line += 1
        }
        return (1, 1)
    }
}

/// Why a YAML node could not be taken over.
struct ConversionProblem: Error {
    var message: String
    var line: Int
    var column: Int
    var hint: String?
}

/// The limits on a document's tree once aliases are expanded: deep nesting, and documents that
/// alias expansion blows up (a few lines of anchors can stand for billions of nodes).
enum NodeLimits {
    static let maximumNodes = 100_000

    /// The problem with the `count`th node of a document (in reading order, aliases expanded),
    /// found at `depth`, if it is over a limit.
    static func problem(at node: YAMLNode, depth: Int, count: Int) -> ConversionProblem? {
        if count > maximumNodes {
            return ConversionProblem(message: "the document expands to more than \(maximumNodes) YAML nodes", line: node.line,
                                     column: node.column, hint: "check for aliases (*name) that repeat large anchors")
        }
        if depth > ManifestParser.maximumDepth {
            return ConversionProblem(message: "the YAML is nested more than \(ManifestParser.maximumDepth) levels deep",
                                     line: node.line, column: node.column, hint: "manifests are shallow; flatten this structure")
        }
        return nil
    }
}

/// A cheap scan, before the YAML parser runs, for nesting deep enough to exhaust its recursion:
/// flow brackets outside quotes and comments, plus block indentation levels and `- ` markers.
enum NestingScan {
    static func firstTooDeep(_ text: String, limit: Int) -> (Int, Int)? {
        var copy = text
        return copy.withUTF8 { scan($0, limit: limit) }
    }

    private static let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), hash = UInt8(ascii: "#")
    private static let dash = UInt8(ascii: "-"), doubleQuote = UInt8(ascii: "\""), singleQuote = UInt8(ascii: "'")

    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> (Int, Int)? {
        var indents: [Int] = []
        var flow = 0
        var quote: UInt8?
        var lineNumber = 0
        var lineStart = 0
        while lineStart <= bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != newline { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            var index = lineStart
            while index < lineEnd, bytes[index] == space { index += 1 }
            if quote == nil, flow == 0, index == lineEnd || bytes[index] == hash { continue }
            if quote == nil, flow == 0 {
                let first = index - lineStart
                while let last = indents.last, last >= first { indents.removeLast() }
                indents.append(first)
                // "- - - x" nests a sequence per marker on one line.
                while index + 1 < lineEnd, bytes[index] == dash, bytes[index + 1] == space {
                    index += 2
                    while index < lineEnd, bytes[index] == space { index += 1 }
                    indents.append(index - lineStart)
                }
            }
            while index < lineEnd {
                let byte = bytes[index]
                defer { index += 1 }
                if let open = quote {
                    if byte == open { quote = nil }
                    continue
                }
                let previous = index > lineStart ? bytes[index - 1] : space
                let atTokenStart = previous == space || previous == UInt8(ascii: "[") || previous == UInt8(ascii: "{")
                    || previous == UInt8(ascii: ",") || previous == UInt8(ascii: ":")
                if byte == hash, previous == space { break }
                if byte == doubleQuote || byte == singleQuote, atTokenStart { quote = byte; continue }
                if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") { flow += 1 }
                if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") { flow = max(0, flow - 1) }
                if indents.count + flow > limit { return (lineNumber, index - lineStart + 1) }
            }
            if indents.count > limit { return (lineNumber, 1) }
        }
        return nil
    }
}

/// The YAML 1.1 types of plain (unquoted) scalars, as Yams' default resolver gives them:
/// null, booleans (true/yes/on and their opposites), decimal integers and floats.
enum ScalarTyping {
    private static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    private static let booleans: Set<String> = ["true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES",
                                                "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
    private static let specialFloats: Set<String> = [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
                                                     ".nan", ".NaN", ".NAN"]

    static func type(ofPlain text: String) -> YAMLNode.ScalarType {
        // Most plain scalars are words: one that starts with a letter is a string unless it is a
        // spelling of null or a boolean, none of which is longer than five letters.
        if let first = text.utf8.first, (65...90).contains(first) || (97...122).contains(first), text.utf8.count > 5 {
            return .string
        }
        if nulls.contains(text) { return .null }
        if booleans.contains(text) { return .bool }
        let bytes = Substring(text).utf8.drop { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
        guard bytes.count == text.utf8.count || bytes.count == text.utf8.count - 1 else { return .string }
        if !bytes.isEmpty, bytes.allSatisfy({ (48...57).contains($0) || $0 == UInt8(ascii: "_") }),
           bytes.first != UInt8(ascii: "_") {
            return .int
        }
        if specialFloats.contains(text) { return .float }
        let hasDigit = text.utf8.contains { (48...57).contains($0) }
        let looksNumeric = text.utf8.allSatisfy { (48...57).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e")
            || $0 == UInt8(ascii: "E") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "_") }
        if hasDigit, looksNumeric, text.utf8.contains(UInt8(ascii: ".")), YAMLNode.number(text) != nil { return .float }
        return .string
    }
}
