public import CairnCore
public import CairnManifests
public import Foundation
import GRDB

/// The model registry (`modelVersion`), its stage history (`stageChange`), what controllers keep between passes (`memory`) and
/// pending manual triggers (`trigger`).
extension Store: ModelVersions, ObjectMemory {
    static func registerRegistryMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5: model registry, object memory, triggers") { db in
            // (model, version) is the key: a number is given once per model. runID is unique:
            // one run registers at most one version, whatever crash comes between.
            try db.create(table: "modelVersion") { table in
                table.column("model", .text).notNull()
                table.column("version", .integer).notNull()
                table.column("runID", .text).notNull().unique()
                table.column("record", .jsonText).notNull()
                table.primaryKey(["model", "version"])
            }
            try db.create(table: "memory") { table in
                table.primaryKey("ref", .text)
                table.column("value", .blob).notNull()
            }
            try db.create(table: "trigger") { table in
                table.primaryKey("id", .text)
                table.column("ref", .text).notNull().indexed()
                table.column("request", .jsonText).notNull()
            }
        }
    }

    static func applyRegistry(_ effect: StoreEffect, in db: Database) throws {
        switch effect {
        case .recordRun:
            break
        case .registerVersion(let version):
            // Numbers only grow: a version below the highest given would be a reuse.
            let highest = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM modelVersion WHERE model = ?", arguments: [version.model]) ?? 0
            guard version.version > highest else {
                throw ModelRegistryError("version \(version.version) of \(version.model) is not above \(highest), the highest given; "
                                    + "a version number is never given twice")
            }
            try db.execute(sql: "INSERT INTO modelVersion (model, version, runID, record) VALUES (?, ?, ?, ?)",
                           arguments: [version.model, version.version, version.lineage.runID, try encodeJSON(version)])
        case .remember(let ref, let value):
            if let value {
                try db.execute(sql: "INSERT OR REPLACE INTO memory (ref, value) VALUES (?, ?)", arguments: [ref.description, value])
            } else {
                try db.execute(sql: "DELETE FROM memory WHERE ref = ?", arguments: [ref.description])
            }
        case .consumeTrigger(let id):
            try db.execute(sql: "DELETE FROM trigger WHERE id = ?", arguments: [id])
        case .addTrigger(let request):
            try db.execute(sql: "INSERT OR IGNORE INTO trigger (id, ref, request) VALUES (?, ?, ?)",
                           arguments: [request.id, request.object.description, try encodeJSON(request)])
        case .changeStage(let change):
            try db.execute(sql: "INSERT INTO stageChange (model, stage, version, appliedAt, record) VALUES (?, ?, ?, ?, ?)",
                           arguments: [change.model, change.stage, change.version, Self.milliseconds(change.appliedAt), try encodeJSON(change)])
        }
    }

    static func registerStageMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6: stage history") { db in
            // One row per accepted change, never updated or deleted: the stage history.
            // appliedAt is milliseconds since 1970, so a dated question is one range scan.
            try db.create(table: "stageChange") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("model", .text).notNull()
                table.column("stage", .text).notNull()
                table.column("version", .integer)
                table.column("appliedAt", .integer).notNull()
                table.column("record", .jsonText).notNull()
            }
            try db.create(index: "stageChange_model_stage", on: "stageChange", columns: ["model", "stage", "id"])
            try db.create(index: "stageChange_model_time", on: "stageChange", columns: ["model", "appliedAt", "id"])
        }
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Registering outside a pass

    /// Registers a version in its own transaction (the benchmark, and tools that import a
    /// registry); a pass registers through `StoreEffect.registerVersion` with its status.
    public func register(_ version: ModelVersion) throws {
        try pool.write { db in try Self.applyRegistry(.registerVersion(version), in: db) }
    }

    /// Records a stage change in its own transaction (the benchmark and tests); a pass records
    /// through `StoreEffect.changeStage` with the Model's status.
    public func recordStageChange(_ change: StageChange) throws {
        try pool.write { db in try Self.applyRegistry(.changeStage(change), in: db) }
    }

    // MARK: Reading the registry

    public func version(_ model: String, _ number: Int) throws -> ModelVersion? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT record FROM modelVersion WHERE model = ? AND version = ?", arguments: [model, number])
                .map(Self.decodeVersion)
        }
    }

    public func version(registeredBy runID: String) throws -> ModelVersion? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT record FROM modelVersion WHERE runID = ?", arguments: [runID]).map(Self.decodeVersion)
        }
    }

    public func latestVersionNumber(of model: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT MAX(version) FROM modelVersion WHERE model = ?", arguments: [model]) ?? 0 }
    }

    /// A model's versions, newest first, at most `limit`.
    public func versions(of model: String, limit: Int = 10_000) throws -> [ModelVersion] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT record FROM modelVersion WHERE model = ? ORDER BY version DESC LIMIT ?",
                                arguments: [model, limit]).map(Self.decodeVersion)
        }
    }

    /// Every model with a version: its newest version and how many it has, by model name.
    public func registeredModels() throws -> [(latest: ModelVersion, count: Int)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT v.record AS record, c.count AS count
                FROM (SELECT model, MAX(version) AS version, COUNT(*) AS count FROM modelVersion GROUP BY model) AS c
                JOIN modelVersion AS v ON v.model = c.model AND v.version = c.version
                ORDER BY c.model
                """).map { row in (try Self.decodeVersion(row["record"]), row["count"]) }
        }
    }

    /// Every version of every model (for restoring the status branch and for `gc`).
    public func allVersions() throws -> [ModelVersion] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT record FROM modelVersion ORDER BY model, version").map(Self.decodeVersion)
        }
    }

    // MARK: Stages

    public func stageMap(of model: String) throws -> StageMap {
        try pool.read { db in
            var map = StageMap()
            let latest = try Self.decodeChanges(db, sql: """
                SELECT record FROM stageChange WHERE id IN (SELECT MAX(id) FROM stageChange WHERE model = ? GROUP BY stage)
                """, [model])
            for change in latest {
                if let version = change.version {
                    map.holders[change.stage] = StageHolding(version: version, since: change.appliedAt, commit: change.sourceCommit,
                                                             author: change.author)
                }
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT DISTINCT stage, version FROM stageChange WHERE model = ? AND version IS NOT NULL ORDER BY stage, version
                """, arguments: [model])
            for row in rows { map.held[row["stage"], default: []].append(row["version"]) }
            return map
        }
    }

    public func stageChangeCount(of model: String, stage: String) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM stageChange WHERE model = ? AND stage = ?", arguments: [model, stage]) ?? 0
        }
    }

    /// A model's stage changes, newest first, at most `limit`.
    public func stageHistory(of model: String, limit: Int = 10_000) throws -> [StageChange] {
        try pool.read { db in
            try Self.decodeChanges(db, sql: "SELECT record FROM stageChange WHERE model = ? ORDER BY id DESC LIMIT ?", [model, limit])
        }
    }

    /// The change that put each stage where it stood at `date`: by stage, the last one applied
    /// at or before it (a stage unassigned then has a change without a version, or none).
    public func stageChanges(of model: String, asOf date: Date) throws -> [StageChange] {
        try pool.read { db in
            try Self.decodeChanges(db, sql: """
                SELECT record FROM stageChange WHERE id IN (
                    SELECT MAX(id) FROM stageChange WHERE model = ? AND appliedAt <= ? GROUP BY stage)
                ORDER BY stage
                """, [model, Self.milliseconds(date)])
        }
    }

    /// The changes applied after `start` and at or before `end`, oldest first.
    public func stageChanges(of model: String, after start: Date, through end: Date, limit: Int = 1_000) throws -> [StageChange] {
        try pool.read { db in
            try Self.decodeChanges(db, sql: """
                SELECT record FROM stageChange WHERE model = ? AND appliedAt > ? AND appliedAt <= ? ORDER BY appliedAt, id LIMIT ?
                """, [model, Self.milliseconds(start), Self.milliseconds(end), limit])
        }
    }

    /// The first change recorded for a model, if any.
    public func firstStageChange(of model: String) throws -> StageChange? {
        try pool.read { db in
            try Self.decodeChanges(db, sql: "SELECT record FROM stageChange WHERE model = ? ORDER BY id LIMIT 1", [model]).first
        }
    }

    private static func decodeChanges(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> [StageChange] {
        try String.fetchAll(db, sql: sql, arguments: arguments).map { try JSONDecoder.store.decode(StageChange.self, from: Data($0.utf8)) }
    }

    // MARK: Memory and triggers

    public func memory(of object: ObjectRef) throws -> Data? {
        try pool.read { db in try Data.fetchOne(db, sql: "SELECT value FROM memory WHERE ref = ?", arguments: [object.description]) }
    }

    public func triggers(of object: ObjectRef) throws -> [TriggerRequest] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT request FROM trigger WHERE ref = ? ORDER BY rowid", arguments: [object.description])
                .map { try JSONDecoder.store.decode(TriggerRequest.self, from: Data($0.utf8)) }
        }
    }

    /// Records a request to run `request.object` now, and asks for a pass over it, in one transaction.
    public func addTrigger(_ request: TriggerRequest) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO trigger (id, ref, request) VALUES (?, ?, ?)",
                           arguments: [request.id, request.object.description, try encodeJSON(request)])
            try db.execute(sql: "INSERT OR IGNORE INTO request (ref) VALUES (?)", arguments: [request.object.description])
        }
    }

    // MARK: Coding

    private static func decodeVersion(_ text: String) throws -> ModelVersion {
        try JSONDecoder.store.decode(ModelVersion.self, from: Data(text.utf8))
    }
}

private func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try JSONEncoder.store.encode(value), as: UTF8.self)
}

/// The registry refused a write that would break its promises.
public struct ModelRegistryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
