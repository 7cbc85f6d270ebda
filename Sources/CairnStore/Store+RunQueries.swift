public import CairnCore
public import CairnManifests
import Foundation
import GRDB

/// What `cairn runs`, `cairn logs` and `cairn gc` ask of the runs: lookups by id prefix,
/// filters, and the newest runs of each object.
extension Store {
    /// Runs whose id starts with `prefix`, newest first, at most `limit` (ask for 2 to tell a
    /// unique prefix from an ambiguous one).
    public func runs(withIDPrefix prefix: String, limit: Int) throws -> [RunRecord] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT record FROM run WHERE substr(id, 1, length(?1)) = ?1 ORDER BY rowid DESC LIMIT ?2",
                                arguments: [prefix, limit])
                .map { try self.decodeRun($0) }
        }
    }

    /// The runs with these ids that exist, in no particular order.
    public func runs(ids: some Collection<String>) throws -> [RunRecord] {
        guard !ids.isEmpty else { return [] }
        return try pool.read { db in
            var found: [RunRecord] = []
            // In slices, well under SQLite's limit on bound parameters.
            let all = Array(ids)
            for start in stride(from: 0, to: all.count, by: 500) {
                let slice = Array(all[start..<min(start + 500, all.count)])
                let marks = Array(repeating: "?", count: slice.count).joined(separator: ", ")
                found += try String.fetchAll(db, sql: "SELECT record FROM run WHERE id IN (\(marks))", arguments: StatementArguments(slice))
                    .map { try self.decodeRun($0) }
            }
            return found
        }
    }

    /// The newest runs, of one object or of all, in any of `states` (all states when empty),
    /// newest first.
    public func recentRuns(of object: ObjectRef?, stage: String? = nil, in states: Set<RunRecord.State>, limit: Int) throws -> [RunRecord] {
        guard !states.isEmpty || stage != nil else { return try recentRuns(of: object, limit: limit) }
        var sql = "SELECT record FROM run WHERE 1"
        var arguments = StatementArguments()
        if !states.isEmpty {
            let stateList = states.map(\.rawValue).sorted()
            sql += " AND json_extract(record, '$.state') IN (\(Array(repeating: "?", count: stateList.count).joined(separator: ", ")))"
            arguments += StatementArguments(stateList)
        }
        if let object {
            sql += " AND object = ?"
            arguments += [object.description]
        }
        if let stage {
            sql += " AND json_extract(record, '$.stage') = ?"
            arguments += [stage]
        }
        sql += " ORDER BY rowid DESC LIMIT ?"
        arguments += [limit]
        return try pool.read { db in try String.fetchAll(db, sql: sql, arguments: arguments).map { try self.decodeRun($0) } }
    }

    /// The newest `count` runs of each object, and of each stage of a pipeline apart, newest
    /// first; with `withOutputs`, only runs that recorded outputs count. What `cairn gc` keeps.
    public func newestRuns(perObjectAndStage count: Int, withOutputs: Bool) throws -> [RunRecord] {
        guard count > 0 else { return [] }
        return try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT record FROM (
                    SELECT record, rowid AS position,
                           ROW_NUMBER() OVER (PARTITION BY object, json_extract(record, '$.stage') ORDER BY rowid DESC) AS rank
                    FROM run
                    WHERE ?1 = 0 OR EXISTS (SELECT 1 FROM json_each(record, '$.outputs'))
                ) WHERE rank <= ?2 ORDER BY position DESC
                """, arguments: [withOutputs, count])
                .map { try self.decodeRun($0) }
        }
    }

    /// The ids of the runs the objects' current statuses report (`ObjectStatus.runs`).
    public func reportedRunIDs() throws -> Set<String> {
        Set(try objects().flatMap { $0.runs ?? [] })
    }

}

extension Store {
    /// Where the run table ends now: `runs(since:)` later gives what was added or changed
    /// since, without reading what came before.
    public func runMark() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(rowid) FROM run") ?? 0 }
    }

    /// The runs added after `mark`, and those not over yet, oldest first.
    public func runs(since mark: Int64) throws -> [RunRecord] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT record FROM run WHERE rowid > ? OR json_extract(record, '$.state') IN ('submitted', 'running') ORDER BY rowid
                """, arguments: [mark]).map { try self.decodeRun($0) }
        }
    }
}
