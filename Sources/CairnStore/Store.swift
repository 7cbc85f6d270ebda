public import Foundation
public import CairnManifests
public import CairnCore
import GRDB
import Synchronization

/// The metadata store: SQLite in WAL mode under the state directory. Every status change is
/// written in the same transaction as the outbox entry that will carry it to git, so a crash
/// loses nothing and commits nothing twice.
public final class Store: RunRecords, Sendable {
    /// Internal, not private, so the store's `Store+Feature.swift` files can use it.
    let pool: any DatabaseWriter
    public let path: URL
    /// Run records already decoded, by their stored JSON: a pass looks up every stage's runs,
    /// and the rows rarely change between passes. Bounded (it starts over past 20,000).
    private let decodedRuns = Mutex<[String: RunRecord]>([:])

    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("cairn.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // WAL with synchronous=NORMAL: a killed process loses nothing that was committed; only
        // a power cut can lose the last transactions, never corrupt the file. The outbox makes
        // that safe too: a lost transaction is a pass that runs again.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // A small page cache per connection: the daemon keeps its statuses in memory, and
            // SQLite's default 2 MiB a connection is most of its idle footprint's margin.
            try db.execute(sql: "PRAGMA cache_size = -512")
        }
        // One process, one writer, rare concurrent reads (status while the daemon writes).
        configuration.maximumReaderCount = 2
        pool = try DatabasePool(path: path.path, configuration: configuration)
        try Self.migrator.migrate(pool)
        identity = try pool.write { db in
            if let existing = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'identity'") { return existing }
            let created = UUID().uuidString.lowercased()
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('identity', ?)", arguments: [created])
            return created
        }
    }

    /// Opens an existing store only to read it, without writing anything: for `status` and
    /// `history` on a state directory the reader cannot write (another user's daemon, a
    /// read-only mount). When SQLite cannot even create its shared-memory file there, the
    /// database is read as immutable: what the daemon has checkpointed, which lags the live
    /// store by at most its write-ahead log.
    public init(readingFrom directory: URL) throws {
        path = directory.appendingPathComponent("cairn.sqlite")
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        func open(_ location: String) throws -> (any DatabaseWriter, String) {
            let queue = try DatabaseQueue(path: location, configuration: configuration)
            let identity = try queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'identity'") }
            return (queue, identity ?? "")
        }
        do {
            (pool, identity) = try open(path.path)
        } catch {
            (pool, identity) = try open("file:\(path.path)?immutable=1")
        }
    }

    /// A random id made when the store was created. Outbox ids are only meaningful within one
    /// store: a status commit names both, so a new store never mistakes an old mark for its own.
    public let identity: String

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: commits, objects, events, outbox") { db in
            try db.create(table: "meta") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
            try db.create(table: "commit") { table in
                table.primaryKey("id", .text)
                table.column("reconciledAt", .datetime).notNull()
                table.column("summary", .text).notNull()
            }
            try db.create(table: "object") { table in
                table.primaryKey("ref", .text)
                table.column("status", .jsonText).notNull()
            }
            try db.create(table: "event") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("ref", .text).notNull().indexed()
                table.column("time", .datetime).notNull()
                table.column("reason", .text).notNull()
                table.column("message", .text).notNull()
                table.column("sourceCommit", .text).notNull()
            }
            try db.create(table: "request") { table in
                table.primaryKey("ref", .text)
            }
            try db.create(table: "outbox") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("entry", .jsonText).notNull()
            }
        }
        migrator.registerMigration("v2: runs") { db in
            try db.create(table: "run") { table in
                table.primaryKey("id", .text)
                table.column("key", .text).notNull().indexed()
                table.column("object", .text).notNull().indexed()
                table.column("record", .jsonText).notNull()
            }
        }
        migrator.registerMigration("v3: last good specs") { db in
            try db.create(table: "accepted") { table in
                table.primaryKey("ref", .text)
                table.column("spec", .jsonText).notNull()
            }
        }
        migrator.registerMigration("v4: file hashes") { db in
            // The stat cache of `FileHashCache` (Store+FileHashes.swift). inode and device are
            // UInt64, kept as their Int64 bit patterns.
            try db.create(table: "fileHash") { table in
                table.primaryKey("path", .text)
                table.column("size", .integer).notNull()
                table.column("mtimeNs", .integer).notNull()
                table.column("ctimeNs", .integer).notNull()
                table.column("inode", .integer).notNull()
                table.column("device", .integer).notNull()
                table.column("hash", .text).notNull()
            }
        }
        registerRegistryMigration(&migrator)
        registerStageMigration(&migrator)
        registerRegistryTagMigration(&migrator)
        return migrator
    }

    // MARK: Reading

    public func meta(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    /// The source commit the last complete pass reconciled.
    public func lastReconciledCommit() throws -> String? { try meta("lastReconciledCommit") }

    public func objects() throws -> [ObjectStatus] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT status FROM object ORDER BY ref").map(Self.decode)
        }
    }

    public func object(_ ref: ObjectRef) throws -> ObjectStatus? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT status FROM object WHERE ref = ?", arguments: [ref.description]).map(Self.decode)
        }
    }

    /// The newest events of an object, newest first.
    public func history(_ ref: ObjectRef, limit: Int = 100) throws -> [Event] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE ref = ? ORDER BY id DESC LIMIT ?", arguments: [ref.description, limit]).map { row in
                Event(id: row["id"], ref: ref, time: row["time"], reason: row["reason"], message: row["message"], sourceCommit: row["sourceCommit"])
            }
        }
    }

    /// Outbox entries not yet written to git, oldest first.
    public func pendingOutbox() throws -> [OutboxEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, entry FROM outbox ORDER BY id").map { row in
                var entry = try JSONDecoder.store.decode(OutboxEntry.self, from: Data((row["entry"] as String).utf8))
                entry.id = row["id"]
                return entry
            }
        }
    }

    public func runs(withKey key: String) throws -> [RunRecord] {
        try pool.read { db in
            // Skip records are one per stage and commit: they would make this grow with history.
            try String.fetchAll(db, sql: """
                SELECT record FROM run WHERE key = ? AND json_extract(record, '$.state') <> 'skipped' ORDER BY rowid DESC
                """, arguments: [key])
                .map { try decodeRun($0) }
        }
    }

    public func runs(of object: ObjectRef, limit: Int) throws -> [RunRecord] {
        try recentRuns(of: object, limit: limit)
    }

    // MARK: Writing

    /// Applies one pass: object upserts and deletions, events, outbox entries and the last
    /// reconciled commit, all or nothing.
    public func apply(_ changes: PassChanges, now: Date = Date()) throws {
        guard !changes.isEmpty else { return }
        try pool.write { db in
            for status in changes.upserts {
                try db.execute(sql: "INSERT OR REPLACE INTO object (ref, status) VALUES (?, ?)",
                               arguments: [status.ref.description, try Self.encode(status)])
            }
            for ref in changes.deletions {
                try db.execute(sql: "DELETE FROM object WHERE ref = ?", arguments: [ref.description])
                try db.execute(sql: "DELETE FROM accepted WHERE ref = ?", arguments: [ref.description])
            }
            for (ref, spec) in changes.accepted {
                try db.execute(sql: "INSERT OR REPLACE INTO accepted (ref, spec) VALUES (?, ?)", arguments: [ref.description, try Self.encode(spec)])
            }
            if let settings = changes.readSettings {
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('readSettings', ?)", arguments: [settings])
            }
            if let files = changes.invalidFiles {
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('invalidFiles', ?)", arguments: [try Self.encode(files)])
            }
            for event in changes.events {
                try db.execute(sql: "INSERT INTO event (ref, time, reason, message, sourceCommit) VALUES (?, ?, ?, ?, ?)",
                               arguments: [event.ref.description, event.time, event.reason, event.message, event.sourceCommit])
            }
            for effect in changes.effects {
                try Self.apply(effect, in: db)
            }
            for entry in changes.outbox {
                try db.execute(sql: "INSERT INTO outbox (entry) VALUES (?)", arguments: [try Self.encode(entry)])
            }
            if let commit = changes.reconciledCommit {
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('lastReconciledCommit', ?)", arguments: [commit])
                try db.execute(sql: "INSERT OR REPLACE INTO \"commit\" (id, reconciledAt, summary) VALUES (?, ?, ?)",
                               arguments: [commit, now, changes.summary ?? ""])
            }
        }
    }

    private static func apply(_ effect: StoreEffect, in db: Database) throws {
        switch effect {
        case .recordRun(let run):
            // An upsert that keeps the row (and its insertion order) when the run is updated.
            try db.execute(sql: """
                INSERT INTO run (id, key, object, record) VALUES (?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET key = excluded.key, object = excluded.object, record = excluded.record
                """, arguments: [run.id, run.key, run.object.description, try encode(run)])
        case .registerVersion, .remember, .consumeTrigger, .addTrigger, .changeStage:
            try applyRegistry(effect, in: db)
        }
    }

    /// Removes outbox entries up to and including `id`, once git holds them, and records the
    /// status branch's tip they were written up to, in one transaction.
    public func markDrained(upTo id: Int64?, statusRef: String, statusTip: String?) throws {
        try pool.write { db in
            if let id { try db.execute(sql: "DELETE FROM outbox WHERE id <= ?", arguments: [id]) }
            if let statusTip {
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: ["statusTip:" + statusRef, statusTip])
            }
        }
    }

    /// The last spec an object was reconciled with, kept while its manifest cannot be read.
    public func lastGoodSpec(of ref: ObjectRef) throws -> Spec? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT spec FROM accepted WHERE ref = ?", arguments: [ref.description])
                .map { try JSONDecoder.store.decode(Spec.self, from: Data($0.utf8)) }
        }
    }

    /// The manifest files the last pass could not read, with the first problem of each.
    public func invalidFiles() throws -> [String] {
        try meta("invalidFiles").map { try JSONDecoder.store.decode([String].self, from: Data($0.utf8)) } ?? []
    }

    // MARK: Trust

    /// The last commit of the tracked branch whose signatures were trusted.
    /// Kept per set of trusted keys (`keys` names them): a commit trusted under keys since
    /// removed is not trusted under the new ones.
    public func trustedCommit(keys: String) throws -> String? { try meta("trustedCommit:" + keys) }

    /// The tip Cairn refused to reconcile, and why, while it stays on the last trusted commit.
    public func refusal() throws -> (commit: String, reason: String)? {
        guard let commit = try meta("refusedCommit"), let reason = try meta("refusalReason") else { return nil }
        return (commit, reason)
    }

    /// Records a trusted tip and forgets any refusal.
    public func recordTrusted(_ commit: String, keys: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM meta WHERE key LIKE 'trustedCommit:%'")
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: ["trustedCommit:" + keys, commit])
            try db.execute(sql: "DELETE FROM meta WHERE key IN ('refusedCommit', 'refusalReason')")
        }
    }

    /// Records a refused tip and the note that says so on it, in one transaction.
    public func recordRefusal(of commit: String, reason: String, note: OutboxEntry) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('refusedCommit', ?)", arguments: [commit])
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('refusalReason', ?)", arguments: [reason])
            try db.execute(sql: "INSERT INTO outbox (entry) VALUES (?)", arguments: [try Self.encode(note)])
        }
    }

    /// The tip Cairn last left `statusRef` at (after a drain or a rebuild for a push), per
    /// branch: a tip recorded for one status branch says nothing about another.
    public func statusTip(of statusRef: String) throws -> String? { try meta("statusTip:" + statusRef) }

    /// What Cairn last wrote in the note on a source commit, if anything.
    public func noteText(on commit: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT summary FROM \"commit\" WHERE id = ?", arguments: [commit]) }
    }

    /// Asks the daemon to reconcile `ref` ahead of its interval.
    public func request(_ ref: ObjectRef) throws {
        try pool.write { db in try db.execute(sql: "INSERT OR IGNORE INTO request (ref) VALUES (?)", arguments: [ref.description]) }
    }

    public func hasRequests() throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM request)") ?? false }
    }

    /// How many objects are asked for and wait for a pass: the engine's queue.
    public func requestCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM request") ?? 0 }
    }

    /// Takes (and removes) the pending reconcile requests.
    public func takeRequests() throws -> [ObjectRef] {
        try pool.write { db in
            let refs = try String.fetchAll(db, sql: "SELECT ref FROM request ORDER BY ref")
            try db.execute(sql: "DELETE FROM request")
            return refs.compactMap(ObjectRef.init(parsing:))
        }
    }

    // MARK: Coding

    private static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder.store.encode(value), as: UTF8.self)
    }

    private static func decode(_ text: String) throws -> ObjectStatus {
        try JSONDecoder.store.decode(ObjectStatus.self, from: Data(text.utf8))
    }
}

