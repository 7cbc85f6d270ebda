import CairnCore
import CairnRun
import Foundation

/// Throughput of storing one file as a run's output is stored: `ArtifactStore.store(consuming:)`
/// reads it once to hash it (SHA-256), fsyncs it and renames it into a fresh store beside it
/// (the run's directory is given up). Also the copying store (for files Cairn must not take,
/// read, hash, copy, fsync, rename) and the hash alone, so the costs can be told apart.
struct HashThroughput: Encodable {
    var file: String
    var bytes: Int
    /// `ArtifactStore.store(consuming: true)`, as the executor stores outputs: read, hash, fsync, rename.
    var storeSeconds: [Double]
    /// `ArtifactStore.store`: read, hash, copy, fsync, rename.
    var copySeconds: [Double]
    /// Read and hash only, in the same 1 MiB pieces.
    var hashSeconds: [Double]

    static func measure(file: URL, repeats: Int) throws -> HashThroughput {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
        var result = HashThroughput(file: file.path, bytes: size, storeSeconds: [], copySeconds: [], hashSeconds: [])
        for _ in 0..<max(1, repeats) {
            // Beside the file, so the output and the store share a file system, as a run's do.
            let root = file.deletingLastPathComponent().appendingPathComponent(".cairn-bench-store-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let store = try ArtifactStore(root: root)
            var started = Date()
            _ = try store.store(file)
            result.copySeconds.append(Date().timeIntervalSince(started))
            try FileManager.default.removeItem(at: root)
            let moved = try ArtifactStore(root: root)
            let output = root.appendingPathComponent("output")
            try FileManager.default.copyItem(at: file, to: output)   // what the run wrote; not timed
            started = Date()
            _ = try moved.store(output, consuming: true)
            result.storeSeconds.append(Date().timeIntervalSince(started))
            started = Date()
            _ = try hashOnly(file)
            result.hashSeconds.append(Date().timeIntervalSince(started))
        }
        return result
    }

    static func hashOnly(_ file: URL) throws -> ContentHash {
        let input = try FileHandle(forReadingFrom: file)
        defer { try? input.close() }
        var hasher = ContentHasher()
        while let piece = try input.read(upToCount: 1 << 20), !piece.isEmpty {
            hasher.update(piece)
        }
        return hasher.finalize()
    }

    var text: String {
        let gigabytes = Double(bytes) / 1e9
        let store = median(storeSeconds), copy = median(copySeconds), hash = median(hashSeconds)
        return """
        \(file): \(bytes) bytes, median of \(storeSeconds.count)
          store an output (hash, fsync, rename)  \(String(format: "%7.3f s  %6.2f GB/s", store, gigabytes / max(store, 1e-9)))   target ≥ 1 GB/s
          store a copy (hash, copy, fsync)       \(String(format: "%7.3f s  %6.2f GB/s", copy, gigabytes / max(copy, 1e-9)))
          hash only (SHA-256)                    \(String(format: "%7.3f s  %6.2f GB/s", hash, gigabytes / max(hash, 1e-9)))
        """
    }
}
