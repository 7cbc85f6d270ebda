/// The five kinds of object, in the order their dependencies flow:
/// FeaturePipeline → TrainingSchedule → Model → ModelDeployment → Monitor.
public enum Kind: String, CaseIterable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    case featurePipeline = "FeaturePipeline"
    case trainingSchedule = "TrainingSchedule"
    case model = "Model"
    case modelDeployment = "ModelDeployment"
    case monitor = "Monitor"

    public var description: String { rawValue }

    /// Position in the cross-kind order; an object only depends on objects of earlier kinds.
    public var rank: Int { Kind.allCases.firstIndex(of: self) ?? 0 }

    public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rank < rhs.rank }
}

/// `Kind/name`, the identity of an object across manifests, the store and the status branch.
public struct ObjectRef: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let kind: Kind
    public let name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    /// Parses `Kind/name`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let kind = Kind(rawValue: String(parts[0])),
              DNSLabel.problem(with: String(parts[1])) == nil else { return nil }
        self.init(kind, String(parts[1]))
    }

    public var description: String { "\(kind.rawValue)/\(name)" }

    public static func < (lhs: ObjectRef, rhs: ObjectRef) -> Bool {
        (lhs.kind.rank, lhs.name) < (rhs.kind.rank, rhs.name)
    }
}

/// A parameter value: a string, number or boolean.
public enum ParameterValue: Hashable, Sendable, Codable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case number(Double)
    case boolean(Bool)

    public var description: String {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .number(let value): String(value)
        case .boolean(let value): String(value)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .boolean(value) }
        else if let value = try? container.decode(Int.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else { self = .string(try container.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .boolean(let value): try container.encode(value)
        }
    }

    init?(_ node: YAMLNode) {
        guard case .scalar(let text, let type) = node.value else { return nil }
        switch type {
        case .bool: self = .boolean(node.bool ?? false)
        case .int: self = node.int.map { .integer($0) } ?? .string(text)
        case .float: self = node.double.map { .number($0) } ?? .string(text)
        case .string: self = .string(text)
        case .null: return nil
        }
    }
}
