import Foundation

/// A duration written as in Go and Kubernetes: `500ms`, `30s`, `10m`, `1h30m`, `2d`.
public struct ManifestDuration: Hashable, Sendable, TextValue, CustomStringConvertible {
    public let milliseconds: Int64
    /// The text as written in the manifest.
    public let text: String

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var duration: Duration { .milliseconds(milliseconds) }
    public var description: String { text }

    public init(parsing text: String) throws(ValueError) {
        var rest = Substring(text.trimmedOfWhitespace)
        guard !rest.isEmpty else { throw ValueError("it is empty") }
        var total: Int64 = 0
        var lastUnitScale = Int64.max
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let amount = Int64(digits) else {
                throw ValueError("expected a number at \(quote(rest))")
            }
            rest = rest.dropFirst(digits.count)
            // Longest unit first, so "ms" is not read as "m" followed by "s".
            guard let (unit, scale) = Self.unitsLongestFirst.first(where: { rest.hasPrefix($0.0) }) else {
                throw ValueError(rest.isEmpty ? "\(quote(digits)) has no unit" : "unknown unit at \(quote(rest))")
            }
            guard scale < lastUnitScale else { throw ValueError("units must go from largest to smallest, each once") }
            lastUnitScale = scale
            rest = rest.dropFirst(unit.count)
            let (product, overflow) = amount.multipliedReportingOverflow(by: scale)
            guard !overflow, total <= Int64.max - product, product <= 100 * 365 * 86_400_000 else {
                throw ValueError("it is too long")
            }
            total += product
        }
        self.milliseconds = total
        self.text = text
    }

    private static let unitsLongestFirst: [(String, Int64)] =
        [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)].sorted { $0.0.count > $1.0.count }
}


extension String {
    /// The text without leading and trailing whitespace (spaces, tabs and other space
    /// separators), as `trimmingCharacters(in: .whitespaces)` gives it, without a copy when
    /// there is none to trim.
    var trimmedOfWhitespace: String {
        let bytes = utf8
        guard let first = bytes.first, let last = bytes.last else { return self }
        func isPlain(_ byte: UInt8) -> Bool { byte < 0x80 && byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") }
        return isPlain(first) && isPlain(last) ? self : trimmingCharacters(in: .whitespaces)
    }
}
