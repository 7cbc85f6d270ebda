public import Foundation
public import CairnManifests

/// One accepted change of which version holds a stage of a model: what the Model controller
/// records when a commit's `assignments` move a stage and the promotion policy allows it.
/// Kept for ever (the stage history), and written to the status branch with the Model's status.
public struct StageChange: Codable, Hashable, Sendable {
    public var model: String
    public var stage: String
    /// The version that holds the stage from now on; nil when the stage was unassigned.
    public var version: Int?
    /// The version that held it until now; nil when none did.
    public var previous: Int?
    /// The commit of the tracked branch whose assignments made the change (hex).
    public var sourceCommit: String
    /// That commit's author, `Name <email>`.
    public var author: String
    /// That commit's author time.
    public var committedAt: Date
    /// When Cairn accepted the change: from this instant the stage held `version`.
    public var appliedAt: Date
    /// The how-many-th change of this stage of this model this is (1, 2, …); unassignments
    /// count too, so it never repeats within a stage. Counted per stage, so it is *not* the
    /// `N` of GTO's `model#stage#N`: GTO numbers every stage tag of a model in one sequence,
    /// across all its stages (`gto/tag.py`, `name_tag`), which is what `RegistryTagPlanner`
    /// gives the tags `--registry-tags` writes.
    public var ordinal: Int

    public init(model: String, stage: String, version: Int?, previous: Int?, sourceCommit: String, author: String,
                committedAt: Date, appliedAt: Date, ordinal: Int) {
        self.model = model
        self.stage = stage
        self.version = version
        self.previous = previous
        self.sourceCommit = sourceCommit
        self.author = author
        self.committedAt = committedAt
        self.appliedAt = appliedAt
        self.ordinal = ordinal
    }

    /// `production: 1 → 2`, `staging: 2 → none`.
    public var summary: String {
        "\(stage): \(previous.map(String.init) ?? "none") → \(version.map(String.init) ?? "none")"
    }
}

/// Which version holds a stage, since when, and by whose commit.
public struct StageHolding: Codable, Hashable, Sendable {
    public var version: Int
    public var since: Date
    public var commit: String
    public var author: String

    public init(version: Int, since: Date, commit: String, author: String) {
        self.version = version
        self.since = since
        self.commit = commit
        self.author = author
    }
}

/// A model's stages as Cairn has accepted them: who holds each now, and which versions have
/// ever held each (what `strictOrder` asks of a promotion).
public struct StageMap: Codable, Hashable, Sendable {
    /// By stage; a stage nobody holds is absent.
    public var holders: [String: StageHolding]
    /// By stage, the versions that have held it, ascending.
    public var held: [String: [Int]]

    public init(holders: [String: StageHolding] = [:], held: [String: [Int]] = [:]) {
        self.holders = holders
        self.held = held
    }

    public var isEmpty: Bool { holders.isEmpty && held.isEmpty }

    /// Stage to version, for what only needs the numbers.
    public var versions: [String: Int] { holders.mapValues(\.version) }

    public func hasHeld(_ version: Int, _ stage: String) -> Bool { held[stage]?.contains(version) == true }

    /// Whether two maps say the same: who holds what by which commit, and who has held what.
    /// Times are left out: a time read back from the store may differ from the one written in
    /// its last binary digit, and a holder's time changes only with its version or commit.
    public static func sameSubstance(_ a: StageMap?, _ b: StageMap?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.held == b.held && a.holders.mapValues { "\($0.version) \($0.commit)" } == b.holders.mapValues { "\($0.version) \($0.commit)" }
    }

    /// The map after `changes` (in order).
    public func applying(_ changes: [StageChange]) -> StageMap {
        var map = self
        for change in changes {
            if let version = change.version {
                map.holders[change.stage] = StageHolding(version: version, since: change.appliedAt, commit: change.sourceCommit,
                                                         author: change.author)
                var held = Set(map.held[change.stage] ?? [])
                held.insert(version)
                map.held[change.stage] = held.sorted()
            } else {
                map.holders[change.stage] = nil
            }
        }
        return map
    }
}

/// Who made a commit and when: what a stage change records of the commit that made it.
public struct CommitAuthor: Hashable, Sendable {
    /// `Name <email>`.
    public var name: String
    public var time: Date

    public init(name: String, time: Date) {
        self.name = name
        self.time = time
    }
}

/// What the promotion policy decided about one stage of a Model at one commit.
public struct StageVerdict: Codable, Hashable, Sendable {
    public enum Decision: String, Codable, Sendable {
        /// The stage already holds what the commit assigns: nothing to judge.
        case unchanged
        /// The change may happen.
        case accepted
        /// The change breaks a rule: the stage stays where it was.
        case refused
    }

