import Foundation

/// A cron schedule: five fields (minute, hour, day of month, month, day of week) with `*`,
/// ranges, steps, lists and month/day names, or one of the macros `@hourly`, `@daily`
/// (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
public struct CronSchedule: Hashable, Sendable, CustomStringConvertible {
    public let minutes: Set<Int>
    public let hours: Set<Int>
    public let daysOfMonth: Set<Int>
    public let months: Set<Int>
    /// 0 is Sunday; 7 is accepted in the text and stored as 0.
    public let daysOfWeek: Set<Int>
    /// Whether the day-of-month and day-of-week fields were both restricted (then either may match, as in cron).
    public let dayFieldsBothRestricted: Bool
    public let text: String

    public var description: String { text }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(parsing text: String) throws(ValueError) {
        let trimmed = text.trimmedOfWhitespace
        var expanded = trimmed
        if trimmed.hasPrefix("@") {
            guard let macro = Self.macros[trimmed.lowercased()] else {
                throw ValueError("unknown macro \(trimmed)")
            }
            expanded = macro
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 5 else {
            throw ValueError("it has \(fields.count) field\(fields.count == 1 ? "" : "s"), cron needs 5")
        }
        minutes = try Self.parseField(fields[0], name: "minute", range: 0...59, names: [])
        hours = try Self.parseField(fields[1], name: "hour", range: 0...23, names: [])
        daysOfMonth = try Self.parseField(fields[2], name: "day of month", range: 1...31, names: [])
        months = try Self.parseField(fields[3], name: "month", range: 1...12, names: Self.monthNames, nameBase: 1)
        let weekdays = try Self.parseField(fields[4], name: "day of week", range: 0...7, names: Self.dayNames)
        daysOfWeek = Set(weekdays.map { $0 == 7 ? 0 : $0 })
        dayFieldsBothRestricted = !fields[2].hasPrefix("*") && !fields[4].hasPrefix("*")
        self.text = text
    }

    private static func parseField(_ field: Substring, name: String, range: ClosedRange<Int>, names: [String], nameBase: Int = 0) throws(ValueError) -> Set<Int> {
        var values: Set<Int> = []
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw ValueError("the \(name) field has an empty list item") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw ValueError("the \(name) field has more than one '/' in \(quote(part))") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw ValueError("the \(name) field has a bad step \(quote(pieces[1]))")
                }
                step = parsed
            }
            let base = pieces[0]
            var low: Int, high: Int
            if base == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw ValueError("the \(name) field has a bad range \(quote(base))") }
                low = try value(bounds[0], name: name, range: range, names: names, nameBase: nameBase)
                high = bounds.count == 2 ? try value(bounds[1], name: name, range: range, names: names, nameBase: nameBase)
                    : (pieces.count == 2 ? range.upperBound : low)
                guard low <= high else { throw ValueError("the \(name) range \(quote(base)) runs backwards") }
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    private static func value(_ text: Substring, name: String, range: ClosedRange<Int>, names: [String], nameBase: Int) throws(ValueError) -> Int {
        if let number = Int(text) {
            guard range.contains(number) else {
                throw ValueError("\(number) is outside \(range.lowerBound)-\(range.upperBound) for the \(name) field")
            }
            return number
        }
        if let index = names.firstIndex(of: text.lowercased()) { return index + nameBase }
        throw ValueError("\(quote(text)) is not a valid \(name)")
    }
}

extension CronSchedule: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
