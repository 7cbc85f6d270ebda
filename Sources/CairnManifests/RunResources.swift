import Foundation

/// Where a stage's or a training's runs go.
public enum RunExecutorName: String, Hashable, Sendable, Codable, CaseIterable {
    /// Processes on the daemon's machine, each under its supervisor.
    case local
    /// Jobs on a Slurm cluster, through `sbatch`.
    case slurm
}

/// What one run needs: `resources: {cpus: 4, memory: 16GiB, gpus: 1, time: 2h}`. The local
/// executor honours `cpus` (slots of `--max-runs`) and `time`; Slurm gets all four
/// (`--cpus-per-task`, `--mem`, `--gres=gpu:N`, `--time`).
public struct RunResources: Hashable, Sendable, Codable {
    public var cpus: Int
    /// The memory one run needs; nil when not said.
    public var memory: MemorySize?
    public var gpus: Int
    /// The wall time to ask the scheduler for; the run's limit when `timeout` is not set.
    public var time: ManifestDuration?

    public init(cpus: Int = 1, memory: MemorySize? = nil, gpus: Int = 0, time: ManifestDuration? = nil) {
        self.cpus = cpus
        self.memory = memory
        self.gpus = gpus
        self.time = time
    }

    init(_ node: YAMLNode?) {
        self.init(cpus: node?["cpus"]?.int ?? 1, memory: node?["memory"]?.text.flatMap { try? MemorySize(parsing: $0) },
                  gpus: node?["gpus"]?.int ?? 0, time: node?["time"]?.duration)
    }

    private enum CodingKeys: String, CodingKey { case cpus, memory, gpus, time }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cpus = try container.decodeIfPresent(Int.self, forKey: .cpus) ?? 1
        memory = try container.decodeIfPresent(MemorySize.self, forKey: .memory)
        gpus = try container.decodeIfPresent(Int.self, forKey: .gpus) ?? 0
        time = try container.decodeIfPresent(ManifestDuration.self, forKey: .time)
    }

    // `cpus` is written always, as it was before the other fields existed; they are written
    // only when set, so a spec that does not use them keeps its content key.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpus, forKey: .cpus)
        try container.encodeIfPresent(memory, forKey: .memory)
        if gpus != 0 { try container.encode(gpus, forKey: .gpus) }
        try container.encodeIfPresent(time, forKey: .time)
    }

    static let shape = Shape.object(ObjectShape(fields: [
        .optional("cpus", .integer(minimum: 1), "how many CPUs one run uses (default 1)"),
        .optional("memory", .string(.memory), "the memory one run needs, such as 16GiB or 512MiB"),
        .optional("gpus", .integer(minimum: 0), "how many GPUs one run needs (default 0); only Slurm can give them"),
        .optional("time", .string(.duration), "the wall time to ask the scheduler for, such as 2h; the run's limit when timeout is absent"),
    ]))
}

/// An amount of memory written with a binary unit, as Slurm and Kubernetes read it: `512MiB`,
/// `16GiB`, `2TiB` (or `512M`, `16G`, `2T`). A bare number is refused: Slurm would read it
/// as MiB and people as bytes.
public struct MemorySize: Hashable, Sendable, TextValue, CustomStringConvertible {
    public let bytes: Int64
    /// The text as written in the manifest.
    public let text: String

    public var description: String { text }
    /// Whole MiB, rounded up: what `sbatch --mem` is given.
    public var mebibytes: Int64 { (bytes + (1 << 20) - 1) >> 20 }

    static let units: [(String, Int64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                           ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)]

    public init(parsing text: String) throws(ValueError) {
        guard let (unit, scale) = Self.units.first(where: { text.hasSuffix($0.0) }) else {
            throw ValueError(text.allSatisfy(\.isNumber) ? "\(quote(text)) has no unit" : "\(quote(text)) has no known unit")
        }
        let digits = text.dropLast(unit.count)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let amount = Int64(digits) else {
            throw ValueError("expected a whole number before \(unit) in \(quote(text))")
        }
        let (bytes, overflow) = amount.multipliedReportingOverflow(by: scale)
        guard !overflow, bytes <= 1 << 50 else { throw ValueError("\(quote(text)) is too large") }
        guard bytes >= 1 << 20 else { throw ValueError("\(quote(text)) is less than 1MiB") }
        self.bytes = bytes
        self.text = text
    }
}

/// A value a manifest writes as text, stored as that same text: decoding parses it again, so
/// a stored spec is read back under the rules a manifest is (`30s`, `16GiB`).
public protocol TextValue: Codable {
    /// The text as written in the manifest.
    var text: String { get }
    init(parsing text: String) throws(ValueError)
}

extension TextValue {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
