public import CairnCore
import Foundation
import GRDB

/// The registry's git tags in GTO's grammar (`--registry-tags`): each is planned here, named
/// and numbered, before it is written to git, and its state follows it there and to the
/// remote. Which registry rows have been planned is a watermark over `modelVersion` (its
/// rowid: versions are never deleted, so it only grows) and `stageChange` (its id).
extension Store {
    /// How far the registry has been planned into tags.
    public struct RegistryTagMark: Hashable, Sendable {
        public var versionRow: Int64
        public var stageChange: Int64
    }

    /// Registry rows not planned into tags yet, and the mark that covers them.
    public struct RegistryTagBacklog: Sendable {
        public var events: [RegistryEvent]
        /// The mark it starts after, and the one that covers it.
        public var from: RegistryTagMark
        public var through: RegistryTagMark
        public var models: Set<String>
    }

    static func registerRegistryTagMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7: registry tags") { db in
            // One row per tag Cairn plans; name is NULL only for a tag skipped before it was
            // named. Rows are updated as the tag reaches git and the remote, never deleted.
            try db.create(table: "registryTag") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("name", .text).unique()
                table.column("model", .text).notNull()
                table.column("version", .integer).notNull()
                table.column("action", .text).notNull()
                table.column("stage", .text)
                table.column("counter", .integer)
                table.column("stageChange", .integer)
                table.column("target", .text).notNull()
                table.column("message", .text).notNull()
                table.column("tagger", .text).notNull()
                table.column("taggedAt", .integer).notNull()
                table.column("state", .text).notNull()
                table.column("object", .text)
                table.column("problem", .text)
                table.column("push", .text).notNull()
            }
            try db.create(index: "registryTag_model", on: "registryTag", columns: ["model", "version"])
            try db.create(index: "registryTag_state", on: "registryTag", columns: ["state"])
            try db.create(index: "registryTag_push", on: "registryTag", columns: ["push", "state"])
        }
    }

    /// Whether tags need work: registry rows not planned yet, or tags planned or held. One
    /// read of a few index entries, so a drain can ask every time.
    public func registryTagsNeedWork() throws -> Bool {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE((SELECT MAX(rowid) FROM modelVersion), 0) AS versionRow,
                       COALESCE((SELECT MAX(id) FROM stageChange), 0) AS stageChange,
                       EXISTS (SELECT 1 FROM registryTag WHERE state IN ('planned', 'held')) AS pending
                """)
            guard let row else { return false }
            let mark = try Self.registryTagMark(db)
            return (row["pending"] as Bool) || (row["versionRow"] as Int64) > mark.versionRow || (row["stageChange"] as Int64) > mark.stageChange
        }
    }

    /// The versions and stage changes recorded since the last plan; nil when there are none.
    public func registryTagBacklog() throws -> RegistryTagBacklog? {
        try pool.read { db in
            let mark = try Self.registryTagMark(db)
            var through = mark
            var events: [RegistryEvent] = []
            var models: Set<String> = []
            for row in try Row.fetchAll(db, sql: "SELECT rowid, model, record FROM modelVersion WHERE rowid > ? ORDER BY rowid",
                                        arguments: [mark.versionRow]) {
                let version = try JSONDecoder.store.decode(ModelVersion.self, from: Data((row["record"] as String).utf8))
                events.append(.registered(version))
                models.insert(version.model)
                through.versionRow = max(through.versionRow, row["rowid"])
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, record FROM stageChange WHERE id > ? ORDER BY id", arguments: [mark.stageChange]) {
                let change = try JSONDecoder.store.decode(StageChange.self, from: Data((row["record"] as String).utf8))
                let id: Int64 = row["id"]
                events.append(.stageChanged(change, id: id))
                models.insert(change.model)
                through.stageChange = max(through.stageChange, id)
            }
            return events.isEmpty ? nil : RegistryTagBacklog(events: events, from: mark, through: through, models: models)
        }
    }

    /// Every tag planned for `models`, oldest first.
    public func registryTags(of models: Set<String>) throws -> [RegistryTag] {
        try pool.read { db in
            var tags: [RegistryTag] = []
            for model in models.sorted() {
                tags += try Self.fetchTags(db, where: "model = ?", [model])
            }
            return tags
        }
    }

    /// Records a plan and moves the mark past what it covers, in one transaction. Refuses when
    /// the mark is not where the plan started from (another writer planned meanwhile).
    public func planRegistryTags(_ tags: [RegistryTag], from start: RegistryTagMark, through end: RegistryTagMark) throws {
        try pool.write { db in
            let current = try Self.registryTagMark(db)
            guard current == start else {
                throw ModelRegistryError("the registry tags were planned by another writer meanwhile (mark \(current), expected \(start))")
            }
            for tag in tags {
                try db.execute(sql: """
                    INSERT INTO registryTag (name, model, version, action, stage, counter, stageChange, target, message, tagger,
                                             taggedAt, state, object, problem, push)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [tag.name, tag.model, tag.version, tag.action.rawValue, tag.stage, tag.counter, tag.stageChange,
                                     tag.target, tag.message, tag.tagger, Int64(tag.taggedAt.timeIntervalSince1970.rounded(.down)),
                                     tag.state.rawValue, tag.object, tag.problem, tag.push.rawValue])
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('registryTags', ?)",
                           arguments: ["\(end.versionRow) \(end.stageChange)"])
        }
    }

    /// Tags to write to git: planned or held, oldest first.
    public func registryTagsToWrite() throws -> [RegistryTag] {
        try pool.read { db in try Self.fetchTags(db, where: "state IN ('planned', 'held')", []) }
    }

    /// The registration tag of a version, if one was planned.
    public func registrationTag(of model: String, version: Int) throws -> RegistryTag? {
        try pool.read { db in try Self.fetchTags(db, where: "model = ? AND version = ? AND action = 'register'", [model, version]).first }
    }

    /// Tags written to git and not pushed yet, oldest first; with `retrying`, also those the
    /// remote refused before.
    public func registryTagsToPush(retrying: Bool) throws -> [RegistryTag] {
        try pool.read { db in
            try Self.fetchTags(db, where: retrying ? "state = 'created' AND push IN ('pending', 'rejected')"
                                                   : "state = 'created' AND push = 'pending'", [])
        }
    }

    /// Tags that are not where Cairn means them to be: held, skipped, or refused by the
    /// remote, oldest first. Empty for a store from before registry tags.
    public func registryTagProblems() throws -> [RegistryTag] {
        try pool.read { db in
            guard try db.tableExists("registryTag") else { return [] }
            return try Self.fetchTags(db, where: "state IN ('held', 'skipped') OR push = 'rejected'", [])
        }
    }

    /// Records where a tag got: its state, object, problem and push.
    public func updateRegistryTag(_ tag: RegistryTag) throws {
        guard let id = tag.id else { throw ModelRegistryError("a registry tag without an id cannot be updated (\(tag.label))") }
        try pool.write { db in
            try db.execute(sql: "UPDATE registryTag SET state = ?, object = ?, problem = ?, push = ? WHERE id = ?",
                           arguments: [tag.state.rawValue, tag.object, tag.problem, tag.push.rawValue, id])
        }
    }

    private static func registryTagMark(_ db: Database) throws -> RegistryTagMark {
        let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'registryTags'") ?? "0 0"
        let parts = text.split(separator: " ").compactMap { Int64($0) }
        guard parts.count == 2 else { throw ModelRegistryError("the registry tag mark '\(text)' in the store's meta table is not two numbers") }
        return RegistryTagMark(versionRow: parts[0], stageChange: parts[1])
    }

    private static func fetchTags(_ db: Database, where condition: String, _ arguments: StatementArguments) throws -> [RegistryTag] {
        try Row.fetchAll(db, sql: "SELECT * FROM registryTag WHERE \(condition) ORDER BY id", arguments: arguments).map { row in
            let action: String = row["action"], state: String = row["state"], push: String = row["push"]
            guard let action = RegistryTag.Action(rawValue: action), let state = RegistryTag.State(rawValue: state),
                  let push = RegistryTag.Push(rawValue: push) else {
                throw ModelRegistryError("registry tag row \(row["id"] as Int64) has an unknown action, state or push ('\(action)', '\(state)', '\(push)')")
            }
            return RegistryTag(id: row["id"], name: row["name"], model: row["model"], version: row["version"], action: action,
                               stage: row["stage"], counter: row["counter"], stageChange: row["stageChange"], target: row["target"],
                               message: row["message"], tagger: row["tagger"],
                               taggedAt: Date(timeIntervalSince1970: TimeInterval(row["taggedAt"] as Int64)), state: state,
                               object: row["object"], problem: row["problem"], push: push)
        }
    }
}

extension Store.RegistryTagMark: CustomStringConvertible {
    public var description: String { "\(versionRow) \(stageChange)" }
}
