import Synchronization
/// The spec of an object, by kind.
/// Indirect: each payload is boxed once and shared by every copy of the manifest (the set holds
/// several), instead of a few hundred bytes copied inline into each.
public indirect enum Spec: Hashable, Sendable, Codable {
    case featurePipeline(FeaturePipelineSpec)
    case trainingSchedule(TrainingScheduleSpec)
    case model(ModelSpec)
    case modelDeployment(ModelDeploymentSpec)
    case monitor(MonitorSpec)

    public var kind: Kind {
        switch self {
        case .featurePipeline: .featurePipeline
        case .trainingSchedule: .trainingSchedule
        case .model: .model
        case .modelDeployment: .modelDeployment
        case .monitor: .monitor
        }
    }

    /// `suspend: true` pauses an object of any kind.
    public var suspended: Bool {
        switch self {
        case .featurePipeline(let spec): spec.suspend
        case .trainingSchedule(let spec): spec.suspend
        case .model(let spec): spec.suspend
        case .modelDeployment(let spec): spec.suspend
        case .monitor(let spec): spec.suspend
        }
    }

    static func shape(of kind: Kind) -> Shape {
        switch kind {
        case .featurePipeline: FeaturePipelineSpec.shape
        case .trainingSchedule: TrainingScheduleSpec.shape
        case .model: ModelSpec.shape
        case .modelDeployment: ModelDeploymentSpec.shape
        case .monitor: MonitorSpec.shape
        }
    }

    init(kind: Kind, _ node: YAMLNode) {
        switch kind {
        case .featurePipeline: self = .featurePipeline(FeaturePipelineSpec(node))
        case .trainingSchedule: self = .trainingSchedule(TrainingScheduleSpec(node))
        case .model: self = .model(ModelSpec(node))
        case .modelDeployment: self = .modelDeployment(ModelDeploymentSpec(node))
        case .monitor: self = .monitor(MonitorSpec(node))
        }
    }
}

/// One valid object read from a manifest document.
public struct Manifest: Hashable, Sendable {
    public let ref: ObjectRef
    public let labels: [String: String]
    public let spec: Spec
    /// Where the document starts.
    public let location: SourceLocation
    /// Where the fields that name other objects or paths stand, by field path such as
    /// `spec.model` or `spec.stages[1].deps[0]`, so cross-object errors can point at them.
    /// Kept as a short array whose field names are shared between manifests: ten thousand
    /// manifests would otherwise hold ten thousand small dictionaries of their own strings.
    private let located: [FieldLocation]

    public init(ref: ObjectRef, labels: [String: String], spec: Spec, location: SourceLocation,
                fieldLocations: [String: SourceLocation] = [:]) {
        self.ref = ref
        self.labels = labels
        self.spec = spec
        self.location = location
        self.located = fieldLocations.map { FieldLocation(field: FieldNames.shared($0.key), location: $0.value) }
            .sorted { $0.field < $1.field }
    }

    /// Where the recorded fields stand, by field path.
    public var fieldLocations: [String: SourceLocation] {
        Dictionary(uniqueKeysWithValues: located.map { ($0.field, $0.location) })
    }

    /// Where `field` stands, or the document's start when it was not recorded.
    public func location(of field: String) -> SourceLocation {
        located.first { $0.field == field }?.location ?? location
    }

    /// The field paths whose positions are kept (indices as [*], map keys as *).
    static let locatedFields: Set<String> = [
        "spec.model", "spec.features", "spec.deployment", "spec.stage", "spec.version", "spec.stages",
        "spec.stages[*]", "spec.stages[*].name", "spec.stages[*].deps[*]", "spec.stages[*].outs[*]",
        "spec.stages[*].command[*]", "spec.stages[*].env[*]",
        "spec.assignments.*", "spec.deps[*]", "spec.thresholds[*].action",
    ]

    static let apiVersion = "cairn/v1"

    static let locatedFieldTree = LocatedField(locatedFields)

    static let metadataShape = Shape.object(ObjectShape(fields: [
        .required("name", .string(.dnsLabel), "the object's name: a DNS label such as churn-prod"),
        .optional("labels", .map(key: .labelKey, value: .string(.labelValue)), "free key/value pairs to select objects by"),
    ]))

    /// The document around the spec, whose shape is its kind's (any mapping while the kind is unknown).
    static func envelopeShape(for kind: Kind?) -> ObjectShape {
        kind.map { envelopeShapes[$0.rank] } ?? unknownKindEnvelopeShape
    }

