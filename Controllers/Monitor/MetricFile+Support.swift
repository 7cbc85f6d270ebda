import CairnCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Monitor's file, opened read-only after its path resolved (symlinks followed) under a root,
/// and checked again through the open descriptor: a regular file, still under that root.
struct OpenedFile {
    /// As the Monitor names it: what messages say.
    let path: String
    let descriptor: Int32
    let identity: FileCursor

    init(path: String, roots: [String]) throws(MetricSourceError) {
        self.path = path
        guard let resolved = Self.realPath(path) else {
            if errno == ENOENT || errno == ENOTDIR {
                throw MetricSourceError("\(path) does not exist yet (the serving process or a job writes it)")
            }
            throw MetricSourceError("\(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        let realRoots = roots.compactMap(Self.realPath)
        guard Self.isUnder(resolved, realRoots) else {
            throw MetricSourceError("\(path) resolves to \(resolved), which is not under a data root (\(roots.joined(separator: ", "))); "
                                    + "a Monitor reads files under a --data-root only")
        }
        // The last component is not followed again: a symlink put there since resolving is refused.
        let descriptor = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else {
            let reason = errno == ELOOP ? "it was replaced by a symlink while being opened" : String(cString: strerror(errno))
            throw MetricSourceError("\(path) cannot be read: \(reason)")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            closeDescriptor(descriptor)
            throw MetricSourceError("\(path) is not a regular file")
        }
        // What the descriptor is, as the kernel names it: a directory swapped for a symlink
        // between resolving and opening shows here.
        if let opened = Self.linkTarget("/proc/self/fd/\(descriptor)"), !Self.isUnder(opened, realRoots) {
            closeDescriptor(descriptor)
            throw MetricSourceError("\(path) was moved outside the data roots (to \(opened)) while being opened; not read")
        }
        self.descriptor = descriptor
        identity = FileCursor(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                              modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    func close() {
        closeDescriptor(descriptor)
    }

    /// `count` bytes from `offset` (fewer if the file ends sooner).
    func read(from offset: Int64, count: Int) throws(MetricSourceError) -> Data {
        var data = Data(count: count)
        var filled = 0
        let failure: Int32? = data.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return nil }
            while filled < count {
                let got = pread(descriptor, base + filled, count - filled, off_t(offset) + off_t(filled))
                if got < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if got == 0 { break }
                filled += got
            }
            return nil
        }
        if let failure { throw MetricSourceError("\(path) cannot be read: \(String(cString: strerror(failure)))") }
        if filled < count { data.removeSubrange(filled...) }
        return data
    }

    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func isUnder(_ path: String, _ roots: [String]) -> Bool {
        roots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
    }
}

private func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}

/// One JSON value, as a metrics file may hold it, told apart without coercion (`true` is not 1).
enum JSONScalar: Decodable, Equatable {
    case number(Double)
    case text(String)
    case bool(Bool)
    case null
    /// An object, an array, or a number too large for a Double.
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .other
        }
    }

    /// For messages: `"high"` (a string), `true`, `null`.
    var kind: String {
        switch self {
        case .number(let number): "\(number)"
        case .text(let text): "the string \"\(text.prefix(40))\""
        case .bool(let bool): "\(bool)"
        case .null: "null"
        case .other: "an object, an array or an out-of-range number"
        }
    }

    /// A timestamp: RFC 3339 text, or Unix seconds.
    func parsedTime() -> Result<Date, MetricSourceError> {
        switch self {
        case .number(let seconds) where seconds.isFinite:
            return .success(Date(timeIntervalSince1970: seconds))
        case .text(let text):
            if let date = RFC3339.date(text) { return .success(date) }
            return .failure(MetricSourceError("is \"\(text.prefix(40))\", not RFC 3339 (2025-01-31T12:00:00Z) or Unix seconds"))
        default:
            return .failure(MetricSourceError("is \(kind), not RFC 3339 text or Unix seconds"))
        }
    }
}

