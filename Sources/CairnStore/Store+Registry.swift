public import CairnCore
public import CairnManifests
public import Foundation
import GRDB

/// The model registry (`modelVersion`), what controllers keep between passes (`memory`) and
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
        }
    }

    // MARK: Registering outside a pass

    /// Registers a version in its own transaction (the benchmark, and tools that import a
    /// registry); a pass registers through `StoreEffect.registerVersion` with its status.
    public func register(_ version: ModelVersion) throws {
        try pool.write { db in try Self.applyRegistry(.registerVersion(version), in: db) }
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