    // Built once: every document is checked against one of them.
    private static let envelopeShapes = Kind.allCases.map(makeEnvelopeShape)
    private static let unknownKindEnvelopeShape = makeEnvelopeShape(for: nil)

    private static func makeEnvelopeShape(for kind: Kind?) -> ObjectShape {
        ObjectShape(fields: [
        .required("apiVersion", .string(.oneOf([apiVersion])), "always cairn/v1"),
        .required("kind", .string(.oneOf(Kind.allCases.map(\.rawValue))),
                  "one of " + Kind.allCases.map(\.rawValue).joined(separator: ", ")),
        .required("metadata", metadataShape, "the object's name and labels"),
        .required("spec", kind.map { Spec.shape(of: $0) } ?? .anyMapping, "the desired state of the object"),
    ])
    }
}

/// `Manifest.locatedFields` as a tree of path components, so that recording positions walks a
/// spec without spelling out a path pattern for every key.
final class LocatedField: Sendable {
    /// Whether this field's position is kept.
    let isLocated: Bool
    /// Named fields below this one.
    let fields: [String: LocatedField]
    /// Every key of a map (`*`); such fields point at the key.
    let anyKey: LocatedField?
    /// Every item of a list (`[*]`).
    let item: LocatedField?

    /// The tree under `spec`.
    static var spec: LocatedField { Manifest.locatedFieldTree }

    /// Builds the tree under `spec` from patterns such as `spec.stages[*].deps[*]` and `spec.assignments.*`.
    convenience init(_ patterns: Set<String>) {
        let prefix = "spec"
        self.init(suffixes: patterns.compactMap { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : nil })
    }

    /// `suffixes` continue this field's path: "" for itself, ".name…", "[*]…" or ".*…".
    private init(suffixes: [String]) {
        isLocated = suffixes.contains("")
        var named: [String: [String]] = [:]
        var keys: [String] = []
        var items: [String] = []
        for suffix in suffixes where !suffix.isEmpty {
            if suffix.hasPrefix("[*]") {
                items.append(String(suffix.dropFirst(3)))
            } else if suffix.hasPrefix(".*") {
                keys.append(String(suffix.dropFirst(2)))
            } else {
                let rest = suffix.dropFirst()
                let end = rest.firstIndex { $0 == "." || $0 == "[" } ?? rest.endIndex
                named[String(rest[..<end]), default: []].append(String(rest[end...]))
            }
        }
        fields = named.mapValues { LocatedField(suffixes: $0) }
        anyKey = keys.isEmpty ? nil : LocatedField(suffixes: keys)
        item = items.isEmpty ? nil : LocatedField(suffixes: items)
    }
}

/// A document that did not make a valid object. When its kind and name could be read, `ref`
/// says which object it was meant to be, so that object alone can be stalled.
public struct ManifestFailure: Hashable, Sendable {
    public let ref: ObjectRef?
    public let location: SourceLocation
    public let diagnostics: [Diagnostic]

    public init(ref: ObjectRef?, location: SourceLocation, diagnostics: [Diagnostic]) {
        self.ref = ref
        self.location = location
        self.diagnostics = diagnostics
    }
}

/// What one manifest file holds.
public struct ParsedFile: Sendable {
    public let path: String
    public var manifests: [Manifest]
    public var failures: [ManifestFailure]
    /// YAML documents that are not Cairn manifests (no `apiVersion: cairn/...`, nothing that
    /// looks like one), such as params files or CI configuration: ignored, and counted.
    public var skippedDocuments = 0
    public var diagnostics: [Diagnostic] { failures.flatMap(\.diagnostics) }

    public init(path: String, manifests: [Manifest], failures: [ManifestFailure]) {
        self.path = path
        self.manifests = manifests
        self.failures = failures
    }
}

struct FieldLocation: Hashable, Sendable {
    let field: String
    let location: SourceLocation
}

/// One copy of each field path (`spec.stages[0].deps[1]`), shared by every manifest that
/// records it; parsing runs on several threads, hence the lock.
enum FieldNames {
    private static let names = Mutex<Set<String>>([])

    static func shared(_ name: String) -> String {
        names.withLock { names in
            if let known = names.firstIndex(of: name) { return names[known] }
            if names.count < 100_000 { names.insert(name) }
            return name
        }
    }
}
