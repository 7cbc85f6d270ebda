import CairnCore
import CairnStore
import Foundation

/// One model's stage history as the Model controller records it: each version that passed its
/// gate is promoted to staging, then to production, in commits 8 h 45 min apart from
/// 2026-01-01 (1,000 changes span a year); a version that failed its gate (every seventh of
/// `RegistryFixture`) is registered but never promoted, since the policy would refuse it.
/// The same sequence fills Cairn's store and, as git tags, GTO's registry.
struct StagesFixture {
    static let origin = Date(timeIntervalSince1970: 1_767_225_600)   // 2026-01-01T00:00:00Z
    static let spacing: TimeInterval = 31_500

    struct Version: Codable {
        var version: Int
        var registeredAt: Date
    }

    var model: String
    var versions: [Version] = []
    /// Oldest first.
    var changes: [StageChange] = []

    init(model: String, changes count: Int) {
        self.model = model
        var holders: [String: Int] = [:]
        var ordinals: [String: Int] = [:]
        var number = 0
        while changes.count < count {
            number += 1
            let stagedAt = Self.time(of: changes.count)
            // Registered an hour before its promotion; a version that failed its gate, half an hour before that.
            versions.append(Version(version: number, registeredAt: stagedAt.addingTimeInterval(number.isMultiple(of: 7) ? -5_400 : -3_600)))
            if number.isMultiple(of: 7) { continue }
            for stage in ["staging", "production"] where changes.count < count {
                let at = Self.time(of: changes.count)
                ordinals[stage, default: 0] += 1
                changes.append(StageChange(
                    model: model, stage: stage, version: number, previous: holders[stage],
                    sourceCommit: String(ContentHash.sha256(of: Data("\(model) change \(changes.count)".utf8)).hex.prefix(40)),
                    author: "bench <bench@localhost>", committedAt: at.addingTimeInterval(-120), appliedAt: at,
                    ordinal: ordinals[stage] ?? 1))
                holders[stage] = number
            }
        }
    }

    /// When the change at `index` (from 0) was applied.
    static func time(of index: Int) -> Date { origin.addingTimeInterval(Double(index + 1) * spacing) }

    /// Registers every version and records every change through the store's public API, as
    /// a training registers a version and the Model controller records an accepted change
    /// (numbering each stage's changes from the store, as it does).
    func populate(_ store: Store) throws {
        var registered = versions.makeIterator()
        var next = registered.next()
        for change in changes {
            while let version = next, version.registeredAt < change.appliedAt {
                try store.register(RegistryFixture.version(model: model, number: version.version, at: version.registeredAt))
                next = registered.next()
            }
            let ordinal = try store.stageChangeCount(of: model, stage: change.stage) + 1
            guard ordinal == change.ordinal else {
                throw BenchFixtureError("the store numbers the change \(change.summary) \(ordinal), the fixture \(change.ordinal)")
            }
            try store.recordStageChange(change)
        }
    }

    /// What `cairn models MODEL --at DAY` must answer: who held each stage at the day's start,
    /// and the changes during it, oldest first.
    func answer(atDay start: Date) -> StagesAnswer {
        var holders: [String: Int] = [:]
        for change in changes where change.appliedAt <= start { holders[change.stage] = change.version }
        let end = start.addingTimeInterval(86_400)
        return StagesAnswer(holders: holders, changesThatDay: changes.filter { $0.appliedAt > start && $0.appliedAt < end }.map(StagesAnswer.describe))
    }
}

/// Which version held each stage, and the changes of the day: what the harness compares.
struct StagesAnswer: Codable, Equatable, CustomStringConvertible {
    var holders: [String: Int]
    /// `staging 437`, oldest first.
    var changesThatDay: [String]

    static func describe(_ change: StageChange) -> String { describe(stage: change.stage, version: change.version) }
    static func describe(stage: String, version: Int?) -> String { "\(stage) \(version.map(String.init) ?? "none")" }

    var description: String {
        holders.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            + "; that day: " + (changesThatDay.isEmpty ? "no change" : changesThatDay.joined(separator: ", "))
    }
}
