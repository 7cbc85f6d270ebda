import Foundation

/// What a string field must look like. Each rule checks a value and says how to fix it, and
/// knows its own JSON Schema constraint.
enum StringRule: Sendable {
    /// Any non-empty text.
    case text
    /// A DNS label (RFC 1123): lowercase letters, digits and '-', at most 63, starting and ending alphanumeric.
    case dnsLabel
    /// A duration such as `90s`, `10m`, `1h30m` or `500ms`.
    case duration
    /// A 5-field cron expression or a macro such as `@daily`.
    case cron
    /// A path relative to the repository root that stays inside it.
    case repoPath
    /// One of a fixed set of words.
    case oneOf([String])
    /// An IANA time zone name such as `UTC` or `Europe/Berlin`.
    case timeZone
    /// A metric name: letters, digits, '_', '.', ':' and '-', starting with a letter or '_'.
    case metricName
    /// An absolute HTTP path such as `/healthz`.
    case httpPath
    /// An http or https URL.
    case url
    /// A label key: an optional DNS-style prefix and '/', then a name of letters, digits, '-', '_' and '.'.
    case labelKey
    /// A label value: up to 63 letters, digits, '-', '_' and '.'.
    case labelValue

    struct Problem {
        var message: String
        var hint: String?
    }

    func problem(with value: String) -> Problem? {
        switch self {
        case .text:
            return value.isEmpty ? Problem(message: "must not be empty") : nil
        case .dnsLabel:
            return DNSLabel.problem(with: value).map { Problem(message: $0, hint: hint) }
        case .duration:
            do {
                _ = try ManifestDuration(parsing: value)
                return nil
            } catch {
                return Problem(message: "\"\(value)\" is not a duration: \(error.reason)", hint: hint)
            }
        case .cron:
            do {
                _ = try CronSchedule(parsing: value)
                return nil
            } catch {
                return Problem(message: "\"\(value)\" is not a cron schedule: \(error.reason)", hint: hint)
            }
        case .repoPath:
            do {
                _ = try RepositoryPath(value)
                return nil
            } catch {
                return Problem(message: error.reason, hint: hint)
            }
        case .oneOf(let words):
            guard !words.contains(value) else { return nil }
            let suggestion = nearest(to: value, in: words).map { "did you mean \"\($0)\"? " } ?? ""
            return Problem(message: "\"\(value)\" is not one of \(words.joined(separator: ", "))",
                           hint: "\(suggestion)use one of: \(words.joined(separator: ", "))")
        case .timeZone:
            return TimeZone(identifier: value) == nil
                ? Problem(message: "\"\(value)\" is not a known time zone", hint: hint) : nil
        case .metricName:
            return value.wholeMatch(of: /[A-Za-z_][A-Za-z0-9_.:\-]*/) == nil || value.count > 200
                ? Problem(message: "\"\(value)\" is not a metric name", hint: hint) : nil
        case .httpPath:
            return value.hasPrefix("/") && !value.contains(where: { $0.isWhitespace }) ? nil
                : Problem(message: "\"\(value)\" is not an HTTP path", hint: hint)
        case .url:
            guard let components = URLComponents(string: value), ["http", "https"].contains(components.scheme ?? ""),
                  components.host?.isEmpty == false else {
                return Problem(message: "\"\(value)\" is not an http(s) URL", hint: hint)
            }
            return nil
        case .labelKey:
            return value.wholeMatch(of: /([a-z0-9]([a-z0-9.\-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.\-]{0,61}[A-Za-z0-9])?/) == nil
                ? Problem(message: "\"\(value)\" is not a label key", hint: hint) : nil
        case .labelValue:
            return value.wholeMatch(of: /([A-Za-z0-9]([A-Za-z0-9_.\-]{0,61}[A-Za-z0-9])?)?/) == nil
                ? Problem(message: "\"\(value)\" is not a label value", hint: hint) : nil
        }
    }

    /// How to write a valid value.
    var hint: String? {
        switch self {
        case .text, .oneOf: nil
        case .dnsLabel: "use lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"
        case .duration: "write a number with a unit: ms, s, m, h or d, such as 30s, 10m or 1h30m"
        case .cron: "use 5 fields (minute hour day-of-month month day-of-week), such as \"0 3 * * 1\", or @hourly, @daily, @weekly, @monthly, @yearly"
        case .repoPath: "write a path relative to the repository root, such as data/raw.csv, that does not leave it"
        case .timeZone: "use an IANA name such as UTC or Europe/Berlin"
        case .metricName: "use letters, digits, '_', '.', ':' and '-', starting with a letter or '_'"
        case .httpPath: "write a path starting with '/', such as /healthz"
        case .url: "write a full URL such as http://prometheus:9090"
        case .labelKey: "use an optional prefix and '/', then letters, digits, '-', '_' and '.', such as team or cairn.dev/owner"
        case .labelValue: "use at most 63 letters, digits, '-', '_' and '.'"
        }
    }
}

enum DNSLabel {
    static func problem(with value: String) -> String? {
        if value.isEmpty { return "a name must not be empty" }
        if value.utf8.count > 63 { return "\"\(value)\" is longer than 63 characters" }
        if value.wholeMatch(of: /[a-z0-9]([a-z0-9\-]*[a-z0-9])?/) == nil {
            return "\"\(value)\" is not a DNS label"
        }
        return nil
    }
}
