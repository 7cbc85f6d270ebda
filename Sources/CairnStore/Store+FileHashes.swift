public import CairnCore
import GRDB

/// The stat cache for data outside the repository: a file's hash, remembered with the stamp
/// (size, modification time, inode, device) it had when it was hashed.
extension Store: FileHashCache {
    /// The remembered hash of `path`, only when every field of its stamp is unchanged; nil
    /// when there is none, or the store cannot be read (the caller hashes the file again).
    public func hash(of path: String, stamp: FileStamp) -> ContentHash? {
        let row = try? pool.read { db in
            try Row.fetchOne(db, sql: "SELECT size, mtimeNs, inode, device, hash FROM fileHash WHERE path = ?", arguments: [path])
        }
        guard let row: Row = row ?? nil else { return nil }
        let remembered = FileStamp(size: row["size"], modifiedNanoseconds: row["mtimeNs"],
                                   inode: UInt64(bitPattern: row["inode"]), device: UInt64(bitPattern: row["device"]))
        guard remembered == stamp else { return nil }
        return ContentHash(hex: row["hash"])
    }

    /// Remembers the hashes in one transaction. Best effort: this is a cache, so a store that
    /// cannot be written (read-only, disk full) costs a rehash next time, never an error.
    public func remember(_ entries: [(path: String, stamp: FileStamp, hash: ContentHash)]) {
        guard !entries.isEmpty else { return }
        try? pool.write { db in
            for entry in entries {
                try db.execute(sql: """
                    INSERT OR REPLACE INTO fileHash (path, size, mtimeNs, inode, device, hash) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [entry.path, entry.stamp.size, entry.stamp.modifiedNanoseconds,
                                     Int64(bitPattern: entry.stamp.inode), Int64(bitPattern: entry.stamp.device), entry.hash.hex])
            }
        }
    }
}
