import CairnCore
import CairnRun
import Foundation

/// Throughput of storing one file, as a run's output is stored: `ArtifactStore.store` copies it
/// into a fresh store in a temporary directory while hashing it (SHA-256), fsyncs and renames
/// it. Also reads and hashes the same file without writing anything, so the cost of the copy
/// and the fsync can be told apart from the hashing.
struct HashThroughput: Encodable {
    var file: String
    var bytes: Int
    /// `ArtifactStore.store`: read, hash, copy, fsync, rename.
    var storeSeconds: [Double]
    /// Read and hash only, in the same 1 MiB pieces.
    var hashSeconds: [Double]

    static func measure(file: URL, repeats: Int) throws -> HashThroughput {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
        var result = HashThroughput(file: file.path, bytes: size, storeSeconds: [], hashSeconds: [])
        for _ in 0..<max(1, repeats) {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-store-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let store = try ArtifactStore(root: root)
            var started = Date()
            _ = try store.store(file)
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
        let store = median(storeSeconds), hash = median(hashSeconds)
        return """
        \(file): \(bytes) bytes, median of \(storeSeconds.count)
          store (hash, copy, fsync)  \(String(format: "%7.3f s  %6.2f GB/s", store, gigabytes / max(store, 1e-9)))   target ≥ 1 GB/s
          hash only (SHA-256)        \(String(format: "%7.3f s  %6.2f GB/s", hash, gigabytes / max(hash, 1e-9)))
        """
    }
}
