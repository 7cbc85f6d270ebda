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
    /// A repository path, or an absolute, normalised path to data outside the repository
    /// (allowed at run time only under the daemon's `--data-root` directories).
    case dependencyPath
    /// The name of an environment variable: `[A-Za-z_][A-Za-z0-9_]*`.
    case environmentName
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
    /// An amount of memory with a binary unit, such as `16GiB`.
    case memory

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
                return Problem(message: "\(quote(value)) is not a duration: \(error.reason)", hint: hint)
            }
        case .cron:
            do {
                _ = try CronSchedule(parsing: value)
                return nil
            } catch {
                return Problem(message: "\(quote(value)) is not a cron schedule: \(error.reason)", hint: hint)
            }
        case .repoPath:
            do {
                _ = try RepositoryPath(value)
                return nil
            } catch {
                return Problem(message: error.reason, hint: hint)
            }
        case .dependencyPath:
            do {
                _ = try DependencyPath(value)
                return nil
            } catch {
                return Problem(message: error.reason, hint: hint)
            }
        case .environmentName:
            return CharacterRules.isEnvironmentName(value) ? nil
                : Problem(message: "\(quote(value)) is not an environment variable name", hint: hint)
        case .oneOf(let words):
            guard !words.contains(value) else { return nil }
            let suggestion = nearest(to: value, in: words).map { "did you mean \(quote($0))? " } ?? ""
            return Problem(message: "\(quote(value)) is not one of \(words.joined(separator: ", "))",
                           hint: "\(suggestion)use one of: \(words.joined(separator: ", "))")
        case .timeZone:
            return TimeZone(identifier: value) == nil
                ? Problem(message: "\(quote(value)) is not a known time zone", hint: hint) : nil
        case .metricName:
            return CharacterRules.isMetricName(value) ? nil : Problem(message: "\(quote(value)) is not a metric name", hint: hint)
        case .httpPath:
            return value.hasPrefix("/") && !value.contains(where: { $0.isWhitespace }) ? nil
                : Problem(message: "\(quote(value)) is not an HTTP path", hint: hint)
        case .url:
            guard let components = URLComponents(string: value), ["http", "https"].contains(components.scheme ?? ""),
                  components.host?.isEmpty == false else {
                return Problem(message: "\(quote(value)) is not an http(s) URL", hint: hint)
            }
            return nil
        case .labelKey:
            return CharacterRules.isLabelKey(value) ? nil : Problem(message: "\(quote(value)) is not a label key", hint: hint)
        case .labelValue:
            return value.isEmpty || CharacterRules.isLabelName(value) ? nil : Problem(message: "\(quote(value)) is not a label value", hint: hint)
        case .memory:
            do {
                _ = try MemorySize(parsing: value)
                return nil
            } catch {
                return Problem(message: "\(quote(value)) is not an amount of memory: \(error.reason)", hint: hint)
            }
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
        case .dependencyPath:
            "write a path relative to the repository root, such as data/raw.csv, or an absolute path under one of the daemon's --data-root directories, such as /srv/data/raw.csv"
        case .environmentName: "use letters, digits and '_', not starting with a digit, such as HF_TOKEN"
        case .timeZone: "use an IANA name such as UTC or Europe/Berlin"
        case .metricName: "use letters, digits, '_', '.', ':' and '-', starting with a letter or '_'"
        case .httpPath: "write a path starting with '/', such as /healthz"
        case .url: "write a full URL such as http://prometheus:9090"
        case .labelKey: "use an optional prefix and '/', then letters, digits, '-', '_' and '.', such as team or cairn.dev/owner"
        case .labelValue: "use at most 63 letters, digits, '-', '_' and '.'"
        case .memory: "write a whole number with KiB, MiB, GiB or TiB (or K, M, G, T), such as 512MiB or 16GiB"
        }
    }
}

enum DNSLabel {
    static func problem(with value: String) -> String? {
        if value.isEmpty { return "a name must not be empty" }
        if value.utf8.count > 63 { return "\(quote(value)) is longer than 63 characters" }
        if !CharacterRules.isDNSLabel(value) {
            return "\(quote(value)) is not a DNS label"
        }
        return nil
    }
}

/// Character-class checks written out by hand: these run for every name and label of every
/// manifest, where a regular expression costs far more than the check itself.
enum CharacterRules {
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (97...122).contains(byte) || (48...57).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (65...90).contains(byte)
    }

    /// `[a-z0-9]([a-z0-9-]*[a-z0-9])?`
    static func isDNSLabel(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, let last = bytes.last, isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// `[A-Za-z_][A-Za-z0-9_.:-]*`, at most 200 bytes.
    static func isMetricName(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, bytes.count <= 200, isAlphanumeric(first) && !(48...57).contains(first) || first == UInt8(ascii: "_") else {
            return false
        }
        return bytes.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-")
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`
    static func isEnvironmentName(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, isAlphanumeric(first) && !(48...57).contains(first) || first == UInt8(ascii: "_") else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") }
    }

    /// `[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?`
    static func isLabelName(_ value: String) -> Bool {
        isLabelName(value.utf8)
    }

    private static func isLabelName(_ bytes: some BidirectionalCollection<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63, isAlphanumeric(first), isAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// An optional DNS-style prefix (`[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?`) and '/', then a label name.
    static func isLabelKey(_ value: String) -> Bool {
        let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 {
            let prefix = Array(parts[0].utf8)
            guard let first = prefix.first, let last = prefix.last, prefix.count <= 253, isLowerAlphanumeric(first), isLowerAlphanumeric(last),
                  prefix.allSatisfy({ isLowerAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else { return false }
        }
        return isLabelName(String(parts[parts.count - 1]))
    }
}
