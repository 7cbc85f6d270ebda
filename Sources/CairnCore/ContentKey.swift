public import Foundation
import Crypto

/// A key that is the content it names: `sha256:` and the SHA-256 of the canonical JSON
/// (`CanonicalJSON`) of an envelope around the value,
///
///     {"format":"cairn.key/v1","kind":"<what is keyed>","value":<the value>}
///
/// so the same value gives the same key in every build, on every platform, whatever order
/// its fields were written in. Docs/content-keys.md describes the encoding precisely enough
/// to recompute a key with another tool.
public struct ContentKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The envelope's `format`. It changes, and with it every key, only when the encoding
    /// rules change (envelope, escaping, number form, key order, what is omitted).
    public static let format = "cairn.key/v1"
    static let scheme = "sha256:"

    /// The 64 lowercase hex digits of the digest.
    public let hex: String

    /// `sha256:` followed by the hex digits, as keys are written everywhere.
    public var description: String { Self.scheme + hex }

    /// Reads a key as `description` writes it; nil for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix(Self.scheme) else { return nil }
        let hex = text.dropFirst(Self.scheme.count)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            return nil
        }
        self.hex = String(hex)
    }

    private init(digest: SHA256.Digest) {
        hex = digest.lowercaseHex
    }

    /// The key of `value` as `kind`, a name for what is keyed such as `spec/Model` or
    /// `run/TrainingSchedule`: equal values of different kinds get different keys.
    ///
    /// Throws `CanonicalJSONError` when the value holds NaN or an infinity, or when its
    /// `encode(to:)` misuses the `Encoder` API, and whatever its `encode(to:)` throws.
    public static func of(_ value: some Encodable, kind: String) throws -> ContentKey {
        var hasher = SHA256()
        try envelope(of: value, kind: kind).write { hasher.update(data: $0) }
        return ContentKey(digest: hasher.finalize())
    }

    /// The bytes `of(_:kind:)` hashes, for tools and tests that check a key by hand.
    public static func canonicalBytes(of value: some Encodable, kind: String) throws -> Data {
        var bytes: [UInt8] = []
        try envelope(of: value, kind: kind).write { bytes.append(contentsOf: $0) }
        return Data(bytes)
    }

    private static func envelope(of value: some Encodable, kind: String) throws -> CanonicalValue {
        .object([
            "format": .string(format),
            "kind": .string(kind),
            "value": try CanonicalValue(encoding: value),
        ])
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let key = ContentKey(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "\"\(text)\" is not a content key (sha256: and 64 lowercase hex digits)"))
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension SHA256.Digest {
    /// Two lowercase hex digits a byte.
    var lowercaseHex: String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(2 * SHA256.byteCount)
        for byte in self {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}

/// SHA-256 fed piece by piece, for content streamed from a file or a pipe: the one way Cairn
/// hashes content, so every `ContentHash` is spelled the same.
public struct ContentHasher {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ data: Data) {
        var offset = data.startIndex
        while offset < data.endIndex {
            let end = data.index(offset, offsetBy: 1 << 16, limitedBy: data.endIndex) ?? data.endIndex
            hasher.update(data: data[offset..<end])
            offset = end
        }
    }

    public func finalize() -> ContentHash {
        ContentHash(hex: hasher.finalize().lowercaseHex)
    }
}

extension ContentHash {
    /// The SHA-256 of `data`, fed to the hasher in 64 KiB pieces.
    public static func sha256(of data: Data) -> ContentHash {
        var hasher = ContentHasher()
        hasher.update(data)
        return hasher.finalize()
    }
}
