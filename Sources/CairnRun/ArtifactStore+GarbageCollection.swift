public import Foundation
public import CairnCore

/// What one garbage collection of the artifact store did (or, on a dry run, would do).
public struct GarbageReport: Sendable, Hashable, Codable {
    public var dryRun: Bool
    public var removedBlobs = 0
    public var removedBytes: Int64 = 0
    public var keptBlobs = 0
    public var keptBytes: Int64 = 0
    /// Leftovers of interrupted writes under `tmp/`, older than the grace period.
    public var removedTemporaryFiles = 0
    public var removedTemporaryBytes: Int64 = 0
    /// Kept artifacts whose blob is not in the store (already collected, or never stored):
    /// the runs that made them run again when their outputs are needed.
    public var missing: [String] = []

    public init(dryRun: Bool) { self.dryRun = dryRun }
}

extension ArtifactStore {
    /// How old a file under `tmp/` must be before it is taken for the leftover of a write
    /// that died: a store in progress renames its temporary file within moments.
    public static let temporaryGracePeriod: TimeInterval = 3600

    /// Removes every blob that no artifact in `artifacts` needs: a file artifact needs its
    /// blob, a directory artifact its manifest and every file the manifest lists. Files under
    /// `tmp/` older than `temporaryGracePeriod` go too. With `dryRun` nothing is removed and
    /// the report says what would be.
    ///
    /// The caller must hold the state directory to itself (the daemon lock): a blob stored
    /// while this runs, for a run not yet recorded, would be taken for garbage.
    /// Throws, removing nothing, when a kept directory manifest cannot be read, since the
    /// files it lists could not be told from garbage.
    public func collectGarbage(keeping artifacts: some Sequence<Artifact>, dryRun: Bool, now: Date = Date()) throws -> GarbageReport {
        var report = GarbageReport(dryRun: dryRun)
        var kept = Set<String>()
        var missing = Set<String>()
        for artifact in artifacts {
            kept.insert(artifact.digest.hex)
            guard contains(artifact.digest) else {
                missing.insert(artifact.digest.hex)
                continue
            }
            if artifact.kind == .directory {
                let manifest: DirectoryManifest
                do {
                    manifest = try JSONDecoder().decode(DirectoryManifest.self, from: Data(contentsOf: path(of: artifact.digest)))
                } catch {
                    throw ArtifactError("the directory manifest \(artifact.digest) cannot be read (\(error)); nothing was removed, "
                                        + "since the files it lists cannot be told from garbage")
                }
                for entry in manifest.entries {
                    kept.insert(entry.sha256)
                    if !contains(ContentHash(hex: entry.sha256)) { missing.insert(entry.sha256) }
                }
            }
        }
        report.missing = missing.sorted()

        let manager = FileManager.default
        let blobs = root.appendingPathComponent("sha256")
        for prefix in (try? manager.contentsOfDirectory(atPath: blobs.path))?.sorted() ?? [] where Self.isHex(prefix, count: 2) {
            let folder = blobs.appendingPathComponent(prefix)
            var remaining = 0
            for rest in try manager.contentsOfDirectory(atPath: folder.path) {
                let file = folder.appendingPathComponent(rest)
                // Only names a blob can have are the store's; anything else is left alone.
                guard Self.isHex(rest, count: 62) else {
                    remaining += 1
                    continue
                }
                let size = Self.diskUsage(of: file)
                if kept.contains(prefix + rest) {
                    report.keptBlobs += 1
                    report.keptBytes += size
                    remaining += 1
                    continue
                }
                if !dryRun { try manager.removeItem(at: file) }
                report.removedBlobs += 1
                report.removedBytes += size
            }
            if remaining == 0, !dryRun { try? manager.removeItem(at: folder) }
        }

        let scratch = root.appendingPathComponent("tmp")
        for name in (try? manager.contentsOfDirectory(atPath: scratch.path)) ?? [] {
            let file = scratch.appendingPathComponent(name)
            guard let modified = (try? manager.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date,
                  now.timeIntervalSince(modified) > Self.temporaryGracePeriod else { continue }
            let size = Self.diskUsage(of: file)
            if !dryRun { try manager.removeItem(at: file) }
            report.removedTemporaryFiles += 1
            report.removedTemporaryBytes += size
        }
        return report
    }

    private static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// A file's size, or a directory's files' sizes together (0 for what cannot be read).
    public static func diskUsage(of url: URL) -> Int64 {
        let manager = FileManager.default
        guard let attributes = try? manager.attributesOfItem(atPath: url.path) else { return 0 }
        if attributes[.type] as? FileAttributeType != .typeDirectory {
            return (attributes[.size] as? NSNumber)?.int64Value ?? 0
        }
        var total: Int64 = 0
        guard let enumerator = manager.enumerator(atPath: url.path) else { return 0 }
        for case let relative as String in enumerator {
            let child = try? manager.attributesOfItem(atPath: url.appendingPathComponent(relative).path)
            if child?[.type] as? FileAttributeType == .typeRegular { total += (child?[.size] as? NSNumber)?.int64Value ?? 0 }
        }
        return total
    }
}