extension JSONEncoder {
    static var store: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }
}

extension JSONDecoder {
    static var store: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }
}

// MARK: Runs, as executors write them

extension Store: RunLedger {
    /// Inserts or updates a run at once, in its own transaction: an executor writes the row
    /// before the process starts and again when it ends.
    public func record(_ run: RunRecord) throws {
        try pool.write { db in try Self.apply(.recordRun(run), in: db) }
    }

    public func run(id: String) throws -> RunRecord? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT record FROM run WHERE id = ?", arguments: [id])
                .map { try decodeRun($0) }
        }
    }

    public func unfinishedRuns() throws -> [RunRecord] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT record FROM run WHERE json_extract(record, '$.state') IN ('submitted', 'running') ORDER BY rowid
                """).map { try decodeRun($0) }
        }
    }

    /// The newest runs, of one object or of all, newest first.
    public func recentRuns(of object: ObjectRef? = nil, limit: Int) throws -> [RunRecord] {
        try pool.read { db in
            let rows = if let object {
                try String.fetchAll(db, sql: "SELECT record FROM run WHERE object = ? ORDER BY rowid DESC LIMIT ?",
                                    arguments: [object.description, limit])
            } else {
                try String.fetchAll(db, sql: "SELECT record FROM run ORDER BY rowid DESC LIMIT ?", arguments: [limit])
            }
            return try rows.map { try decodeRun($0) }
        }
    }
}

extension Store {
    /// A run record from its stored JSON, decoded once per distinct text.
    func decodeRun(_ text: String) throws -> RunRecord {
        if let known = decodedRuns.withLock({ $0[text] }) { return known }
        let run = try JSONDecoder.store.decode(RunRecord.self, from: Data(text.utf8))
        decodedRuns.withLock { cache in
            if cache.count >= 20_000 { cache.removeAll(keepingCapacity: true) }
            cache[text] = run
        }
        return run
    }
}
