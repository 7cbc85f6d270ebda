public import Foundation

/// The canonical JSON form that content keys hash (Docs/content-keys.md), in the spirit of
/// RFC 8785 (JCS): object members sorted by the UTF-16 code units of their names, no
/// whitespace, minimal string escapes, one spelling per number, no null members.
///
/// Values are turned into a JSON tree by an `Encoder` of its own, never by parsing what
/// `JSONEncoder` prints, so the bytes depend only on the value and on the rules here.
public enum CanonicalJSON {
    /// The canonical bytes of `value`, without the content-key envelope.
    public static func encode(_ value: some Encodable) throws -> Data {
        var bytes: [UInt8] = []
        try CanonicalValue(encoding: value).write { bytes.append(contentsOf: $0) }
        return Data(bytes)
    }

    /// The names of the top-level members whose canonical values differ between two values
    /// (present in one only, or different), sorted; nil when either is not a JSON object.
    /// The trees are compared as they are, nothing is printed.
    public static func differingMembers(_ old: some Encodable, _ new: some Encodable) throws -> [String]? {
        guard case .object(let before) = try CanonicalValue(encoding: old),
              case .object(let after) = try CanonicalValue(encoding: new) else { return nil }
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }
}

/// Why a value has no canonical form.
public struct CanonicalJSONError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case nonFiniteNumber, invalidEncoding }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// NaN or an infinity: JSON has no spelling for them.
        public static let nonFiniteNumber = Code(.nonFiniteNumber)
        /// An `encode(to:)` that used the encoder in a way JSON cannot hold, such as asking
        /// for a keyed container after encoding a single value.
        public static let invalidEncoding = Code(.invalidEncoding)

        public var description: String {
            switch value {
            case .nonFiniteNumber: "nonFiniteNumber"
            case .invalidEncoding: "invalidEncoding"
            }
        }
    }

    public let code: Code
    public let message: String
    /// The coding path of the offending value, such as `params.C` or `stages[1].timeout`.
    public let path: String

    init(_ code: Code, _ message: String, at codingPath: [any CodingKey]) {
        self.code = code
        self.message = message
        self.path = Self.render(codingPath)
    }

    public var description: String {
        path.isEmpty ? message : "\(path): \(message)"
    }

    static func render(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if key is IndexKey, let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }
}

/// A JSON value as the canonical form sees it. Numbers hold their canonical text already.
indirect enum CanonicalValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([CanonicalValue])
    case object([String: CanonicalValue])
}

extension CanonicalValue {
    /// Writes the canonical bytes in pieces of about `chunk` bytes, so a large value can be
    /// hashed without holding all of its bytes at once.
    func write(chunk: Int = 16_384, to consume: ([UInt8]) -> Void) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(min(chunk, 1024))
        write(into: &buffer, chunk: chunk, consume)
        if !buffer.isEmpty { consume(buffer) }
    }

    private func write(into buffer: inout [UInt8], chunk: Int, _ consume: ([UInt8]) -> Void) {
        if buffer.count >= chunk {
            consume(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
        switch self {
        case .null: buffer.append(contentsOf: "null".utf8)
        case .bool(let value): buffer.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let text): buffer.append(contentsOf: text.utf8)
        case .string(let text): Self.writeString(text, into: &buffer)
        case .array(let items):
            buffer.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                item.write(into: &buffer, chunk: chunk, consume)
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let members):
            buffer.append(UInt8(ascii: "{"))
            var first = true
            for name in members.keys.sorted(by: Self.utf16Order) {
                guard let member = members[name], member != .null else { continue }
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(name, into: &buffer)
                buffer.append(UInt8(ascii: ":"))
                member.write(into: &buffer, chunk: chunk, consume)
            }
            buffer.append(UInt8(ascii: "}"))
        }
    }

    /// RFC 8785 §3.2.3: member names compared as arrays of UTF-16 code units.
    static func utf16Order(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf16.lexicographicallyPrecedes(rhs.utf16)
    }

    /// A JSON string with the fewest escapes: `\"`, `\\`, the five short control escapes,
    /// `\u00xx` (lowercase hex) for the other control characters, every other character as
    /// its UTF-8 bytes.
    static func writeString(_ text: String, into buffer: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        buffer.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): buffer.append(contentsOf: #"\\"#.utf8)
            case 0x08: buffer.append(contentsOf: #"\b"#.utf8)
            case 0x0C: buffer.append(contentsOf: #"\f"#.utf8)
            case 0x0A: buffer.append(contentsOf: #"\n"#.utf8)
            case 0x0D: buffer.append(contentsOf: #"\r"#.utf8)
            case 0x09: buffer.append(contentsOf: #"\t"#.utf8)
            case 0x00..<0x20:
                buffer.append(contentsOf: #"\u00"#.utf8)
                buffer.append(hex[Int(byte >> 4)])
                buffer.append(hex[Int(byte & 0x0F)])
            default: buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }
}
