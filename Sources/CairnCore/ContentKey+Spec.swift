public import CairnManifests
public import Foundation

extension ContentKey {
    /// An object's generation: the key of its spec as kind `spec/<Kind>`, such as
    /// `spec/Model`. The value is the kind's spec struct itself, not the `Spec` enum around
    /// it, whose Codable form would add a `{"model":{"_0":…}}` wrapper.
    public static func generation(of spec: Spec) throws -> ContentKey {
        try spec.withKeyedValue { try of($0, kind: $1) }
    }

    /// The bytes `generation(of:)` hashes.
    public static func canonicalBytes(of spec: Spec) throws -> Data {
        try spec.withKeyedValue { try canonicalBytes(of: $0, kind: $1) }
    }
}

extension Spec {
    fileprivate func withKeyedValue<Result>(_ body: (any Encodable, String) throws -> Result) rethrows -> Result {
        let kind = "spec/\(self.kind.rawValue)"
        switch self {
        case .featurePipeline(let value): return try body(value, kind)
        case .trainingSchedule(let value): return try body(value, kind)
        case .model(let value): return try body(value, kind)
        case .modelDeployment(let value): return try body(value, kind)
        case .monitor(let value): return try body(value, kind)
        }
    }
}

/// `10m`, `600s` and `600000ms` are one duration: keys see its milliseconds, an integer.
extension ManifestDuration: CanonicallyEncodable {
    public func encodeCanonically(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(milliseconds)
    }
}

/// `@daily`, `0 0 * * *` and `0 0 * * 0-6` are one schedule: keys see the times it matches,
/// each field as its sorted list of values (days of week 0–6, Sunday 0), and whether the two
/// day fields were both restricted (then a day matching either one matches, as in cron).
extension CronSchedule: CanonicallyEncodable {
    private enum CanonicalKeys: String, CodingKey {
        case minutes, hours, daysOfMonth, months, daysOfWeek, dayFieldsBothRestricted
    }

    public func encodeCanonically(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CanonicalKeys.self)
        try container.encode(minutes.sorted(), forKey: .minutes)
        try container.encode(hours.sorted(), forKey: .hours)
        try container.encode(daysOfMonth.sorted(), forKey: .daysOfMonth)
        try container.encode(months.sorted(), forKey: .months)
        try container.encode(daysOfWeek.sorted(), forKey: .daysOfWeek)
        try container.encode(dayFieldsBothRestricted, forKey: .dayFieldsBothRestricted)
    }
}

/// `stage: production` or `version: 7`, as in the manifest, without the `{"stage":{"_0":…}}`
/// that Swift's synthesized Codable writes for an unlabeled payload.
extension ModelDeploymentSpec.Selector: CanonicallyEncodable {
    private enum CanonicalKeys: String, CodingKey { case stage, version }

    public func encodeCanonically(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CanonicalKeys.self)
        switch self {
        case .stage(let stage): try container.encode(stage, forKey: .stage)
        case .version(let version): try container.encode(version, forKey: .version)
        }
    }
}