    public var stage: String
    /// The version holding the stage now (as accepted), and the one the commit assigns.
    public var current: Int?
    public var desired: Int?
    public var decision: Decision
    /// For a refusal: `VersionNotFound`, `GateFailed` or `OrderViolated`.
    public var reason: String?
    /// The verdict in words.
    public var message: String

    public init(stage: String, current: Int?, desired: Int?, decision: Decision, reason: String? = nil, message: String) {
        self.stage = stage
        self.current = current
        self.desired = desired
        self.decision = decision
        self.reason = reason
        self.message = message
    }

    /// `staging: 1 → 2`.
    public var move: String {
        "\(stage): \(current.map(String.init) ?? "none") → \(desired.map(String.init) ?? "none")"
    }
}

/// The promotion policy of a Model (DESIGN.md, "Stages and deployments"). One pure function,
/// so that the daemon and `cairn plan` cannot judge a promotion differently: the version must
/// exist; with `requireGate` it must have passed its gate; with `strictOrder` it must have
/// held the stage before this one, in an earlier commit. Stages are judged one by one, so a
/// refused stage does not hold back another.
public enum PromotionPolicy {
    public static let versionNotFound = "VersionNotFound"
    public static let gateFailed = "GateFailed"
    public static let orderViolated = "OrderViolated"

    /// Judges every declared stage of `spec` against the stages as accepted (`stages`), looking
    /// versions up with `lookup` (nil: not registered).
    public static func judge(model: String, spec: ModelSpec, stages: StageMap,
                             lookup: (Int) throws -> ModelVersion?) rethrows -> [StageVerdict] {
        var verdicts: [StageVerdict] = []
        for (index, stage) in spec.stages.enumerated() {
            let current = stages.holders[stage]?.version
            let desired = spec.assignments[stage]
            guard desired != current else {
                verdicts.append(StageVerdict(stage: stage, current: current, desired: desired, decision: .unchanged,
                                             message: desired.map { "\(stage) holds \(model)@\($0)" } ?? "\(stage) is not assigned"))
                continue
            }
            guard let desired else {
                verdicts.append(StageVerdict(stage: stage, current: current, desired: nil, decision: .accepted,
                                             message: "\(stage) is unassigned (it held \(model)@\(current ?? 0))"))
                continue
            }
            guard let version = try lookup(desired) else {
                verdicts.append(StageVerdict(stage: stage, current: current, desired: desired, decision: .refused, reason: versionNotFound,
                                             message: "\(stage) → \(model)@\(desired): no such version is registered "
                                                 + "(it is accepted once a training registers it)"))
                continue
            }
            if spec.policy.requireGate, !version.gate.passed {
                verdicts.append(StageVerdict(stage: stage, current: current, desired: desired, decision: .refused, reason: gateFailed,
                                             message: "\(stage) → \(model)@\(desired): the version failed its gate (\(version.gate.summary)), "
                                                 + "and policy.requireGate is true"))
                continue
            }
            if spec.policy.strictOrder, index > 0 {
                let before = spec.stages[index - 1]
                if !stages.hasHeld(desired, before) {
                    let holds = stages.holders[before].map { "\(before) holds \(model)@\($0.version)" } ?? "nothing holds \(before)"
                    let same = spec.assignments[before] == desired ? ", and assigning both in one commit does not count: promote to "
                        + "\(before) first, then to \(stage) in a later commit" : ""
                    verdicts.append(StageVerdict(stage: stage, current: current, desired: desired, decision: .refused, reason: orderViolated,
                                                 message: "\(stage) → \(model)@\(desired): the version has never held \(before) "
                                                     + "(\(holds))\(same); policy.strictOrder is true"))
                    continue
                }
            }
            let gate = version.gate.rules.isEmpty ? "no gate" : (version.gate.passed ? "gate passed" : "gate failed, policy.requireGate is false")
            verdicts.append(StageVerdict(stage: stage, current: current, desired: desired, decision: .accepted,
                                         message: "\(stage) → \(model)@\(desired) (\(gate))"))
        }
        // A stage held under a name the spec no longer declares is unassigned.
        for stage in stages.holders.keys.sorted() where !spec.stages.contains(stage) {
            let current = stages.holders[stage]?.version
            verdicts.append(StageVerdict(stage: stage, current: current, desired: nil, decision: .accepted,
                                         message: "\(stage) is no longer a stage of \(model); it is unassigned (it held \(model)@\(current ?? 0))"))
        }
        return verdicts
    }
}
